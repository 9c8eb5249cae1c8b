"""Suite-wide test settings."""

from pathlib import Path

import pytest

from numnet.backend import one_blas_thread

#: The engine's tests: the suite runs these a second time with NUMNET_BACKEND=array_api_strict
#: (`pytest -m core`) to prove the engine uses only the Python array API standard.
CORE_TEST_FILES = {
    "test_activations.py", "test_losses.py", "test_initializers.py", "test_layers.py", "test_network.py",
    "test_training.py", "test_gradcheck.py", "test_optimizers.py", "test_schedules.py", "test_registry.py",
    "test_persistence.py", "test_reference_experiments.py", "test_layer_contract.py", "test_dropout_batchnorm.py",
    "test_metrics.py", "test_conv.py", "test_embedding.py", "test_recurrent.py",
}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if Path(str(item.fspath)).name in CORE_TEST_FILES:
            item.add_marker(pytest.mark.core)


@pytest.fixture(autouse=True, scope="session")
def single_blas_thread():
    """Run the whole suite's small matrix products on one BLAS thread (see numnet.backend.one_blas_thread)."""
    with one_blas_thread():
        yield

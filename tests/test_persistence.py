"""Tests for numnet.persistence: bit-exact round trips, exact resumption, and refusal of bad files.

The oracle for a round trip is the network that was saved (bit-identical is the point, so comparisons
are exact); the oracle for resumption is an uninterrupted run on a fresh, identically seeded network.
"""

import io
import json
import os
import tempfile
import zipfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import numnet
from numnet.activations import LeakyReLU
from numnet.errors import CorruptFileError
from numnet.layers import Dense
from numnet.optimizers import OPTIMIZERS
from numnet.persistence import FORMAT_VERSION, load_model, save_model
from numnet.schedules import InverseScaling, StepDecay
from oracles import as_numpy, numpy_dtype


def _data(n_samples=30, n_features=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n_samples, n_features))


def _classifier(dtype="float32", **options):
    return numnet.Network([3, 6, 3], activation="tanh", output_activation="softmax", dtype=dtype, seed=1,
                          **options)


def _trained_classifier(dtype="float32"):
    X = _data()
    y = np.arange(30) % 3
    network = _classifier(dtype, l2=1e-3)
    network.fit(X, y, epochs=2, batch_size=8, optimizer="adam", learning_rate=0.01, seed=5)
    return network, X, y


def _members(path):
    with zipfile.ZipFile(path) as archive:
        return {info.filename: archive.read(info) for info in archive.infolist()}


def _rewrite(path, replaced):
    """Rewrite the archive at ``path`` with some members replaced by arrays (zip CRCs made valid)."""
    members = _members(path)
    for key, array in replaced.items():
        buffer = io.BytesIO()
        np.lib.format.write_array(buffer, array, allow_pickle=array.dtype == object)
        members[key + ".npy"] = buffer.getvalue()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def _document(path):
    with np.load(path, allow_pickle=False) as archive:
        return json.loads(archive["numnet.json"].tobytes().decode("utf-8"))


def _document_array(document):
    return np.frombuffer(json.dumps(document).encode("utf-8"), dtype=np.uint8)


def _assert_same_network(loaded, original, X):
    assert type(loaded) is numnet.Network
    assert loaded.dtype == original.dtype
    assert loaded.config() == original.config()
    assert loaded.parameters().keys() == original.parameters().keys()
    for name, array in original.parameters().items():
        assert numpy_dtype(loaded.parameters()[name]) == numpy_dtype(array)
        assert np.array_equal(loaded.parameters()[name], array), name
    assert np.array_equal(loaded.forward(X), original.forward(X))
    assert np.array_equal(loaded.predict(X), original.predict(X))


# ---- round trips ---------------------------------------------------------------------------------------

ARCHITECTURES = {
    "relu_softmax_float32": dict(layer_sizes=[3, 8, 4], activation="relu", output_activation="softmax"),
    "leaky_relu_slope_0.3_mse_float64": dict(layer_sizes=[3, 5, 5, 2], activation=LeakyReLU(0.3),
                                             loss="mse", dtype="float64", l2=0.25),
    "sigmoid_multilabel_bce": dict(layer_sizes=[3, 4, 3], activation="sigmoid", loss="bce"),
    "single_linear_layer": dict(layer_sizes=[3, 1], loss="mse", dtype="float64"),
    "named_layers_with_initialisers": dict(layers=[
        Dense(3, 7, "tanh", weight_init="normal", bias_init=0.1, name="hidden"),
        Dense(7, 2, "softmax", weight_init="xavier_normal", name="output")]),
}


@pytest.mark.parametrize("options", ARCHITECTURES.values(), ids=list(ARCHITECTURES))
def test_round_trip_gives_bit_identical_parameters_and_predictions(tmp_path, options):
    network = numnet.Network(**options, seed=3)
    X = _data()
    loaded = load_model(save_model(network, tmp_path / "model.npz"))
    _assert_same_network(loaded, network, X)
    assert loaded.l2 == network.l2
    assert loaded.loss.name == network.loss.name
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in network.layers]


@settings(max_examples=12, deadline=None, derandomize=True)
@given(hidden=st.lists(st.integers(1, 6), min_size=0, max_size=3),
       activation=st.sampled_from(["relu", "tanh", "sigmoid", "linear", "leaky_relu"]),
       slope=st.floats(0.0, 0.9),
       loss=st.sampled_from(["mse", "softmax_cross_entropy", "binary_cross_entropy"]),
       dtype=st.sampled_from(["float32", "float64"]))
def test_round_trip_is_exact_for_random_architectures(hidden, activation, slope, loss, dtype):
    hidden_activation = LeakyReLU(slope) if activation == "leaky_relu" else activation
    network = numnet.Network([3, *hidden, 2], activation=hidden_activation, loss=loss, dtype=dtype, seed=0)
    with tempfile.TemporaryDirectory() as folder:
        loaded = load_model(save_model(network, os.path.join(folder, "model.npz")))
    _assert_same_network(loaded, network, _data())
    for loaded_layer, layer in zip(loaded.layers, network.layers):
        assert type(loaded_layer.activation) is type(layer.activation)
        assert vars(loaded_layer.activation) == vars(layer.activation)


def test_leaky_relu_keeps_its_non_default_slope(tmp_path):
    network = numnet.Network([1, 1, 1], activation=LeakyReLU(0.3), loss="mse", dtype="float64", seed=0)
    loaded = load_model(save_model(network, tmp_path / "model.npz"))
    # Hand-worked: leaky_relu(-2) with slope 0.3 is 0.3 * -2 = -0.6; leaky_relu(5) = 5.
    values = loaded.layers[0].activation.forward(np.array([[-2.0, 5.0]]))
    assert loaded.layers[0].activation.negative_slope == 0.3
    assert np.array_equal(values, np.array([[-0.6, 5.0]]))


def test_initialisers_are_restored_so_reinitialising_draws_the_same_weights(tmp_path):
    network = numnet.Network(layers=[Dense(3, 4, "relu", weight_init="normal", bias_init=0.1),
                                     Dense(4, 1, "linear", weight_init="he_uniform", bias_init="zeros")],
                             loss="mse", seed=0)
    loaded = load_model(save_model(network, tmp_path / "model.npz"))
    network.initialize(seed=9)
    loaded.initialize(seed=9)
    assert np.array_equal(loaded.flat_parameters, network.flat_parameters)
    # Hand-worked: bias_init=0.1 is the constant 0.1 in every entry of the first bias.
    assert np.array_equal(loaded.parameters()["dense_0.b"], np.full(4, 0.1, dtype=np.float32))


def test_history_progress_and_metadata_are_restored(tmp_path):
    network, X, y = _trained_classifier()
    metadata = {"classes": ["cat", "dog", "emu"], "scaler": {"mean": [0.5, -1.0, 2.25]}, "note": None}
    loaded = load_model(save_model(network, tmp_path / "model.npz", metadata=metadata))
    assert loaded.metadata == metadata
    assert loaded.history.to_dict() == network.history.to_dict()
    assert len(loaded.history.iteration_loss) == 8  # 2 epochs x ceil(30 / 8) = 4 batches
    assert (loaded.epochs_trained, loaded.iterations_trained, loaded.training_seed) == (2, 8, 5)


def test_an_untrained_network_loads_without_optimizer_history_or_metadata(tmp_path):
    network = _classifier()
    loaded = load_model(save_model(network, tmp_path / "model.npz"))
    assert loaded.optimizer is None
    assert loaded.history is None
    assert loaded.metadata == {}
    assert (loaded.epochs_trained, loaded.iterations_trained, loaded.training_seed) == (0, 0, None)


def test_saving_again_keeps_loaded_metadata_unless_replaced(tmp_path):
    network, _, _ = _trained_classifier()
    loaded = load_model(save_model(network, tmp_path / "first.npz", metadata={"classes": ["a", "b", "c"]}))
    assert load_model(save_model(loaded, tmp_path / "second.npz")).metadata == {"classes": ["a", "b", "c"]}
    assert load_model(save_model(loaded, tmp_path / "third.npz", metadata={})).metadata == {}


OPTIMIZER_CASES = {
    "sgd": dict(learning_rate=0.05),
    "momentum": dict(learning_rate=0.05, momentum=0.8, schedule=StepDecay(step_size=3, factor=0.5)),
    "nesterov": dict(learning_rate=0.05, momentum=0.7),
    "adagrad": dict(learning_rate=0.1, epsilon=1e-7),
    "rmsprop": dict(learning_rate=0.01, rho=0.8, schedule=InverseScaling(decay=0.5, power=0.75)),
    "adam": dict(learning_rate=0.01, beta1=0.8, beta2=0.99, epsilon=1e-7),
}


def test_every_registered_optimizer_has_a_persistence_case():
    assert set(OPTIMIZER_CASES) == set(OPTIMIZERS)


@pytest.mark.parametrize("name", sorted(OPTIMIZER_CASES))
def test_optimizer_hyperparameters_schedule_and_state_are_restored(tmp_path, name):
    X, y = _data(), np.arange(30) % 3
    network = _classifier()
    optimizer = OPTIMIZERS[name](**OPTIMIZER_CASES[name])
    network.fit(X, y, epochs=1, batch_size=8, optimizer=optimizer, seed=0)
    restored = load_model(save_model(network, tmp_path / "model.npz")).optimizer
    assert type(restored) is type(optimizer)
    assert restored.hyperparameters() == optimizer.hyperparameters()
    assert restored.state["step"] == optimizer.state["step"] == 4  # ceil(30 / 8) steps
    for state_name in optimizer.state_names:
        assert numpy_dtype(restored.state[state_name]) == numpy_dtype(optimizer.state[state_name])
        assert np.array_equal(restored.state[state_name], optimizer.state[state_name]), state_name


# ---- resuming ------------------------------------------------------------------------------------------

RESUME_OPTIMIZERS = {
    "adam": lambda: numnet.Adam(learning_rate=0.01),
    "sgd_momentum_step_decay": lambda: numnet.SGD(learning_rate=0.05, momentum=0.9,
                                                  schedule=StepDecay(step_size=5, factor=0.5)),
}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("make_optimizer", RESUME_OPTIMIZERS.values(), ids=list(RESUME_OPTIMIZERS))
def test_training_resumed_from_a_file_matches_an_uninterrupted_run_bit_for_bit(tmp_path, make_optimizer,
                                                                               dtype):
    # load_model rebuilds on NumPy, so the resumed epochs run there, and bit-for-bit needs every run on that
    # one backend: elsewhere a recorded float32 loss may differ in its last bit (the L2 term's ΣW² is one BLAS
    # dot product on NumPy, a sum of squares on array_api_strict), though the weights agree. Saving from the
    # other backends is covered by the round-trip and optimizer-state tests above.
    X, y = _data(n_samples=50), np.arange(50) % 3
    interrupted = _classifier(dtype, l2=1e-3, backend="numpy")
    interrupted.fit(X, y, epochs=2, batch_size=16, optimizer=make_optimizer(), seed=11)
    resumed = load_model(save_model(interrupted, tmp_path / "checkpoint.npz"))
    resumed.fit(X, y, epochs=2, batch_size=16)  # optimizer and seed come from the file
    uninterrupted = _classifier(dtype, l2=1e-3, backend="numpy")
    uninterrupted.fit(X, y, epochs=4, batch_size=16, optimizer=make_optimizer(), seed=11)
    assert np.array_equal(resumed.flat_parameters, uninterrupted.flat_parameters)
    assert resumed.history.iteration_loss == uninterrupted.history.iteration_loss
    assert resumed.history.to_dict() == uninterrupted.history.to_dict()
    assert resumed.optimizer.state["step"] == uninterrupted.optimizer.state["step"] == 16  # 4 x ceil(50/16)
    assert (resumed.epochs_trained, resumed.iterations_trained) == (4, 16)


# ---- files that must be refused ------------------------------------------------------------------------


@pytest.fixture
def saved(tmp_path):
    network, _, _ = _trained_classifier()
    return network, save_model(network, tmp_path / "model.npz")


def test_missing_file_raises_file_not_found_naming_the_path(tmp_path):
    missing = tmp_path / "nowhere" / "model.npz"
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_model(missing)


def test_a_flipped_byte_in_the_array_data_is_detected(saved):
    network, path = saved
    raw = bytearray(path.read_bytes())
    weights = as_numpy(network.parameters()["dense_0.W"]).tobytes()  # stored uncompressed, so its bytes are in the file
    start = raw.find(weights)
    assert start > 0
    raw[start + len(weights) // 2] ^= 0x01
    path.write_bytes(bytes(raw))
    with pytest.raises(CorruptFileError, match="model.npz"):
        load_model(path)


def test_an_array_replaced_with_a_valid_zip_crc_fails_its_sha256(saved):
    network, path = saved
    _rewrite(path, {"parameters/dense_0.b": as_numpy(network.parameters()["dense_0.b"]) + np.float32(1.0)})
    with pytest.raises(CorruptFileError, match="SHA-256"):
        load_model(path)


@pytest.mark.parametrize("damage", ["truncate_to_half", "empty", "random_bytes", "text", "single_npy"])
def test_damaged_or_foreign_files_raise_corrupt_file_error(saved, damage):
    _, path = saved
    raw = path.read_bytes()
    if damage == "truncate_to_half":
        path.write_bytes(raw[:len(raw) // 2])
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "random_bytes":
        path.write_bytes(np.random.default_rng(0).integers(0, 256, size=len(raw), dtype=np.uint8).tobytes())
    elif damage == "text":
        path.write_text("label,x0,x1\n0,1.5,2.5\n")
    else:
        with open(path, "wb") as handle:
            np.save(handle, np.ones(3))
    with pytest.raises(CorruptFileError, match="model.npz") as caught:
        load_model(path)
    assert "allow_pickle" not in str(caught.value)  # never advise loading a foreign file unsafely


def test_a_valid_npz_without_numnet_document_is_refused(tmp_path):
    path = tmp_path / "foreign.npz"
    np.savez(path, weights=np.ones((3, 3)))
    with pytest.raises(CorruptFileError, match="numnet.json"):
        load_model(path)


def test_a_document_that_is_not_numnet_format_is_refused(saved):
    _, path = saved
    _rewrite(path, {"numnet.json": _document_array({"format": "something-else", "format_version": 1})})
    with pytest.raises(CorruptFileError, match="does not describe a numnet model"):
        load_model(path)


def test_a_file_from_a_newer_format_version_asks_to_upgrade(saved):
    _, path = saved
    document = _document(path)
    document["format_version"] = FORMAT_VERSION + 1
    _rewrite(path, {"numnet.json": _document_array(document)})
    with pytest.raises(CorruptFileError, match="upgrade numnet"):
        load_model(path)


def test_an_unknown_activation_name_in_the_file_is_refused_not_resolved(saved):
    _, path = saved
    document = _document(path)
    document["network"]["layers"][0]["activation"] = "__import__"
    _rewrite(path, {"numnet.json": _document_array(document)})
    with pytest.raises(CorruptFileError, match="unknown activation"):
        load_model(path)


class _Trap:
    """Unpickling this object would create the folder ``target``: proof that code ran."""

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return os.mkdir, (str(self.target),)


def test_pickled_object_arrays_are_refused_and_never_executed(saved, tmp_path):
    _, path = saved
    sentinel = tmp_path / "pickle_ran"
    trap = np.empty(1, dtype=object)
    trap[0] = _Trap(sentinel)
    _rewrite(path, {"parameters/dense_0.W": trap})
    with pytest.raises(CorruptFileError, match="Object arrays cannot be loaded"):
        load_model(path)
    assert not sentinel.exists()


# ---- saving --------------------------------------------------------------------------------------------


def test_save_creates_parent_folders_and_keeps_the_path_as_given(tmp_path):
    target = tmp_path / "runs" / "today" / "model.checkpoint"
    written = save_model(_classifier(), str(target))
    assert written == target
    assert sorted(os.listdir(target.parent)) == ["model.checkpoint"]


def test_an_interrupted_save_leaves_the_old_file_intact_and_no_temporary(saved, monkeypatch):
    network, path = saved
    before = path.read_bytes()

    def fail_midway(file, *args, **kwargs):
        file.write(b"PK\x03\x04 half an archive")
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(np, "savez", fail_midway)
    network.fit(_data(), np.arange(30) % 3, epochs=1, batch_size=8)
    with pytest.raises(OSError, match="simulated"):
        save_model(network, path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert os.listdir(path.parent) == ["model.npz"]
    assert load_model(path).epochs_trained == 2


def test_metadata_that_json_cannot_hold_is_refused_before_writing(saved):
    network, path = saved
    before = path.read_bytes()
    with pytest.raises(TypeError, match="tolist"):
        save_model(network, path, metadata={"mean": np.zeros(3)})
    assert path.read_bytes() == before
    assert os.listdir(path.parent) == ["model.npz"]


def test_an_unregistered_activation_class_cannot_be_saved(tmp_path):
    class Swish(numnet.activations.Activation):
        name = "swish"

        def forward(self, z, out=None):
            return np.multiply(z, 1.0 / (1.0 + np.exp(-z)), out=out)

    network = numnet.Network([2, 3, 1], activation=Swish(), loss="mse", seed=0)
    with pytest.raises(ValueError, match="swish"):
        save_model(network, tmp_path / "model.npz")
    assert not (tmp_path / "model.npz").exists()


def test_save_rejects_things_that_are_not_networks_or_paths(tmp_path):
    with pytest.raises(TypeError, match="Network"):
        save_model({"W": np.ones(2)}, tmp_path / "model.npz")
    with pytest.raises(TypeError, match="path"):
        save_model(_classifier(), 42)
    with pytest.raises(IsADirectoryError, match="folder"):
        save_model(_classifier(), tmp_path)


# ---------------------------------------------------------------------------------------------------------
# Files across versions
# ---------------------------------------------------------------------------------------------------------

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")


def _fixture(name):
    return os.path.join(FIXTURES, name)


def test_models_saved_by_numnet_0_1_load_and_predict_exactly_what_they_predicted_then():
    # Written by numnet 0.1.0 (commit d618d3a): a trained tanh/softmax classifier with Adam state, L2, a
    # history and metadata, and a float64 leaky-relu regressor with momentum SGD and a step schedule.
    expected = np.load(_fixture("predictions_v0.1.0.npz"))
    classifier = load_model(_fixture("classifier_v0.1.0.npz"))
    regressor = load_model(_fixture("regressor_v0.1.0.npz"))
    np.testing.assert_array_equal(classifier.predict_proba(expected["classifier_X"]), expected["classifier_proba"])
    np.testing.assert_array_equal(regressor.predict(expected["regressor_X"]), expected["regressor_output"])
    assert classifier.metadata == {"class_names": ["a", "b", "c"]} and classifier.epochs_trained == 3
    assert regressor.layers[0].activation.negative_slope == 0.2
    assert regressor.optimizer.schedule.step_size == 3


def test_a_dense_only_network_is_still_written_in_format_version_1_as_numnet_0_1_wrote_it(tmp_path):
    path = tmp_path / "dense.npz"
    save_model(numnet.Network([4, 6, 5, 3], activation="tanh", output_activation="softmax", seed=0), path)
    document, old = _document(path), _document(_fixture("classifier_v0.1.0.npz"))
    assert document["format_version"] == 1
    assert set(document["network"]) == set(old["network"])
    assert [set(layer) for layer in document["network"]["layers"]] == [set(layer) for layer in old["network"]["layers"]]
    assert not any(key.startswith("state/") for key in document["arrays"])


def test_a_network_with_other_layers_is_written_in_format_version_2_with_its_state(tmp_path):
    path = tmp_path / "bn.npz"
    save_model(numnet.Network([4, 6, 3], batch_norm=True, dropout=0.1, seed=0), path)
    document = _document(path)
    assert document["format_version"] == 2
    assert [layer["type"] for layer in document["network"]["layers"]] == ["dense", "batch_norm", "activation",
                                                                           "dropout", "dense"]
    assert {"state/batch_norm_1.running_mean", "state/batch_norm_1.running_var"} <= set(document["arrays"])


def test_a_document_whose_layers_claim_sizes_its_arrays_do_not_have_is_refused_before_allocating(saved):
    _, path = saved
    document = _document(path)
    document["network"]["layers"][0]["n_outputs"] = 10 ** 9  # a billion units, 4 GB of float32 weights
    _rewrite(path, {"numnet.json": _document_array(document)})
    with pytest.raises(CorruptFileError, match=r"declares parameters/dense_0.W of shape \(\d+, 1000000000\)"):
        load_model(path)

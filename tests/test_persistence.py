"""Tests for numnet.persistence: bit-exact round trips, exact resumption, and refusal of bad files.

The oracle for a round trip is the network that was saved (bit-identical is the point, so comparisons
are exact); the oracle for resumption is an uninterrupted run on a fresh, identically seeded network.
"""

import io
import json
import os
import struct
import tempfile
import warnings
import zipfile
import zlib

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
from fuzzing import Tally, fuzz_cases, mutate, peak_memory
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
    "adamw": dict(learning_rate=0.01, beta1=0.8, weight_decay=0.05, decay="matrices"),
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
    with pytest.raises(CorruptFileError, match="pickled Python objects, which numnet never unpickles"):
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


def test_models_saved_by_numnet_0_2_load_and_predict_exactly_what_they_predicted_then():
    # Written by numnet 0.2.0 (commit 958fab0): `numnet train` on a 24-row, 3-feature CSV with --layers 3,6,3
    # --batch-norm --dropout 0.2 (its file carries the CLI's scaler, class and feature names), and a
    # Conv2D/MaxPool2D/Flatten/Dense network trained two epochs with momentum SGD on random 6x6 images.
    expected = np.load(_fixture("predictions_v0.2.0.npz"))
    batch_norm = load_model(_fixture("batchnorm_dropout_v0.2.0.npz"))
    cnn = load_model(_fixture("cnn_v0.2.0.npz"))
    scaler = batch_norm.metadata["scaler"]
    # The scaling written out by hand (the oracle): StandardScaler's (x - mean) / scale in float64, then
    # the model's float32.
    raw = expected["batchnorm_dropout_X_raw"].astype(np.float32)
    scaled = ((raw - np.asarray(scaler["mean"])) / np.asarray(scaler["scale"])).astype(np.float32)
    np.testing.assert_array_equal(batch_norm.predict_proba(scaled), expected["batchnorm_dropout_proba"])
    np.testing.assert_array_equal(cnn.predict_proba(expected["cnn_X"]), expected["cnn_proba"])
    assert [layer.name for layer in batch_norm.layers] == ["dense_0", "batch_norm_1", "activation_2", "dropout_3",
                                                            "dense_4"]
    assert [layer.name for layer in cnn.layers] == ["conv2d_0", "max_pool2d_1", "flatten_2", "dense_3"]
    assert batch_norm.metadata["class_names"] == ["a", "b", "c"] and batch_norm.epochs_trained == 3
    assert cnn.optimizer.momentum == 0.9 and cnn.input_shape == (1, 6, 6)


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


# ---- hostile model files: each class of damage, then fuzzing -------------------------------------------

# What rejecting a file may allocate beyond the file's own size (zip directory, one .npy header, messages).
REJECTION_MEMORY_SLACK = 1 << 20
# Offsets of fields in a zip central-directory entry (APPNOTE.TXT, section 4.3.12).
CENTRAL_DIRECTORY_SIGNATURE = b"PK\x01\x02"
CENTRAL_FIELDS = {"version_made_by": (4, "<H"), "version_needed": (6, "<H"), "flags": (8, "<H"),
                  "method": (10, "<H"), "time": (12, "<H"), "date": (14, "<H"), "crc": (16, "<I"),
                  "compressed_size": (20, "<I"), "size": (24, "<I"), "name_length": (28, "<H"),
                  "extra_length": (30, "<H"), "comment_length": (32, "<H"), "disk": (34, "<H"),
                  "internal_attributes": (36, "<H"), "external_attributes": (38, "<I"),
                  "local_header_offset": (42, "<I")}
# Fields no reader needs: an edit there must leave the model loading exactly as saved.
HARMLESS_CENTRAL_FIELDS = ("version_made_by", "time", "date", "internal_attributes", "external_attributes")
LOCAL_HEADER_SIGNATURE = b"PK\x03\x04"
LOCAL_FIELDS = {"version_needed": (4, "<H"), "flags": (6, "<H"), "method": (8, "<H"), "time": (10, "<H"),
                "crc": (14, "<I"), "compressed_size": (18, "<I"), "size": (22, "<I"), "name_length": (26, "<H"),
                "extra_length": (28, "<H")}


def _central_entries(raw):
    """Offsets of the central-directory entries, found by walking the directory from its end record."""
    end = raw.rfind(b"PK\x05\x06")
    count, _, start = struct.unpack("<HII", raw[end + 10:end + 20])
    offsets, position = [], start
    for _ in range(count):
        offsets.append(position)
        name_length, extra_length, comment_length = struct.unpack("<HHH", raw[position + 28:position + 34])
        position += 46 + name_length + extra_length + comment_length
    return offsets


def _edit_field(raw, offset, field, value):
    """``raw`` with the field (offset in its record, struct layout) of the record at ``offset`` set to
    ``value``, wrapped to the field's width."""
    at, layout = field
    width = struct.calcsize(layout)
    raw = bytearray(raw)
    raw[offset + at:offset + at + width] = struct.pack(layout, value % (1 << (8 * width)))
    return bytes(raw)


def _edit_every_entry(path, field, value):
    raw = path.read_bytes()
    for offset in _central_entries(raw):
        raw = _edit_field(raw, offset, CENTRAL_FIELDS[field], value)
    path.write_bytes(raw)


def _repack(path, *, compress_type):
    """Rewrite the archive with the same members, compressed as asked, with valid CRCs."""
    members = _members(path)
    with zipfile.ZipFile(path, "w", compression=compress_type) as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def _assert_same_model(loaded, original):
    """Everything save_model writes came back: architecture, parameters, optimiser, progress, history."""
    assert loaded.config() == original.config()
    for name, array in original.parameters().items():
        assert numpy_dtype(loaded.parameters()[name]) == numpy_dtype(array)
        assert np.array_equal(as_numpy(loaded.parameters()[name]), as_numpy(array)), name
    for name, array in original.state().items():
        assert np.array_equal(as_numpy(loaded.state()[name]), as_numpy(array)), name
    assert loaded.optimizer.hyperparameters() == original.optimizer.hyperparameters()
    for state_name in original.optimizer.state_names:
        assert np.array_equal(as_numpy(loaded.optimizer.state[state_name]),
                              as_numpy(original.optimizer.state[state_name]))
    assert loaded.history.to_dict() == original.history.to_dict()
    assert (loaded.epochs_trained, loaded.iterations_trained, loaded.metadata) == (
        original.epochs_trained, original.iterations_trained, getattr(original, "metadata", None) or {})


@pytest.mark.parametrize("compress_type, message", [
    (zipfile.ZIP_BZIP2, "compression method 12"),
    (zipfile.ZIP_LZMA, "compression method 14"),
], ids=["bzip2", "lzma"])
def test_members_compressed_by_methods_numnet_never_writes_are_refused_before_decompressing(saved, compress_type,
                                                                                          message):
    _, path = saved
    _repack(path, compress_type=compress_type)
    with pytest.raises(CorruptFileError, match=f"model.npz.*{message}"):
        load_model(path)


def test_an_unknown_compression_method_number_is_refused(saved):
    _, path = saved
    _edit_every_entry(path, "method", 99)
    with pytest.raises(CorruptFileError, match="compression method 99"):
        load_model(path)


def test_a_zip_version_newer_than_pythons_zipfile_reads_is_a_corrupt_file_error(saved):
    _, path = saved
    _edit_every_entry(path, "version_needed", 99)  # zipfile raises NotImplementedError("zip file version 9.9")
    with pytest.raises(CorruptFileError, match=r"model\.npz.*zip file version 9\.9"):
        load_model(path)


def test_an_encrypted_member_is_refused_without_asking_for_a_password(saved):
    _, path = saved
    _edit_every_entry(path, "flags", 0x1)  # zipfile would raise RuntimeError("... password required")
    with pytest.raises(CorruptFileError, match="its member '[^']+' is encrypted"):
        load_model(path)


def test_a_deflated_member_with_a_damaged_stream_is_a_corrupt_file_error(saved):
    network, path = saved
    _repack(path, compress_type=zipfile.ZIP_DEFLATED)
    assert load_model(path).config() == network.config()  # a re-packed archive loads
    raw = bytearray(path.read_bytes())
    data_start = raw.find(b"numnet.json.npy") + len("numnet.json.npy")
    raw[data_start + 20:data_start + 28] = b"\xff" * 8  # into the deflate stream: invalid codes
    path.write_bytes(bytes(raw))
    with pytest.raises(CorruptFileError, match="model.npz"):
        load_model(path)


def test_a_tiny_npy_header_declaring_a_huge_shape_is_refused_before_any_allocation(saved):
    network, path = saved
    bias = as_numpy(network.parameters()["dense_0.b"])
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False,
                                                  "shape": (2**40, 2**20)})  # 4 x 2^60 bytes = 4 EiB
    members = _members(path)
    members["parameters/dense_0.b.npy"] = header.getvalue() + bias.tobytes()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)

    def reject():
        with pytest.raises(CorruptFileError, match=r"'parameters/dense_0.b' has dtype float32 and shape "
                                                   r"\(1099511627776, 1048576\), but the file lists float32"):
            load_model(path)

    peak = peak_memory(reject)
    assert peak < path.stat().st_size + REJECTION_MEMORY_SLACK


def test_a_header_matching_the_document_but_not_the_zip_entrys_size_is_refused(saved):
    network, path = saved
    document = _document(path)
    document["arrays"]["parameters/dense_0.b"]["shape"] = [2**40]
    _rewrite(path, {"numnet.json": _document_array(document)})
    members = _members(path)
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": (2**40,)})
    members["parameters/dense_0.b.npy"] = header.getvalue() + b"\x00" * 24
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    with pytest.raises(CorruptFileError, match=r"needs 4,398,046,511,104 bytes after its header, but its zip "
                                               "entry holds 24"):
        load_model(path)


@pytest.mark.parametrize("header_text", [
    "{'descr': '<f4', 'fortran_order': False, 'shape': (" + "-" * 9000 + "1,), }",  # ast: MemoryError
    "{'descr': '<f4', 'fortran_order': False, 'shape': (" + "not " * 2000 + "1,), }",  # ast: RecursionError
    "{'descr': '<f4', 'fortran_order': False, 'shape': (" + "(" * 3000 + ")" * 3000 + "), }",
    "{'descr': '<f4', 'fortran_order': False, 'shape': (" + "9" * 5000 + ",), }",  # beyond the int-string limit
], ids=["unary_minus", "nested_not", "nested_parentheses", "long_integer"])
def test_npy_headers_that_would_crash_numpys_reader_are_corrupt_file_errors(saved, header_text):
    _, path = saved
    text = header_text.encode("latin-1") + b"\n"
    members = _members(path)
    members["parameters/dense_0.b.npy"] = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    with pytest.raises(CorruptFileError, match="'parameters/dense_0.b' has a damaged"):
        load_model(path)


def test_a_document_nested_deeper_than_python_can_parse_is_a_corrupt_file_error(saved):
    _, path = saved
    document = _document(path)
    text = json.dumps(document)[:-1] + ', "deep": ' + "[" * 100_000 + "]" * 100_000 + "}"
    _rewrite(path, {"numnet.json": np.frombuffer(text.encode("utf-8"), dtype=np.uint8)})
    with pytest.raises(CorruptFileError, match="nests lists or objects deeper than Python can read"):
        load_model(path)


@pytest.mark.parametrize("field, value, message", [
    ("format_version", "1" + "0" * 5000, "not valid JSON text.*digits"),  # Python's int-string limit
    ("l2", "1" + "0" * 400, "network description is invalid.*OverflowError"),  # beyond any float
])
def test_integers_too_long_for_their_field_are_corrupt_file_errors(saved, field, value, message):
    _, path = saved
    document = _document(path)
    placeholder = "__replace_me__"
    if field == "l2":
        document["network"]["l2"] = placeholder
    else:
        document[field] = placeholder
    text = json.dumps(document).replace(f'"{placeholder}"', value)
    _rewrite(path, {"numnet.json": np.frombuffer(text.encode("utf-8"), dtype=np.uint8)})
    with pytest.raises(CorruptFileError, match=message):
        load_model(path)


def test_a_model_saved_on_a_big_endian_machine_loads_bit_for_bit(saved):
    network, path = saved
    # On a big-endian machine np.save writes '>f4' headers and big-endian bytes; the document (and each
    # SHA-256, taken of little-endian bytes) is the same on every machine.
    members = _members(path)
    for name in list(members):
        if name != "numnet.json.npy":
            array = np.lib.format.read_array(io.BytesIO(members[name]))
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, array.astype(array.dtype.newbyteorder(">")))
            assert b"'descr': '>f" in buffer.getvalue()[:128]
            members[name] = buffer.getvalue()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    loaded = load_model(path)
    _assert_same_model(loaded, network)
    assert all(array.dtype.isnative for array in loaded.parameters().values())


def test_a_fortran_ordered_member_with_the_same_values_loads_exactly(saved):
    network, path = saved
    weights = as_numpy(network.parameters()["dense_0.W"])
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.asfortranarray(weights))
    assert b"'fortran_order': True" in buffer.getvalue()[:128]
    members = _members(path)
    members["parameters/dense_0.W.npy"] = buffer.getvalue()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    _assert_same_model(load_model(path), network)


def test_duplicate_foreign_and_renamed_members_are_refused(saved):
    _, path = saved
    members = _members(path)
    cases = {"duplicate": list(members.items()) + [("numnet.json.npy", members["numnet.json.npy"])],
             "foreign": list(members.items()) + [("readme.txt", b"hello")]}
    messages = {"duplicate": "two members named 'numnet.json.npy'", "foreign": "'readme.txt' is not a .npy array"}
    for case, entries in cases.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # zipfile warns about the duplicate name
            with zipfile.ZipFile(path, "w") as archive:
                for name, data in entries:
                    archive.writestr(name, data)
        with pytest.raises(CorruptFileError, match=messages[case]):
            load_model(path)


# ---- an archive whose member inflates to 512 MiB -------------------------------------------------------

BOMB_MIB = 512


def _deflated_zeros(n_mebibytes):
    """A raw deflate stream of n MiB of zero bytes, built in constant memory.

    A full flush resets the compressor, so every MiB compresses to the same bytes (about 1 kB).
    """
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = compressor.compress(bytes(1 << 20)) + compressor.flush(zlib.Z_FULL_FLUSH)
    return block * n_mebibytes + zlib.compressobj(9, zlib.DEFLATED, -15).flush()


def _crc_of_header_and_zeros(header, n_mebibytes):
    """CRC-32 of ``header`` followed by n MiB of zeros, in constant memory."""
    crc, mebibyte = zlib.crc32(header), bytes(1 << 20)
    for _ in range(n_mebibytes):
        crc = zlib.crc32(mebibyte, crc)
    return crc


def _zip_with_raw_member(path, members, name, stream, crc, size):
    """Write a zip by APPNOTE.TXT: ``members`` stored, plus ``name`` as a deflated ``stream`` of ``size``."""
    entries, body = [], b""
    for member_name, data, method, member_crc, member_size in (
            [(n, d, 0, zlib.crc32(d), len(d)) for n, d in members.items()] + [(name, stream, 8, crc, size)]):
        encoded = member_name.encode("utf-8")
        fields = struct.pack("<HHHHHIIIHH", 20, 0, method, 0, 0x21, member_crc, len(data), member_size,
                             len(encoded), 0)
        entries.append((len(body), fields, encoded))
        body += LOCAL_HEADER_SIGNATURE + fields + encoded + data
    directory = b"".join(CENTRAL_DIRECTORY_SIGNATURE + struct.pack("<H", 20) + fields
                         + struct.pack("<HHHII", 0, 0, 0, 0, offset) + encoded for offset, fields, encoded in entries)
    end = b"PK\x05\x06" + struct.pack("<HHHHIIH", 0, 0, len(entries), len(entries), len(directory), len(body), 0)
    path.write_bytes(body + directory + end)


BOMB_CASES = {
    # (shape in the member's .npy header, size its zip entry gives, what refuses it)
    "directory_gives_the_true_size": ("listed", "true", "would inflate to"),
    "directory_gives_the_listed_size": ("listed", "listed", "fails its SHA-256 check"),
    "header_declares_512_mib": ("whole", "listed", r"has dtype float32 and shape \(134217728,\), but the file "
                                                   r"lists float32 and \(6,\)"),
}


@pytest.mark.parametrize("case", list(BOMB_CASES))
def test_a_member_inflating_to_512_mib_is_refused_with_memory_bounded_by_the_file(saved, case):
    # The member for dense_0.b (6 floats) is a .npy header followed by 512 MiB of zeros, deflated to about
    # 0.5 MB. Its header lists the document's shape or the whole 512 MiB; its zip entry gives the true size
    # (refused from the zip directory alone) or the listed size with the CRC-32 of that much (read that far,
    # then refused by its checksum or its header): none inflates more than the file holds.
    network, path = saved
    header_shape, entry_size, message = BOMB_CASES[case]
    bias = as_numpy(network.parameters()["dense_0.b"])
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": (
        bias.shape if header_shape == "listed" else ((BOMB_MIB << 20) // 4,))})
    header = header.getvalue()
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    stream = compressor.compress(header) + compressor.flush(zlib.Z_FULL_FLUSH) + _deflated_zeros(BOMB_MIB)
    inflated = len(header) + (BOMB_MIB << 20)
    declared = inflated if entry_size == "true" else len(header) + bias.nbytes
    members = {name: data for name, data in _members(path).items() if name != "parameters/dense_0.b.npy"}
    crc = (_crc_of_header_and_zeros(header, BOMB_MIB) if entry_size == "true"
           else zlib.crc32(header + bytes(bias.nbytes)))
    _zip_with_raw_member(path, members, "parameters/dense_0.b.npy", stream, crc, declared)
    size = path.stat().st_size
    assert size < inflated / 500  # a zip bomb: over 500 times smaller than what it inflates to

    def reject():
        with pytest.raises(CorruptFileError, match=message):
            load_model(path)

    peak = peak_memory(reject)
    assert peak < size + REJECTION_MEMORY_SLACK, f"peak {peak:,} bytes rejecting a {size:,}-byte file"


# ---- fuzzing: damaged bytes, edited zip fields, swapped and re-packed members --------------------------

#: Values worth trying in a zip field: zeros, all ones, off by one, and the compression methods and
#: versions zipfile knows (stored 0, deflate 8, bzip2 12, lzma 14; version 2.0, 4.5, 6.3).
INTERESTING_FIELD_VALUES = (0, 1, 2, 8, 12, 14, 20, 45, 63, 99, 0x7FFF, 0xFFFF, 0xFFFFFFFF)


def _edit_random_zip_field(raw, rng):
    """``raw`` with one field of one local header or central-directory entry set; and whether the field is
    one no reader needs (the file must then load exactly as saved)."""
    entries = _central_entries(raw)
    entry = entries[int(rng.integers(len(entries)))]
    if rng.random() < 0.5:
        name = list(CENTRAL_FIELDS)[int(rng.integers(len(CENTRAL_FIELDS)))]
        offset, field = entry, CENTRAL_FIELDS[name]
        harmless = name in HARMLESS_CENTRAL_FIELDS
    else:
        name = list(LOCAL_FIELDS)[int(rng.integers(len(LOCAL_FIELDS)))]
        offset, field = struct.unpack("<I", raw[entry + 42:entry + 46])[0], LOCAL_FIELDS[name]
        harmless = False
    if rng.random() < 0.5:
        value = INTERESTING_FIELD_VALUES[int(rng.integers(len(INTERESTING_FIELD_VALUES)))]
    else:
        at, layout = field
        value = struct.unpack(layout, raw[offset + at:offset + at + struct.calcsize(layout)])[0]
        value += int(rng.integers(-3, 4))
    return _edit_field(raw, offset, field, value), harmless


def _zip_bytes(entries, compression=zipfile.ZIP_STORED):
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # a duplicated name is one of the edits
        with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
            for name, data in entries:
                archive.writestr(name, data)
    return buffer.getvalue()


def _edit_members(raw, rng):
    """``raw`` re-packed with valid CRC-32s after a member-level edit; and whether it must load as saved."""
    with zipfile.ZipFile(io.BytesIO(raw)) as archive:
        entries = [(info.filename, archive.read(info)) for info in archive.infolist()]
    edit = ("reorder", "deflate", "swap", "drop", "duplicate", "rename", "mutate", "mutate")[int(rng.integers(8))]
    first, second = (int(index) for index in rng.choice(len(entries), size=2, replace=False))
    if edit == "reorder":
        return _zip_bytes([entries[int(i)] for i in rng.permutation(len(entries))]), True
    if edit == "deflate":
        return _zip_bytes(entries, zipfile.ZIP_DEFLATED), True
    if edit == "swap":
        entries[first], entries[second] = (entries[first][0], entries[second][1]), (entries[second][0],
                                                                                    entries[first][1])
    elif edit == "drop":
        del entries[first]
    elif edit == "duplicate":
        entries.append(entries[first])
    elif edit == "rename":
        renamed = mutate(entries[first][0].encode(), rng).decode("utf-8", "replace").rstrip("/") or "renamed"
        entries[first] = (renamed, entries[first][1])
    else:  # the document's JSON or an array's .npy header and values, behind a valid CRC
        entries[first] = (entries[first][0], mutate(entries[first][1], rng))
    return _zip_bytes(entries), False


#: What a document value is replaced with: huge and negative numbers, non-finite floats, other types, deep
#: nesting, a long string, or (KeyError) nothing at all.
DOCUMENT_REPLACEMENTS = (10**30, 2**64, 2**63, 10**9, -1, 0, 1e308, float("inf"), float("nan"), "x", None, [], {},
                         True, [[[[[[[[[[1]]]]]]]]]], "a" * 1000, 3.5, KeyError)


def _document_paths(value, path=()):
    """The path (keys and indices) of every value in a JSON document, the document itself first."""
    yield path
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        yield from _document_paths(item, path + (key,))


def _edit_document(raw, rng):
    """``raw`` with one value of its JSON document replaced or removed (behind a valid CRC-32)."""
    with zipfile.ZipFile(io.BytesIO(raw)) as archive:
        entries = [(info.filename, archive.read(info)) for info in archive.infolist()]
    document = json.loads(np.lib.format.read_array(io.BytesIO(dict(entries)["numnet.json.npy"])).tobytes())
    paths = list(_document_paths(document))[1:]
    path = paths[int(rng.integers(len(paths)))]
    replacement = DOCUMENT_REPLACEMENTS[int(rng.integers(len(DOCUMENT_REPLACEMENTS)))]
    parent = document
    for key in path[:-1]:
        parent = parent[key]
    if replacement is KeyError and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = None if replacement is KeyError else replacement
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.frombuffer(json.dumps(document).encode("utf-8"), dtype=np.uint8))
    return _zip_bytes([(name, buffer.getvalue() if name == "numnet.json.npy" else data) for name, data in entries])


def _trained_batch_norm_network():
    """A format-version-2 network: Dense, BatchNorm (running statistics saved as state/ arrays), Dropout."""
    network = numnet.Network([3, 5, 3], batch_norm=True, dropout=0.2, output_activation="softmax", seed=2)
    network.fit(_data(), np.arange(30) % 3, epochs=2, batch_size=8, optimizer="adam", learning_rate=0.01, seed=3)
    return network


FUZZED_NETWORKS = {"dense_format_1": lambda: _trained_classifier()[0],
                   "batch_norm_format_2": _trained_batch_norm_network}


@pytest.mark.parametrize("make_network", FUZZED_NETWORKS.values(), ids=list(FUZZED_NETWORKS))
def test_fuzzed_model_files_load_exactly_as_saved_or_raise_corrupt_file_error(tmp_path, make_network):
    network = make_network()
    path = save_model(network, tmp_path / "model.npz")
    original = path.read_bytes()
    tallies = {kind: Tally(CorruptFileError) for kind in ("bytes", "zip fields", "members", "document")}
    rng = np.random.default_rng(20260613)
    for case in range(fuzz_cases(300)):
        kind = list(tallies)[case % len(tallies)]
        if kind == "bytes":
            damaged, must_load = mutate(original, rng), False
        elif kind == "zip fields":
            damaged, must_load = _edit_random_zip_field(original, rng)
        elif kind == "members":
            damaged, must_load = _edit_members(original, rng)
        else:
            damaged, must_load = _edit_document(original, rng), False
        path.write_bytes(damaged)
        with warnings.catch_warnings():
            # An edited document may hold an initialiser whose draws overflow float32: a NumPy warning
            # while rebuilding, which the saved weights then replace.
            warnings.simplefilter("ignore", RuntimeWarning)
            loaded = tallies[kind].run(case, load_model, path)
        if must_load:
            assert loaded is not None, f"fuzz case {case}: an edit that changes nothing was refused"
        if loaded is not None and kind in ("bytes", "zip fields"):
            _assert_same_model(loaded, network)  # behind the CRC-32s and SHA-256s, nothing else can load
    for kind, tally in tallies.items():
        tally.report(f"model files ({network.n_parameters} parameters, {len(network.state())} state arrays), {kind}")
        assert tally.counts["rejected"], kind

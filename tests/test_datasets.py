"""Tests of numnet.datasets: generators against their defining formulas, readers against files written here.

Nothing here touches the network: MNIST is faked with a few images written as IDX files in tmp_path, and the
download helper is tested with a stand-in for urlopen that serves local bytes or fails like an offline machine.
"""

import gzip
import io
import struct
import urllib.error

import numpy as np
import pytest

from numnet import datasets
from numnet.datasets import (
    Dataset,
    load_csv,
    load_digits,
    load_mnist,
    make_line,
    make_spiral,
    make_xor,
    mnist_folder,
    read_idx,
)
from numnet.errors import CorruptFileError

# Sample statistics of n = 20,000 normal draws have a standard error of sigma / sqrt(2n) = 0.5% for the std;
# 3% is six standard errors, so these checks fail only when the noise model is wrong.
STATISTICAL_TOLERANCE = 0.03
FLOAT32_TOLERANCE = 1e-6
FLOAT64_TOLERANCE = 1e-12


# ---------------------------------------------------------------------------------------------------------
# Synthetic generators
# ---------------------------------------------------------------------------------------------------------


def test_make_line_has_the_e1_shapes_and_evenly_spaced_inputs():
    X, y = make_line()
    assert X.shape == y.shape == (10, 1)
    assert X.dtype == y.dtype == np.float32
    # 10 points from -1 to 1: step 2 / 9
    np.testing.assert_allclose(X.ravel(), -1 + np.arange(10) * 2 / 9, atol=FLOAT32_TOLERANCE)


def test_make_line_noise_has_the_requested_standard_deviation():
    X, y = make_line(n_samples=20_000, noise=0.2, seed=5, dtype="float64")
    residual = (y - X).ravel()
    assert abs(residual.mean()) < STATISTICAL_TOLERANCE * 0.2 * 5
    assert abs(residual.std() / 0.2 - 1) < STATISTICAL_TOLERANCE


def test_make_line_without_noise_is_the_identity_line():
    X, y = make_line(n_samples=7, noise=0.0, dtype="float64")
    np.testing.assert_array_equal(X, y)


def test_generators_are_reproducible_from_the_seed_and_leave_global_state_alone():
    state = np.random.get_state()[1].copy()
    np.testing.assert_array_equal(make_line(seed=3)[1], make_line(seed=3)[1])
    np.testing.assert_array_equal(make_spiral(seed=3)[0], make_spiral(seed=3)[0])
    assert not np.array_equal(make_line(seed=3)[1], make_line(seed=4)[1])
    np.testing.assert_array_equal(np.random.get_state()[1], state)


def test_make_xor_is_the_xor_truth_table():
    X, y = make_xor()
    assert X.shape == (4, 2) and y.shape == (4, 1) and X.dtype == y.dtype == np.float32
    np.testing.assert_array_equal(X, [[0, 0], [0, 1], [1, 0], [1, 1]])
    np.testing.assert_array_equal(y.ravel(), np.logical_xor(X[:, 0], X[:, 1]))


def test_make_spiral_has_the_e3_shapes_and_balanced_classes():
    X, y = make_spiral()
    assert X.shape == (300, 2) and X.dtype == np.float32
    assert y.shape == (300,) and y.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(y), [100, 100, 100])
    np.testing.assert_array_equal(y[:100], 0)


def test_make_spiral_points_follow_the_polar_formula():
    # x = r sin t, y = r cos t, so the radius is the norm and t = atan2(x, y) (modulo 2 pi).
    n_per_class, n_classes = 50, 4
    X, y = make_spiral(n_per_class, n_classes, noise=0.0, dtype="float64")
    radius = np.linalg.norm(X, axis=1)
    expected_radius = np.tile(np.linspace(0, 1, n_per_class), n_classes)
    np.testing.assert_allclose(radius, expected_radius, atol=FLOAT64_TOLERANCE)
    for j in range(n_classes):
        rows = slice(j * n_per_class + 1, (j + 1) * n_per_class)  # skip r = 0, where the angle is undefined
        angle = np.arctan2(X[rows, 0], X[rows, 1])
        expected = np.linspace(4 * j, 4 * (j + 1), n_per_class)[1:]
        np.testing.assert_allclose(np.angle(np.exp(1j * (angle - expected))), 0, atol=1e-9)


def test_make_spiral_angle_noise_has_the_requested_standard_deviation():
    n_per_class = 20_000
    X, _ = make_spiral(n_per_class, 1, noise=0.2, seed=2, dtype="float64")
    angle = np.arctan2(X[1:, 0], X[1:, 1])
    deviation = np.angle(np.exp(1j * (angle - np.linspace(0, 4, n_per_class)[1:])))
    assert abs(deviation.std() / 0.2 - 1) < STATISTICAL_TOLERANCE


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda: make_line(n_samples=0), ValueError),
        (lambda: make_line(n_samples=2.5), TypeError),
        (lambda: make_line(noise=-0.1), ValueError),
        (lambda: make_spiral(n_classes=0), ValueError),
        (lambda: make_spiral(noise=float("nan")), ValueError),
        (lambda: make_xor(dtype="int8"), ValueError),
    ],
)
def test_generators_reject_invalid_arguments(call, error):
    with pytest.raises(error):
        call()


# ---------------------------------------------------------------------------------------------------------
# 8x8 digits
# ---------------------------------------------------------------------------------------------------------


def test_load_digits_is_scikit_learns_digits_divided_by_16():
    sklearn_datasets = pytest.importorskip("sklearn.datasets")
    X, y = load_digits()
    expected_X, expected_y = sklearn_datasets.load_digits(return_X_y=True)
    assert X.shape == (1797, 64) and X.dtype == np.float32
    assert y.shape == (1797,) and y.dtype == np.int64
    assert X.min() == 0 and X.max() == 1
    np.testing.assert_allclose(X, expected_X / 16, atol=FLOAT32_TOLERANCE)
    np.testing.assert_array_equal(y, expected_y)


def test_load_digits_unscaled_keeps_pixel_counts_up_to_16():
    pytest.importorskip("sklearn")
    X, _ = load_digits(dtype="float64", scale=False)
    assert X.dtype == np.float64 and X.max() == 16


def test_load_digits_as_images_gives_one_channel_8x8_images_of_the_same_pixels():
    sklearn_datasets = pytest.importorskip("sklearn.datasets")
    X, y = load_digits(images=True)
    assert X.shape == (1797, 1, 8, 8) and X.dtype == np.float32
    # scikit-learn's own 8x8 images, divided by 16: the rows were the pixels row by row
    np.testing.assert_allclose(X[:, 0], sklearn_datasets.load_digits().images / 16, atol=FLOAT32_TOLERANCE)
    np.testing.assert_array_equal(y, sklearn_datasets.load_digits().target)


# ---------------------------------------------------------------------------------------------------------
# IDX files
# ---------------------------------------------------------------------------------------------------------

IDX_TYPE_CODES = {
    np.uint8: 0x08,
    np.int8: 0x09,
    np.int16: 0x0B,
    np.int32: 0x0C,
    np.float32: 0x0D,
    np.float64: 0x0E,
}


def write_idx(path, array, *, compress=False, type_code=None):
    """Write ``array`` as IDX by the format's definition: 0, 0, type, ndim, big-endian sizes, values."""
    array = np.asarray(array)
    code = IDX_TYPE_CODES[array.dtype.type] if type_code is None else type_code
    header = struct.pack(">BBBB", 0, 0, code, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    content = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
    path.write_bytes(gzip.compress(content) if compress else content)
    return path


def test_read_idx_decodes_a_hand_written_byte_string(tmp_path):
    # magic 00 00 08 02 (uint8, 2-D), sizes 2 and 3 (big-endian), then the six values row by row
    path = tmp_path / "tiny.idx"
    path.write_bytes(bytes([0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4, 5, 255]))
    array = read_idx(path)
    assert array.dtype == np.uint8
    np.testing.assert_array_equal(array, [[1, 2, 3], [4, 5, 255]])


def test_read_idx_decodes_big_endian_int32(tmp_path):
    # magic 00 00 0C 01 (int32, 1-D), size 2; 0x00000102 = 258 and 0xFFFFFFFF = -1 in two's complement
    path = tmp_path / "ints.idx"
    path.write_bytes(bytes([0, 0, 0x0C, 1, 0, 0, 0, 2, 0, 0, 1, 2, 255, 255, 255, 255]))
    np.testing.assert_array_equal(read_idx(path), [258, -1])


@pytest.mark.parametrize("dtype", list(IDX_TYPE_CODES))
@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_round_trips_every_type_raw_and_gzip(tmp_path, dtype, compress):
    step = 1.5 if np.dtype(dtype).kind == "f" else 1  # fractions check that floats are not truncated
    array = ((np.arange(24).reshape(2, 3, 4) - 5) * step).astype(dtype)
    result = read_idx(write_idx(tmp_path / "data", array, compress=compress))
    assert result.dtype == np.dtype(dtype) and result.dtype.isnative
    np.testing.assert_array_equal(result, array)


def test_read_idx_detects_gzip_by_content_not_by_file_name(tmp_path):
    array = np.arange(6, dtype=np.uint8)
    raw_named_gz = write_idx(tmp_path / "raw.gz", array)
    gzip_without_suffix = write_idx(tmp_path / "packed-idx1-ubyte", array, compress=True)
    np.testing.assert_array_equal(read_idx(raw_named_gz), array)
    np.testing.assert_array_equal(read_idx(gzip_without_suffix), array)


def test_read_idx_rejects_a_wrong_magic_number(tmp_path):
    path = tmp_path / "bad.idx"
    path.write_bytes(bytes([0x12, 0x34, 8, 1, 0, 0, 0, 1, 7]))
    with pytest.raises(CorruptFileError, match="magic number"):
        read_idx(path)


def test_read_idx_rejects_an_unknown_type_code(tmp_path):
    path = write_idx(tmp_path / "bad.idx", np.zeros(3, np.uint8), type_code=0x0A)
    with pytest.raises(CorruptFileError, match="type code 0x0a"):
        read_idx(path)


def test_read_idx_of_a_truncated_file_names_the_file_and_both_byte_counts(tmp_path):
    path = write_idx(tmp_path / "short.idx", np.zeros((4, 5), np.int16))
    path.write_bytes(path.read_bytes()[:-3])  # 4 * 5 values of 2 bytes = 40 bytes expected, 37 left
    with pytest.raises(CorruptFileError, match=r"short\.idx.*truncated.*40 bytes.*found 37"):
        read_idx(path)


def test_read_idx_of_an_over_long_file_is_corrupt(tmp_path):
    path = write_idx(tmp_path / "long.idx", np.zeros(3, np.uint8))
    path.write_bytes(path.read_bytes() + b"\x00")
    with pytest.raises(CorruptFileError, match="3 bytes.*found 4"):
        read_idx(path)


def test_read_idx_of_a_truncated_header_is_corrupt(tmp_path):
    path = tmp_path / "header.idx"
    path.write_bytes(bytes([0, 0, 8, 3, 0, 0, 0, 2]))  # 3 dimensions need 16 header bytes
    with pytest.raises(CorruptFileError, match="16-byte header"):
        read_idx(path)


def test_read_idx_of_a_damaged_gzip_stream_is_corrupt(tmp_path):
    path = write_idx(tmp_path / "cut.gz", np.arange(100, dtype=np.uint8), compress=True)
    path.write_bytes(path.read_bytes()[:20])
    with pytest.raises(CorruptFileError, match="gzip"):
        read_idx(path)


def test_read_idx_of_a_missing_file_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.idx"):
        read_idx(tmp_path / "nothing.idx")


# ---------------------------------------------------------------------------------------------------------
# MNIST
# ---------------------------------------------------------------------------------------------------------

MNIST_NAMES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def write_fake_mnist(folder, n_train=5, n_test=3, *, seed=0):
    """Write a tiny 'MNIST' (random pixels) to ``folder``: training files gzip, test files uncompressed."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train_images": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train_labels": rng.integers(0, 10, n_train, dtype=np.uint8),
        "test_images": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "test_labels": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    for key, array in arrays.items():
        compress = key.startswith("train")
        write_idx(folder / (MNIST_NAMES[key] + (".gz" if compress else "")), array, compress=compress)
    return arrays


def test_load_mnist_reads_a_small_fake_mnist_scaled_and_flattened(tmp_path):
    arrays = write_fake_mnist(tmp_path)
    X_train, y_train, X_test, y_test = load_mnist(tmp_path)
    assert X_train.shape == (5, 784) and X_test.shape == (3, 784)
    assert X_train.dtype == np.float32 and y_train.dtype == np.int64
    np.testing.assert_allclose(X_train, arrays["train_images"].reshape(5, -1) / 255, atol=FLOAT32_TOLERANCE)
    np.testing.assert_allclose(X_test[2], arrays["test_images"][2].ravel() / 255, atol=FLOAT32_TOLERANCE)
    np.testing.assert_array_equal(y_train, arrays["train_labels"])
    np.testing.assert_array_equal(y_test, arrays["test_labels"])


def test_load_mnist_can_keep_images_square_unscaled_and_one_hot(tmp_path):
    arrays = write_fake_mnist(tmp_path)
    X_train, y_train, _, y_test = load_mnist(
        tmp_path, normalize=False, flatten=False, one_hot=True, dtype="float64"
    )
    assert X_train.shape == (5, 28, 28) and X_train.dtype == np.float64
    np.testing.assert_array_equal(X_train, arrays["train_images"])
    assert y_train.shape == (5, 10) and y_test.shape == (3, 10) and y_train.dtype == np.float64
    np.testing.assert_array_equal(y_train.argmax(axis=1), arrays["train_labels"])
    np.testing.assert_array_equal(y_train.sum(axis=1), 1)


def test_load_mnist_as_images_gives_one_channel_28x28_images(tmp_path):
    arrays = write_fake_mnist(tmp_path)
    X_train, _, X_test, _ = load_mnist(tmp_path, images=True)
    assert X_train.shape == (5, 1, 28, 28) and X_test.shape == (3, 1, 28, 28) and X_train.dtype == np.float32
    np.testing.assert_allclose(X_train[:, 0], arrays["train_images"] / 255, atol=FLOAT32_TOLERANCE)


def test_mnist_folder_prefers_the_argument_then_numnet_data_then_the_home_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("NUMNET_DATA", raising=False)
    assert mnist_folder() == tmp_path / "home" / ".cache" / "numnet" / "mnist"
    monkeypatch.setenv("NUMNET_DATA", str(tmp_path / "data"))
    assert mnist_folder() == tmp_path / "data" / "mnist"
    assert mnist_folder(tmp_path / "mine") == tmp_path / "mine"


def test_load_mnist_finds_files_through_the_numnet_data_variable(tmp_path, monkeypatch):
    arrays = write_fake_mnist(tmp_path / "data" / "mnist", n_train=4, n_test=2)
    monkeypatch.setenv("NUMNET_DATA", str(tmp_path / "data"))
    _, y_train, X_test, _ = load_mnist()
    np.testing.assert_array_equal(y_train, arrays["train_labels"])
    assert X_test.shape == (2, 784)


def test_load_mnist_without_files_lists_the_missing_names_and_the_folder(tmp_path):
    folder = tmp_path / "empty"
    with pytest.raises(FileNotFoundError) as caught:
        load_mnist(folder)
    message = str(caught.value)
    for name in MNIST_NAMES.values():
        assert f"{name}.gz" in message
    assert str(folder) in message and "NUMNET_DATA" in message


def test_load_mnist_names_only_the_files_that_are_missing(tmp_path):
    write_fake_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(FileNotFoundError, match="t10k-labels-idx1-ubyte") as caught:
        load_mnist(tmp_path)
    assert "train-images" not in str(caught.value)


def test_load_mnist_rejects_labels_and_images_of_different_counts(tmp_path):
    write_fake_mnist(tmp_path)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.zeros(4, np.uint8))  # 3 test images, 4 labels
    with pytest.raises(CorruptFileError, match="3 images.*4 labels"):
        load_mnist(tmp_path)


def test_load_mnist_rejects_a_label_outside_0_to_9(tmp_path):
    write_fake_mnist(tmp_path)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.array([0, 10, 2], np.uint8))
    with pytest.raises(CorruptFileError, match="label 10"):
        load_mnist(tmp_path)


def test_load_mnist_rejects_images_that_are_not_28_by_28(tmp_path):
    write_fake_mnist(tmp_path)
    write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((3, 27, 28), np.uint8))
    with pytest.raises(CorruptFileError, match=r"\(n, 28, 28\)"):
        load_mnist(tmp_path)


def test_mnist_checksums_are_sha256_hex_digests_for_the_four_standard_files():
    assert {name for name, _ in datasets.MNIST_FILES.values()} == set(MNIST_NAMES.values())
    for _, digest in datasets.MNIST_FILES.values():
        assert len(digest) == 64 and int(digest, 16) >= 0


# SHA-256("abc") from the FIPS 180-2 test vectors, an oracle independent of hashlib.
ABC_SHA256 = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_checksum_verification_accepts_the_published_digest_of_a_local_file(tmp_path):
    path = tmp_path / "abc.bin"
    path.write_bytes(b"abc")
    datasets._verify_sha256(path, ABC_SHA256)
    datasets._verify_sha256(path, ABC_SHA256.upper())


def test_checksum_verification_rejects_a_changed_file_showing_both_digests(tmp_path):
    path = tmp_path / "abd.bin"
    path.write_bytes(b"abd")
    with pytest.raises(CorruptFileError, match=f"abd.bin.*expected {ABC_SHA256}"):
        datasets._verify_sha256(path, ABC_SHA256)


def serve(content):
    """A stand-in for urlopen that answers every URL with ``content`` (no network involved)."""

    def opener(url, timeout):
        assert timeout > 0
        return io.BytesIO(content)

    return opener


def offline(url, timeout):
    """A stand-in for urlopen that fails the way an offline machine does."""
    raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")


def test_download_helper_writes_a_verified_file_and_leaves_no_temporary_file(tmp_path):
    folder = tmp_path / "cache"
    path = datasets._download("abc.bin", folder, ABC_SHA256, mirrors=("https://mirror/",), opener=serve(b"abc"))
    assert path == folder / "abc.bin" and path.read_bytes() == b"abc"
    assert [entry.name for entry in folder.iterdir()] == ["abc.bin"]


def test_download_helper_keeps_nothing_when_every_mirror_serves_a_wrong_checksum(tmp_path):
    with pytest.raises(CorruptFileError, match="no mirror served a valid abc.bin"):
        datasets._download("abc.bin", tmp_path, ABC_SHA256, mirrors=("a/", "b/"), opener=serve(b"evil"))
    assert list(tmp_path.iterdir()) == []


def test_download_helper_offline_raises_an_os_error_saying_where_to_put_the_files(tmp_path):
    with pytest.raises(OSError, match="offline") as caught:
        datasets._download("abc.bin", tmp_path, ABC_SHA256, mirrors=("https://a/",), opener=offline)
    assert str(tmp_path) in str(caught.value) and "https://a/abc.bin" in str(caught.value)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------------------------
# CSV files
# ---------------------------------------------------------------------------------------------------------


def write_text(path, text):
    """Write ``text`` to ``path`` as UTF-8 and return the path."""
    path.write_text(text, encoding="utf-8")
    return path


def test_load_csv_with_a_header_and_string_labels(tmp_path):
    text = "length,width,species\n1.5,0.2,setosa\n4.5,1.5,versicolor\n1.4,0.3,setosa\n"
    path = write_text(tmp_path / "flowers.csv", text)
    data = load_csv(path)
    assert isinstance(data, Dataset)
    np.testing.assert_allclose(data.X, [[1.5, 0.2], [4.5, 1.5], [1.4, 0.3]], atol=FLOAT32_TOLERANCE)
    assert data.X.dtype == np.float32
    assert data.feature_names == ("length", "width") and data.target_name == "species"
    assert data.classes.tolist() == ["setosa", "versicolor"]
    assert data.y.tolist() == [0, 1, 0] and data.y.dtype == np.int64


def test_load_csv_without_a_header_reads_integer_labels_as_classes(tmp_path):
    path = write_text(tmp_path / "plain.csv", "0.5,1,2\n0.25,-1,1\n1e3,0,2\n")
    data = load_csv(path, dtype="float64")
    np.testing.assert_array_equal(data.X, [[0.5, 1], [0.25, -1], [1000, 0]])
    assert data.feature_names == ("column_0", "column_1") and data.target_name == "column_2"
    assert data.classes.tolist() == [1, 2]
    np.testing.assert_array_equal(data.classes[data.y], [2, 1, 2])


def test_load_csv_with_a_fractional_target_is_regression(tmp_path):
    path = write_text(tmp_path / "reg.csv", "x,y\n1,0.5\n2,1.25\n")
    data = load_csv(path, dtype="float64")
    assert data.classes is None and data.y.dtype == np.float64
    np.testing.assert_array_equal(data.y, [0.5, 1.25])


def test_load_csv_selects_the_target_by_name_or_index(tmp_path):
    path = write_text(tmp_path / "mid.csv", "a,label,b\n1,x,2\n3,y,4\n")
    by_name, by_index = load_csv(path, target="label"), load_csv(path, target=1)
    for data in (by_name, by_index):
        np.testing.assert_array_equal(data.X, [[1, 2], [3, 4]])
        assert data.feature_names == ("a", "b") and data.classes.tolist() == ["x", "y"]
    first = load_csv(write_text(tmp_path / "first.csv", "0,1.5\n1,2.5\n"), target=0)
    assert first.y.tolist() == [0, 1] and first.X.ravel().tolist() == [1.5, 2.5]


def test_load_csv_reads_other_delimiters_quotes_blank_lines_and_a_byte_order_mark(tmp_path):
    path = tmp_path / "semi.csv"
    path.write_bytes('\ufeffx;"name"\n\n1;"a;b"\n2;c\n\n'.encode("utf-8"))
    data = load_csv(path, delimiter=";")
    assert data.feature_names == ("x",) and data.target_name == "name"
    assert data.classes.tolist() == ["a;b", "c"] and data.X.ravel().tolist() == [1, 2]


def test_load_csv_round_trips_a_spiral_written_by_numpy(tmp_path):
    X, y = make_spiral(20, 3, seed=1, dtype="float64")
    path = tmp_path / "spiral.csv"
    np.savetxt(path, np.column_stack([X, y]), delimiter=",", header="x0,x1,class", comments="", fmt="%.17g")
    data = load_csv(path, dtype="float64")
    np.testing.assert_array_equal(data.X, X)
    np.testing.assert_array_equal(data.classes[data.y], y)


@pytest.mark.parametrize("missing", ["", "NA", "nan", "?"])
def test_load_csv_reports_a_missing_value_with_file_line_and_column(tmp_path, missing):
    path = write_text(tmp_path / "holes.csv", f"a,b,label\n1,2,0\n3,{missing},1\n")
    with pytest.raises(ValueError, match=r"holes\.csv, line 3, column 'b': missing value"):
        load_csv(path)


@pytest.mark.parametrize("file_name, text, message", [
    ("target.csv", "a,label\n1,0\n3,\n", r"line 3, column 'label': missing target"),
    ("ragged.csv", "a,b,label\n1,2,0\n\n3,1\n", r"ragged\.csv, line 4: found 2 fields, expected 3"),
    ("text.csv", "a,b,label\n1,2,0\n1,two,1\n", r"line 3, column 'b': 'two' is not a number"),
    ("inf.csv", "1,inf,0\n2,3,1\n", r"line 1, column 'column_1'.*not finite"),
], ids=["missing_target", "ragged_row", "non_numeric_feature", "infinite_feature"])
def test_load_csv_reports_a_bad_row_with_its_line_and_column(tmp_path, file_name, text, message):
    path = write_text(tmp_path / file_name, text)
    with pytest.raises(ValueError, match=message):
        load_csv(path)


def test_load_csv_of_a_missing_file_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="absent.csv"):
        load_csv(tmp_path / "absent.csv")


@pytest.mark.parametrize(
    ("text", "kwargs", "message"),
    [
        ("a,b\n1,2\n", {"target": "c"}, "'c' is not a column.*a, b"),
        ("1,2\n3,4\n", {"target": "b", "header": False}, "needs a header"),
        ("1,2\n3,4\n", {"target": 5}, "out of range"),
        ("a,b\n", {}, "no data rows"),
        ("\n\n", {}, "no data rows"),
        ("1\n2\n", {}, "at least one feature"),
        ("1,2\n", {"header": "yes"}, "header must be"),
    ],
)
def test_load_csv_rejects_bad_targets_headers_and_empty_files(tmp_path, text, kwargs, message):
    path = write_text(tmp_path / "bad.csv", text)
    with pytest.raises(ValueError, match=message):
        load_csv(path, **kwargs)

"""Tests of numnet.datasets: generators against their defining formulas, readers against files written here.

Nothing here touches the network: MNIST is faked with a few images written as IDX files in tmp_path, and the
download helper is tested with a stand-in for urlopen that serves local bytes or fails like an offline machine.
"""

import collections
import csv
import datetime
import gzip
import io
import math
import re
import struct
import urllib.error
import zlib

import numpy as np
import pytest

from numnet import datasets
from numnet.datasets import (
    Dataset,
    load_csv,
    load_csv_features,
    load_digits,
    load_mnist,
    make_circle,
    make_gauss,
    make_line,
    make_moons,
    make_multi_gaussian,
    make_plane,
    make_spiral,
    make_xor,
    make_xor_quadrants,
    mnist_folder,
    read_idx,
)
from numnet.errors import CorruptFileError, DataFileError
from fresh_interpreter import missing_package_message, run_fresh
from fuzzing import Tally, fuzz_cases, mutate, peak_memory

# Sample statistics of n = 20,000 normal draws have a standard error of sigma / sqrt(2n) = 0.5% for the std;
# 3% is six standard errors, so these checks fail only when the noise model is wrong.
STATISTICAL_TOLERANCE = 0.03
FLOAT32_TOLERANCE = 1e-6
FLOAT64_TOLERANCE = 1e-12
# A reader may hold a few copies of a file's content while it parses it (bytes, text, fields as Python
# objects, the array); more than this many times the file's size means memory grows faster than the file.
MEMORY_MULTIPLE = 16
# What reading a small IDX file may allocate, whatever its header claims (chunks, header, error text).
IDX_MEMORY_BOUND = 1 << 20


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


# ---- the plane data sets (TensorFlow Playground's, and scikit-learn's moons) ------------------------------

# Generators whose noise moves each point by noise * half_width * U(-1, 1) per axis, drawn after the point.
DISPLACED_GENERATORS = [(make_circle, 5.0), (make_xor_quadrants, 5.0), (make_plane, 6.0),
                        (make_multi_gaussian, 6.0)]
PLANE_GENERATORS = [make_circle, make_xor_quadrants, make_gauss, make_moons, make_plane, make_multi_gaussian]


def test_make_circle_puts_class_1_inside_radius_2_5_and_class_0_in_the_ring_from_3_5_to_5():
    X, y = make_circle(1001, noise=0.0, seed=1, dtype="float64")
    radius = np.linalg.norm(X, axis=1)
    assert X.shape == (1001, 2) and y.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(y), [501, 500])
    assert radius[y == 1].max() <= 2.5 and radius[y == 0].min() >= 3.5 and radius[y == 0].max() <= 5.0


def test_make_xor_quadrants_labels_by_the_sign_of_x_times_y_away_from_the_axes():
    X, y = make_xor_quadrants(2000, noise=0.0, seed=2, dtype="float64")
    np.testing.assert_array_equal(y, (np.sign(X[:, 0]) == np.sign(X[:, 1])).astype(np.int64))
    assert np.abs(X).min() >= 0.3 and np.abs(X).max() <= 5.3


def test_make_gauss_blobs_have_the_playgrounds_centres_and_variance():
    noise = 0.3
    X, y = make_gauss(40_000, noise=noise, seed=3, dtype="float64")
    variance = 0.5 + 7 * noise  # the Playground's map: 0.5 at noise 0, 4 at noise 0.5
    for label, centre in ((1, 2.0), (0, -2.0)):
        blob = X[y == label]
        np.testing.assert_allclose(blob.mean(axis=0), centre, atol=STATISTICAL_TOLERANCE * 2)
        np.testing.assert_allclose(blob.var(axis=0) / variance, 1, atol=STATISTICAL_TOLERANCE)


@pytest.mark.parametrize("n_samples", [2, 7, 100])
def test_make_moons_without_noise_equals_scikit_learns_unshuffled_moons(n_samples):
    sklearn_datasets = pytest.importorskip("sklearn.datasets")
    expected_X, expected_y = sklearn_datasets.make_moons(n_samples, shuffle=False, noise=0.0)
    X, y = make_moons(n_samples, noise=0.0, dtype="float64")
    np.testing.assert_allclose(X, expected_X, atol=FLOAT64_TOLERANCE)
    np.testing.assert_array_equal(y, expected_y)


def test_make_moons_noise_is_gaussian_with_the_requested_standard_deviation():
    clean, _ = make_moons(20_000, noise=0.0, dtype="float64")
    noisy, _ = make_moons(20_000, noise=0.2, seed=4, dtype="float64")
    assert abs((noisy - clean).std() / 0.2 - 1) < STATISTICAL_TOLERANCE


def test_make_plane_target_is_x_plus_y_over_10():
    X, y = make_plane(300, noise=0.0, seed=5, dtype="float64")
    assert y.shape == (300, 1) and np.abs(X).max() <= 6.0
    np.testing.assert_allclose(y[:, 0], (X[:, 0] + X[:, 1]) / 10, atol=FLOAT64_TOLERANCE)


def test_make_multi_gaussian_target_is_the_largest_signed_bump_computed_point_by_point():
    X, y = make_multi_gaussian(200, noise=0.0, seed=6, dtype="float64")
    bumps = [(-4, 2.5, 1), (0, 2.5, -1), (4, 2.5, 1), (-4, -2.5, -1), (0, -2.5, 1), (4, -2.5, -1)]
    for (px, py), target in zip(X, y[:, 0]):
        values = [sign * math.exp(-((px - cx) ** 2 + (py - cy) ** 2) / 2) for cx, cy, sign in bumps]
        assert target == pytest.approx(max(values, key=abs), abs=FLOAT64_TOLERANCE)


@pytest.mark.parametrize(("generator", "half_width"), DISPLACED_GENERATORS)
def test_plane_noise_moves_points_uniformly_by_up_to_noise_times_the_half_width(generator, half_width):
    # The displacement is drawn after the point, so the same seed gives the same point without noise.
    noise = 0.4
    clean, clean_y = generator(20_000, noise=0.0, seed=7, dtype="float64")
    noisy, noisy_y = generator(20_000, noise=noise, seed=7, dtype="float64")
    shift = noisy - clean
    np.testing.assert_array_equal(noisy_y, clean_y)
    assert np.abs(shift).max() <= noise * half_width
    # U(-a, a) has standard deviation a / sqrt(3)
    assert abs(shift.std() / (noise * half_width / math.sqrt(3)) - 1) < STATISTICAL_TOLERANCE


@pytest.mark.parametrize("generator", PLANE_GENERATORS)
def test_plane_generators_are_reproducible_float32_and_leave_global_state_alone(generator):
    state = np.random.get_state()[1].copy()
    X, y = generator(50, noise=0.1, seed=8)
    again, _ = generator(50, noise=0.1, seed=8)
    other, _ = generator(50, noise=0.1, seed=9)
    assert X.dtype == np.float32 and X.shape == (50, 2) and y.shape[0] == 50
    np.testing.assert_array_equal(X, again)
    assert not np.array_equal(X, other)
    np.testing.assert_array_equal(np.random.get_state()[1], state)


@pytest.mark.parametrize("generator", PLANE_GENERATORS)
@pytest.mark.parametrize(("options", "error"), [({"n_samples": 0}, ValueError), ({"n_samples": 2.5}, TypeError),
                                                ({"noise": -0.1}, ValueError), ({"noise": float("inf")}, ValueError),
                                                ({"noise": "0.1"}, TypeError)])
def test_plane_generators_reject_invalid_arguments(generator, options, error):
    with pytest.raises(error, match="n_samples|noise"):
        generator(**options)


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


@pytest.mark.parametrize("shipped_file", [True, False], ids=["read-as-shipped", "through-sklearn.datasets"])
def test_load_digits_unscaled_are_scikit_learns_pixels_and_digits_exactly(shipped_file, monkeypatch):
    sklearn_datasets = pytest.importorskip("sklearn.datasets")
    if not shipped_file:  # scikit-learn without the file where it has always kept it
        monkeypatch.setattr(datasets, "_scikit_learn_file", lambda *parts: None)
    X, y = load_digits(dtype="float64", scale=False)
    expected_X, expected_y = sklearn_datasets.load_digits(return_X_y=True)
    np.testing.assert_array_equal(X, expected_X)
    np.testing.assert_array_equal(y, expected_y)


def test_load_digits_does_not_import_scikit_learn():
    pytest.importorskip("sklearn")
    run_fresh("import sys, numnet.datasets\nX, y = numnet.datasets.load_digits()\n"
              "assert X.shape == (1797, 64) and 'sklearn' not in sys.modules, sorted(sys.modules)")


def test_load_digits_without_scikit_learn_says_how_to_install_it():
    message = missing_package_message("sklearn", "import numnet.datasets\nnumnet.datasets.load_digits()")
    assert "pip install 'numnet[sklearn]'" in message


# An unsigned decimal both np.loadtxt and Python's float read the same way: the oracle's numbers.
PLAIN_NUMBER = re.compile(r"[+-]?\d+(\.\d*)?([eE][+-]?\d+)?")


def _digits_table_by_definition(stored, known_rows):
    """The digits table the gzip bytes ``stored`` hold, by the format's definition (gzip, ASCII lines of 65
    comma-separated whole numbers, 64 pixels in 0..16 then a digit in 0..9, 1,797 of them, blank lines
    skipped); "refused" where the bytes break it, None where a token is not a plain number (np.loadtxt and
    this oracle could read it differently). ``known_rows``: lines already read, by their text."""
    try:
        text = gzip.decompress(stored).decode("ascii")
    except (OSError, EOFError, zlib.error, UnicodeDecodeError):
        return "refused"
    rows = []
    for line in text.splitlines():
        if line in known_rows:
            rows.append(known_rows[line])
            continue
        if not line.strip():
            continue
        tokens = [token.strip() for token in line.split(",")]
        if not all(PLAIN_NUMBER.fullmatch(token) for token in tokens):
            return None
        rows.append([float(token) for token in tokens])
    if len(rows) != 1797 or any(len(row) != 65 for row in rows):
        return "refused"
    table = np.array(rows)
    limits = np.array([16.0] * 64 + [9.0])
    if not ((table == np.round(table)) & (table >= 0) & (table <= limits)).all():
        return "refused"
    return table


def test_fuzzed_digits_tables_load_exactly_what_they_hold_or_raise_corrupt_file_error(tmp_path):
    shipped = datasets._scikit_learn_file("datasets", "data", "digits.csv.gz")
    if shipped is None:
        pytest.skip("scikit-learn's digits.csv.gz is not installed here")
    text = gzip.decompress(shipped.read_bytes())
    known_rows = {line: [float(token) for token in line.split(",")] for line in text.decode("ascii").splitlines()}
    tally = Tally(CorruptFileError)
    rng = np.random.default_rng(20261207)
    path = tmp_path / "digits.csv.gz"
    for case in range(fuzz_cases(300)):
        stored = gzip.compress(mutate(text, rng), compresslevel=1, mtime=0)  # level 9 takes 175 ms here
        if rng.random() < 0.3:
            stored = mutate(stored, rng)  # damage the gzip stream itself
        path.write_bytes(stored)
        loaded = tally.run(case, datasets._read_digits_table, path)
        expected = _digits_table_by_definition(stored, known_rows)
        if isinstance(expected, str):
            assert loaded is None, f"fuzz case {case}: a table the format does not define was loaded"
        elif expected is not None:
            assert loaded is not None, f"fuzz case {case}: a well-formed digits table was refused"
            np.testing.assert_array_equal(loaded, expected)
    tally.report("digits.csv.gz")
    assert tally.counts["rejected"]
    # the file as shipped loads, and is what scikit-learn reads
    np.testing.assert_array_equal(datasets._read_digits_table(shipped)[:, -1], load_digits()[1])


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



@pytest.mark.parametrize("n_dimensions", [65, 255])
def test_read_idx_refuses_more_dimensions_than_numpy_allows_with_its_own_error(tmp_path, n_dimensions):
    path = tmp_path / "deep.idx"
    sizes = struct.pack(f">{n_dimensions}I", *[1] * n_dimensions)  # one value in n dimensions of size 1
    path.write_bytes(bytes([0, 0, 0x08, n_dimensions]) + sizes + b"\x07")
    with pytest.raises(CorruptFileError, match=rf"deep\.idx declares {n_dimensions} dimensions.*at most 64"):
        read_idx(path)


@pytest.mark.parametrize("shape", [(2**32 - 1,) * 3, (0, 2**32 - 1, 2**32 - 1, 2**32 - 1)],
                         ids=["product_beyond_int64", "zero_size_beyond_int64"])
def test_read_idx_refuses_dimensions_whose_product_overflows_int64(tmp_path, shape):
    # (2^32 - 1)^3 is about 7.9e28 values, beyond int64's 9.2e18: np.prod in int64 would wrap around.
    path = tmp_path / "huge.idx"
    path.write_bytes(bytes([0, 0, 0x08, len(shape)]) + struct.pack(f">{len(shape)}I", *shape))
    with pytest.raises(CorruptFileError, match=r"huge\.idx declares dimensions.*too large for any array"):
        read_idx(path)


def test_a_tiny_gzip_file_claiming_4_gib_is_refused_using_memory_in_proportion_to_its_content(tmp_path):
    path = tmp_path / "claims.gz"
    path.write_bytes(gzip.compress(struct.pack(">BBBBI", 0, 0, 0x08, 1, 2**32 - 1) + b"\x01" * 1000))

    def reject():
        with pytest.raises(CorruptFileError, match=r"truncated.*4294967295 bytes.*found 1000"):
            read_idx(path)

    peak = peak_memory(reject)
    assert peak < IDX_MEMORY_BOUND, f"peak {peak} bytes"


def test_a_gzip_file_inflating_far_beyond_its_header_stops_at_the_header_size(tmp_path):
    # 64 MiB of zeros compress to about 64 kB; the header says 10 values, so reading stops after 11 bytes.
    path = tmp_path / "bomb.gz"
    path.write_bytes(gzip.compress(struct.pack(">BBBBI", 0, 0, 0x08, 1, 10) + bytes(64 << 20)))

    def reject():
        with pytest.raises(CorruptFileError, match=r"bomb\.gz is longer than its header says.*found at least 11"):
            read_idx(path)

    peak = peak_memory(reject)
    assert peak < IDX_MEMORY_BOUND, f"peak {peak} bytes"


def test_a_raw_file_claiming_more_than_it_holds_is_refused_before_its_values_are_read(tmp_path, monkeypatch):
    path = tmp_path / "raw.idx"
    path.write_bytes(struct.pack(">BBBBII", 0, 0, 0x0E, 2, 60000, 60000) + bytes(80))
    monkeypatch.setattr(datasets, "_read_at_most", lambda *args: pytest.fail("the values were read"))
    with pytest.raises(CorruptFileError, match=r"truncated.*28800000000 bytes.*found 80"):
        read_idx(path)


def _decode_idx_by_spec(content):
    """The array an IDX byte string holds by the format's definition, or None when it holds none.

    Written from the definition alone (Python ints, struct, a big-endian NumPy view) as the fuzz oracle.
    """
    if len(content) < 4 or content[0] != 0 or content[1] != 0 or content[2] not in IDX_SPEC_TYPES:
        return None
    n_dimensions = content[3]
    header_size = 4 + 4 * n_dimensions
    if not 1 <= n_dimensions <= 64 or len(content) < header_size:
        return None
    shape = struct.unpack(f">{n_dimensions}I", content[4:header_size])
    dtype = np.dtype(IDX_SPEC_TYPES[content[2]])
    nonzero_product = math.prod(size for size in shape if size)
    if nonzero_product * dtype.itemsize >= 2**63 or len(content) - header_size != math.prod(shape) * dtype.itemsize:
        return None
    return np.frombuffer(content, dtype=dtype, offset=header_size).reshape(shape)


IDX_SPEC_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def _edit_idx_header(content, rng):
    """``content`` with one header field set to a random value: the type code, the dimension count or a size."""
    content = bytearray(content)
    field = int(rng.integers(3))
    if field == 0 and len(content) > 2:
        content[2] = int(rng.integers(256))
    elif field == 1 and len(content) > 3:
        content[3] = int(rng.integers(256))
    elif len(content) >= 8:
        index = 4 + 4 * int(rng.integers(max((len(content) - 4) // 4, 1)))
        content[index:index + 4] = struct.pack(">I", int(rng.integers(2**32)))
    return bytes(content)


def _random_idx_array(rng):
    dtype = list(IDX_TYPE_CODES)[int(rng.integers(len(IDX_TYPE_CODES)))]
    shape = tuple(int(size) for size in rng.integers(0, 5, size=int(rng.integers(1, 4))))
    return (rng.normal(size=shape) * 100).astype(dtype)


def test_fuzzed_idx_files_load_exactly_what_they_define_or_raise_corrupt_file_error(tmp_path):
    tally = Tally(CorruptFileError)
    rng = np.random.default_rng(20260612)
    for case in range(fuzz_cases(400)):
        array, compress = _random_idx_array(rng), bool(rng.random() < 0.5)
        path = write_idx(tmp_path / f"case{case % 10}", array)
        content = path.read_bytes()
        if rng.random() < 0.3:
            content = _edit_idx_header(content, rng)
        elif rng.random() < 0.7:
            content = mutate(content, rng)
        stored = gzip.compress(content, mtime=0) if compress else content
        if compress and rng.random() < 0.3:
            stored = mutate(stored, rng)  # damage the gzip stream itself
        path.write_bytes(stored)
        loaded = tally.run(case, read_idx, path)
        try:
            expected = _decode_idx_by_spec(gzip.decompress(stored) if stored[:2] == b"\x1f\x8b" else stored)
        except (OSError, EOFError, zlib.error):
            expected = None
        if expected is None:
            assert loaded is None, f"fuzz case {case}: a file the format does not define was loaded"
        else:
            assert loaded is not None, f"fuzz case {case}: a well-formed IDX file was refused"
            assert loaded.dtype == expected.dtype.newbyteorder("=") and loaded.shape == expected.shape
            np.testing.assert_array_equal(loaded, expected)
    tally.report("idx")
    assert tally.counts["loaded"] and tally.counts["rejected"]


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


def test_checksum_verification_accepts_the_published_digest_in_either_case(tmp_path):
    for index, expected in enumerate((ABC_SHA256, ABC_SHA256.upper())):
        destination = tmp_path / f"abc{index}.bin"
        datasets._fetch_atomically("https://mirror/abc.bin", destination, expected, serve(b"abc"))
        assert destination.read_bytes() == b"abc"


def test_checksum_verification_rejects_a_changed_file_showing_both_digests(tmp_path):
    with pytest.raises(CorruptFileError, match=f"abd.bin.*expected {ABC_SHA256}"):
        datasets._fetch_atomically("https://mirror/abd.bin", tmp_path / "abd.bin", ABC_SHA256, serve(b"abd"))
    assert not (tmp_path / "abd.bin").exists()


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


# ---- the CSV reader against hostile files ----------------------------------------------------------------

# The smallest magnitude that float32 rounds to infinity: max + half an ulp = 2^128 - 2^103 (IEEE 754
# round-to-nearest-even; max's significand is odd, so the tie goes up). An exact Python int.
FLOAT32_OVERFLOW = 2**128 - 2**103


def test_both_csv_readers_name_the_file_line_and_offset_of_bytes_that_are_not_utf8(tmp_path):
    path = tmp_path / "latin1.csv"
    # é is the single byte 0xe9 in Latin-1, after "x,label\n" (8 bytes) and "1.5,caf" (7): offset 15
    path.write_bytes("x,label\n1.5,café\n".encode("latin-1"))
    for read in (lambda: load_csv(path), lambda: load_csv_features(path, 2)):
        with pytest.raises(DataFileError, match=r"latin1\.csv, line 2: not UTF-8 text \(byte 0xe9 at offset 15"):
            read()


def test_a_byte_order_mark_is_allowed_and_offsets_count_it(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbfx,y\n1,2\n\xff,3\n")  # 3 bytes of BOM + 4 + 4: 0xff is byte 11
    with pytest.raises(DataFileError, match=r"line 3: not UTF-8 text \(byte 0xff at offset 11"):
        load_csv(path)


@pytest.mark.parametrize("text", ["3.5e38", "-1e39", "1e300"])
def test_a_feature_beyond_float32s_range_is_an_error_not_infinity(tmp_path, text):
    path = write_text(tmp_path / "huge.csv", f"x,y,label\n1,2,0\n3,{text},1\n")
    overflows = abs(float(text)) >= FLOAT32_OVERFLOW
    assert overflows  # every case here is beyond float32 (3.5e38 > 3.4028235e38 + half an ulp)
    for read in (lambda: load_csv(path), lambda: load_csv_features(path, 2, feature_names=["x", "y"])):
        with pytest.raises(DataFileError, match=rf"huge\.csv, line 3, column 'y': '{text}' is beyond the range "
                                                r"of float32.*dtype='float64'"):
            read()
    assert load_csv(path, dtype="float64").X[1, 1] == float(text)  # float64 holds it exactly as Python does


def test_the_largest_float32_and_what_rounds_to_it_still_load(tmp_path):
    largest = float(np.finfo(np.float32).max)
    just_below_overflow = float(FLOAT32_OVERFLOW - 2**80)  # rounds down to float32's largest value
    path = write_text(tmp_path / "edge.csv", f"{largest!r},0\n{just_below_overflow!r},1\n")
    X = load_csv(path).X
    assert X.dtype == np.float32 and X[:, 0].tolist() == [largest, largest]


def test_a_regression_target_beyond_float32s_range_is_an_error(tmp_path):
    path = write_text(tmp_path / "target.csv", "x,y\n1,0.5\n2,4e38\n")
    with pytest.raises(DataFileError, match=r"line 3, column 'y': '4e38' is beyond the range of float32"):
        load_csv(path)


def test_large_integer_labels_stay_exact_and_distinct(tmp_path):
    labels = [2**63 - 1, 2**63, 2**63 + 1, -(2**63) - 1, 9007199254740993, 9007199254740992, 10**40]
    path = write_text(tmp_path / "big.csv", "".join(f"{i},{label}\n" for i, label in enumerate(labels)))
    data = load_csv(path)
    assert data.classes.tolist() == sorted(labels)  # Python's own int order: nothing wrapped or merged
    assert [data.classes[index] for index in data.y] == labels


def test_integer_labels_within_int64_come_back_as_int64_and_whole_decimals_join_them(tmp_path):
    path = write_text(tmp_path / "ints.csv", "0.5,3\n1.5,-2\n2.5,3.0\n3.5,9007199254740993\n")
    data = load_csv(path)
    assert data.classes.dtype == np.int64
    assert data.classes.tolist() == [-2, 3, 9007199254740993] and data.y.tolist() == [1, 0, 1, 2]


def test_text_labels_are_kept_exactly_as_written(tmp_path):
    path = tmp_path / "text.csv"
    path.write_text('x,label\n1,"a, ""quoted"" label"\n2,ünïcödé\n3,"two\nlines"\n', encoding="utf-8")
    data = load_csv(path)
    assert sorted(data.classes.tolist()) == data.classes.tolist() == ['a, "quoted" label', "two\nlines", "ünïcödé"]
    assert data.classes[data.y].tolist() == ['a, "quoted" label', "ünïcödé", "two\nlines"]


def test_an_unterminated_quote_is_an_error_naming_the_line_where_it_opens(tmp_path):
    path = write_text(tmp_path / "quote.csv", 'x,label\n1,a\n2,"b\n3,c\n4,d\n')
    for read in (lambda: load_csv(path), lambda: load_csv_features(path, 2)):
        with pytest.raises(DataFileError, match=r"quote\.csv, line 3: a quoted field opened in this row is never "
                                                "closed"):
            read()


def test_a_label_longer_than_pythons_integer_limit_is_an_error_not_a_crash(tmp_path):
    path = write_text(tmp_path / "long.csv", f"1,{'7' * 5000}\n2,1\n")
    with pytest.raises(DataFileError, match=r"long\.csv, line 1, column 'column_1'.*integer of 5000 characters"):
        load_csv(path)


def test_long_text_labels_cost_memory_in_proportion_to_the_file(tmp_path):
    # One label of 100,000 characters among 2,000 short ones: a fixed-width str array would hold every label
    # at the longest one's width, 2,001 x 100,000 x 4 bytes = 800 MB, from a 112 kB file.
    lines = [f"1,{'x' * 100_000}"] + [f"{i},label{i}" for i in range(2000)]
    path = write_text(tmp_path / "labels.csv", "\n".join(lines) + "\n")
    size = path.stat().st_size
    loaded = []
    peak = peak_memory(lambda: loaded.append(load_csv(path)))
    assert len(loaded[0].classes) == 2001
    assert peak < MEMORY_MULTIPLE * size, f"peak {peak} bytes for a {size}-byte file"


def test_the_cli_feature_reader_is_load_csv_with_the_training_columns(tmp_path):
    path = write_text(tmp_path / "table.csv", "a,label,b\n1.5,x,2e3\n-0.25,y,7\n")
    table = load_csv(path, target="label", dtype="float64")
    picked = load_csv_features(path, 2, feature_names=["a", "b"], dtype="float64")
    np.testing.assert_array_equal(picked, table.X)
    reversed_order = load_csv_features(path, 2, feature_names=["b", "a"], dtype="float64")
    np.testing.assert_array_equal(reversed_order, table.X[:, ::-1])


def test_a_feature_file_with_the_wrong_number_of_columns_says_how_many_the_model_expects(tmp_path):
    path = write_text(tmp_path / "three.csv", "1,2,3\n4,5,6\n")
    with pytest.raises(DataFileError, match=r"three\.csv has 3 columns but the model expects 2 features"):
        load_csv_features(path, 2)


# ---- CSV fuzzing: generated tables (quotes, encodings, huge numbers), then mutated bytes -------------------

CSV_NUMBER_TEXTS = ("0", "-1", "2.5", "1e-3", "007", "+4", "1_000", "  6  ", "-0.0")
# Around float32's largest value (the last one is FLOAT32_OVERFLOW written out) and its smallest subnormals.
CSV_EDGE_NUMBERS = ("3.4028234e38", "-3.5e38", "1e39", "1e308", "5e-324", "2e-45",
                    "340282356779733661637539395458142568448")
CSV_DEFECTS = ("", "NA", "nan", "?", "inf", "-Infinity", "abc", "1,5")
CSV_TEXT_LABELS = ("cat", "dog", 'say "hi"', "a,b", "two\nlines", "ünï", "😀", "  padded  ")
CSV_INTEGER_LABELS = (0, 1, -7, 2**63 - 1, 2**63, -(2**63) - 1, 9007199254740993, 10**30)
CSV_ENCODINGS = ("utf-8", "utf-8", "utf-8-sig", "latin-1", "utf-16")


def _choice(options, rng):
    return options[int(rng.integers(len(options)))]


def _generated_table(rng):
    """(header, rows of str cells, target kind): 1-4 features and a label or regression target last."""
    n_rows, n_features = int(rng.integers(1, 6)), int(rng.integers(1, 5))
    kind = ("integer", "text", "regression")[int(rng.integers(3))]
    rows = []
    for _ in range(n_rows):
        features = [_choice(CSV_EDGE_NUMBERS if rng.random() < 0.05 else CSV_NUMBER_TEXTS, rng)
                    for _ in range(n_features)]
        if rng.random() < 0.1:
            features[int(rng.integers(n_features))] = _choice(CSV_DEFECTS, rng)
        if kind == "integer":
            label = str(_choice(CSV_INTEGER_LABELS, rng))
        elif kind == "text":
            label = _choice(CSV_TEXT_LABELS, rng)
        else:
            label = repr(float(rng.normal()) * 10.0 ** int(rng.integers(-3, 4)))
        rows.append(features + [label])
    header = [f"f{i}" for i in range(n_features)] + ["label"]
    return header, rows, kind


def _write_table(path, header, rows, rng):
    """Write the table with random quoting, line endings and encoding (UTF-8 where the encoding lacks a
    character)."""
    buffer = io.StringIO()
    quoting = (csv.QUOTE_MINIMAL, csv.QUOTE_ALL)[int(rng.integers(2))]
    writer = csv.writer(buffer, quoting=quoting, lineterminator=("\n", "\r\n")[int(rng.integers(2))])
    writer.writerows([header] + rows)
    try:
        path.write_bytes(buffer.getvalue().encode(_choice(CSV_ENCODINGS, rng)))
    except UnicodeEncodeError:
        path.write_bytes(buffer.getvalue().encode("utf-8"))


def _expected_features(rows, raw):
    """The features load_csv and load_csv_features must return for an unmutated file, or None (an error).

    The oracle: Python's UTF-8 codec for the bytes, Python's float() for each cell, and float32's overflow
    threshold as an exact integer.
    """
    try:
        raw.removeprefix(b"\xef\xbb\xbf").decode("utf-8")
    except UnicodeDecodeError:
        return None
    for cell in (cell for row in rows for cell in row[:-1]):
        if cell.strip().lower() in ("", "na", "nan", "?"):
            return None
        try:
            value = float(cell)
        except ValueError:
            return None
        if not math.isfinite(value) or abs(value) >= FLOAT32_OVERFLOW:
            return None
    return np.array([[float(cell) for cell in row[:-1]] for row in rows]).astype(np.float32)


def _expected_labels(rows, kind):
    """The labels as written: Python ints, stripped strings, or float32-rounded floats for regression."""
    labels = [row[-1].strip() for row in rows]
    if kind == "integer":
        return [int(label) for label in labels]
    if kind == "regression":
        return [float(np.float32(float(label))) for label in labels]
    return labels


def _labels_of(data):
    if data.classes is None:
        return data.y.astype(np.float64).tolist()
    return [data.classes[index] for index in data.y]


def test_fuzzed_csv_files_load_exactly_or_raise_a_data_file_error_naming_the_file(tmp_path):
    tally, checked = Tally(DataFileError), 0
    rng = np.random.default_rng(20260611)
    for case in range(fuzz_cases(400)):
        path = tmp_path / f"case{case % 10}.csv"
        header, rows, kind = _generated_table(rng)
        _write_table(path, header, rows, rng)
        mutated = rng.random() < 0.5
        if mutated:
            path.write_bytes(mutate(path.read_bytes(), rng))
        table = tally.run(case, load_csv, path)
        features = tally.run(case, lambda p: load_csv_features(p, len(header) - 1, feature_names=header[:-1]),
                             path)
        if mutated:
            continue
        expected = _expected_features(rows, path.read_bytes())
        if expected is None:
            assert table is None and features is None, f"fuzz case {case}: a bad table was loaded"
            continue
        assert features is not None, f"fuzz case {case}: valid features were refused"
        np.testing.assert_array_equal(features, expected)
        assert table is not None, f"fuzz case {case}: a valid table was refused"
        np.testing.assert_array_equal(table.X, expected)
        assert _labels_of(table) == _expected_labels(rows, kind), f"fuzz case {case}"
        checked += 1
    tally.report("csv")
    assert tally.counts["loaded"] and tally.counts["rejected"] and checked


# ---------------------------------------------------------------------------------------------------------
# Toy sets for sequence-to-sequence models (Deep Learning from Scratch 2, chapter 7)
# ---------------------------------------------------------------------------------------------------------

# A line of the book's addition.txt: two numbers written without leading zeros, padded to 7 characters
ADDITION_QUESTION = re.compile(r"(0|[1-9][0-9]{0,2})\+(0|[1-9][0-9]{0,2}) *")
# The book's split of 50,000 lines: the last 50,000 // 10 after the shuffle are the test set
BOOK_SPLIT = (45_000, 5_000)
# The book's date.txt families as datetime.strptime reads them (ignoring case), written from the book's
# lines ("August 19, 2003", "Sep 30, 1981", "TUESDAY, SEPTEMBER 25, 1984", "2/10/93"), not from numnet
BOOK_DATE_FORMATS = {"full": "%B %d, %Y", "abbreviated": "%b %d, %Y", "weekday": "%A, %B %d, %Y",
                     "numeric": "%m/%d/%y"}
# The share of the set below which a family or casing would be missing in effect: each of the 10 is drawn
# with probability 1/12 or 1/4 before repeated questions are dropped
SMALLEST_SHARE = 0.05


@pytest.fixture(scope="module")
def addition():
    return datasets.load_addition()


@pytest.fixture(scope="module")
def dates():
    return datasets.load_dates()


def _decoded_rows(ids, vocabulary):
    """Each row of ``ids`` as text (one decode for all rows: they have the same width)."""
    text = vocabulary.decode(ids.ravel())
    width = ids.shape[1]
    return [text[start:start + width] for start in range(0, len(text), width)]


def _lines(data):
    """Every (question, answer) of a toy set as text: the training rows, then the test rows."""
    (X_train, Y_train), (X_test, Y_test), vocabulary = data
    questions = _decoded_rows(np.concatenate([X_train, X_test]), vocabulary)
    return list(zip(questions, _decoded_rows(np.concatenate([Y_train, Y_test]), vocabulary)))


def _check_layout(data, question_width, answer_width):
    """The book's shapes and split, int64 ids without the unknown token, every answer led by the start token."""
    (X_train, Y_train), (X_test, Y_test), vocabulary = data
    assert X_train.shape == (BOOK_SPLIT[0], question_width) and X_test.shape == (BOOK_SPLIT[1], question_width)
    assert Y_train.shape == (BOOK_SPLIT[0], answer_width) and Y_test.shape == (BOOK_SPLIT[1], answer_width)
    start = vocabulary.encode("_")[0]
    for ids in (X_train, Y_train, X_test, Y_test):
        assert ids.dtype == np.int64 and ids.min() >= 1 and ids.max() < len(vocabulary)
    assert (Y_train[:, 0] == start).all() and (Y_test[:, 0] == start).all()
    assert vocabulary.encode(datasets.START_SYMBOL)[0] == start


def test_load_addition_has_the_books_shapes_split_and_13_symbols(addition):
    _check_layout(addition, 7, 5)
    vocabulary = addition[2]
    assert vocabulary.level == "char" and sorted(vocabulary.symbols) == sorted("0123456789+ _")
    assert len(vocabulary) == 14  # 13 symbols and the unknown token


def test_every_addition_row_is_a_true_sum_in_the_books_layout(addition):
    for question, answer in _lines(addition):
        match = ADDITION_QUESTION.fullmatch(question)
        assert match and len(question) == 7, question
        assert answer == f"_{int(match[1]) + int(match[2]):<4}", (question, answer)


def test_addition_adds_each_pair_of_numbers_once_so_all_55_one_digit_sums_appear(addition):
    pairs = [tuple(sorted(int(term) for term in question.split("+"))) for question, _ in _lines(addition)]
    assert len(set(pairs)) == len(pairs)  # 16+75 and 75+16 are one sum
    # A number has 1 digit with probability 1/3 + 1/30 + 1/300 (0.37), so ~6,800 draws land on the
    # 10·11/2 = 55 unordered pairs of one-digit numbers: every one of them, once
    assert len([pair for pair in pairs if pair[1] < 10]) == 55
    lengths = collections.Counter(len(str(term)) for pair in pairs for term in pair)
    assert set(lengths) == {1, 2, 3}


def test_load_dates_has_the_books_shapes_split_and_symbols(dates):
    _check_layout(dates, 29, 11)
    # The names from the C locale's strftime, not from numnet's tables
    names = "".join(datetime.date(2001, month, 1).strftime("%B %b %A") for month in range(1, 13))
    expected = set(names.lower()) | set(names.upper()) | set("0123456789,/-_ ")
    assert dates[2].level == "char" and set(dates[2].symbols) == expected


def _book_family(question):
    """The family of a date question, by its shape alone."""
    if "/" in question:
        return "numeric"
    if question.count(",") == 2:
        return "weekday"
    return "abbreviated" if len(question.split()[0]) == 3 else "full"


def _casing(question):
    letters = "".join(character for character in question if character.isalpha())
    return "none" if not letters else "lower" if letters.islower() else "upper" if letters.isupper() else "title"


def test_every_date_question_reads_as_its_answer_in_the_books_families(dates):
    kinds = collections.Counter()
    days, longest = [], 0
    for question, answer in _lines(dates):
        text = question.rstrip()
        longest = max(longest, len(text))
        assert len(question) == 29 and question == text.ljust(29), question
        family = _book_family(text)
        day = datetime.datetime.strptime(text, BOOK_DATE_FORMATS[family]).date()
        assert answer == f"_{day.isoformat()}", (question, answer)
        if family == "weekday":  # strptime does not check the weekday against the date
            assert text.split(",")[0].lower() == day.strftime("%A").lower(), question
        if family != "numeric":
            assert text == {"lower": text.lower(), "upper": text.upper(), "title": text.title()}[_casing(text)]
        kinds[family, _casing(text)] += 1
        days.append(day)
    assert len(kinds) == 10 and min(kinds.values()) > SMALLEST_SHARE * len(days), kinds
    assert min(days).year == 1970 and max(days) <= datetime.date(2017, 12, 31) and max(days).year == 2017
    assert longest == 29  # "wednesday, september 30, 1987" and its like fill the width


@pytest.mark.parametrize("name", ["addition", "dates"])
def test_no_test_question_is_a_training_question(name, request):
    (X_train, _), (X_test, _), _ = request.getfixturevalue(name)
    train = {row.tobytes() for row in X_train}
    assert len(train) == len(X_train) and not any(row.tobytes() in train for row in X_test)


@pytest.mark.parametrize("name", ["addition", "dates"])
def test_a_toy_set_is_the_same_for_the_same_seed_and_differs_for_another(name, request):
    load = getattr(datasets, f"load_{name}")
    (X_train, Y_train), (X_test, Y_test), vocabulary = request.getfixturevalue(name)
    (X_again, Y_again), (X_test_again, Y_test_again), vocabulary_again = load(seed=np.random.default_rng(1984))
    for first, second in ((X_train, X_again), (Y_train, Y_again), (X_test, X_test_again), (Y_test, Y_test_again)):
        np.testing.assert_array_equal(first, second)
    assert vocabulary_again == vocabulary
    (X_other, _), _, _ = load(seed=1)
    assert (X_other.shape == X_train.shape) and not np.array_equal(X_other, X_train)


@pytest.mark.parametrize("load", [datasets.load_addition, datasets.load_dates])
@pytest.mark.parametrize("seed, error", [(-1, ValueError), (1.5, TypeError), ("1", TypeError), (True, TypeError)])
def test_a_toy_set_refuses_a_seed_that_is_not_one(load, seed, error):
    with pytest.raises(error, match="seed"):
        load(seed=seed)


def test_the_book_split_shuffles_rows_together_and_holds_out_the_last_tenth():
    X = np.arange(23)[:, None] * np.ones(3, dtype=int)  # (23, 3): row i is i, i, i
    (X_train, Y_train), (X_test, Y_test) = datasets._book_split(X, 10 * X[:, :2], np.random.default_rng(0))
    assert len(X_train) == 21 and len(X_test) == 23 // 10
    X_all, Y_all = np.concatenate([X_train, X_test]), np.concatenate([Y_train, Y_test])
    np.testing.assert_array_equal(np.sort(X_all[:, 0]), np.arange(23))  # every row once
    assert (X_all[:, 0] != np.arange(23)).any()  # shuffled
    np.testing.assert_array_equal(Y_all, 10 * X_all[:, :2])  # each answer stays with its question


def test_a_sequence_set_pads_and_numbers_symbols_in_order_of_first_appearance():
    (X, Y), (X_test, _), vocabulary = datasets._sequence_set([("ab", "c"), ("ba", "dd")], (3, 4),
                                                             np.random.default_rng(0))
    # Lines "ab _c  " and "ba _dd ": a, b, space, _, c, d first appear in this order, ids 1 to 6
    assert vocabulary.symbols == ("a", "b", " ", "_", "c", "d") and len(X_test) == 2 // 10
    rows = {(vocabulary.decode(question), vocabulary.decode(answer)) for question, answer in zip(X, Y)}
    assert rows == {("ab ", "_c  "), ("ba ", "_dd ")}
    assert {tuple(row) for row in X} == {(1, 2, 3), (2, 1, 3)}

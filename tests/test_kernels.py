"""Tests of numnet.kernels: each compiled optimiser step against its NumPy rule (the reference), bit for
bit, in float32 and float64, across flushes; when the kernels apply and when they do not; the choice of
kernels and its errors."""

import contextlib
import os
import pickle
import subprocess
import sys
import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import numnet
import numnet.activations
from numnet import kernels as kernels_module
from numnet.errors import MissingDependencyError
from numnet.kernels import (AUTO_MIN_ELEMENTS, MIN_CHUNK, add_bias_and_relu, compiled_runs, current_choice, fused_step,
                            one_chunk, relu_backward, run_in_chunks, set_kernel_threads, set_kernels, use_kernels)
from numnet.optimizers import FLUSH_INTERVAL, get_optimizer

numba = pytest.importorskip("numba")

FAST = settings(max_examples=25, deadline=None, derandomize=True)
#: Every kind of update: plain, momentum, Nesterov, AdaGrad, RMSProp, Adam, AdamW.
RULES = ["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw"]
#: Steps per comparison: past the flushes at FLUSH_INTERVAL and twice that.
N_STEPS = 2 * FLUSH_INTERVAL + 5


def trajectory(name, choice, start, gradients):
    """Parameters and state after stepping optimiser ``name`` through ``gradients`` with kernels ``choice``."""
    with use_kernels(choice):
        optimizer = get_optimizer(name, learning_rate=0.01)
        parameters = start.copy()
        for gradient in gradients:
            optimizer.step(parameters, gradient)
    return parameters, {key: optimizer.state[key] for key in optimizer.state_names}


def sparse_gradients(rng, n_steps, size, dtype, stop_fraction):
    """Random gradients of mixed magnitudes (1e-25 .. 10) where a fraction of the entries stops after step 3,
    so that their state decays and gets flushed."""
    gradients = rng.standard_normal((n_steps, size)) * 10.0 ** rng.uniform(-25, 1, (n_steps, size))
    gradients[3:, : int(stop_fraction * size)] = 0
    return gradients.astype(dtype)


@FAST
@given(st.sampled_from(RULES), st.sampled_from([np.float32, np.float64]), st.integers(1, 3000),
       st.floats(0.0, 1.0), st.integers(0, 2 ** 32 - 1))
def test_the_compiled_step_equals_the_numpy_rule_bit_for_bit(name, dtype, size, stop_fraction, seed):
    # Same operations in the same order on scalars of the same dtype: every rounding is the same, so
    # equality is exact, not approximate (the point of the kernels' design).
    rng = np.random.default_rng(seed)
    start = rng.standard_normal(size).astype(dtype)
    gradients = sparse_gradients(rng, N_STEPS, size, dtype, stop_fraction)
    reference, reference_state = trajectory(name, "numpy", start, gradients)
    compiled, compiled_state = trajectory(name, "numba", start, gradients)
    np.testing.assert_array_equal(compiled, reference)
    for key in reference_state:
        np.testing.assert_array_equal(compiled_state[key], reference_state[key])


@pytest.mark.parametrize("name", RULES)
def test_the_compiled_step_gives_nan_and_inf_where_the_numpy_rule_does(name):
    gradients = np.tile(np.array([np.nan, np.inf, -np.inf, 1.0, 0.0], dtype=np.float32), (3, 1))
    start = np.ones(5, dtype=np.float32)
    with np.errstate(invalid="ignore"):
        reference, reference_state = trajectory(name, "numpy", start, gradients)
        compiled, compiled_state = trajectory(name, "numba", start, gradients)
    np.testing.assert_array_equal(compiled, reference)  # assert_array_equal treats NaN as equal to NaN
    for key in reference_state:
        np.testing.assert_array_equal(compiled_state[key], reference_state[key])


def test_a_fit_with_the_compiled_kernels_equals_the_numpy_fit_bit_for_bit():
    rng = np.random.default_rng(0)
    X, y = rng.random((300, 20), dtype=np.float32), rng.integers(0, 4, 300)
    results = []
    for choice in ("numpy", "numba"):
        with use_kernels(choice):
            network = numnet.Network([20, 32, 16, 4], output_activation="softmax", dtype="float32", seed=1)
            history = network.fit(X, y, epochs=4, batch_size=16, seed=2)
        results.append((network.flat_parameters, history.iteration_loss, network.optimizer.state))
    (parameters, losses, state), (compiled_parameters, compiled_losses, compiled_state) = results
    np.testing.assert_array_equal(compiled_parameters, parameters)
    assert compiled_losses == losses
    for key in ("m", "v"):
        np.testing.assert_array_equal(compiled_state[key], state[key])


def changing_run(choice):
    """Parameters and state after steps between which the rule, the state arrays and the parameter arrays
    change under a momentum optimiser, with kernels ``choice``."""
    rng = np.random.default_rng(7)
    gradients = rng.standard_normal((9, 50)).astype(np.float32)
    saved = {"step": 3, "velocity": rng.standard_normal(50).astype(np.float32)}
    parameters, gradient = rng.standard_normal(50).astype(np.float32), np.empty(50, np.float32)
    with use_kernels(choice):
        optimizer = get_optimizer("sgd", learning_rate=0.1)
        for index, values in enumerate(gradients):
            gradient[...] = values  # one gradient buffer, as a network's: the same arrays at every step
            if index == 3:
                optimizer.momentum = 0.9  # another rule (and kernel) over the same arrays
            if index == 5:
                optimizer.load_state(saved)  # new state arrays
            if index == 7:
                parameters = parameters.copy()  # new parameter arrays
            optimizer.step(parameters, gradient)
    return parameters, optimizer.state["velocity"]


def test_a_compiled_optimiser_follows_a_change_of_rule_state_or_parameters_between_steps():
    # The compiled update is kept while the same rule, kernels and arrays come back: each change must make
    # it again, or the kernel would run the old rule, or update arrays the optimiser no longer holds.
    for compiled, reference in zip(changing_run("numba"), changing_run("numpy")):
        np.testing.assert_array_equal(compiled, reference)


@pytest.mark.parametrize("arrays, reason", [
    (lambda: (np.ones(8, np.float32), np.ones(8, np.float32)[::1]), None),
    (lambda: (np.ones(8, np.float32), np.ones(16, np.float32)[::2]), "not contiguous"),
    (lambda: (np.ones(8, np.float32), np.ones(8, np.float64)), "mixed dtypes"),
    (lambda: (np.ones(8, np.int64), np.ones(8, np.int64)), "not floats"),
    (lambda: (np.ones(8, np.float32), np.ones(4, np.float32)), "different sizes"),
])
def test_the_kernels_apply_only_to_contiguous_numpy_floats_of_one_dtype_and_size(arrays, reason):
    with use_kernels("numba"):
        kernel = fused_step("sgd_step", *arrays())
    assert (kernel is None) == (reason is not None)


def test_a_fused_update_keeps_the_old_parameters_in_the_buffer_each_step_gives():
    # The update works out where the kernel copies the old parameters once per buffer (fit gives the same
    # one at every step): a new buffer, one the kernel cannot write (a strided view, filled in Python) and
    # none at all must each be honoured at the step that gives it.
    parameters, gradients = np.arange(1.0, 9.0, dtype=np.float32), np.ones(8, np.float32)
    contiguous, strided = np.zeros(8, np.float32), np.zeros(16, np.float32)[::2]
    with use_kernels("numba"):
        update = fused_step("sgd_step", parameters, gradients)
        for buffer in (contiguous, strided, contiguous):
            before = parameters.copy()
            update(np.float32(0.5), previous=buffer)
            np.testing.assert_array_equal(buffer, before)
        kept = contiguous.copy()
        update(np.float32(0.5))  # nobody keeps them: no buffer changes
    np.testing.assert_array_equal(contiguous, kept)
    np.testing.assert_array_equal(parameters, np.arange(1.0, 9.0, dtype=np.float32) - np.float32(2.0))


def test_an_optimiser_steps_a_non_contiguous_view_correctly_through_the_numpy_rule():
    buffer = np.arange(1.0, 13.0, dtype=np.float32)
    view, gradient = buffer[::2], np.full(6, 0.5, dtype=np.float32)
    with use_kernels("numba"):
        get_optimizer("sgd", learning_rate=0.1).step(view, gradient)
    # p - lr·g with p = 1, 3, 5, ..., 11 and lr·g = 0.05; the other half of the buffer is untouched.
    np.testing.assert_array_equal(buffer[::2], np.arange(1.0, 13.0, 2.0, dtype=np.float32) - np.float32(0.05))
    np.testing.assert_array_equal(buffer[1::2], np.arange(2.0, 13.0, 2.0, dtype=np.float32))


def test_kernels_restores_the_previous_choice_after_the_block():
    with use_kernels("numpy"):
        with use_kernels("numba"):
            assert current_choice() == "numba"
        assert current_choice() == "numpy"


def test_the_environment_variable_chooses_the_kernels(monkeypatch):
    monkeypatch.setenv("NUMNET_KERNELS", " NumPy ")
    with use_kernels(None):
        assert current_choice() == "numpy"
        assert fused_step("sgd_step", np.ones(3), np.ones(3)) is None


def test_an_unknown_choice_raises_value_error_listing_the_choices(monkeypatch):
    with pytest.raises(ValueError, match=r"unknown kernels 'fastest'; choose one of: auto, numba, numpy"):
        set_kernels("fastest")
    monkeypatch.setenv("NUMNET_KERNELS", "gpu")
    with use_kernels(None), pytest.raises(ValueError, match=r"NUMNET_KERNELS: unknown kernels 'gpu'"):
        current_choice()


def test_asking_for_numba_without_it_raises_missing_dependency_error_saying_how_to_install(monkeypatch):
    monkeypatch.setattr(kernels_module, "_compiled", None)
    monkeypatch.setitem(sys.modules, "numba", None)  # makes `import numba` fail
    with pytest.raises(MissingDependencyError, match=r"pip install 'numnet\[fast\]'"):
        set_kernels("numba")


def test_auto_without_numba_runs_the_numpy_rules(monkeypatch):
    monkeypatch.setattr(kernels_module, "compiled_available", lambda: False)
    with use_kernels("auto"):
        assert fused_step("adam_step", *(np.ones(4, np.float32) for _ in range(4))) is None


def test_auto_runs_work_below_the_threshold_by_numpy_until_kernels_are_loaded(monkeypatch):
    monkeypatch.setattr(kernels_module, "_modules", {})  # as in a process that has loaded no kernels yet
    monkeypatch.setattr(kernels_module, "_compiled", None)
    small = [np.ones(AUTO_MIN_ELEMENTS - 1, np.float32) for _ in range(4)]
    z, b = np.ones((2, 3), np.float32), np.ones(3, np.float32)
    with use_kernels("auto"):
        assert not compiled_runs(AUTO_MIN_ELEMENTS - 1) and compiled_runs(AUTO_MIN_ELEMENTS)
        assert fused_step("adam_step", *small) is None
        assert not add_bias_and_relu(z, b) and relu_backward(z, z) is None
    with use_kernels("numba"):  # asked for by name: every size runs compiled
        assert compiled_runs(1) and fused_step("adam_step", *small) is not None
    with use_kernels("auto"):  # loaded now (by "numba" above): their cost is paid, small work runs them too
        assert compiled_runs(1) and add_bias_and_relu(z, b)
    with use_kernels("numpy"):
        assert not compiled_runs(10 * AUTO_MIN_ELEMENTS)


#: A digits-sized fit (64-128-10: 9,610 parameters, below AUTO_MIN_ELEMENTS) with the default kernels in a
#: fresh interpreter, which has loaded no kernels; prints whether numba was imported, then the parameters.
SMALL_FIT = """
import sys
import numpy as np
import numnet
rng = np.random.default_rng(0)
X, y = rng.random((200, 64), dtype=np.float32), rng.integers(0, 10, 200)
network = numnet.Network([64, 128, 10], output_activation="softmax", dtype="float32", seed=1)
network.fit(X, y, epochs=2, batch_size=32, seed=2)
print("numba" in sys.modules)
np.save(sys.argv[1], network.flat_parameters)
"""


def test_a_network_too_small_to_gain_never_imports_numba_and_fits_as_the_kernels_do(tmp_path):
    path = tmp_path / "parameters.npy"
    environment = {key: value for key, value in os.environ.items() if key != "NUMNET_KERNELS"}
    result = subprocess.run([sys.executable, "-c", SMALL_FIT, str(path)], env=environment, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "False"
    rng = np.random.default_rng(0)
    X, y = rng.random((200, 64), dtype=np.float32), rng.integers(0, 10, 200)
    with use_kernels("numba"):
        network = numnet.Network([64, 128, 10], output_activation="softmax", dtype="float32", seed=1)
        network.fit(X, y, epochs=2, batch_size=32, seed=2)
    np.testing.assert_array_equal(np.load(path), network.flat_parameters)


# ---- running on several threads ------------------------------------------------------------------------


@FAST
@given(st.integers(0, 5000), st.integers(1, 4))
def test_run_in_chunks_covers_every_index_exactly_once(size, threads):
    seen = np.zeros(size, dtype=np.int64)

    def work(start, stop):
        seen[start:stop] += 1

    with kernel_threads_and_chunk(threads, min_chunk=16):
        run_in_chunks(work, size)
    np.testing.assert_array_equal(seen, np.ones(size, dtype=np.int64))


@FAST
@given(st.integers(0, 5000), st.integers(1, 4), st.integers(1, 2000))
def test_one_chunk_says_when_run_in_chunks_calls_its_work_once_on_everything_in_this_thread(size, threads,
                                                                                            min_chunk):
    # The kernels' shortcut past run_in_chunks (one call on the whole arrays) must be taken exactly when
    # run_in_chunks would have made that one call itself.
    calls = []

    def work(start, stop):
        calls.append((start, stop, threading.get_ident()))

    with kernel_threads_and_chunk(threads, min_chunk=MIN_CHUNK):
        run_in_chunks(work, size, min_chunk=min_chunk)
        once = one_chunk(size, min_chunk)
    assert once == (calls == [(0, size, threading.get_ident())])


def test_an_error_in_a_chunk_reaches_the_caller():
    def work(start, stop):
        if start > 0:
            raise ArithmeticError(f"chunk at {start}")

    with kernel_threads_and_chunk(2, min_chunk=16), pytest.raises(ArithmeticError, match="chunk at"):
        run_in_chunks(work, 1000)


@pytest.mark.parametrize("name", RULES)
def test_the_compiled_step_on_several_threads_equals_the_numpy_rule_bit_for_bit(name):
    rng = np.random.default_rng(3)
    size = 4 * MIN_CHUNK + 123  # several chunks, the last one shorter
    start = rng.standard_normal(size).astype(np.float32)
    gradients = sparse_gradients(rng, FLUSH_INTERVAL + 2, size, np.float32, 0.5)
    reference, reference_state = trajectory(name, "numpy", start, gradients)
    with kernel_threads_and_chunk(3, min_chunk=MIN_CHUNK):
        compiled, compiled_state = trajectory(name, "numba", start, gradients)
    np.testing.assert_array_equal(compiled, reference)
    for key in reference_state:
        np.testing.assert_array_equal(compiled_state[key], reference_state[key])


def test_the_compiled_adamw_decaying_matrices_equals_the_numpy_rule_bit_for_bit_in_chunks():
    # The flat buffer mixes weights that decay with biases and BatchNorm's gamma and beta that do not, and is
    # cut in chunks (two for the NumPy rule, several over three threads for the kernel): the mask of decayed
    # parameters must follow the elements into every chunk.
    network = numnet.Network([784, 300, 10], output_activation="softmax", batch_norm=True, dtype="float32", seed=5)
    rng = np.random.default_rng(6)
    gradients = sparse_gradients(rng, FLUSH_INTERVAL + 2, network.n_parameters, np.float32, 0.5)
    results = []
    for choice in ("numpy", "numba"):
        optimizer = get_optimizer("adamw", learning_rate=0.01, weight_decay=0.5, decay="matrices").bind(network)
        parameters = network.flat_parameters.copy()
        with kernel_threads_and_chunk(3, min_chunk=MIN_CHUNK // 4), use_kernels(choice):
            for gradient in gradients:
                optimizer.step(parameters, gradient)
        results.append((parameters, optimizer.state))
    (reference, reference_state), (compiled, compiled_state) = results
    np.testing.assert_array_equal(compiled, reference)
    for key in ("m", "v"):
        np.testing.assert_array_equal(compiled_state[key], reference_state[key])


def test_a_forked_child_steps_on_several_threads_after_its_parent_did():
    # The child has the parent's pool object but none of its threads: it must start its own.
    multiprocessing = pytest.importorskip("multiprocessing")
    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("no fork on this platform")
    size = 4 * MIN_CHUNK
    with kernel_threads_and_chunk(2, min_chunk=MIN_CHUNK), use_kernels("numba"):
        get_optimizer("adam").step(np.ones(size, np.float32), np.ones(size, np.float32))  # the parent's pool
        with multiprocessing.get_context("fork").Pool(1) as pool:
            child_result = pool.apply_async(_adam_once, (size,)).get(timeout=60)
    with use_kernels("numpy"):
        np.testing.assert_array_equal(child_result, _adam_once(size))


def _adam_once(size):
    parameters = np.ones(size, np.float32)
    get_optimizer("adam").step(parameters, np.linspace(-1, 1, size, dtype=np.float32))
    return parameters


@contextlib.contextmanager
def kernel_threads_and_chunk(threads, min_chunk):
    """Use ``threads`` kernel threads and chunks of at least ``min_chunk`` elements inside the block."""
    previous_chunk = kernels_module.MIN_CHUNK
    kernels_module.MIN_CHUNK = min_chunk
    set_kernel_threads(threads)
    try:
        yield
    finally:
        kernels_module.MIN_CHUNK = previous_chunk
        set_kernel_threads(None)


# ---- Dense with relu -----------------------------------------------------------------------------------

#: Pre-activations with the awkward values: NaN and infinities (which must come out as NumPy's do), zeros
#: of both signs, and ordinary numbers.
SPECIAL_VALUES = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.5, -2.5, 1e-30], dtype=np.float32)


def relu_inputs(rng, n_rows, n_units, dtype):
    z = rng.standard_normal((n_rows, n_units)).astype(dtype)
    z.flat[: min(z.size, SPECIAL_VALUES.size)] = SPECIAL_VALUES[: z.size]
    return z, rng.standard_normal(n_units).astype(dtype), rng.standard_normal((n_rows, n_units)).astype(dtype)


@FAST
@given(st.integers(1, 300), st.integers(1, 80), st.sampled_from([np.float32, np.float64]),
       st.integers(0, 2 ** 32 - 1))
def test_compiled_bias_and_relu_forward_and_backward_equal_numpy_bit_for_bit(n_rows, n_units, dtype, seed):
    z, b, grad_a = relu_inputs(np.random.default_rng(seed), n_rows, n_units, dtype)
    relu = numnet.activations.ReLU()
    with np.errstate(invalid="ignore"), use_kernels("numpy"):
        a_reference = relu.add_and_forward(z.copy(), b)
        delta_reference = relu.backward(grad_a, a_reference)
    with np.errstate(invalid="ignore"), use_kernels("numba"):
        a = relu.add_and_forward(z.copy(), b)
        delta = relu.backward(grad_a, a)
    np.testing.assert_array_equal(a, a_reference)
    np.testing.assert_array_equal(np.signbit(a), np.signbit(a_reference))
    np.testing.assert_array_equal(delta, delta_reference)


def test_predict_proba_on_several_threads_equals_the_numpy_predictions_bit_for_bit():
    rng = np.random.default_rng(4)
    network = numnet.Network([30, 700, 200, 5], output_activation="softmax", dtype="float32", seed=3)
    X = rng.random((2000, 30), dtype=np.float32)  # 2000 x 700 hidden values: several row chunks
    with use_kernels("numpy"):
        reference = network.predict_proba(X)
    with kernel_threads_and_chunk(3, min_chunk=MIN_CHUNK), use_kernels("numba"):
        np.testing.assert_array_equal(network.predict_proba(X), reference)


def test_the_relu_kernels_do_not_apply_to_mismatched_arrays():
    z = np.ones((4, 3), np.float32)
    with use_kernels("numba"):
        assert not add_bias_and_relu(z, np.ones(3, np.float64))
        assert not add_bias_and_relu(z, np.ones(4, np.float32))
        assert not add_bias_and_relu(np.ones((4, 6), np.float32)[:, ::2], np.ones(3, np.float32))
        assert relu_backward(np.ones((4, 3), np.float32), np.ones((3, 4), np.float32).T) is None
        assert relu_backward(np.ones(3, np.float32), np.ones(3, np.float32)) is None
    np.testing.assert_array_equal(z, np.ones((4, 3), np.float32))


def test_an_optimiser_that_ran_a_compiled_step_pickles_and_continues_bit_for_bit():
    parameters, gradient = np.linspace(-1, 1, 64, dtype=np.float32), np.full(64, 0.25, dtype=np.float32)
    with use_kernels("numba"):
        optimizer = get_optimizer("adam")
        optimizer.step(parameters, gradient)  # now holds its compiled update, which cannot be pickled
        copy, copied_parameters = pickle.loads(pickle.dumps(optimizer)), parameters.copy()
        optimizer.step(parameters, gradient)
        copy.step(copied_parameters, gradient)
    np.testing.assert_array_equal(copied_parameters, parameters)


# ---- GELU ----------------------------------------------------------------------------------------------

#: Where erf(z/√2)'s form changes (numnet.activations.erf): |z/√2| = 0.84375, 1.25, 1/0.35 and 6.
GELU_FORM_EDGES = np.sqrt(2.0) * np.array([0.84375, 1.25, 1 / 0.35, 6.0])


def around(values, dtype, steps=6):
    """``values`` in ``dtype`` and the ``steps`` floats on either side of each, both signs."""
    edges = np.concatenate([values, -values]).astype(dtype)
    neighbours = [edges]
    below, above = edges, edges
    for _ in range(steps):
        below, above = np.nextafter(below, dtype(-np.inf)), np.nextafter(above, dtype(np.inf))
        neighbours += [below, above]
    return np.concatenate(neighbours)


def gelu_inputs(rng, shape, dtype):
    """Pre-activations through every form of erf (magnitudes 1e-3 to 30, both signs), with the floats around
    each change of form, NaN, the infinities and zeros of both signs at the start."""
    z = (rng.standard_normal(shape) * 10.0 ** rng.uniform(-3, 1.5, shape)).astype(dtype)
    special = np.concatenate([np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-30], dtype),
                              around(GELU_FORM_EDGES, dtype)])
    z.flat[: min(z.size, special.size)] = special[: z.size]
    return z


def gelu_both_ways(z, grad_a):
    """(value, gradient) of GELU's forward and backward by NumPy's code and by the compiled kernels."""
    gelu = numnet.activations.GELU()
    results = []
    for choice in ("numpy", "numba"):
        with np.errstate(invalid="ignore"), use_kernels(choice):  # inf·0 in the backward of z = ±inf
            results.append((gelu.forward(z), gelu.backward(grad_a, z)))
    return results


@FAST
@given(st.lists(st.integers(1, 70), min_size=1, max_size=3), st.sampled_from([np.float32, np.float64]),
       st.integers(0, 2 ** 32 - 1))
def test_compiled_gelu_forward_and_backward_equal_numpy_bit_for_bit(shape, dtype, seed):
    # The kernels repeat erf's arithmetic in its order and call NumPy's exp: equality is exact, in every form
    # of erf and across the edges between them.
    rng = np.random.default_rng(seed)
    z, grad_a = gelu_inputs(rng, shape, dtype), rng.standard_normal(shape).astype(dtype)
    (value, gradient), (compiled_value, compiled_gradient) = gelu_both_ways(z, grad_a)
    assert compiled_value.dtype == compiled_gradient.dtype == dtype
    np.testing.assert_array_equal(compiled_value, value)
    np.testing.assert_array_equal(np.signbit(compiled_value), np.signbit(value))
    np.testing.assert_array_equal(compiled_gradient, gradient)


def test_compiled_gelu_on_several_threads_equals_numpy_bit_for_bit():
    rng = np.random.default_rng(5)
    z, grad_a = gelu_inputs(rng, (12, 64, 97), np.float32), rng.standard_normal((12, 64, 97)).astype(np.float32)
    with kernel_threads_and_chunk(3, min_chunk=1000):  # 75 chunks, each with its own entries in erf's tail
        (value, gradient), (compiled_value, compiled_gradient) = gelu_both_ways(z, grad_a)
    np.testing.assert_array_equal(compiled_value, value)
    np.testing.assert_array_equal(compiled_gradient, gradient)


def test_compiled_gelu_is_silent_for_inputs_of_1e300_as_numpys_is():
    z = np.array([-1e300, -1e30, -1000.0, 1000.0, 1e30, 1e300])
    gelu = numnet.activations.GELU()
    with np.errstate(all="raise"), use_kernels("numba"):
        value, gradient = gelu.forward(z), gelu.backward(np.ones_like(z), z)
    np.testing.assert_array_equal(value, [0.0, 0.0, 0.0, 1000.0, 1e30, 1e300])
    np.testing.assert_array_equal(gradient, [0.0, 0.0, 0.0, 1.0, 1.0, 1.0])


def test_the_gelu_kernels_do_not_apply_to_mismatched_arrays_and_numpy_runs_instead():
    z = gelu_inputs(np.random.default_rng(2), (8, 10), np.float32)
    gelu, constants = numnet.activations.GELU(), numnet.activations._KERNEL_CONSTANTS
    with use_kernels("numba"), np.errstate(invalid="ignore"):
        assert kernels_module.gelu_forward(z[:, ::2], constants) is None  # not contiguous
        assert kernels_module.gelu_forward(z.astype(np.float16), constants) is None
        assert kernels_module.gelu_backward(z.astype(np.float64), z, constants) is None  # two dtypes
        assert kernels_module.gelu_backward(z.T.copy(), z, constants) is None  # two shapes
        compiled_value, compiled_gradient = gelu.forward(z[:, ::2]), gelu.backward(z[:, ::2], z[:, ::2])
    with use_kernels("numpy"), np.errstate(invalid="ignore"):
        np.testing.assert_array_equal(compiled_value, gelu.forward(z[:, ::2]))
        np.testing.assert_array_equal(compiled_gradient, gelu.backward(z[:, ::2], z[:, ::2]))


def test_a_gpt_trained_with_the_compiled_kernels_equals_the_numpy_one_bit_for_bit():
    rng = np.random.default_rng(3)
    ids = rng.integers(0, 11, (40, 9))
    results = []
    for choice in ("numpy", "numba"):
        with use_kernels(choice):
            model = numnet.models.gpt(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=16, dtype="float32",
                                      seed=0)
            history = model.fit(ids[:, :-1], ids[:, 1:], epochs=2, batch_size=8, optimizer="adamw", seed=1)
        results.append((model.flat_parameters, history.iteration_loss))
    (parameters, losses), (compiled_parameters, compiled_losses) = results
    np.testing.assert_array_equal(compiled_parameters, parameters)
    assert compiled_losses == losses


def test_the_gelu_kernels_read_each_of_erfs_constants_where_activations_puts_it():
    # The kernels take the constants as a plain tuple (a named one would put its class into numba's cache):
    # each position the kernels read must hold the constant numnet.activations means by it.
    from numnet import _compiled_kernels as compiled
    from numnet import activations

    constants = activations._erf_constants(np.dtype(np.float64))
    expected = {"SQRT_HALF": activations._SQRT_HALF, "HALF": 0.5, "MINUS_HALF": -0.5, "ONE": 1.0,
                "DENSITY_SCALE": activations._ONE_OVER_SQRT_TWO_PI, "SMALL_LIMIT": activations._ERF_SMALL_LIMIT,
                "NEAR_ONE_LIMIT": activations._ERF_NEAR_ONE_LIMIT, "MIDDLE_LIMIT": activations._ERFC_MIDDLE_LIMIT,
                "ERF_ONE": activations._ERF_ONE, "ERF_OF_ONE_SINGLE": activations._ERF_OF_ONE_SINGLE,
                "SPLIT_SCALE": activations._SPLIT_SCALE, "SPLIT_OFFSET": 0.5625,
                "SMALL_NUMERATOR": activations._ERF_SMALL[0], "SMALL_DENOMINATOR": activations._ERF_SMALL[1],
                "NEAR_ONE_NUMERATOR": activations._ERF_NEAR_ONE[0],
                "NEAR_ONE_DENOMINATOR": activations._ERF_NEAR_ONE[1],
                "MIDDLE_NUMERATOR": activations._ERFC_MIDDLE[0], "MIDDLE_DENOMINATOR": activations._ERFC_MIDDLE[1],
                "LARGE_NUMERATOR": activations._ERFC_LARGE[0], "LARGE_DENOMINATOR": activations._ERFC_LARGE[1]}
    assert len(constants) == len(expected)
    for name, value in expected.items():
        assert constants[getattr(compiled, name)] == value, name

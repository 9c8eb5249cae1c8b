"""Optional compiled kernels for the element-wise work, and the threads that run them.

The NumPy code in optimizers.py and activations.py is the reference. Written with NumPy ufuncs, Adam
makes twelve passes over every parameter per step, and a Dense layer with relu two passes for z + b and
relu and two for relu's backward mask, all on one core. The kernels here make one pass each, in chunks on
every core (:func:`run_in_chunks`), and perform the same float operations in the same order on each
element (every intermediate rounded to the arrays' dtype, no fused multiply-add), so their results are
bit-identical to the NumPy code (tests/test_kernels.py). GELU's exact erf, about sixty NumPy passes, is one
vectorised pass and a few over the entries in its exponential form, which leave their exponentials to
NumPy's exp (:func:`gelu_forward`). The optimiser kernels also flush subnormal state
inline, at the thresholds the optimiser passes (zero when no flush is due), with the same test as
:func:`numnet.optimizers.flush_below`.

The kernels need numba (``pip install 'numnet[fast]'``), imported the first time one would run, never at
``import numnet``. Without numba, for arrays of another library or non-contiguous ones, or with
``NUMNET_KERNELS=numpy`` in the environment (or inside ``with use_kernels("numpy"):``), the NumPy code runs
instead. Under "auto", the default, work smaller than :data:`AUTO_MIN_ELEMENTS` runs the NumPy code too
until kernels are loaded in the process: a network that small never repays loading numba
(:func:`compiled_runs`). numba compiles, or loads from the cache, each kernel for the argument types of its
first call, so a run pays only for the kernels it calls. Their machine code is kept between processes in
the user's cache folder (``$NUMNET_CACHE_DIR``, else ``$NUMBA_CACHE_DIR``, else the platform's;
:mod:`numnet.cache`), never inside the installed package. benchmarks/NOTES.md, "fused compiled optimiser step",
"compiled bias and relu", "compiled GELU" and "the compiled kernels' first-use cost (issue 26)", has the
measurements.
"""

import contextlib
import functools
import importlib.util
import inspect
import itertools
import os
import queue
import threading

import numpy as np

from ._registry import lookup_class
from .cache import cache_folder
from .errors import require

KERNELS_ENVIRONMENT_VARIABLE = "NUMNET_KERNELS"
#: "auto": the compiled kernels when numba is installed; "numba": require them; "numpy": never.
KERNEL_CHOICES = ("auto", "numba", "numpy")

_choice = None  # set by set_kernels; None means "the environment variable's choice"
# $NUMNET_KERNELS as read on first use and again by set_kernels(None): the choice is asked several times a
# step, and reading os.environ each time cost 8% of a digits step.
_environment_choice = None
_compiled = None  # numnet._compiled_kernels, once built (_load)
_modules = {}  # every module of compiled kernels built so far, by name (load_compiled_module)
_load_lock = threading.Lock()
#: The dtypes the compiled kernels take (as dtype objects: comparing a dtype with np.float32 converts it first).
_COMPILED_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
_UNSEEN = object()  # what a fused update has been given as ``previous`` before its first step
#: Under "auto", the fewest elements of work that load the compiled kernels (then every size runs them). Loading
#: costs 0.5 s of CPU once per process on a warm cache (importing numba, 0.17 s; its first dispatch, 0.31 s,
#: which imports scipy.linalg and fills numba's tables), and a kernel's gain grows with its work: Adam over
#: 2^16 parameters gains 72 µs a step, so a smaller network needs over 7,000 steps to repay the load; the
#: digits classifier of ``numnet train`` (9,610 parameters, 1,350 steps, 12.5 µs a step) paid 0.5 s for
#: 0.02 s (benchmarks/NOTES.md, "the compiled kernels' first-use cost (issue 26)"). 2^16 is also
#: MIN_CHUNK, where the work starts to be shared between threads.
AUTO_MIN_ELEMENTS = 2 ** 16


def set_kernels(choice):
    """Choose what runs the element-wise work (optimiser updates, relu, GELU): "auto" (the default), "numba" or
    "numpy"; "auto" means the compiled kernels when numba is installed.

    Parameters
    ----------
    choice : str or None
        None goes back to ``$NUMNET_KERNELS`` (default "auto").

    Raises
    ------
    ValueError
        For another name.
    MissingDependencyError
        For "numba" when numba is not installed.
    """
    global _choice, _environment_choice
    if choice is not None:
        choice = _checked_choice(choice, "set_kernels")
        if choice == "numba":
            require("numba", "fast", "numnet's compiled kernels")
            _load()
    _choice = choice
    _environment_choice = None  # read $NUMNET_KERNELS again when it is next needed


@contextlib.contextmanager
def use_kernels(choice):
    """Run the enclosed code with :func:`set_kernels` (``choice``), then restore the previous choice."""
    previous = _choice
    set_kernels(choice)
    try:
        yield
    finally:
        set_kernels(previous)


def current_choice():
    """The choice in force: the one given to :func:`set_kernels`, else ``$NUMNET_KERNELS`` (read on first use
    and again after ``set_kernels(None)``), else "auto"."""
    global _environment_choice
    if _choice is not None:
        return _choice
    if _environment_choice is None:
        _environment_choice = _checked_choice(os.environ.get(KERNELS_ENVIRONMENT_VARIABLE) or "auto",
                                              KERNELS_ENVIRONMENT_VARIABLE)
    return _environment_choice


def compiled_chosen():
    """Whether the compiled kernels are chosen ("numba", or "auto" with numba installed)."""
    choice = current_choice()
    return choice == "numba" or (choice == "auto" and compiled_available())


def compiled_runs(size):
    """Whether the compiled kernels run on work of ``size`` elements, rather than the NumPy code.

    Yes under "numba"; under "auto", when numba is installed and either the work has at least
    :data:`AUTO_MIN_ELEMENTS` elements or kernels are already loaded in this process (their cost is paid, and
    smaller work gains too); never under "numpy". Both paths give the same numbers: this decides only the
    time. A module of kernels loaded by :func:`load_compiled_module` asks it as numnet's own kernels do.

    Parameters
    ----------
    size : int
        The elements of the work: the optimiser's parameters, a layer's z.

    Returns
    -------
    bool
    """
    choice = current_choice()
    if choice == "auto":
        return (size >= AUTO_MIN_ELEMENTS or bool(_modules)) and compiled_available()
    return choice == "numba"


@functools.lru_cache(maxsize=1)  # asked at every optimiser step; find_spec searches sys.path each time
def compiled_available():
    """Whether numba is installed (checked without importing it)."""
    return importlib.util.find_spec("numba") is not None


def fused_step(kernel, *arrays):
    """The compiled optimiser ``kernel`` applied over ``arrays`` (the parameters, the gradients, then the arrays
    the kernel takes, in its order), or None where it does not apply.

    ``kernel`` is a name in the table of numnet's kernels (``"adam_step"``: numnet._compiled_kernels.KERNELS)
    or a compiled function of one's own that takes its arguments the same way (:func:`kernel_arguments`).
    It applies when the compiled kernels run on arrays of this size (:func:`compiled_runs`) and every array is
    a C-contiguous NumPy float32 or float64 array of the parameters' dtype and size (:func:`compilable`). The returned
    function ``update(*kernel_scalars, previous=None)`` takes the kernel's scalars, already converted to that
    dtype (:func:`scalars`), and updates the arrays in place, in chunks over the calling thread and the
    helper threads (:func:`run_in_chunks`); ``previous`` receives the parameters before the update.
    """
    if not compilable(*arrays):
        return None
    kernel = compiled_kernel(kernel)
    parameters = arrays[0].reshape(-1)
    flat_arrays = tuple(array.reshape(-1) for array in arrays)
    discarded = []  # where the kernel copies the old parameters when nobody keeps them (made on first need)
    # The ``previous`` last given, and (the flat array the kernel copies the old parameters into, ``previous``
    # itself when it must be filled in Python instead): worked out once per buffer, not at every step (fit
    # hands the same one each time): 2.1 µs, 1% of a digits step (benchmarks/NOTES.md, "per-step overhead
    # of the digits step").
    seen, kept, copy_to = _UNSEEN, None, None

    def update(*kernel_scalars, previous=None):
        nonlocal seen, kept, copy_to
        if previous is not seen:
            seen, kept, copy_to = previous, None, None
            if previous is not None and compilable(parameters, previous):
                kept = previous.reshape(-1)
            else:
                copy_to = previous
                if not discarded:
                    discarded.append(np.empty_like(parameters))
                kept = discarded[0]
        if copy_to is not None:
            copy_to[...] = arrays[0]
        if one_chunk(parameters.size):
            # The whole arrays at once, as run_in_chunks's one chunk (0, size) would be, without its closure
            # and slices: 2.7 µs, 1.3% of a digits step, whose 9,610 parameters are one chunk.
            kernel(kept, *flat_arrays, *kernel_scalars)
            return

        def update_chunk(start, stop):
            # The old parameters are copied inside the kernel's pass, off the GIL: a copy of each chunk
            # in Python before the kernel cost 80-200 µs of a 300-400 µs mnist step on two threads
            # (benchmarks/NOTES.md, "divergence guard's copy, inside the optimiser pass").
            kernel(kept[start:stop], *(array[start:stop] for array in flat_arrays), *kernel_scalars)

        run_in_chunks(update_chunk, parameters.size)

    return update


def compiled_kernel(kernel):
    """The compiled function ``kernel`` names in numnet's table of kernels (numnet._compiled_kernels.KERNELS,
    built on first use), or ``kernel`` itself when it is a function already.

    Raises
    ------
    ValueError
        For a name that is not in the table (the message lists the names).
    """
    if not isinstance(kernel, str):
        return kernel
    return lookup_class(_load().KERNELS, kernel, "compiled kernel")


def kernel_arguments(kernel):
    """The names of the arguments of ``kernel`` (a name, as for :func:`compiled_kernel`, or a function), in
    order: ``kept``, ``p``, ``g``, then its arrays and its scalars, matched to an optimiser rule by these
    names (numnet.optimizers.Rule)."""
    function = compiled_kernel(kernel)
    return tuple(inspect.signature(getattr(function, "py_func", function)).parameters)


def add_bias_and_relu(z, b):
    """z ← max(z + b, 0) in place by the compiled kernel, in row blocks over the threads; returns whether
    it ran (False: it does not apply to these arrays, and z is unchanged).

    Parameters
    ----------
    z : ndarray, shape (n_rows, n_units)
    b : ndarray, shape (n_units,)
    """
    if not compiled_runs(z.size) or z.ndim != 2 or b.shape != (z.shape[1],) or not _kernel_floats(z, b):
        return False
    kernel = _load().bias_relu
    rows, min_chunk = z.shape[0], _rows_per_chunk(z)
    # A batch that is one chunk: the whole array, with no closure (with _kernel_floats, 3.4 µs of a digits
    # step, and 2.9 µs in relu_backward: benchmarks/NOTES.md, "per-step overhead of the digits step").
    if one_chunk(rows, min_chunk):
        kernel(z, b)
    else:
        run_in_chunks(lambda start, stop: kernel(z[start:stop], b), rows, min_chunk=min_chunk)
    return True


def relu_backward(grad_a, a):
    """grad_a · (a > 0) as a new array, by the compiled kernel in row blocks over the threads; None where it
    does not apply (arrays of shape (n_rows, n_units), one dtype, C-contiguous, :func:`compiled_runs`)."""
    if not compiled_runs(a.size) or a.ndim != 2 or grad_a.shape != a.shape or not _kernel_floats(a, grad_a):
        return None
    out = np.empty_like(a)
    kernel = _load().relu_gradient
    rows, min_chunk = a.shape[0], _rows_per_chunk(a)
    if one_chunk(rows, min_chunk):  # as in add_bias_and_relu
        kernel(grad_a, a, out)
    else:
        run_in_chunks(lambda start, stop: kernel(grad_a[start:stop], a[start:stop], out[start:stop]), rows,
                      min_chunk=min_chunk)
    return out


def gelu_forward(z, constants):
    """½z(1 + erf(z/√2)) as a new array, by the compiled kernels in chunks over the threads; None where they do
    not apply (z must be a C-contiguous NumPy float32 or float64 array, of any shape).

    ``constants`` maps each dtype to erf's and GELU's constants in it (numnet.activations._erf_constants).
    One kernel computes every entry as if its erf needed no exponential; others list the entries whose erf
    does (``|z| >= 1.25·√2``) and write their exponents, NumPy's exp takes those, and a last kernel redoes
    those entries: the numbers of GELU's NumPy code, bit for bit (numnet._compiled_kernels says why the
    exponentials are NumPy's).
    """
    if not compilable(z):
        return None
    compiled, c = _load(), constants[z.dtype]
    values, out = z.reshape(-1), np.empty_like(z)
    flat_out, tail_index = out.reshape(-1), np.empty(values.size, np.intp)

    def chunk(start, stop):
        compiled.gelu_values(values[start:stop], c, flat_out[start:stop])
        tail = _erf_tail(compiled, values[start:stop], c, tail_index[start:stop])
        if tail is not None:
            compiled.gelu_tail_values(values[start:stop], c, *tail, flat_out[start:stop])

    run_in_chunks(chunk, values.size)
    return out


def gelu_backward(grad_a, z, constants):
    """grad_a · GELU'(z) as a new array, by the compiled kernels in chunks over the threads; None where they do
    not apply (arrays of one shape and dtype, float32 or float64, C-contiguous).

    As :func:`gelu_forward`, with the normal density e^(-½z²) by NumPy's passes, as GELU.derivative has it.
    """
    if grad_a.shape != z.shape or not compilable(z, grad_a):
        return None
    compiled, c = _load(), constants[z.dtype]
    values, gradients, out = z.reshape(-1), grad_a.reshape(-1), np.empty_like(z)
    flat_out, density, tail_index = out.reshape(-1), np.empty_like(values), np.empty(values.size, np.intp)

    def chunk(start, stop):
        part = density[start:stop]
        with np.errstate(over="ignore", under="ignore"):  # z² overflowing gives e^-inf = 0, the exact limit
            np.multiply(values[start:stop], c[compiled.MINUS_HALF], out=part)
            part *= values[start:stop]
            np.exp(part, out=part)
        compiled.gelu_gradient(gradients[start:stop], values[start:stop], c, part, flat_out[start:stop])
        tail = _erf_tail(compiled, values[start:stop], c, tail_index[start:stop])
        if tail is not None:
            compiled.gelu_tail_gradient(gradients[start:stop], values[start:stop], c, part, *tail,
                                        flat_out[start:stop])

    run_in_chunks(chunk, values.size)
    return out


def _erf_tail(compiled, z, c, room):
    """(indices, e^first, e^second) for the entries of z whose erf(z/√2) takes the exponential form, with the
    exponents of compiled.erf_tail_exponents; None when there are none. ``room``: an intp array of z's size."""
    index = room[:compiled.erf_tail_indices(z, c, room)]
    if not index.size:
        return None
    first, second = np.empty(index.size, z.dtype), np.empty(index.size, z.dtype)
    compiled.erf_tail_exponents(z[index], c, first, second)
    return index, np.exp(first, out=first), np.exp(second, out=second)


def _rows_per_chunk(array):
    """Rows of a (n_rows, n_units) array that make a chunk of at least MIN_CHUNK elements."""
    return max(1, MIN_CHUNK // max(1, array.shape[1]))


def _kernel_floats(first, *others):
    """Whether every array is a C-contiguous NumPy array of the dtype of ``first``, float32 or float64 (of any
    size): what the relu kernels take, asked twice a step (compiled_runs asked by the caller, once)."""
    if type(first) is not np.ndarray or first.dtype not in _COMPILED_DTYPES:
        return False
    dtype = first.dtype
    for array in (first, *others):
        if type(array) is not np.ndarray or not array.flags.c_contiguous or array.dtype != dtype:
            return False
    return True


def compilable(first, *others):
    """Whether the compiled kernels run on work of the size of ``first`` (:func:`compiled_runs`), and every
    array is a C-contiguous NumPy float32 or float64 array with the dtype and size of ``first``."""
    return (type(first) is np.ndarray and compiled_runs(first.size) and in_chunks(first, *others)
            and first.dtype in _COMPILED_DTYPES)


def in_chunks(first, *others):
    """Whether the arrays can be cut into chunks of consecutive elements (:func:`run_in_chunks`): C-contiguous
    NumPy arrays, all of the dtype and size of ``first``."""
    # A loop rather than all() over a generator, and dtype objects compared with dtype objects:
    # compilable(p, g) went from 1.5 to 1.0 µs.
    if type(first) is not np.ndarray:
        return False
    dtype, size = first.dtype, first.size
    for array in (first, *others):
        if type(array) is not np.ndarray or not array.flags.c_contiguous or array.dtype != dtype or array.size != size:
            return False
    return True


def scalars(dtype, *values):
    """``values`` as scalars of ``dtype``: the rounding NumPy applies to a Python float in a ufunc (NEP 50).

    Four or more go through one array, which rounds each as ``dtype.type(value)`` does: Adam's six in
    1.7 µs instead of 2.8 µs one by one, 1% of a digits step; fewer are faster one by one
    (benchmarks/NOTES.md, "optimiser rules as records")."""
    if len(values) < 4:
        return tuple(map(dtype.type, values))
    return tuple(np.asarray(values, dtype=dtype))


# ---- running element-wise work on several threads ------------------------------------------------------

#: The smallest chunk handed to a thread: 2^16 elements is ~50 µs of a fused Adam step, against ~5 µs to
#: hand it over, so the hand-over costs under 10% (benchmarks/NOTES.md, "fused compiled optimiser step").
MIN_CHUNK = 2 ** 16
#: Chunks per thread: more than one, so that a thread the scheduler delays leaves its share to the others.
CHUNKS_PER_THREAD = 4

_threads = None  # set by set_kernel_threads; None means every CPU this process may run on
_pool = None
_pool_lock = threading.Lock()  # user threads may run kernels at the same time: one pool, made once


def set_kernel_threads(threads):
    """Use ``threads`` threads (the calling one included) for the kernels' element-wise work; None: one per CPU.

    Raises
    ------
    ValueError
        For a number below 1.
    """
    global _threads
    if threads is not None:
        threads = int(threads)
        if threads < 1:
            raise ValueError(f"set_kernel_threads needs at least 1 thread, got {threads}")
    _threads = threads


def kernel_threads():
    """The number of threads the kernels use (:func:`set_kernel_threads`)."""
    return _threads if _threads is not None else _usable_cpus()


@functools.lru_cache(maxsize=1)
def _usable_cpus():
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def one_chunk(size, min_chunk=None):
    """Whether :func:`run_in_chunks` (without ``max_chunk``) calls its work once, on (0, size), in the
    calling thread: when a single thread takes it (one CPU, or fewer than two ``min_chunk`` of elements)."""
    return size < 2 * (min_chunk or MIN_CHUNK) or kernel_threads() <= 1  # _threads_for(size, min_chunk) <= 1


def _threads_for(size, min_chunk):
    """The threads run_in_chunks uses on ``size`` elements: one per ``min_chunk`` (default MIN_CHUNK), at most
    kernel_threads()."""
    return min(kernel_threads(), size // (min_chunk or MIN_CHUNK))


def run_in_chunks(work, size, min_chunk=None, max_chunk=None):
    """Call ``work(start, stop)`` over consecutive chunks covering range(size), on up to one thread per
    ``min_chunk`` elements (default ``MIN_CHUNK``), each chunk at most ``max_chunk`` long when that is given.

    The calling thread works through the chunks itself and wakes the helpers, which take chunks as they
    get to run. It waits only for chunks a helper has begun, never for a helper that has not started: on
    a machine whose other cores are busy this costs nothing but the hand-over, where a barrier over a
    fixed split of the work would wait for the slowest thread's time slice.
    """
    threads = _threads_for(size, min_chunk)
    n_chunks = threads * CHUNKS_PER_THREAD if threads > 1 else 1
    if max_chunk:
        n_chunks = max(n_chunks, -(-size // max_chunk))
    bounds = [(size * index // n_chunks, size * (index + 1) // n_chunks) for index in range(n_chunks)]
    if threads <= 1:
        for start, stop in bounds:
            work(start, stop)
        return
    task = _ChunkedTask(work, bounds)
    _offer_to_helpers(task, threads - 1)
    task.work()
    task.wait()


class _ChunkedTask:
    """Chunks of one call of run_in_chunks: any thread may take the next one; the caller waits for all."""

    def __init__(self, work, bounds):
        self.work_on = work
        self.bounds = bounds
        self.next_index = itertools.count()  # next() on it is atomic under the GIL
        self.finished = 0
        self.lock = threading.Lock()
        self.all_finished = threading.Event()
        self.error = None

    def work(self):
        """Take chunks and work on them until none is left."""
        for index in iter(self.next_index.__next__, None):
            if index >= len(self.bounds):
                return
            try:
                self.work_on(*self.bounds[index])
            except BaseException as error:  # re-raised in the calling thread by wait()
                self.error = error
            with self.lock:
                self.finished += 1
                if self.finished == len(self.bounds):
                    self.all_finished.set()

    def wait(self):
        self.all_finished.wait()
        if self.error is not None:
            raise self.error


class _HelperPool:
    """Daemon threads that work on the chunks of the tasks put in their queue."""

    def __init__(self):
        self.pid = os.getpid()
        self.tasks = queue.SimpleQueue()
        self.threads = []

    def add_thread(self):
        thread = threading.Thread(target=self._serve, name=f"numnet-kernels-{len(self.threads)}", daemon=True)
        thread.start()
        self.threads.append(thread)

    def _serve(self):
        while True:
            self.tasks.get().work()


def _offer_to_helpers(task, helpers):
    """Put ``task`` in the queue of ``helpers`` pool threads, starting the pool and its threads as needed."""
    global _pool
    with _pool_lock:
        if _pool is None or _pool.pid != os.getpid():  # a forked child has the pool's objects, not its threads
            _pool = _HelperPool()
        while len(_pool.threads) < helpers:
            _pool.add_thread()
        pool = _pool
    for _ in range(helpers):
        pool.tasks.put(task)


def _checked_choice(choice, where):
    key = str(choice).strip().lower()
    if key not in KERNEL_CHOICES:
        raise ValueError(f"{where}: unknown kernels {choice!r}; choose one of: {', '.join(KERNEL_CHOICES)}")
    return key


def _load():
    """The module of numnet's own compiled kernels (numnet._compiled_kernels), built on first use
    (:func:`load_compiled_module`)."""
    global _compiled
    if _compiled is None:  # asked at every step: a global's test, not the dict's lookup
        _compiled = load_compiled_module("numnet._compiled_kernels")
    return _compiled


def load_compiled_module(name):
    """Build (once) and return the module of compiled kernels ``name`` ("numnet._compiled_kernels",
    "numnet._compiled_conv", ...), their machine code kept between processes in the user's cache folder.

    Such a module defines its kernels with ``numba.njit`` but not ``cache=True`` (which would write beside
    the package: numnet.cache says why) and lists them in a dict ``KERNELS`` by name; it is imported only
    through this function, the first time one of its kernels would run (ask :func:`compiled_runs` first),
    never at ``import numnet``. Nothing is compiled here: numba compiles each kernel, or loads it from the
    cache, for the argument types of its first call, so a run pays only for the kernels it calls.

    Raises
    ------
    MissingDependencyError
        When numba is not installed.
    """
    module = _modules.get(name)
    if module is None:
        with _load_lock:  # two threads' first kernels must not build (and place the cache) twice
            if name not in _modules:
                require("numba", "fast", "numnet's compiled kernels")
                loaded = importlib.import_module(name)
                _cache_compiled_code(loaded.KERNELS.values())
                _modules[name] = loaded
            module = _modules[name]
    return module


def _cache_compiled_code(kernels):
    """Let numba keep the kernels' machine code in numnet's cache folder between processes, never beside
    the package (numnet.cache says why); without a usable folder they compile in memory."""
    folder = cache_folder("numba")
    if folder is None:
        return
    import numba

    # numba places a function's cache when caching is turned on, in numba.config.CACHE_DIR when that is
    # set (its NUMBA_CACHE_DIR); set only for these kernels, so a user's own numba functions are unaffected.
    previous = numba.config.CACHE_DIR
    numba.config.CACHE_DIR = folder
    try:
        for kernel in kernels:
            kernel.enable_caching()
    finally:
        numba.config.CACHE_DIR = previous

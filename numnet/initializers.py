"""Weight and bias initialisers and the INITIALIZERS table.

An initialiser is called with a shape, a NumPy Generator and a dtype. Random draws are made in float64
and then cast, so a float32 and a float64 model built with the same seed start from the same weights
(up to rounding).
"""

import math

import numpy as np

from ._registry import lookup
from .validation import Real, declare


class Initializer:
    """Base class: ``initializer(shape, rng, dtype)`` returns a new array."""

    name = "initializer"

    def __call__(self, shape, rng, dtype):
        return np.asarray(self.sample(shape, rng), dtype=dtype)

    def sample(self, shape, rng):
        """Draw the values in float64."""
        raise NotImplementedError

    def __repr__(self):
        return f"{type(self).__name__}()"


def _fans(shape):
    """(fan_in, fan_out) of a weight array; a vector has fan_in = fan_out = size.

    A matrix is numnet's (n_in, n_out). A convolution kernel is PyTorch's (out_channels, in_channels, kh, kw),
    with PyTorch's fans: each output sums in_channels·kh·kw inputs, and each input reaches out_channels·kh·kw
    outputs.
    """
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive_field = math.prod(shape[2:])
    return shape[1] * receptive_field, shape[0] * receptive_field


class Normal(Initializer):
    """N(mean, std²): the classic small random weights (std 0.01 or 0.1).

    Parameters
    ----------
    std : float, default 0.01
    mean : float, default 0.0
    """

    name = "normal"

    @declare(std=Real(above=0), mean=Real())
    def __init__(self, std=0.01, mean=0.0):
        self.std = std
        self.mean = mean

    def sample(self, shape, rng):
        return self.mean + self.std * rng.standard_normal(shape)

    def __repr__(self):
        return f"Normal(std={self.std}, mean={self.mean})"


class XavierUniform(Initializer):
    """Glorot & Bengio (2010): U(-r, r) with r = sqrt(6 / (fan_in + fan_out)); suits tanh and sigmoid."""

    name = "xavier"

    def sample(self, shape, rng):
        fan_in, fan_out = _fans(shape)
        limit = math.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-limit, limit, size=shape)


class XavierNormal(Initializer):
    """Glorot normal: N(0, 2 / (fan_in + fan_out))."""

    name = "xavier_normal"

    def sample(self, shape, rng):
        fan_in, fan_out = _fans(shape)
        return math.sqrt(2.0 / (fan_in + fan_out)) * rng.standard_normal(shape)


class HeNormal(Initializer):
    """He et al. (2015): N(0, 2 / fan_in), which keeps the variance of relu activations constant."""

    name = "he"

    def sample(self, shape, rng):
        fan_in, _ = _fans(shape)
        return math.sqrt(2.0 / fan_in) * rng.standard_normal(shape)


class HeUniform(Initializer):
    """He uniform: U(-r, r) with r = sqrt(6 / fan_in)."""

    name = "he_uniform"

    def sample(self, shape, rng):
        fan_in, _ = _fans(shape)
        limit = math.sqrt(6.0 / fan_in)
        return rng.uniform(-limit, limit, size=shape)


class Constant(Initializer):
    """Every entry equal to ``value`` (biases: 0, or the 0.1 of experiment E1)."""

    name = "constant"

    @declare(value=Real())
    def __init__(self, value=0.0):
        self.value = value

    def sample(self, shape, rng):
        return np.full(shape, self.value)

    def __repr__(self):
        return f"Constant({self.value})"


class Zeros(Constant):
    """All zeros."""

    name = "zeros"

    def __init__(self):
        super().__init__(0.0)


INITIALIZERS = {
    "normal": Normal,
    "xavier": XavierUniform,
    "glorot": XavierUniform,
    "xavier_uniform": XavierUniform,
    "glorot_uniform": XavierUniform,
    "xavier_normal": XavierNormal,
    "glorot_normal": XavierNormal,
    "he": HeNormal,
    "he_normal": HeNormal,
    "he_uniform": HeUniform,
    "zeros": Zeros,
    "constant": Constant,
}


def get_initializer(spec):
    """Return an initialiser from a name, an Initializer, or a number (a constant).

    Raises
    ------
    ValueError
        For an unknown name, listing the valid ones.
    """
    if isinstance(spec, (int, float)) and not isinstance(spec, bool):
        return Constant(spec)
    return lookup(INITIALIZERS, spec, "initializer", base=Initializer)

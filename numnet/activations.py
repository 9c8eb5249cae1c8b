"""Activation functions, each with its derivative and its own facts, the ACTIVATIONS table and
:func:`register_activation`.

Most derivatives here are computed from the activation's *output* ``a = f(z)``, not from ``z``: for these
functions f'(z) is a cheap expression of ``a`` (sigmoid: a(1-a), tanh: 1-a², relu: a>0), so a layer only
needs to cache ``a``, and ``z`` can be overwritten in place by ``a`` in the forward pass
(benchmarks/NOTES.md, "activations in place"). An activation whose f' is not a function of its output
(GELU and its tanh form here, a contributor's SiLU) says ``derivative_from = "z"``, and the layers keep ``z``
for it alone (see :class:`Activation`). GELU needs the error function, which NumPy lacks: :func:`erf`.
"""

import numpy as np

from ._registry import lookup
from .backend import apply, multiply_by_mask, namespace
from .kernels import add_bias_and_relu, gelu_backward, gelu_forward, relu_backward


#: The two things a derivative can be computed from: the output ``a = f(z)`` or the input ``z``.
DERIVATIVE_ARGUMENTS = ("a", "z")


class Activation:
    """Base class: ``forward`` computes a = f(z); ``backward`` turns dC/da into dC/dz = dC/da ⊙ f'(z).

    A subclass sets ``name`` and implements ``forward(z, out=None)`` and ``derivative``; everything else has a
    default. It also carries the facts the rest of numnet needs to know about it, so that no other module keeps
    a table keyed by its name:

    - ``derivative_from``: what ``derivative`` and ``backward`` take. ``"a"`` (the default, numnet 0.2's
      contract): the output a = f(z), which the layers then write over z in place (benchmarks/NOTES.md,
      "activations in place"). ``"z"``: the input, for an activation whose f' is not a function of its
      output (SiLU, GELU); the layers keep z for it.
    - ``display_name``: how plots and the playground label it (default: its ``name``).
    - ``default_weight_init``: the initialiser ``weight_init="auto"`` gives the weights before it
      (:func:`numnet.layers.auto_weight_init`): ``"he"`` for relu-like functions, else ``"xavier"``.
    - ``derivative_maximum``, ``saturates``, ``dies``: what the training doctor judges it by (numnet.evidence).
    - ``output_only``: True for an output activation with no place in a hidden layer (softmax, exp); the
      estimators and the playground offer the others as hidden activations.
    - :meth:`onnx_nodes`: its ONNX operators (numnet.onnx_export).

    Most activations numnet ships compute their derivative from ``a``: sigmoid a(1 - a), tanh 1 - a², relu and
    leaky relu from the sign of a, linear 1, exp a itself, softmax its Jacobian diag(a) - a aᵀ; the two GELUs
    compute theirs from ``z``. A class of one's own is added to :data:`ACTIVATIONS` by
    :func:`register_activation`.
    """

    name = "activation"
    #: What ``derivative`` and ``backward`` take: "a", the output f(z), or "z", the input (one of
    #: DERIVATIVE_ARGUMENTS).
    derivative_from = "a"
    #: The name plots and the playground show; the class's ``name`` unless the class sets one.
    display_name = "activation"
    #: The INITIALIZERS name ``weight_init="auto"`` picks for the weights before this activation.
    default_weight_init = "xavier"
    #: True for an output activation that does not belong in a hidden layer.
    output_only = False
    #: True when f acts on each entry alone, so that its Jacobian is diagonal.
    elementwise = True
    #: The largest value f'(z) takes, or None where f' is unbounded or not elementwise. The training doctor
    #: measures saturation against it (numnet.evidence), so that each activation is judged on its own scale.
    derivative_maximum = None
    #: True when f'(z) tends to 0 on both tails: a unit far out on them passes back almost no gradient.
    #: An activation that does not say (one written before this fact existed) is not known to saturate.
    saturates = False
    #: True when f'(z) is exactly 0 on a whole half-line: a unit there on every sample never learns again.
    dies = False

    def __init_subclass__(cls, **options):
        super().__init_subclass__(**options)
        if "name" in vars(cls) and "display_name" not in vars(cls):
            cls.display_name = cls.name
        if cls.derivative_from not in DERIVATIVE_ARGUMENTS:
            raise ValueError(f"{cls.__name__}.derivative_from must be 'a' (f' computed from the output) or 'z' "
                             f"(from the input), got {cls.derivative_from!r}")

    def forward(self, z, out=None):
        """Return ``f(z)``, written into ``out`` when given (``out`` may be ``z`` itself).

        Parameters
        ----------
        z : ndarray, shape (n_samples, n_units)
        out : ndarray, optional, same shape and dtype as ``z``
        """
        raise NotImplementedError

    def add_and_forward(self, z, b):
        """Return ``f(z + b)``, written into ``z``: a Dense layer's activation of its pre-activation.

        Parameters
        ----------
        z : ndarray, shape (n_samples, n_units)
            ``x W``; overwritten.
        b : ndarray, shape (n_units,)
        """
        z += b
        return self.forward(z, out=z)

    def derivative(self, a):
        """Return f'(z) elementwise, computed from the output ``a = f(z)`` (from ``z`` itself when the class
        sets ``derivative_from = "z"``)."""
        raise NotImplementedError

    def backward(self, grad_a, a):
        """Return dC/dz = dC/da ⊙ f'(z) (a new array; neither input is modified).

        Parameters
        ----------
        grad_a : ndarray, shape (n_samples, n_units)
            dC/da, the gradient of the cost with respect to this activation's output.
        a : ndarray, shape (n_samples, n_units)
            The cached output of ``forward``; the input ``z`` instead when ``derivative_from`` is ``"z"``.
        """
        return grad_a * self.derivative(a)

    def onnx_nodes(self, graph, x):
        """Add the ONNX operators that compute f to ``graph`` and return the name of their output.

        Parameters
        ----------
        graph : numnet.onnx_export's graph under construction
            ``graph.node(op_type, inputs, **attributes)`` adds an operator and ``graph.constant(hint, values)``
            a tensor in the model's dtype, each returning the new value's name.
        x : str
            The name of the value ``z`` the activation applies to.

        Raises
        ------
        ValueError
            Here in the base class: an activation with no ONNX form. A subclass that has one overrides this.
        """
        raise ValueError(f"no ONNX form for the activation {self.name!r}: {type(self).__name__} does not define "
                         "onnx_nodes(graph, x); define it to add the operators that compute the function, e.g. "
                         "return graph.node('Relu', [x])")

    def __call__(self, z):
        return self.forward(z)

    def __repr__(self):
        return f"{type(self).__name__}()"


class Sigmoid(Activation):
    """Logistic sigmoid 1 / (1 + e^-z); derivative a(1 - a), from a.

    Computed from ``e^-|z|``, which lies in (0, 1], so no input of any magnitude overflows, warns or gives NaN.
    """

    name = "sigmoid"
    derivative_maximum = 0.25  # a(1 - a) at z = 0, a = 1/2
    saturates = True

    def onnx_nodes(self, graph, x):
        return graph.node("Sigmoid", [x])

    def forward(self, z, out=None):
        xp = namespace(z)
        # e^-|z| underflows to 0 for |z| > ~745 (float64); 0 is the exact limit, not an error, so keep it
        # silent even when the caller has set np.seterr(all="raise").
        with np.errstate(under="ignore"):
            exp_neg_abs = xp.exp(-xp.abs(z))  # in (0, 1]: never overflows
            positive_branch = 1.0 / (1.0 + exp_neg_abs)  # sigmoid(|z|)
            result = xp.where(z >= 0, positive_branch, exp_neg_abs * positive_branch)
        result = xp.astype(result, z.dtype, copy=False)
        if out is None:
            return result
        out[...] = result
        return out

    def derivative(self, a):
        return a * (1.0 - a)


class Tanh(Activation):
    """Hyperbolic tangent; derivative 1 - a², from a."""

    name = "tanh"
    derivative_maximum = 1.0  # 1 - a² at z = 0
    saturates = True

    def onnx_nodes(self, graph, x):
        return graph.node("Tanh", [x])

    def forward(self, z, out=None):
        return apply(namespace(z).tanh, z, out=out)

    def derivative(self, a):
        return 1.0 - a * a


class ReLU(Activation):
    """Rectified linear unit max(0, z); derivative 1 where a > 0, else 0 (0 at z = 0, as PyTorch)."""

    name = "relu"
    display_name = "ReLU"
    default_weight_init = "he"  # He keeps the spread of a layer that zeroes half its inputs
    derivative_maximum = 1.0
    dies = True

    def onnx_nodes(self, graph, x):
        return graph.node("Relu", [x])

    def forward(self, z, out=None):
        return apply(namespace(z).maximum, z, 0.0, out=out)

    def add_and_forward(self, z, b):
        # One compiled pass instead of two NumPy ones, when numnet.kernels applies (benchmarks/NOTES.md,
        # "compiled bias and relu"); the same numbers either way.
        return z if add_bias_and_relu(z, b) else super().add_and_forward(z, b)

    def derivative(self, a):
        return namespace(a).astype(a > 0, a.dtype)

    def backward(self, grad_a, a):
        compiled = relu_backward(grad_a, a)
        return compiled if compiled is not None else multiply_by_mask(grad_a, a > 0)


class LeakyReLU(Activation):
    """Leaky relu: z for z > 0, slope·z otherwise; derivative 1 or slope, from a (a > 0 exactly when z > 0).

    Parameters
    ----------
    negative_slope : float, default 0.01
        Must be >= 0, so that the sign of ``a`` is the sign of ``z``.
    """

    name = "leaky_relu"
    display_name = "leaky ReLU"
    default_weight_init = "he"
    derivative_maximum = 1.0  # slope < 1 below zero: it keeps a gradient there and cannot die

    def __init__(self, negative_slope=0.01):
        negative_slope = float(negative_slope)
        if not 0.0 <= negative_slope < 1.0:
            raise ValueError(f"negative_slope must be in [0, 1), got {negative_slope}")
        self.negative_slope = negative_slope

    def forward(self, z, out=None):
        scaled = z * self.negative_slope
        return apply(namespace(z).maximum, z, scaled, out=out)

    def derivative(self, a):
        ones = namespace(a).ones_like(a)
        return namespace(a).where(a > 0, ones, ones * self.negative_slope)

    def onnx_nodes(self, graph, x):
        # Max(x, slope·x), numnet's own formula, with the slope in the model's dtype: ONNX Runtime's LeakyRelu
        # has no float64 kernel, and this is the same number, so float64 networks agree to rounding.
        scaled = graph.node("Mul", [x, graph.constant("negative_slope", self.negative_slope)])
        return graph.node("Max", [x, scaled], hint="leaky_relu")

    def __repr__(self):
        return f"LeakyReLU(negative_slope={self.negative_slope})"


class Linear(Activation):
    """The identity f(z) = z; derivative 1."""

    name = "linear"
    derivative_maximum = 1.0

    def forward(self, z, out=None):
        if out is None:
            return namespace(z).asarray(z, copy=True)
        if out is not z:
            out[...] = z
        return out

    def derivative(self, a):
        return namespace(a).ones_like(a)

    def backward(self, grad_a, a):
        return namespace(grad_a).asarray(grad_a, copy=True)

    def onnx_nodes(self, graph, x):
        return x  # the identity adds no operator


class Exponential(Activation):
    """e^z; derivative e^z = a, from a. The output of a Poisson model (the log link: the rate is e^z > 0).

    Overflows to infinity for z above ~709 (float64), as NumPy's exp does: a model whose log-rate grows
    that far has diverged, and the infinite loss says so.
    """

    name = "exp"
    output_only = True  # the log link of a Poisson output; e^z compounds from layer to layer in a hidden one

    def forward(self, z, out=None):
        return apply(namespace(z).exp, z, out=out)

    def derivative(self, a):
        return namespace(a).asarray(a, copy=True)

    def backward(self, grad_a, a):
        return grad_a * a

    def onnx_nodes(self, graph, x):
        return graph.node("Exp", [x])


class Softmax(Activation):
    """Softmax over each row: a_k = e^{z_k} / Σ_j e^{z_j}, shifted by the row maximum so it never overflows.

    Not elementwise: its Jacobian is diag(a) - a aᵀ, so ``backward`` returns a ⊙ (g - Σ_k g_k a_k) per row.
    With cross-entropy, use the fused loss in losses.py, whose delta is simply (a - y) / n.
    """

    name = "softmax"
    elementwise = False
    output_only = True  # class probabilities

    def forward(self, z, out=None):
        return self._normalized_exponentials(z, out)[0]

    def forward_with_log_normalizer(self, z, out=None):
        """(softmax(z), log Σ_k e^{z_k} over the last axis) from one maximum, exponential and sum.

        The second is the log-sum-exp from which softmax cross-entropy subtracts z·y: a training step hands
        it to the loss (:func:`forward_for_fused_loss`) rather than have the loss take the maximum,
        exponential and sum of the same logits again; the numbers are the same bit for bit
        (benchmarks/NOTES.md, "softmax and its loss from one pass").
        """
        xp = namespace(z)
        probabilities, row_max, row_sum = self._normalized_exponentials(z, out)
        return probabilities, xp.log(row_sum[..., 0]) + row_max[..., 0]

    @staticmethod
    def _normalized_exponentials(z, out):
        """(e^(z - max) / Σ e^(z - max), the row maxima, the row sums Σ e^(z - max)), the last two keeping
        their axis."""
        xp = namespace(z)
        row_max = xp.max(z, axis=-1, keepdims=True)
        shifted = apply(xp.subtract, z, row_max, out=out)
        with np.errstate(under="ignore"):  # e^(z - max) underflowing to 0 is the exact limit
            apply(xp.exp, shifted, out=shifted)
        row_sum = xp.sum(shifted, axis=-1, keepdims=True)
        shifted /= row_sum
        return shifted, row_max, row_sum

    def derivative(self, a):
        raise TypeError(
            "softmax has no elementwise derivative (its Jacobian is diag(a) - a a^T); use "
            "Softmax.backward(grad_a, a) or Softmax.jacobian(a)"
        )

    def jacobian(self, a):
        """Per-sample Jacobians da/dz, shape (n_samples, n_units, n_units)."""
        xp = namespace(a)
        return a[:, :, None] * xp.eye(a.shape[1], dtype=a.dtype) - a[:, :, None] * a[:, None, :]

    def backward(self, grad_a, a):
        # J^T g for J = diag(a) - a a^T, row by row, without building J.
        weighted_sum = namespace(a).sum(grad_a * a, axis=-1, keepdims=True)
        return a * (grad_a - weighted_sum)

    def onnx_nodes(self, graph, x):
        return graph.node("Softmax", [x], axis=-1)  # over each row, the last axis


# ---- the error function, for GELU --------------------------------------------------------------------------

# The coefficients of fdlibm's s_erf.c (as in FreeBSD's msun, musl and glibc), under its notice:
#   Copyright (C) 1993 by Sun Microsystems, Inc. All rights reserved.
#   Developed at SunSoft, a Sun Microsystems, Inc. business.
#   Permission to use, copy, modify, and distribute this software is freely granted, provided that this
#   notice is preserved.
# Each polynomial's coefficients are listed from the constant term up.
#: |x| < 0.84375: erf(x) = x + x·P(x²)/Q(x²), |P/Q - (erf(x) - x)/x| <= 2^-57.9.
_ERF_SMALL = ((1.28379167095512558561e-01, -3.25042107247001499370e-01, -2.84817495755985104766e-02,
               -5.77027029648944159157e-03, -2.37630166566501626084e-05),
              (1.0, 3.97917223959155352819e-01, 6.50222499887672944485e-02, 5.08130628187576562776e-03,
               1.32494738004321644526e-04, -3.96022827877536812320e-06))
#: 0.84375 <= |x| < 1.25: erf(x) = c + P(s)/Q(s), s = |x| - 1, c = erf(1) rounded to float32's 24 bits.
_ERF_NEAR_ONE = ((-2.36211856075265944077e-03, 4.14856118683748331666e-01, -3.72207876035701323847e-01,
                  3.18346619901161753674e-01, -1.10894694282396677476e-01, 3.54783043256182359371e-02,
                  -2.16637559486879084300e-03),
                 (1.0, 1.06420880400844228286e-01, 5.40397917702171048937e-01, 7.18286544141962662868e-02,
                  1.26171219808761642112e-01, 1.36370839120290507362e-02, 1.19844998467991074170e-02))
_ERF_OF_ONE_SINGLE = 8.45062911510467529297e-01
#: 1.25 <= |x| < 1/0.35: erfc(x) = e^(-x² - 0.5625 + R(s)/S(s))/x, s = 1/x², |R/S - f| < 2^-62.6.
_ERFC_MIDDLE = ((-9.86494403484714822705e-03, -6.93858572707181764372e-01, -1.05586262253232909814e+01,
                 -6.23753324503260060396e+01, -1.62396669462573470355e+02, -1.84605092906711035994e+02,
                 -8.12874355063065934246e+01, -9.81432934416914548592e+00),
                (1.0, 1.96512716674392571292e+01, 1.37657754143519042600e+02, 4.34565877475229228821e+02,
                 6.45387271733267880336e+02, 4.29008140027567833386e+02, 1.08635005541779435134e+02,
                 6.57024977031928170135e+00, -6.04244152148580987438e-02))
#: 1/0.35 <= |x| < 6 (erf is 1 to float64 rounding past 6): the same form, |R/S - f| < 2^-61.5.
_ERFC_LARGE = ((-9.86494292470009928597e-03, -7.99283237680523006574e-01, -1.77579549177547519889e+01,
                -1.60636384855821916062e+02, -6.37566443368389627722e+02, -1.02509513161107724954e+03,
                -4.83519191608651397019e+02),
               (1.0, 3.03380607434824582924e+01, 3.25792512996573918826e+02, 1.53672958608443695994e+03,
                3.19985821950859553908e+03, 2.55305040643316442583e+03, 4.74528541206955367215e+02,
                -2.24409524465858183362e+01))
_ERF_SMALL_LIMIT = 0.84375
_ERF_NEAR_ONE_LIMIT = 1.25
_ERFC_MIDDLE_LIMIT = 1.0 / 0.35
#: erfc(6) = 2e-17, below half an ulp of 1: erf is ±1 exactly past it.
_ERF_ONE = 6.0
#: x split as z + (x - z) with z = x cut to 16 bits after the point: z² is exact (x < 6 has at most 19
#: bits then), so e^(-x²) = e^(-z² - 0.5625)·e^((z - x)(z + x) + ...) carries no rounding of a large x²
#: (fdlibm clears the low 32 bits of x for the same end; the array API has no bit access).
_SPLIT_SCALE = 65536.0


def _polynomial(t, coefficients):
    """c₀ + t(c₁ + t(c₂ + ...)): Horner's form, as fdlibm writes each polynomial."""
    result = coefficients[-1]
    for coefficient in coefficients[-2::-1]:
        result = coefficient + t * result
    return result


def _rational(t, numerator_and_denominator):
    numerator, denominator = numerator_and_denominator
    return _polynomial(t, numerator) / _polynomial(t, denominator)


def erf(x):
    """The error function erf(x) = 2/√π ∫₀ˣ e^(-t²) dt, elementwise, accurate to float64 rounding.

    NumPy has no erf and numnet does not depend on SciPy, so it is computed here by the method and the
    rational approximations of fdlibm's ``s_erf.c`` (Sun Microsystems 1993; the erf of FreeBSD, musl and
    glibc), whose error bounds lie below 2^-57, written for x >= 0 (erf is odd): erf(x) = x + x·P(x²)/Q(x²)
    below 0.84375; erf(1)'s float32 value plus P(x - 1)/Q(x - 1) below 1.25;
    1 - e^(-x² - 0.5625 + R(1/x²)/S(1/x²))/x below 6, with two sets of R, S and the exponential split so
    that x² is not rounded; 1 past 6. Each form adds a small correction to a term that is exact, so the
    result is within about an ulp of erf(x): measured against ``math.erf`` on a dense grid and random
    points, at most 1.1e-16 apart (tests/test_transformer_layers.py). W. J. Cody's approximations (SPECFUN's
    CALERF), evaluated so in float64, were measured up to 3.3e-16 (5 ulps) off near x = 0.5, where
    erf = 1 - erfc.

    Every form is evaluated on every entry, each on its argument clamped into its range, and the right one
    chosen by ``where``: only the array API's operations, so it runs on every backend (NumPy, CuPy,
    array_api_strict), a few dozen passes over the array and no Python loop over its entries.

    Parameters
    ----------
    x : array of float32 or float64
        Any shape; NaN gives NaN.

    Returns
    -------
    array
        erf(x), same shape and dtype (float32 is computed in float32, to its own rounding).

    Examples
    --------
    >>> import numpy as np
    >>> erf(np.array([0.0, 0.5, -3.0]))
    array([ 0.        ,  0.52049988, -0.99997791])
    """
    xp = namespace(x)
    y = xp.abs(x)
    with np.errstate(under="ignore"):  # x² and e^(-x²) underflowing to 0 are the exact limits
        x_small = xp.minimum(xp.maximum(x, -_ERF_SMALL_LIMIT), _ERF_SMALL_LIMIT)
        small = x_small + x_small * _rational(x_small * x_small, _ERF_SMALL)  # signed, as x
        y_near_one = xp.minimum(xp.maximum(y, _ERF_SMALL_LIMIT), _ERF_NEAR_ONE_LIMIT)
        near_one = _ERF_OF_ONE_SINGLE + _rational(y_near_one - 1.0, _ERF_NEAR_ONE)
        tail = 1.0 - _erfc_tail(xp.minimum(xp.maximum(y, _ERF_NEAR_ONE_LIMIT), _ERF_ONE))
    # NaN fails every comparison below and reaches the tail's form, which keeps it NaN
    magnitude = xp.where(y < _ERF_NEAR_ONE_LIMIT, near_one, xp.where(y >= _ERF_ONE, 1.0, tail))
    return xp.where(y < _ERF_SMALL_LIMIT, small, xp.where(x < 0, -magnitude, magnitude))


def _erfc_tail(y):
    """erfc(y) for y in [1.25, 6]: e^(-y² - 0.5625 + R/S)/y, e^(-y²) split at z = y cut to 16 bits."""
    xp = namespace(y)
    inverse_square = 1.0 / (y * y)
    correction = xp.where(y < _ERFC_MIDDLE_LIMIT, _rational(inverse_square, _ERFC_MIDDLE),
                          _rational(inverse_square, _ERFC_LARGE))
    z = xp.trunc(y * _SPLIT_SCALE) / _SPLIT_SCALE
    return xp.exp(-z * z - 0.5625) * xp.exp((z - y) * (z + y) + correction) / y


class _GraphValue:
    """A value of an ONNX graph under construction (numnet.onnx_export's) on which arithmetic, comparisons
    and a few array-API functions add the matching operators: :func:`erf` run on one writes itself into the
    graph operator by operator, the same steps as on an array. GELU's float64 export needs it: ONNX Runtime
    has no float64 ``Erf`` kernel, and a float32 one would round GELU to float32's precision."""

    def __init__(self, graph, name):
        self.graph = graph
        self.name = name

    def __array_namespace__(self):
        return _GraphNamespace(self.graph)

    def _node(self, op_type, *operands):
        return _graph_node(self.graph, op_type, *operands)

    def __add__(self, other):
        return self._node("Add", self, other)

    def __radd__(self, other):
        return self._node("Add", other, self)

    def __sub__(self, other):
        return self._node("Sub", self, other)

    def __rsub__(self, other):
        return self._node("Sub", other, self)

    def __mul__(self, other):
        return self._node("Mul", self, other)

    def __rmul__(self, other):
        return self._node("Mul", other, self)

    def __truediv__(self, other):
        return self._node("Div", self, other)

    def __rtruediv__(self, other):
        return self._node("Div", other, self)

    def __neg__(self):
        return self._node("Neg", self)

    def __lt__(self, other):
        return self._node("Less", self, other)

    def __ge__(self, other):
        return self._node("GreaterOrEqual", self, other)


class _GraphNamespace:
    """The array-API functions :func:`erf` calls, as ONNX operators on :class:`_GraphValue`."""

    def __init__(self, graph):
        self.graph = graph

    def abs(self, x):
        return _graph_node(self.graph, "Abs", x)

    def minimum(self, x, y):
        return _graph_node(self.graph, "Min", x, y)

    def maximum(self, x, y):
        return _graph_node(self.graph, "Max", x, y)

    def exp(self, x):
        return _graph_node(self.graph, "Exp", x)

    def trunc(self, x):
        # ONNX has Floor but no Trunc: trunc(x) = sign(x)·floor(|x|)
        return _graph_node(self.graph, "Sign", x) * _graph_node(self.graph, "Floor", self.abs(x))

    def where(self, condition, x, y):
        return _graph_node(self.graph, "Where", condition, x, y)


def _graph_node(graph, op_type, *operands):
    """A new operator of ``graph`` on ``operands`` (graph values, or numbers as constants of the model's dtype)."""
    names = [operand.name if isinstance(operand, _GraphValue) else graph.constant("erf_constant", operand)
             for operand in operands]
    return _GraphValue(graph, graph.node(op_type, names, hint="erf"))


# ---- GELU --------------------------------------------------------------------------------------------------

_SQRT_HALF = 0.7071067811865476  # 1/√2
_ONE_OVER_SQRT_TWO_PI = 0.3989422804014327  # the standard normal density's 1/√(2π)
_SQRT_TWO_OVER_PI = 0.7978845608028654  # √(2/π), the tanh form's scale
_TANH_FORM_CUBIC = 0.044715  # Hendrycks & Gimpel's cubic coefficient
#: Where the tanh form's tanh is ±1 to float64 (and float32) rounding: |z| = 10 gives an argument of 43.7,
#: tanh(43.7) = 1 - 2e-38. z is clamped to it inside the tanh and its derivative, so that z³ and z² never
#: overflow (past |z| ~ 5.6e102 the derivative's z·(1 - tanh²)·(1 + 3cz²) would be inf·0); no value changes.
_TANH_FORM_SATURATION = 10.0


def _erf_constants(dtype):
    """erf's and GELU's constants in ``dtype``, each rounded as NumPy rounds a Python float meeting an array
    of that dtype, as the plain tuple the compiled GELU kernels take, in the order numnet._compiled_kernels
    reads them (SQRT_HALF, HALF, ...): the scalars, then each polynomial as a tuple."""
    scalars = (_SQRT_HALF, 0.5, -0.5, 1.0, _ONE_OVER_SQRT_TWO_PI, _ERF_SMALL_LIMIT, _ERF_NEAR_ONE_LIMIT,
               _ERFC_MIDDLE_LIMIT, _ERF_ONE, _ERF_OF_ONE_SINGLE, _SPLIT_SCALE, 0.5625)
    polynomials = (*_ERF_SMALL, *_ERF_NEAR_ONE, *_ERFC_MIDDLE, *_ERFC_LARGE)
    return (*map(dtype.type, scalars), *(tuple(map(dtype.type, values)) for values in polynomials))


#: erf's and GELU's constants for each dtype the compiled kernels take.
_KERNEL_CONSTANTS = {np.dtype(dtype): _erf_constants(np.dtype(dtype)) for dtype in (np.float32, np.float64)}


class GELU(Activation):
    """Gaussian error linear unit (Hendrycks & Gimpel 2016), exact: f(z) = z·Φ(z) = ½z(1 + erf(z/√2)),
    PyTorch's ``nn.GELU()`` (``approximate="none"``) and GPT-2's, BERT's activation in its exact form.

    Its derivative f'(z) = Φ(z) + z·φ(z), with φ the standard normal density, is no function of the output,
    so it is computed from z (``derivative_from = "z"``). erf is :func:`erf`, accurate to float64 rounding.
    """

    name = "gelu"
    display_name = "GELU"
    derivative_from = "z"
    default_weight_init = "he"  # relu-like: 0 far below zero, the identity far above it
    # f'(√2) = Φ(√2) + √2·φ(√2): f''(z) = φ(z)(2 - z²) vanishes at z = √2. GELU neither saturates (f' → 1 as
    # z → +∞) nor dies (f' is 0 at z ≈ -0.752 only).
    derivative_maximum = 1.128904145185155

    def forward(self, z, out=None):
        # One compiled pass (and NumPy's exp for the entries past |z| = 1.25·√2) instead of about sixty NumPy
        # ones, when numnet.kernels applies: the same numbers; with the backward, 236 ms, 75% of a GPT step at
        # nanoGPT's CPU recipe (benchmarks/NOTES.md, "compiled GELU").
        compiled = gelu_forward(z, _KERNEL_CONSTANTS)
        if compiled is not None:
            return _written(compiled, out)
        return _written(0.5 * z * (1.0 + erf(z * _SQRT_HALF)), out)

    def backward(self, grad_a, z):
        compiled = gelu_backward(grad_a, z, _KERNEL_CONSTANTS)  # as in forward
        return compiled if compiled is not None else grad_a * self.derivative(z)

    def derivative(self, z):
        xp = namespace(z)
        cdf = 0.5 * (1.0 + erf(z * _SQRT_HALF))  # Φ(z)
        with np.errstate(over="ignore", under="ignore"):  # z² overflowing gives e^-inf = 0, the exact limit
            density = xp.exp(-0.5 * z * z) * _ONE_OVER_SQRT_TWO_PI  # φ(z)
        return cdf + z * density

    def onnx_nodes(self, graph, x):
        # ½x(1 + erf(x/√2)), the same formula; erf is ONNX's Erf in float32, and numnet's own, written out in
        # operators, in float64, where ONNX Runtime has no Erf kernel
        scaled = graph.node("Mul", [x, graph.constant("sqrt_half", _SQRT_HALF)])
        if graph.dtype == np.float32:
            erf_value = graph.node("Erf", [scaled])
        else:
            erf_value = erf(_GraphValue(graph, scaled)).name
        erf_plus_one = graph.node("Add", [erf_value, graph.constant("one", 1.0)])
        half_x = graph.node("Mul", [x, graph.constant("half", 0.5)])
        return graph.node("Mul", [half_x, erf_plus_one], hint="gelu")


class GELUTanh(Activation):
    """GELU's tanh approximation: f(z) = ½z(1 + tanh(√(2/π)(z + 0.044715z³))), PyTorch's
    ``nn.GELU(approximate="tanh")``, the form GPT-2's code (and nanoGPT's ``new_gelu``) uses.

    Its derivative, with u = √(2/π)(z + 0.044715z³) and t = tanh(u), is
    f'(z) = ½(1 + t) + ½z(1 - t²)·√(2/π)(1 + 3·0.044715z²), computed from z (``derivative_from = "z"``).
    It differs from the exact GELU by less than 5e-4.
    """

    name = "gelu_tanh"
    display_name = "GELU (tanh)"
    derivative_from = "z"
    default_weight_init = "he"
    # The largest f'(z), at z ≈ 1.4185 (found by a golden-section search on f'; 1.1289041 for the exact GELU)
    derivative_maximum = 1.1289930686587715

    @staticmethod
    def _clamped_and_tanh(z):
        """(z clamped to ±10, t = tanh(√(2/π)(z + 0.044715z³))): past ±10, t is ±1 already."""
        xp = namespace(z)
        clamped = xp.minimum(xp.maximum(z, -_TANH_FORM_SATURATION), _TANH_FORM_SATURATION)
        return clamped, xp.tanh(_SQRT_TWO_OVER_PI * (clamped + _TANH_FORM_CUBIC * clamped * clamped * clamped))

    def forward(self, z, out=None):
        _, t = self._clamped_and_tanh(z)
        return _written(0.5 * z * (1.0 + t), out)

    def derivative(self, z):
        clamped, t = self._clamped_and_tanh(z)
        # The second term is exactly 0 where z was clamped (1 - t² = 0 there), so the clamped z serves in its
        # polynomial, which then cannot overflow
        slope_of_u = _SQRT_TWO_OVER_PI * (1.0 + 3.0 * _TANH_FORM_CUBIC * clamped * clamped)  # du/dz
        return 0.5 * (1.0 + t) + 0.5 * z * (1.0 - t * t) * slope_of_u

    def onnx_nodes(self, graph, x):
        # ½x(1 + Tanh(√(2/π)(x + 0.044715x³))), the same formula (unclamped: Tanh of a large number is ±1)
        cube = graph.node("Mul", [graph.node("Mul", [x, x]), x])
        inner = graph.node("Add", [x, graph.node("Mul", [cube, graph.constant("cubic", _TANH_FORM_CUBIC)])])
        scaled = graph.node("Mul", [inner, graph.constant("sqrt_two_over_pi", _SQRT_TWO_OVER_PI)])
        tanh = graph.node("Tanh", [scaled])
        half_x = graph.node("Mul", [x, graph.constant("half", 0.5)])
        return graph.node("Mul", [half_x, graph.node("Add", [tanh, graph.constant("one", 1.0)])], hint="gelu_tanh")


def forward_for_fused_loss(activation, z, training):
    """(a = f(z), log Σ_k e^{z_k} or None) for an output layer whose logits ``z`` go to a fused loss: the log
    normaliser where the activation computes one on the way (softmax) and the pass is a training one, whose
    loss is taken next (``Loss.value_from_forward``); None otherwise, as for an
    activation written to numnet 0.2's contract."""
    with_normalizer = getattr(activation, "forward_with_log_normalizer", None) if training else None
    if with_normalizer is None:
        return activation.forward(z), None
    return with_normalizer(z)


def _written(result, out):
    """``result``, or ``out`` with ``result`` written into it when given (an activation's ``out=``)."""
    if out is None:
        return result
    out[...] = result
    return out


ACTIVATIONS = {
    "sigmoid": Sigmoid,
    "logistic": Sigmoid,
    "tanh": Tanh,
    "relu": ReLU,
    "leaky_relu": LeakyReLU,
    "linear": Linear,
    "identity": Linear,
    "softmax": Softmax,
    "exp": Exponential,
    "gelu": GELU,
    "gelu_tanh": GELUTanh,
}


def register_activation(activation_class):
    """Add an Activation subclass to :data:`numnet.ACTIVATIONS` under its ``name``.

    Every part of numnet then takes that name: Dense, Conv2D and the Activation layer, Network's
    ``activation``, saved models, the command line's ``--activation``, the estimators and the playground's
    menu; what each needs to know about the function it reads from the class's facts (see
    :class:`numnet.activations.Activation`). Returns the class, so it can decorate the class definition.

    Parameters
    ----------
    activation_class : type
        A subclass of Activation whose constructor needs no arguments, with a lower-case ``name`` of its own.

    Raises
    ------
    TypeError
        When ``activation_class`` is not a subclass of Activation.
    ValueError
        When its name is not a lower-case name of its own, or another class is registered under it.
    """
    if not (isinstance(activation_class, type) and issubclass(activation_class, Activation)):
        raise TypeError(f"register_activation needs a subclass of numnet.activations.Activation, got "
                        f"{activation_class!r}")
    name = activation_class.name
    if not isinstance(name, str) or not name or name != name.strip().lower() or name == Activation.name:
        raise ValueError(f"{activation_class.__name__} needs a lower-case name of its own to be registered under "
                         f"(a class attribute such as name = 'silu'), got {name!r}")
    registered = ACTIVATIONS.get(name)
    if registered is not None and registered is not activation_class:
        raise ValueError(f"the activation name {name!r} is already registered for {registered.__name__}; give "
                         f"{activation_class.__name__} a different name")
    ACTIVATIONS[name] = activation_class
    return activation_class


def get_activation(name):
    """Return the activation called ``name`` (or ``name`` itself if it is an Activation).

    Raises
    ------
    ValueError
        For an unknown name, listing the valid ones.
    TypeError
        For anything else, and with its own message for an activation *layer* (``numnet.Activation``)
        given where an activation function is expected.
    """
    # layers.py sits below this module and cannot be imported here; a layer is recognised by its contract.
    if hasattr(name, "parameter_shapes") and hasattr(name, "backward") and hasattr(name, "kind"):
        function = getattr(name, "activation", None)
        hint = f" such as {function.name!r}" if isinstance(function, Activation) else ""
        raise TypeError(
            f"expected an activation function, got the layer {type(name).__name__} ({name.kind}); pass the "
            f"function's name{hint} (numnet.Activation is the activation layer since numnet 0.2; the functions "
            "are numnet.activations.ReLU(), Sigmoid(), ...)"
        )
    return lookup(ACTIVATIONS, name, "activation", base=Activation)

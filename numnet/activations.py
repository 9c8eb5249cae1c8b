"""Activation functions, each with its derivative and its own facts, the ACTIVATIONS table and
:func:`register_activation`.

Every derivative here is computed from the activation's *output* ``a = f(z)``, not from ``z``: for these
functions f'(z) is a cheap expression of ``a`` (sigmoid: a(1-a), tanh: 1-a², relu: a>0), so a layer only
needs to cache ``a``, and ``z`` can be overwritten in place by ``a`` in the forward pass
(benchmarks/NOTES.md, "activations in place"). An activation whose f' is not a function of its output
(SiLU, GELU) says ``derivative_from = "z"``, and the layers keep ``z`` for it alone (see :class:`Activation`).
"""

import numpy as np

from ._registry import lookup
from .backend import apply, multiply_by_mask, namespace
from .kernels import add_bias_and_relu, relu_backward


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

    Every activation numnet ships computes its derivative from ``a``: sigmoid a(1 - a), tanh 1 - a², relu and
    leaky relu from the sign of a, linear 1, exp a itself, softmax its Jacobian diag(a) - a aᵀ. A class of
    one's own is added to :data:`ACTIVATIONS` by :func:`register_activation`.
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
        xp = namespace(z)
        shifted = apply(xp.subtract, z, xp.max(z, axis=-1, keepdims=True), out=out)
        with np.errstate(under="ignore"):  # e^(z - max) underflowing to 0 is the exact limit
            apply(xp.exp, shifted, out=shifted)
        shifted /= xp.sum(shifted, axis=-1, keepdims=True)
        return shifted

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

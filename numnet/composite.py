"""Layers made of layers: the composite layer, and the two numnet ships, Sequential and Residual.

A composite layer holds other layers and is itself a layer: the network sees one layer, and everything
that talks to the Layer contract (the flat parameter, gradient and state buffers, every optimiser, L2,
gradient checking, saving, copying, MPI) sees through it, because the composite declares its children's
parameters and state as its own, under each child's name (``residual_1.dense_0.W``), and hands each child
the views of its own part. A model of one's own, such as the sequel book's ``Seq2seq``, is a composite
layer that writes its ``forward`` and ``backward`` in plain code over its children.

``Sequential(*layers)`` chains its children; ``Residual(*layers)`` adds its input to what they give,
y = x + f(x), the skip connection of ResNets and transformers, whose backward pass adds the two paths:
dC/dx = dC/dy + (dC/dy through f).
"""

from .layers import Layer, get_layer_class, named_layers, register_layer


class CompositeLayer(Layer):
    """A layer that holds other layers (its ``children``), whose parameters, state and carried state it
    declares as its own under each child's name; subclass it and write ``forward`` and ``backward``.

    The children are named ``<kind>_<index>`` unless named already; their names must be unique. The
    default ``forward`` and ``backward`` chain them (Sequential); a subclass combines them otherwise.

    Parameters
    ----------
    layers : Layer
        The children, in order.
    name : str, optional
    """

    def __init__(self, *layers, name=None):
        super().__init__(name=name)
        self.children = named_layers(layers, f"{type(self).__name__}'s layers")

    # ---- what the layer holds: its children's, under their names ----------------------------------------

    def sublayers(self):
        return list(self.children)

    def parameter_shapes(self):
        return self._gathered("parameter_shapes")

    def state_shapes(self):
        return self._gathered("state_shapes")

    def penalized_parameters(self):
        return tuple(f"{child.name}.{key}" for child in self.children for key in child.penalized_parameters())

    def _gathered(self, method):
        return {f"{child.name}.{key}": shape for child in self.children
                for key, shape in getattr(child, method)().items()}

    def bind(self, params, grads):
        super().bind(params, grads)
        for child in self.children:
            child.bind(_part(params, child), _part(grads, child))

    def bind_state(self, state):
        super().bind_state(state)
        for child in self.children:
            child.bind_state(_part(state, child))

    def initialize(self, rng):
        for child in self.children:
            child.initialize(rng)

    @property
    def needs_rng(self):
        return any(child.needs_rng for child in self.children)

    @property
    def takes_token_ids(self):
        return self.children[0].takes_token_ids

    @property
    def input_count(self):  # a model of one's own that takes several inputs sets it as a class attribute
        return self.children[0].input_count

    @property
    def stateful(self):
        return any(child.stateful for child in self.children)

    @property
    def context(self):
        return self.children[0].context if self.children else None

    @context.setter
    def context(self, context):  # fit's batch context reaches every child (Dropout, BatchNorm)
        for child in getattr(self, "children", ()):
            child.context = context

    def expected_input_shape(self):
        return self.children[0].expected_input_shape()

    def output_shape(self, input_shape):
        for child in self.children:
            input_shape = child.output_shape(input_shape)
        return input_shape

    def min_batch_size(self, input_shape):
        if self.input_count > 1:  # not a chain: what each child receives is the subclass's own affair
            return max(child.min_batch_size(None) for child in self.children)
        needed = 1
        for child in self.children:
            needed = max(needed, child.min_batch_size(input_shape))
            input_shape = child.output_shape(input_shape)
        return needed

    # ---- forward and backward: a chain, unless a subclass says otherwise ---------------------------------

    def forward(self, x, training=False, rng=None):
        for child in self.children:
            x = child.forward(x, training, rng)
        return x

    def backward(self, grad_output, propagate=True):
        last = len(self.children) - 1
        for index in range(last, -1, -1):
            # BP2 through the children, last to first; the first needs no dC/dx unless the caller does
            grad_output = self.children[index].backward(grad_output, propagate=propagate or index > 0)
        return grad_output

    def clear_cache(self):
        super().clear_cache()
        for child in self.children:
            child.clear_cache()

    # ---- state carried between batches: the children's, under their names --------------------------------

    def carried_state(self):
        return {f"{child.name}.{key}": array for child in self.children
                for key, array in child.carried_state().items()}

    def set_carried_state(self, arrays):
        for child in self.children:
            part = _part(arrays, child)
            if part:
                child.set_carried_state(part)
            else:
                child.reset_carried_state()

    def reset_carried_state(self):
        for child in self.children:
            child.reset_carried_state()

    # ---- description and rebuilding ----------------------------------------------------------------------

    def config(self):
        return {"type": self.kind, "layers": [child.config() for child in self.children], "name": self.name}

    @classmethod
    def from_config(cls, config):
        children = [get_layer_class(child["type"]).from_config(child) for child in config["layers"]]
        return cls(*children, name=config["name"])

    def describe(self):
        return f"{type(self).__name__} of {len(self.children)} layer{'s' if len(self.children) != 1 else ''}"


class CompositeModel(CompositeLayer):
    """A composite layer that builds its own children from its constructor's arguments (a model's body:
    :class:`numnet.models.seq2seq.EncoderDecoder`, :class:`numnet.models.gpt.GPT`): its config holds those
    arguments, not its children's configs, and rebuilding calls the constructor with them."""

    def config(self):
        return Layer.config(self)

    @classmethod
    def from_config(cls, config):
        return Layer.from_config.__func__(cls, config)


@register_layer
class Sequential(CompositeLayer):
    """Its layers one after the other, as one layer: y = fₖ(… f₁(x)).

    Examples
    --------
    >>> import numnet
    >>> block = numnet.Sequential(numnet.Dense(4, 8, "relu"), numnet.Dense(8, 4))
    >>> numnet.Network(layers=[block, numnet.Dense(4, 2, "softmax")]).summary().splitlines()[3].split()[:2]
    ['sequential_0', 'Sequential']
    """


@register_layer
class Residual(CompositeLayer):
    """A skip connection around its layers: y = x + f(x), with f the layers one after the other.

    The backward pass adds the two paths the error takes back to x: dC/dx = dC/dy + dC/dy·∂f/∂x. f must
    give the shape it takes (a Dense layer of as many outputs as inputs, a block of them).

    Examples
    --------
    >>> import numnet
    >>> block = numnet.Residual(numnet.Dense(4, 8, "relu"), numnet.Dense(8, 4))
    >>> net = numnet.Network(layers=[numnet.Dense(3, 4), block, numnet.Dense(4, 2, "softmax")], seed=0)
    >>> net.output_shapes[1]
    (4,)
    """

    def output_shape(self, input_shape):
        output = super().output_shape(input_shape)
        if input_shape is not None and output is not None and tuple(output) != tuple(input_shape):
            raise ValueError(f"adds its input to what its layers give, so they must give the shape they take, "
                             f"{tuple(input_shape)}, but they give {tuple(output)}")
        return output

    def forward(self, x, training=False, rng=None):
        return x + super().forward(x, training, rng)

    def backward(self, grad_output, propagate=True):
        # BP2 through both paths: the identity passes dC/dy back unchanged, f passes its own gradient
        through_layers = super().backward(grad_output, propagate=True)
        return grad_output + through_layers if propagate else None


def _part(arrays, child):
    """The entries of ``arrays`` (keyed "<child>.<key>") that belong to ``child``, keyed by <key>."""
    prefix = f"{child.name}."
    return {key[len(prefix):]: value for key, value in arrays.items() if key.startswith(prefix)}


__all__ = ["CompositeLayer", "CompositeModel", "Sequential", "Residual"]

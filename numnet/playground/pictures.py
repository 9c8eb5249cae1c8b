"""What the page draws, computed by the engine: the output over a grid of the square, each hidden neuron's own
picture, and the weights.

Arrays travel to the page as base64 text of their little-endian bytes: float32 where the page shows numbers
(the output, which an exported model must reproduce exactly, and the weights), uint8 where it only shows
colours (the neurons' pictures, whose colour scale ends at -1 and 1 as TensorFlow Playground's does).
"""

import base64

import numpy as np

from numnet.preprocessing import plane_features

from .data import DOMAIN

#: Cells per side of the output's picture and of each neuron's picture.
OUTPUT_GRID = 50
NEURON_GRID = 20
#: The neurons' colour scale: values are clipped to [-1, 1] and stored as 0..255.
COLOUR_LEVELS = 255


def grid_points(size):
    """The centres of a size x size grid over the square, row by row from the top (y = +6) down.

    Returns
    -------
    numpy.ndarray of float32, shape (size * size, 2)
        Row r, column c is point ``r * size + c``: x = -6 + (c + ½)·12/size, y = 6 - (r + ½)·12/size.
    """
    centres = -DOMAIN + (np.arange(size) + 0.5) * (2 * DOMAIN / size)  # (size,), float64
    x, y = np.meshgrid(centres, centres[::-1])
    return np.column_stack([x.ravel(), y.ravel()]).astype(np.float32)


def encode(array):
    """base64 text of a float32 or uint8 array's little-endian bytes, in C order."""
    little_endian = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))
    return base64.b64encode(little_endian.tobytes()).decode("ascii")


def output_picture(network, features):
    """The network's outputs over the OUTPUT_GRID grid, shape (OUTPUT_GRID², n_outputs), float32."""
    return network.forward(plane_features(grid_points(OUTPUT_GRID), features))


def neuron_pictures(network, features):
    """Each hidden layer's neurons over the NEURON_GRID grid, as colour levels.

    A hidden layer's neurons are what the next layer with weights receives: the values after the
    activation (and batch normalisation; dropout is off at inference).

    Returns
    -------
    list of numpy.ndarray of uint8, one per hidden layer, shape (n_neurons, NEURON_GRID²)
    """
    a = plane_features(grid_points(NEURON_GRID), features)
    pictures = []
    for index, layer in enumerate(network.layers):
        if index and layer.penalized_parameters():
            levels = np.rint((np.clip(a, -1.0, 1.0) + 1.0) * (COLOUR_LEVELS / 2))  # (NEURON_GRID², n_neurons)
            pictures.append(np.ascontiguousarray(levels.T).astype(np.uint8))
        if index < len(network.layers) - 1:
            a = layer.forward(a, training=False)
    return pictures


def weight_pictures(network):
    """Every weight matrix for the page's lines: its layer's name, shape (n_in, n_out) and values in base64."""
    parameters = network.parameters()
    return [{"name": name.rsplit(".", 1)[0], "shape": list(parameters[name].shape),
             "W": encode(np.asarray(parameters[name], dtype=np.float32))}
            for name in network.weight_names()]

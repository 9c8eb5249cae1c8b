"""numnet: neural networks from scratch on NumPy, readable and fast.

Quick start::

    import numnet as nn
    X, y = nn.datasets.make_spiral(seed=0)
    net = nn.Network([2, 50, 50, 3], activation="relu", output_activation="softmax", seed=0)
    history = net.fit(X, y, epochs=200, batch_size=32, optimizer="adam", learning_rate=1e-2, seed=0)
    print(net.accuracy(X, y))

``numnet.Activation`` is the activation *layer* (as in Keras); the activation functions' base class is
``numnet.activations.Activation``.
"""

__version__ = "0.2.0"

from .activations import ACTIVATIONS, get_activation, register_activation
from .attention import Attention
from .backend import get_backend
from .conv import Conv2D, Flatten, MaxPool2D
from .doctor import Finding, diagnose
from .embedding import Embedding, PositionEmbedding
from .errors import (
    ConvergenceWarning,
    CorruptFileError,
    DataFileError,
    DivergenceError,
    MissingDependencyError,
    NotFittedError,
    PrecisionWarning,
)
from .gradcheck import (
    DescentResult,
    gradient_check,
    gradient_descent,
    numerical_derivative,
    numerical_gradient,
    relative_error,
)
from .initializers import INITIALIZERS, get_initializer
from .layer_norm import LayerNorm
from .layers import LAYERS, Activation, BatchNorm, Dense, Dropout, Layer, register_layer
from .losses import LOSSES, Loss, get_loss
from .lr_finder import LearningRateFinderResult, find_learning_rate
from .multi_head_attention import MultiHeadAttention
from .network import Network
from .onnx_export import to_onnx
from .persistence import load_model, save_model
from .recurrent import GRU, LSTM, RNN
from .composite import CompositeLayer, Residual, Sequential
from .optimizers import OPTIMIZERS, SGD, AdaGrad, Adam, AdamW, Momentum, Nesterov, Optimizer, RMSProp, get_optimizer
from .schedules import SCHEDULES, get_schedule
from .training import EpochReport, History, fit
from .models import Seq2Seq

__all__ = [
    "ACTIVATIONS", "get_activation", "register_activation", "get_backend", "LAYERS", "Layer", "Activation", "BatchNorm", "Dropout",
    "register_layer", "Conv2D", "MaxPool2D", "Flatten", "Embedding", "PositionEmbedding", "RNN", "LSTM", "GRU",
    "LayerNorm", "MultiHeadAttention",
    "CompositeLayer", "Residual", "Sequential", "Attention", "Seq2Seq",
    "ConvergenceWarning", "CorruptFileError", "DataFileError", "DivergenceError", "MissingDependencyError",
    "NotFittedError", "PrecisionWarning",
    "DescentResult", "gradient_check", "gradient_descent", "numerical_derivative", "numerical_gradient",
    "relative_error", "INITIALIZERS", "get_initializer", "Dense", "LOSSES", "Loss", "get_loss", "Network",
    "OPTIMIZERS", "SGD", "AdaGrad", "Adam", "AdamW", "Momentum", "Nesterov", "Optimizer", "RMSProp", "get_optimizer",
    "SCHEDULES", "get_schedule", "EpochReport", "History", "fit", "load_model", "save_model",
    "Finding", "diagnose", "LearningRateFinderResult", "find_learning_rate", "to_onnx",
]

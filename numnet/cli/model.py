"""The network a command trains: what the options ask for (a NetworkSpec), the Network built from it for
the data, its inputs and targets, and the BLAS threads it runs on."""

import contextlib
import dataclasses

from numnet import backend, preprocessing
from numnet.embedding import Embedding
from numnet.layers import Dense, Dropout
from numnet.losses import get_loss
from numnet.model_spec import layers_from_string
from numnet.network import Network
from numnet.recurrent import GRU, LSTM, RNN

from .data import TEXT_DATA

#: Below this many parameters, training runs on one BLAS thread (see blas_threads_for).
SMALL_NETWORK_PARAMETERS = 100_000
BINARY_CROSS_ENTROPY_NAMES = ("binary_cross_entropy", "bce", "log_loss")
#: The --model names of a language model (text only), by the recurrent layer each builds.
RECURRENT_MODELS = {"lstm": LSTM, "gru": GRU, "rnn": RNN}


@dataclasses.dataclass(frozen=True)
class NetworkSpec:
    """The network ``numnet train`` or ``numnet lr-find`` is asked for, read from the options once.

    Attributes
    ----------
    model : str
        "mlp", "cnn" (the data's recipe) or a layer string such as "conv16x3,pool2,dense64"; for text, a
        language model: "lstm", "gru" or "rnn" (:data:`RECURRENT_MODELS`).
    layers : list of int or None
        Every layer size of an MLP, input and output included; None: the data's recipe.
    activation, output_activation, loss : str or None
        Names from ACTIVATIONS and LOSSES; None output activation and loss: what the data implies.
    l2 : float
    dropout : float
        A Dropout layer of this rate after every hidden layer of an MLP (0: none).
    batch_norm : bool
        Dense -> BatchNorm -> activation in every hidden layer of an MLP.
    dtype : str
    seed : int
    backend : str or None
        The array library that trains the network; None: numnet's default.
    embedding, hidden : int or None
        A language model's embedding size and recurrent layer size; None: the text recipe's.
    stateful : bool
        A language model whose recurrent layer carries its state from batch to batch (truncated
        backpropagation through time).
    """

    model: str = "mlp"
    layers: list = None
    activation: str = "relu"
    output_activation: str = None
    loss: str = None
    l2: float = 0.0
    dropout: float = 0.0
    batch_norm: bool = False
    dtype: str = "float32"
    seed: int = 0
    backend: str = None
    embedding: int = None
    hidden: int = None
    stateful: bool = False


def layer_sizes_for(spec, data):
    """The layer sizes of ``spec.layers`` (checked against the data) or of the data's recipe.

    Parameters
    ----------
    spec : NetworkSpec
    data : LoadedData

    Raises
    ------
    ValueError
        When --layers does not start with the data's feature count or end with its output count.
    """
    n_outputs = data.n_outputs
    if spec.layers is None:
        return [data.n_features, *data.recipe.hidden, n_outputs]
    sizes = list(spec.layers)
    shown = ",".join(map(str, sizes))
    if sizes[0] != data.n_features:
        raise ValueError(
            f"--layers {shown} starts with {sizes[0]} inputs, but the {data.kind} data has {data.n_features} "
            f"features; start the list with {data.n_features} (e.g. --layers {data.n_features},"
            f"{','.join(map(str, sizes[1:]))})"
        )
    if sizes[-1] not in _allowed_output_counts(spec, data):
        what = f"{len(data.class_names)} classes" if data.is_classification else f"{n_outputs} target column(s)"
        raise ValueError(
            f"--layers {shown} ends with {sizes[-1]} outputs, but the {data.kind} data has {what}; end the list "
            f"with {n_outputs} (e.g. --layers {','.join(map(str, sizes[:-1]))},{n_outputs})"
        )
    return sizes


def _allowed_output_counts(spec, data):
    """Two classes may also use a single sigmoid output (binary cross-entropy)."""
    single_sigmoid = ((spec.output_activation or "").lower() == "sigmoid"
                      or (spec.loss or "").lower() in BINARY_CROSS_ENTROPY_NAMES)
    if data.is_classification and len(data.class_names) == 2 and single_sigmoid:
        return (data.n_outputs, 1)
    return (data.n_outputs,)


def build_network(spec, data):
    """The Network ``spec`` describes for ``data``: an MLP, for a model other than "mlp" a convolutional
    network, or for text a language model.

    Parameters
    ----------
    spec : NetworkSpec
    data : LoadedData or TextData

    Returns
    -------
    Network

    Raises
    ------
    ValueError
        For a model the data cannot train (a recurrent model on rows or images, any other on text).
    """
    if data.kind == TEXT_DATA or spec.model in RECURRENT_MODELS:
        return _language_model(spec, data)
    loss = spec.loss
    if loss is None and spec.output_activation is None:
        loss = "softmax_cross_entropy" if data.is_classification else "mse"
    if spec.model != "mlp":
        return _convolutional_network(spec, data, loss)
    return Network(layer_sizes_for(spec, data), activation=spec.activation,
                   output_activation=spec.output_activation, loss=loss, l2=spec.l2, dropout=spec.dropout,
                   batch_norm=spec.batch_norm, dtype=spec.dtype, seed=spec.seed, backend=spec.backend)


def _convolutional_network(spec, data, loss):
    """The network of --model cnn (the data's recipe) or --model LAYERS, on images (1, height, width).

    Raises
    ------
    ValueError
        For data that are not images, --layers given as well, or a layer string that does not fit.
    """
    if data.image_shape is None:
        raise ValueError(f"--model {spec.model} builds a convolutional network, which needs images; the "
                         f"{data.kind} data are not images: use --data digits or --data mnist, or leave --model out")
    if spec.layers is not None:
        raise ValueError("--layers sets the sizes of an MLP; with --model, the layer string gives the layers "
                         "(e.g. --model conv16x3,pool2,dense64): leave --layers out")
    if spec.dropout or spec.batch_norm:
        raise ValueError("--dropout and --batch-norm shape an MLP's hidden layers; with --model, write dropout "
                         "in the layer string (e.g. --model conv16x3,pool2,dropout0.25,dense64)")
    layer_string = data.recipe.cnn if spec.model == "cnn" else spec.model
    output_activation = spec.output_activation or get_loss(loss).fused_activation or "linear"
    input_shape = (1, *data.image_shape)
    layers = layers_from_string(layer_string, input_shape, data.n_outputs, activation=spec.activation,
                                output_activation=output_activation)
    return Network(layers=layers, loss=loss, l2=spec.l2, input_shape=input_shape, dtype=spec.dtype,
                   seed=spec.seed, backend=spec.backend)


def _language_model(spec, data):
    """Embedding -> LSTM, GRU or RNN -> (Dropout) -> Dense softmax over the vocabulary at every step.

    Raises
    ------
    ValueError
        When the data are not text, the model not recurrent, or an option shapes another kind of network.
    """
    if data.kind != TEXT_DATA:
        raise ValueError(f"--model {spec.model} builds a language model, which trains on text: use --data "
                         f"{TEXT_DATA} (the census names) or --data {TEXT_DATA}:PATH, or leave --model out for "
                         f"the {data.kind} data")
    if spec.model not in RECURRENT_MODELS:
        raise ValueError(f"--model {spec.model} is not a language model; text trains one of "
                         f"{', '.join(RECURRENT_MODELS)} (e.g. --model lstm, the default for text)")
    if spec.layers is not None or spec.batch_norm:
        raise ValueError("--layers and --batch-norm shape an MLP; a language model's sizes are --embedding and "
                         "--hidden")
    if spec.loss not in (None, "softmax_cross_entropy") or spec.output_activation not in (None, "softmax"):
        raise ValueError("a language model predicts the next token with a softmax trained by softmax "
                         "cross-entropy: leave --loss and --output-activation out")
    recipe = data.recipe
    vocabulary_size = len(data.vocabulary)
    embedding = spec.embedding or recipe.embedding
    hidden = spec.hidden or recipe.hidden[0]
    layers = [Embedding(vocabulary_size, embedding),
              RECURRENT_MODELS[spec.model](embedding, hidden, stateful=spec.stateful)]
    if spec.dropout:
        layers.append(Dropout(spec.dropout))
    layers.append(Dense(hidden, vocabulary_size, "softmax"))
    return Network(layers=layers, loss="softmax_cross_entropy", l2=spec.l2, dtype=spec.dtype, seed=spec.seed,
                   backend=spec.backend)


def takes_images(network):
    """Whether ``network`` takes images (n, channels, height, width) rather than rows of features."""
    return network.input_shape is not None and len(network.input_shape) > 1


def as_images(network, X, source):
    """Rows of pixels X (n, C·H·W) as the images (n, C, H, W) the network takes; ``source`` names X in the
    error."""
    if X.shape[1] != network.n_inputs:
        raise ValueError(f"{source} has {X.shape[1]} values per sample, but the model takes images of shape "
                         f"{network.input_shape} ({network.n_inputs} pixels); use data of that size")
    return X.reshape(-1, *network.input_shape)


def training_inputs(network, data):
    """(scaler, X_train, X_test) for ``network``: rows standardised with the training rows' statistics for an
    MLP; for a convolutional network the pixels as loaded (already in [0, 1]: a scaler would blur what a
    pixel means to a filter) shaped as images, and no scaler."""
    if not takes_images(network):
        scaler = preprocessing.StandardScaler().fit(data.X_train)
        return scaler, scaler.transform(data.X_train), scaler.transform(data.X_test)
    return None, *(as_images(network, X, f"the {data.kind} data") for X in (data.X_train, data.X_test))


def network_targets(network, y, n_classes):
    """Class indices (n,) in the form the network's loss expects.

    Softmax cross-entropy takes the indices; a single sigmoid (or linear) output takes a 0/1 column; several
    sigmoid or linear outputs take one-hot rows. Regression targets (``n_classes`` None) pass through
    unchanged.
    """
    if n_classes is None or network.loss.fused_activation == "softmax":
        return y
    if network.n_outputs == 1:
        return y.reshape(-1, 1).astype(network.dtype)
    return preprocessing.one_hot(y, network.n_outputs, dtype=network.dtype)


def blas_threads_for(network):
    """One BLAS thread for small networks, where threads only add synchronisation; all of them otherwise.

    The digits network's products (32 x 64 x 128) run faster on one thread; the mnist-sized ones gain
    from two (benchmarks/README.md, the 1- and 2-thread tables).
    """
    if network.n_parameters < SMALL_NETWORK_PARAMETERS:
        return backend.one_blas_thread()
    return contextlib.nullcontext()

"""A saved model on new data, as ``evaluate``, ``predict`` and ``doctor`` use it: its class names, the rows
it is evaluated on, and those rows scaled (or shaped as images) the way it was trained; for a language
model, the held-out windows of a text."""

import numpy as np

from numnet import datasets
from numnet.experiments.encoder_decoder import load_seq2seq_data
from numnet.preprocessing import scaler_from_metadata

from .corpus import VALIDATION_FRACTION, load_corpus, validation_sequences
from .data import DATA_NAMES, RECIPES, SEQ2SEQ_DATA, TEXT_DATA, csv_target, is_text_source, load_data
from .model import as_images, takes_images


def model_class_names(network):
    """The class names saved with the model, "0", "1", ... for a classifier saved without them, or None for
    a regression model."""
    names = (network.metadata or {}).get("class_names")
    if names:
        return [str(name) for name in names]
    if not network.is_classifier:
        return None
    return [str(index) for index in range(max(network.n_outputs, 2))]


def model_inputs(network, X, source):
    """X checked against the model's input size and scaled with the model's saved scaler (an MLP), or shaped
    as the images a convolutional model takes; ``source`` names X in the error.

    Raises
    ------
    ValueError
        When X has another number of columns than the model takes.
    """
    if takes_images(network):
        return as_images(network, np.asarray(X, dtype=network.dtype), source)
    if X.shape[1] != network.n_inputs:
        raise ValueError(
            f"{source} has {X.shape[1]} feature columns but the model expects {network.n_inputs}; "
            "use data with the same columns as the training data"
        )
    scaler = scaler_from_metadata((network.metadata or {}).get("scaler"))
    X = np.asarray(X, dtype=network.dtype)
    return X if scaler is None else scaler.transform(X)


def evaluation_data(source, network, target=None):
    """(X, y, description) to evaluate ``network`` on: a data set's held-out test rows, or a whole CSV file.

    ``y`` holds class indices in the model's class order, or real values (n, 1) for a regression model.
    """
    metadata = network.metadata or {}
    if source.strip().lower() in DATA_NAMES:
        data = load_data(source, dtype=network.dtype.name)
        return data.X_test, data.y_test, f"{data.description}, held-out test rows"
    if target is None:
        target = metadata.get("data", {}).get("target", -1)
    table = datasets.load_csv(source, target=csv_target(target), dtype=network.dtype.name)
    description = f"{source}: {table.X.shape[0]} rows, target {table.target_name!r}"
    class_names = model_class_names(network)
    if class_names is None:
        values = table.y if table.classes is None else table.classes[table.y].astype(np.float64)
        return table.X, np.asarray(values, dtype=np.float64).reshape(-1, 1), description
    if table.classes is None:
        raise ValueError(f"the target column {table.target_name!r} of {source} holds real numbers, but the "
                         "model is a classifier; choose the label column with --target")
    return table.X, _model_class_indices(table, class_names, source), description


def _model_class_indices(table, class_names, source):
    """The file's labels as indices into the model's class names."""
    position = {name: index for index, name in enumerate(class_names)}
    unknown = [str(label) for label in table.classes if str(label) not in position]
    if unknown:
        raise ValueError(
            f"{source} has labels the model was not trained on: {', '.join(unknown[:5])}; the model knows: "
            f"{', '.join(class_names)}"
        )
    mapping = np.array([position[str(label)] for label in table.classes], dtype=np.int64)
    return mapping[table.y]


def check_label_range(y, class_names):
    """Raise ValueError when a class index in ``y`` does not fit the model's classes."""
    if y.size and int(y.max()) >= len(class_names):
        raise ValueError(f"the data has class {int(y.max())} but the model knows only {len(class_names)} classes")


def is_language_model(network, source):
    """Whether ``network`` is a language model to evaluate on the text ``source``; ValueError when the model
    and the data do not go together (a language model on rows, or text for another model)."""
    if network.vocabulary is None:
        if is_text_source(source):
            raise ValueError(f"this model was not trained on text: it has no vocabulary, so it cannot read "
                             f"--data {source.strip()}; give it the data it was trained on")
        return False
    if not is_text_source(source):
        raise ValueError(f"this model is a language model (it holds a vocabulary of {len(network.vocabulary)} "
                         f"ids), which reads text: give {TEXT_DATA} (the census names) or {TEXT_DATA}:PATH as the "
                         f"data, not {source!r}")
    return True


def seq2seq_evaluation_data(source, network):
    """((X_test, Y_test), description) of the book's set ``source`` a saved :class:`numnet.Seq2Seq` was trained
    on: its held-out test questions and answers.

    Raises
    ------
    ValueError
        For data other than the book's sets, or a set whose vocabulary is not the model's.
    """
    name = source.strip().lower()
    if name not in SEQ2SEQ_DATA:
        raise ValueError(f"this model is a seq2seq model, which reads the sequel book's sets: give "
                         f"{' or '.join(SEQ2SEQ_DATA)} as the data, not {source!r}")
    _, test, vocabulary = load_seq2seq_data(name)
    if network.vocabulary is not None and network.vocabulary.symbols != vocabulary.symbols:
        raise ValueError(f"this model was trained on another vocabulary than the {name} set's; give the data it "
                         f"was trained on ({(network.metadata or {}).get('data', {}).get('source', 'unknown')})")
    return test, f"the book's {name} set, its {len(test[0]):,} held-out test questions"


def language_model_description(network):
    """A language model in a few words: its level, its layers and its vocabulary's size."""
    layers = " -> ".join(type(layer).__name__ for layer in network.layers)
    return f"a {network.vocabulary.level}-level language model, {layers}, {len(network.vocabulary)} ids"


def text_evaluation_data(source, network):
    """(X, y, description): the held-out last tenth of the text ``source``, encoded with the model's
    vocabulary and cut into windows of the time steps it was trained with.

    Returns
    -------
    X, y : numpy.ndarray of int64, shape (n_windows, time_steps)
    description : str
    """
    data = load_corpus(source, vocabulary=network.vocabulary)
    saved = (network.metadata or {}).get("data", {})
    X, y = validation_sequences(data, saved.get("time_steps") or RECIPES[TEXT_DATA].time_steps)
    description = (f"{data.description}; the held-out last {VALIDATION_FRACTION:.0%}: {y.size:,} tokens in "
                   f"{X.shape[0]:,} windows of {X.shape[1]}")
    return X, y, description

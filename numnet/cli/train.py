"""``numnet train``: train a network, print its test results, save the model and its plots."""

import dataclasses
import math
import pathlib
import sys
import time

import numpy as np

from numnet import plots
from numnet.backend import to_numpy
from numnet.conv import Conv2D
from numnet.distributed import get_communicator, stop_all_ranks_on_failure
from numnet.doctor import diagnose
from numnet.errors import DivergenceError, MissingDependencyError
from numnet.experiments.encoder_decoder import RECIPES as SEQ2SEQ_RECIPES
from numnet.experiments.transformer import NANOGPT_CPU, gpt_windows
from numnet.experiments.encoder_decoder import (Seq2SeqRun, attention_maps, load_seq2seq_data,
                                                write_examples_page)
from numnet.metrics import classification_report, predicted_classes
from numnet.models import Seq2Seq
from numnet.model_spec import EXAMPLES as LAYER_STRING_EXAMPLES
from numnet.optimizers import OPTIMIZERS
from numnet.persistence import load_model, save_model

from numnet.text import LEVELS

from .corpus import VALIDATION_FRACTION, load_corpus, training_sequences, validation_sequences
from .data import RECIPES, SEQ2SEQ_DATA, SPLIT_SEED, TEST_SIZE, is_text_source, load_data
from .model import RECURRENT_MODELS, NetworkSpec, blas_threads_for, build_network, network_targets, training_inputs
from .options import (DEFAULT_OUTPUT, add_data_options, add_network_options, batch_size_option, dropout_rate,
                      integer_option, model_option, name_in, network_options, non_negative_float, positive_float)
from .reporting import (ProgressReporter, epoch_sample, print_findings, print_language_model_results, printer,
                        write_plot)

MODEL_FILE_NAME = "model.npz"
CHECKPOINT_FILE_NAME = "checkpoint.npz"
DIAGNOSIS_FILE_NAME = "diagnosis.png"
# Gradient curves are smoothed over this many iterations (at most) in the plot `train` writes.
GRADIENT_SMOOTHING = 25
# Pixels per side below which a square input is not shown as an image of weights (a 1x1 "image" says
# nothing).
SMALLEST_WEIGHT_IMAGE = 4


def command_train(args):
    """Train a network, print its test results, and save the model and plots in the output folder.

    With --distributed (under ``mpiexec -n N``) every rank trains on its shard of each batch; only rank 0
    prints and writes files, and a failure on any rank stops them all with a message naming that rank.
    """
    communicator = get_communicator(args.distributed)
    with stop_all_ranks_on_failure(communicator):
        return _train(args, communicator)


def _network_spec(args, default_model):
    """The network the options ask for; ``default_model`` when --model is left out."""
    return NetworkSpec(**network_options(args), model=args.model or default_model, dropout=args.dropout,
                       batch_norm=args.batch_norm, dtype=args.dtype, backend=args.backend,
                       embedding=args.embedding, hidden=args.hidden, stateful=args.stateful)


def _train(args, communicator):
    if is_text_source(args.data):
        return _train_language_model(args, communicator)
    if args.data in SEQ2SEQ_DATA or args.model == "seq2seq":
        return _train_seq2seq(args, communicator)
    say = printer(args.quiet or not communicator.is_root)
    data = load_data(args.data, target=args.target, dtype=args.dtype)
    network = load_model(args.resume) if args.resume else build_network(_network_spec(args, "mlp"), data)
    scaler, X_train, X_test = training_inputs(network, data)
    epochs = _remaining_epochs(args.epochs or data.recipe.epochs, network, args.resume)
    say(f"data: {data.description}; {X_train.shape[0]} training and {X_test.shape[0]} test rows")
    say(network.summary())
    say("(val_loss and val_accuracy below are measured on the held-out test rows)")
    n_classes = len(data.class_names) if data.is_classification else None
    metadata = _metadata(data, scaler)
    y_train = network_targets(network, data.y_train, n_classes)
    seconds = _fit(args, communicator, network, X_train, y_train, epochs=epochs, metadata=metadata,
                   learning_rate=data.recipe.learning_rate_for(args.optimizer),
                   batch_size=data.recipe.batch_size_for(args.batch_size),
                   validation_data=(X_test, network_targets(network, data.y_test, n_classes)))
    if not communicator.is_root:
        return 0
    return _finish(args, network, X_train, y_train, metadata=metadata, epochs=epochs, seconds=seconds,
                   results=lambda: _print_test_results(network, data, X_test, quiet=args.quiet),
                   draw_plots=lambda output: _training_plots(network, network.history, data, scaler, X_test, output))


def _train_language_model(args, communicator):
    """Train a language model on --data text[:PATH]: windows (or streams) of the first 90% of the tokens,
    the validation perplexity on the last 10%, a sample after every epoch."""
    if args.model == "gpt":
        return _train_gpt(args, communicator)
    say = printer(args.quiet or not communicator.is_root)
    resumed = _resumed_language_model(args.resume)
    data = load_corpus(args.data, level=args.level, vocabulary=resumed.vocabulary if resumed else None)
    network = resumed or build_network(_network_spec(args, "lstm"), data)
    network.vocabulary = data.vocabulary
    saved = _saved_layout(resumed)
    time_steps = args.time_steps or saved.get("time_steps") or data.recipe.time_steps
    batch_size = data.recipe.batch_size_for(args.batch_size if args.batch_size is not None
                                            else saved.get("batch_size"))
    if batch_size is None and network.is_stateful:
        raise ValueError("--stateful carries each row's state into the same row of the next batch, so it needs "
                         "batches of a fixed number of streams: give --batch-size a number, not 'full'")
    X_train, y_train = training_sequences(data, time_steps=time_steps, batch_size=batch_size,
                                          stateful=network.is_stateful)
    validation_data = validation_sequences(data, time_steps)
    epochs = _remaining_epochs(args.epochs or data.recipe.epochs, network, args.resume)
    layout = "rows of parallel streams, in order" if network.is_stateful else "windows, shuffled"
    say(f"data: {data.description}")
    say(f"{X_train.shape[0]:,} training {layout}, of {time_steps} tokens; {validation_data[0].shape[0]:,} "
        f"held-out windows (the last {VALIDATION_FRACTION:.0%} of the tokens)")
    say(network.summary())
    metadata = _text_metadata(data, time_steps, batch_size)
    seconds = _fit(args, communicator, network, X_train, y_train, epochs=epochs, metadata=metadata,
                   learning_rate=data.recipe.learning_rate_for(args.optimizer), batch_size=batch_size,
                   validation_data=validation_data, shuffle=not network.is_stateful,
                   clip_norm=_clip_norm(args.clip_norm, data.recipe),
                   notes=lambda report: epoch_sample(network, temperature=args.temperature))
    if not communicator.is_root:
        return 0
    return _finish(args, network, X_train, y_train, metadata=metadata, epochs=epochs, seconds=seconds,
                   results=lambda: print_language_model_results(network, temperature=args.temperature),
                   draw_plots=lambda output: _training_plots(network, network.history, None, None, None, output))


def _train_seq2seq(args, communicator):
    """Train a seq2seq model on --data addition or dates with the book's recipe (numnet.experiments E14,
    E15): the exact-match accuracy on the test set after every epoch, test examples and attention maps on an
    HTML page."""
    if args.data not in SEQ2SEQ_DATA:
        raise ValueError(f"--model seq2seq trains on the book's toy sets: give --data {' or --data '.join(SEQ2SEQ_DATA)} "
                         f"(got --data {args.data})")
    say = printer(args.quiet or not communicator.is_root)
    recipe = SEQ2SEQ_RECIPES[args.data]
    (X_train, Y_train), (X_test, Y_test), vocabulary = load_seq2seq_data(args.data)
    network = load_model(args.resume) if args.resume else Seq2Seq(
        len(vocabulary), args.embedding or recipe.embedding_dim, args.hidden or recipe.hidden_size,
        peeky=args.peeky, attention=args.attention, reverse_input=args.reverse, dtype=args.dtype,
        backend=args.backend, seed=args.seed)
    if not isinstance(network, Seq2Seq):
        raise ValueError(f"the checkpoint {args.resume} is not a seq2seq model; resume it with the data it was "
                         "trained on")
    network.vocabulary = vocabulary
    epochs = _remaining_epochs(args.epochs or recipe.epochs, network, args.resume)
    say(f"data: the book's {args.data} set, {X_train.shape[0]:,} training and {X_test.shape[0]:,} test questions "
        f"({vocabulary.decode(X_test[0]).strip()!r} -> {vocabulary.decode(Y_test[0, 1:]).strip()!r})")
    say(network.summary())
    accuracy = []

    def exact_match(report):
        accuracy.append(network.exact_match(X_test, Y_test))
        return f"test exact match {accuracy[-1]:.1%}"

    metadata = {"task": "seq2seq", "data": {"source": args.data, "description": f"the book's {args.data} set"}}
    seconds = _fit(args, communicator, network, X_train, Y_train, epochs=epochs, metadata=metadata,
                   learning_rate=recipe.learning_rate if args.optimizer == "adam" else None,
                   batch_size=args.batch_size or recipe.batch_size, validation_data=(X_test, Y_test),
                   clip_norm=_clip_norm(args.clip_norm, recipe),
                   notes=exact_match)
    if not communicator.is_root:
        return 0
    run = Seq2SeqRun(network, (X_train, Y_train), (X_test, Y_test), vocabulary, accuracy)
    inputs, targets = network.teacher_forced(X_train, Y_train)
    return _finish(args, network, inputs, targets, metadata=metadata, epochs=epochs, seconds=seconds,
                   results=lambda: print(f"test exact match: {network.exact_match(X_test, Y_test):.4f}"),
                   draw_plots=lambda output: _seq2seq_plots(run, output))


def _seq2seq_plots(run, output):
    """The training curves, the exact match per epoch, attention maps (with attention) and examples.html."""
    written = _training_plots(run.model, run.model.history, None, None, None, output)
    if run.accuracy:
        plots.plot_comparison_curves({"test": run.accuracy}, path=output / "exact_match.png", xlabel="epoch",
                                     ylabel="exact-match accuracy", title="Exact-match accuracy per epoch")
        written.append("exact_match.png")
    maps = attention_maps(run, output) if run.model.encoder_decoder.attention else []
    written += [path.name for path in maps]
    write_examples_page(run, output / "examples.html", "numnet seq2seq: test examples", maps)
    return written + ["examples.html"]


def _train_gpt(args, communicator):
    """Train nanoGPT's character model at its CPU settings (numnet.experiments.transformer.NANOGPT_CPU, each
    overridable by an option) on --data text[:PATH]: random windows, the validation loss every
    eval_interval steps, a sample each time."""
    say = printer(args.quiet or not communicator.is_root)
    resumed = _resumed_language_model(args.resume)
    data = load_corpus(args.data, level=args.level, vocabulary=resumed.vocabulary if resumed else None)
    recipe = _gpt_recipe(args, resumed)
    network = resumed or recipe.model(len(data.vocabulary), seed=args.seed, dtype=args.dtype)
    network.vocabulary = data.vocabulary
    training, validation = gpt_windows(data.train_ids, data.validation_ids, recipe.block_size)
    iterations = recipe.max_iters - network.iterations_trained
    if iterations < 1:
        raise ValueError(f"the checkpoint {args.resume} has already trained {network.iterations_trained} steps; ask "
                         f"for more with --iterations (now {recipe.max_iters})")
    say(f"data: {data.description}")
    say(f"{recipe.max_iters:,} steps of {recipe.batch_size} random windows of {recipe.block_size} tokens; the "
        f"validation loss every {recipe.eval_interval} steps on the last {VALIDATION_FRACTION:.0%} of the tokens")
    say(network.summary())
    metadata = _text_metadata(data, recipe.block_size, recipe.batch_size)
    metadata["gpt"] = dataclasses.asdict(recipe)
    seconds = _fit(args, communicator, network, *training, epochs=math.ceil(iterations / recipe.eval_interval),
                   metadata=metadata, learning_rate=None, optimizer=None if resumed else recipe.optimizer(),
                   batch_size=recipe.batch_size, iterations=iterations, sampling="replacement",
                   steps_per_epoch=recipe.eval_interval, validation_data=validation,
                   clip_norm=_clip_norm(args.clip_norm, recipe),
                   notes=lambda report: epoch_sample(network, temperature=args.temperature))
    if not communicator.is_root:
        return 0
    return _finish(args, network, *training, metadata=metadata, epochs=recipe.max_iters, seconds=seconds,
                   results=lambda: print_language_model_results(network, temperature=args.temperature),
                   draw_plots=lambda output: _gpt_plots(network, data, output))


def _gpt_recipe(args, resumed):
    """NANOGPT_CPU, with what the options (or a resumed run's saved recipe) change."""
    saved = ((resumed.metadata or {}).get("gpt") if resumed is not None else None) or {}
    recipe = dataclasses.replace(NANOGPT_CPU, **saved)
    changes = {"block_size": args.time_steps, "batch_size": args.batch_size or None, "n_embd": args.hidden,
               "n_layer": args.blocks, "n_head": args.heads, "max_iters": args.iterations,
               "learning_rate": args.learning_rate, "dropout": args.dropout or None}
    return dataclasses.replace(recipe, **{key: value for key, value in changes.items() if value is not None})


def _gpt_plots(network, data, output):
    """The training curves and each head's attention in the last block, reading a line of the text."""
    written = _training_plots(network, network.history, None, None, None, output)
    prompt = data.validation_ids[:min(24, network.layers[0].block_size)]
    plots.plot_attention(network, prompt, path=output / "attention.png", title="The last block's heads")
    return written + ["attention.png"]


def _resumed_language_model(path):
    """The checkpoint at ``path`` (None: no --resume), which must hold a language model."""
    if path is None:
        return None
    network = load_model(path)
    if network.vocabulary is None:
        raise ValueError(f"the checkpoint {path} was not trained on text (it has no vocabulary); resume it "
                         "with the data it was trained on")
    return network


def _saved_layout(network):
    """{"time_steps", "batch_size"} a resumed language model was trained with (--batch-size 'full' saved as
    0); {} for none."""
    if network is None:
        return {}
    return (network.metadata or {}).get("data", {})


def _clip_norm(option, recipe):
    """The gradient norm clipping caps: the option's (0: none) or the recipe's."""
    if option is None:
        return recipe.clip_norm
    return option or None


def _fit(args, communicator, network, X_train, y_train, *, epochs, metadata, learning_rate, notes=None,
         optimizer=None, **fit_options):
    """Train ``network`` with the options' optimiser (or ``optimizer``), seed, checkpoints and progress
    display; returns the seconds it took. ``epochs``: the epochs to show (fit's, unless ``fit_options`` hold
    ``iterations``); ``fit_options``: batch_size, validation_data and what else the data asks of fit."""
    quiet = args.quiet or not communicator.is_root
    output = pathlib.Path(args.output)
    started = time.perf_counter()
    # A run that blows up overflows on its way to NaN; the divergence guard reports that as one clear
    # error, so NumPy's overflow warnings would only repeat it as noise.
    with (ProgressReporter(quiet, epochs, notes=notes) as progress, np.errstate(over="ignore", invalid="ignore"),
          blas_threads_for(network)):
        after_epoch = _checkpointing(progress, network, output, metadata,
                                     enabled=args.checkpoint and communicator.is_root)
        try:
            network.fit(X_train, y_train, epochs=None if "iterations" in fit_options else epochs,
                        **_optimizer_options(optimizer or args.optimizer, args.learning_rate or learning_rate,
                                             resume=args.resume),
                        seed=None if args.resume else args.seed, progress=after_epoch, distributed=communicator,
                        diagnose=args.diagnose, **fit_options)
        except DivergenceError:
            if args.diagnose and communicator.is_root:  # the findings explain the failure the error reports
                print_findings(diagnose(network, X_train, y_train, history=network.history))
            raise
    return time.perf_counter() - started


def _finish(args, network, X_train, y_train, *, metadata, epochs, seconds, results, draw_plots):
    """Save the model, print the ``results()`` and (with --diagnose) the doctor's findings, write the
    ``draw_plots(output)`` and say where everything went."""
    output = pathlib.Path(args.output)
    model_path = save_model(network, output / MODEL_FILE_NAME, metadata=metadata)
    print(f"trained {epochs} epochs in {seconds:.2f} s")
    results()
    figures = _written_plots(draw_plots, output)
    if args.diagnose:
        print_findings(diagnose(network, X_train, y_train, history=network.history))
        figures += write_plot(lambda: plots.plot_diagnosis(network, X_train, network.history,
                                                            path=output / DIAGNOSIS_FILE_NAME), DIAGNOSIS_FILE_NAME)
    print(f"model saved to {model_path}")
    if figures:
        print(f"plots saved to {output}: {', '.join(figures)}")
    return 0


def _remaining_epochs(total, network, resume):
    """Epochs still to train: all of them, or for --resume what the checkpoint has not trained yet."""
    if not resume:
        return total
    remaining = total - network.epochs_trained
    if remaining < 1:
        raise ValueError(f"the checkpoint {resume} has already trained {network.epochs_trained} epochs; "
                         f"ask for more with --epochs (now {total})")
    return remaining


def _optimizer_options(optimizer, learning_rate, *, resume):
    """A fresh optimiser from the options, or none for --resume (the checkpoint's, state and all, goes on)."""
    if resume:
        return {"optimizer": None}
    return {"optimizer": optimizer, "learning_rate": learning_rate}


def _checkpointing(progress, network, output, metadata, *, enabled):
    """The progress callback, extended to save a checkpoint after every epoch when ``enabled``."""
    if not enabled:
        return progress

    def after_epoch(report):
        save_model(network, output / CHECKPOINT_FILE_NAME, metadata=metadata)
        if progress is not None:
            progress(report)

    return after_epoch


def _metadata(data, scaler):
    """What `evaluate` and `predict` need to use the model on new data, as JSON-ready values."""
    return {
        "task": "classification" if data.is_classification else "regression",
        "class_names": data.class_names,
        "n_features": data.n_features,
        "feature_names": data.feature_names,
        "scaler": None if scaler is None else scaler.to_metadata(),
        "data": {"source": data.kind, "description": data.description, "target": data.target,
                 "test_size": TEST_SIZE, "split_seed": SPLIT_SEED},
    }


def _text_metadata(data, time_steps, batch_size):
    """What `evaluate`, `doctor` and a resumed run need to rebuild a language model's data, as JSON-ready
    values (the vocabulary itself is the network's, which save_model keeps; a full batch is saved as 0)."""
    return {
        "task": "language_model",
        "data": {"source": data.source, "description": data.description, "level": data.vocabulary.level,
                 "validation_fraction": VALIDATION_FRACTION, "time_steps": time_steps,
                 "batch_size": batch_size or 0},
    }


def _print_test_results(network, data, X_test, *, quiet):
    """Test loss and accuracy (classification) or error (regression), and the per-class report."""
    outputs = network.forward(X_test)
    if not data.is_classification:
        loss = network.loss_value(X_test, data.y_test)
        rmse = float(np.sqrt(np.mean((outputs - data.y_test) ** 2)))
        print(f"test loss: {loss:.4f}   test RMSE: {rmse:.4f}")
        return
    n_classes = len(data.class_names)
    loss = network.loss_value(X_test, network_targets(network, data.y_test, n_classes))
    predicted = predicted_classes(outputs)
    correct = int(np.sum(predicted == data.y_test))
    print(f"test loss: {loss:.4f}   test accuracy: {correct / data.y_test.size:.4f} "
          f"({correct} of {data.y_test.size})")
    if not quiet:
        print(classification_report(data.y_test, predicted, data.class_names))


def _written_plots(draw_plots, output):
    """The file names ``draw_plots(output)`` wrote (none when matplotlib is missing)."""
    try:
        return draw_plots(output)
    except MissingDependencyError as error:
        print(f"numnet: warning: no plots written: {error}", file=sys.stderr)
        return []


def _training_plots(network, history, data, scaler, X_test, output):
    """Loss/accuracy (and a language model's perplexity) curves, gradient magnitudes, and what suits the
    data (confusion matrix, weights, ...); ``data`` None: a language model, which has nothing more."""
    written = []

    def save(name, draw):
        draw(output / name)
        written.append(name)

    save("training.png", lambda path: plots.plot_training(history, path=path))
    smooth = max(1, min(GRADIENT_SMOOTHING, history.iterations // 10))
    save("gradients.png", lambda path: plots.plot_gradient_magnitudes(
        history, path=path, smooth=smooth, title=f"Mean |dC/dW| per iteration (average of {smooth})"))
    if data is None:
        return written

    def classes_of(points):
        return predicted_classes(network.forward(scaler.transform(points)))

    if data.is_classification:
        predicted = predicted_classes(network.forward(X_test))
        save("confusion_matrix.png", lambda path: plots.plot_confusion_matrix(
            data.y_test, predicted, class_names=data.class_names, path=path, title="Confusion matrix (test set)"))
        if data.n_features == 2:
            save("decision_regions.png", lambda path: plots.plot_decision_regions(
                classes_of, data.X_train, data.y_train, class_names=data.class_names, path=path,
                title="Decision regions (training data)"))
    elif data.n_features == 1:
        save("regression.png", lambda path: plots.plot_regression(
            data.X_train, data.y_train[:, 0], lambda points: network.forward(scaler.transform(points)),
            path=path))
    convolutions = [layer for layer in network.layers if isinstance(layer, Conv2D)]
    if convolutions:
        save("filters.png", lambda path: plots.plot_filters(
            to_numpy(convolutions[0].params["W"]), path=path, title=f"First-layer filters ({convolutions[0].name})"))
        save("feature_maps.png", lambda path: plots.plot_feature_maps(
            network, X_test[0], path=path, title="Feature maps of the first test image after each convolution"))
    elif data.image_shape is not None and min(data.image_shape) >= SMALLEST_WEIGHT_IMAGE:
        save("weights.png", lambda path: plots.plot_weights(
            network.parameters()["dense_0.W"], image_shape=data.image_shape, path=path, max_images=64))
    return written


def add_parser(commands):
    """Add ``numnet train`` and its options to the subparsers ``commands``."""
    text = RECIPES["text"]
    train = commands.add_parser(
        "train", help="train a network (default: the 8x8 digits classifier; --data text: a language model)",
        description="Train a network, print its test accuracy and per-class report, and write the model "
                    "(model.npz) and plots to the output folder. Without options: scikit-learn's 8x8 digits, "
                    "64-128-10 relu/softmax, Adam (lr 0.001), batches of 32, 30 epochs. Data is split 80/20 "
                    "(stratified for classes, seed 1) and standardised with the training rows' statistics "
                    "(an MLP's; a convolutional network, --model cnn, takes the pixels in [0, 1]). "
                    "With --data text (the census names, one per line) or --data text:PATH (a UTF-8 file), "
                    "train a language model of the characters (or words, --level word) instead: "
                    f"embedding {text.embedding}, LSTM {text.hidden[0]}, softmax over the vocabulary, Adam (lr "
                    f"{text.learning_rate:g}), {text.batch_size} windows of {text.time_steps} tokens per batch, "
                    f"gradient norm clipped at {text.clip_norm:g}, {text.epochs} epochs; the last "
                    f"{VALIDATION_FRACTION:.0%} of the text is held out for the validation perplexity, and a "
                    "sample is printed after every epoch. Sample from the model with `numnet generate`.")
    add_data_options(train, target_help="the label column of a CSV file: a name or an index "
                                        "(default: the last column)", text=True)
    train.add_argument("--model", type=model_option, metavar="MODEL",
                       help="mlp (default: Dense layers, sized by --layers), cnn (a convolutional network for "
                            "images: digits "
                            f"{RECIPES['digits'].cnn}, mnist {RECIPES['mnist'].cnn} (the book's SimpleConvNet)), or "
                            "a layer string of hidden layers, comma-separated: conv<filters>x<kernel> with "
                            "optional p<padding> and s<stride>, pool<size> with optional s<stride>, dense<units>, "
                            f"dropout<rate> (e.g. {LAYER_STRING_EXAMPLES}); the output layer is added. A "
                            "convolutional network takes the pixels as loaded, in [0, 1], without standardising. "
                            f"For text: {', '.join(RECURRENT_MODELS)} (default lstm), the recurrent layer of a "
                            "language model, or gpt (nanoGPT's character model at its CPU settings). For addition "
                            "and dates: seq2seq (the default there), an encoder LSTM "
                            "and a decoder LSTM (the sequel book's chapters 7 and 8; see --peeky, --attention, "
                            "--reverse)")
    add_network_options(train, training=True)
    train.add_argument("--dropout", type=dropout_rate, default=0.0, metavar="RATE",
                       help="add a Dropout layer of this rate after every hidden layer (inverted dropout, "
                            "training only; default 0: none)")
    train.add_argument("--batch-norm", action="store_true",
                       help="batch-normalise every hidden layer: Dense -> BatchNorm -> activation (the order "
                            "of the classic course)")
    train.add_argument("--optimizer", type=name_in(OPTIMIZERS, "optimizer"), default="adam",
                       help=f"{', '.join(sorted(OPTIMIZERS))} (default %(default)s)")
    train.add_argument("--learning-rate", type=positive_float, metavar="RATE",
                       help="step size (default: the recipe's for adam, else the optimiser's own)")
    train.add_argument("--epochs", type=integer_option(1), help="passes over the training data (default: the recipe's)")
    train.add_argument("--batch-size", type=batch_size_option, metavar="SIZE",
                       help="samples per step, or 'full' for the whole training set (default 32)")
    train.add_argument("--clip-norm", type=non_negative_float, metavar="NORM",
                       help="rescale every gradient whose global norm exceeds NORM to that norm; 0: never "
                            f"(default: {text.clip_norm:g} for text, never for the other data)")
    train.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                       help="floating-point precision (default %(default)s)")
    train.add_argument("--output", default=DEFAULT_OUTPUT, metavar="DIR",
                       help="folder for model.npz and the plots (default %(default)s)")
    train.add_argument("--quiet", action="store_true", help="print only the final summary")
    train.add_argument("--checkpoint", action="store_true",
                       help=f"save {CHECKPOINT_FILE_NAME} in the output folder after every epoch")
    train.add_argument("--resume", metavar="CHECKPOINT",
                       help="continue training a saved model (its optimiser, seed and epoch count) up to --epochs")
    train.add_argument("--backend", choices=("numpy", "cupy", "array_api_strict"),
                       help="array library that trains the network: numpy (default, or $NUMNET_BACKEND), "
                            "cupy (an NVIDIA GPU) or array_api_strict (the standard's reference)")
    train.add_argument("--distributed", action="store_true",
                       help="data-parallel training over MPI: run as `mpiexec -n N numnet train --distributed ...`")
    train.add_argument("--diagnose", action="store_true",
                       help=f"record the training doctor's evidence, print its findings after training and write "
                            f"{DIAGNOSIS_FILE_NAME}")
    _add_text_options(train.add_argument_group("language models (--data text or text:PATH)"), text)
    transformer = train.add_argument_group("GPT (--data text --model gpt: nanoGPT's CPU settings, "
                                           "--time-steps its block_size, --hidden its n_embd)")
    transformer.add_argument("--iterations", type=integer_option(1), metavar="STEPS",
                             help=f"optimiser steps (default {NANOGPT_CPU.max_iters}; the validation loss every "
                                  f"{NANOGPT_CPU.eval_interval})")
    transformer.add_argument("--blocks", type=integer_option(1), metavar="N",
                             help=f"transformer blocks (default {NANOGPT_CPU.n_layer})")
    transformer.add_argument("--heads", type=integer_option(1), metavar="N",
                             help=f"attention heads per block (default {NANOGPT_CPU.n_head})")
    seq2seq = train.add_argument_group("seq2seq models (--data addition or dates, --model seq2seq)")
    seq2seq.add_argument("--peeky", action="store_true",
                         help="feed the encoder's last state to every decoder step and to the output layer")
    seq2seq.add_argument("--attention", action="store_true",
                         help="let every decoder step look at every encoder state (dot-product attention)")
    seq2seq.add_argument("--reverse", action="store_true", help="read the source backwards")
    train.set_defaults(run=command_train)


def _add_text_options(group, recipe):
    """--level, --embedding, --hidden, --time-steps, --stateful and --temperature."""
    group.add_argument("--level", choices=LEVELS, default="char",
                       help="a token is a character, or a word or punctuation mark (default %(default)s)")
    group.add_argument("--embedding", type=integer_option(1), metavar="SIZE",
                       help=f"size of each token's learnt vector (default {recipe.embedding})")
    group.add_argument("--hidden", type=integer_option(1), metavar="SIZE",
                       help=f"size of the recurrent layer's state (default {recipe.hidden[0]})")
    group.add_argument("--time-steps", type=integer_option(1), metavar="STEPS",
                       help=f"tokens per training sequence: how far back the gradient flows (default "
                            f"{recipe.time_steps})")
    group.add_argument("--stateful", action="store_true",
                       help="read the text as --batch-size parallel streams, in order, each batch starting "
                            "from the state the last one ended in (truncated backpropagation through time); "
                            "default: shuffled windows, each from a zero state")
    group.add_argument("--temperature", type=non_negative_float, default=1.0,
                       help="of the samples printed during and after training: below 1 surer, above 1 more "
                            "varied, 0 always the likeliest token (default %(default)s)")

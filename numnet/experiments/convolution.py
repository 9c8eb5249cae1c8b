"""E12, convolution: the book's SimpleConvNet against an MLP trained the same way, on the 8x8 digits and on
MNIST, and numnet's digits CNN against E4's sound MLP."""

from numnet import datasets, plots
from numnet.backend import to_numpy
from numnet.conv import Conv2D, Flatten, MaxPool2D
from numnet.initializers import Normal
from numnet.layers import Dense
from numnet.model_spec import DIGITS_CNN, layers_from_string
from numnet.network import Network

from .first_networks import E4_SOUND_LEARNING_RATE, digits_split, e4_sound_network
from .results import INFORMATION, NOT_COMPARABLE, ExperimentResult, experiment_folder, verdict_of, verdict_within

# ---------------------------------------------------------------------------------------------------------
# E12: convolution, the book's SimpleConvNet

E12_FILTERS = 30
E12_KERNEL = 5
E12_POOL = 2
E12_HIDDEN = 100
E12_WEIGHT_STD = 0.01
E12_LEARNING_RATE = 1e-3
E12_BATCH_SIZE = 100
E12_EPOCHS = 20
E12_QUICK_EPOCHS = 2
#: The book's figure: SimpleConvNet reaches about 0.99 test accuracy on MNIST after 20 epochs.
E12_BOOK_ACCURACY = 0.99
E12_BOOK_TOLERANCE = 0.01
#: --quick trains on the first images of MNIST only.
E12_QUICK_MNIST_IMAGES = 5_000
#: The digits CNN of ``numnet train --model cnn`` is trained with the CLI's recipe for the digits.
E12_DIGITS_CNN_EPOCHS = 30
E12_DIGITS_CNN_QUICK_EPOCHS = 3
E12_DIGITS_CNN_BATCH_SIZE = 32


def simple_conv_net(image_shape, seed):
    """The book's SimpleConvNet for one-channel images: conv 30 filters 5x5 (stride 1, no padding), relu,
    max pool 2x2, dense 100 relu, dense 10 softmax; weights N(0, 0.01²), biases 0."""
    side_h, side_w = ((size - E12_KERNEL + 1) // E12_POOL for size in image_shape)
    return Network(layers=[
        Conv2D(1, E12_FILTERS, E12_KERNEL, activation="relu", weight_init=Normal(E12_WEIGHT_STD)),
        MaxPool2D(E12_POOL), Flatten(),
        Dense(E12_FILTERS * side_h * side_w, E12_HIDDEN, "relu", weight_init=Normal(E12_WEIGHT_STD)),
        Dense(E12_HIDDEN, 10, "softmax", weight_init=Normal(E12_WEIGHT_STD))], input_shape=(1, *image_shape),
        seed=seed)


def _e12_mlp(n_inputs, seed):
    """The MLP beside it, trained the same way: n_inputs -> 100 relu -> 10 softmax, weights N(0, 0.01²)."""
    return Network([n_inputs, E12_HIDDEN, 10], activation="relu", output_activation="softmax",
                   weight_init=Normal(E12_WEIGHT_STD), seed=seed)


def _e12_train(network, X_train, y_train, X_test, y_test, *, epochs, seed):
    """The book's recipe (Adam lr 0.001, batches of 100); returns (history, test accuracy)."""
    history = network.fit(X_train, y_train, epochs=epochs, batch_size=E12_BATCH_SIZE, optimizer="adam",
                          learning_rate=E12_LEARNING_RATE, validation_data=(X_test, y_test), seed=seed,
                          record_gradients=False)
    return history, network.accuracy(X_test, y_test)


def _e12_pair(result, folder, name, image_shape, split, *, epochs, seed, book_row):
    """SimpleConvNet and the MLP on one data set (X as rows of pixels in [0, 1]): rows, figures; returns the
    trained SimpleConvNet."""
    X_train, X_test, y_train, y_test = split
    images = [X.reshape(-1, 1, *image_shape) for X in (X_train, X_test)]
    cnn = simple_conv_net(image_shape, seed)
    cnn_history, cnn_accuracy = _e12_train(cnn, images[0], y_train, images[1], y_test, epochs=epochs, seed=seed)
    mlp_history, mlp_accuracy = _e12_train(_e12_mlp(X_train.shape[1], seed), X_train, y_train, X_test, y_test,
                                           epochs=epochs, seed=seed)
    book = f"about {E12_BOOK_ACCURACY} (the book, 20 epochs)"
    if book_row:
        verdict = NOT_COMPARABLE if epochs != E12_EPOCHS else \
            verdict_within(cnn_accuracy, E12_BOOK_ACCURACY, E12_BOOK_TOLERANCE)
        result.add_row(f"{name}: SimpleConvNet test accuracy after {epochs} epochs", f"{cnn_accuracy:.4f}", book,
                       verdict)
    else:
        result.add_row(f"{name}: SimpleConvNet test accuracy after {epochs} epochs", f"{cnn_accuracy:.4f}",
                       f"none for {image_shape[0]}x{image_shape[1]} images; on MNIST {book}", INFORMATION)
    result.add_row(f"{name}: MLP {X_train.shape[1]}-{E12_HIDDEN}-10, same recipe, test accuracy",
                   f"{mlp_accuracy:.4f}", f"SimpleConvNet's {cnn_accuracy:.4f}", INFORMATION)
    key = name.split()[0].lower()
    plots.plot_comparison_curves({"SimpleConvNet": cnn_history.val_accuracy, "MLP": mlp_history.val_accuracy},
                                 path=folder / f"{key}_accuracy.png", ylabel="test accuracy", xlabel="epoch",
                                 title=f"{name}: test accuracy per epoch")
    result.add_figure(f"{name}: test accuracy per epoch of SimpleConvNet and the MLP", folder / f"{key}_accuracy.png")
    return cnn, images[1]


def _e12_digits_cnn(result, split, *, quick, seed):
    """numnet's digits CNN (``numnet train --model cnn``) against E4's sound MLP: the CNN must be better."""
    X_train, X_test, y_train, y_test = split
    layers = layers_from_string(DIGITS_CNN, (1, 8, 8), 10)
    cnn = Network(layers=layers, input_shape=(1, 8, 8), seed=seed)
    epochs = E12_DIGITS_CNN_QUICK_EPOCHS if quick else E12_DIGITS_CNN_EPOCHS
    cnn.fit(X_train.reshape(-1, 1, 8, 8), y_train, epochs=epochs, batch_size=E12_DIGITS_CNN_BATCH_SIZE,
            optimizer="adam", learning_rate=E4_SOUND_LEARNING_RATE, seed=seed, record_gradients=False)
    cnn_accuracy = cnn.accuracy(X_test.reshape(-1, 1, 8, 8), y_test)
    mlp, _, scaler = e4_sound_network(X_train, X_test, y_train, y_test, seed=seed)
    mlp_accuracy = mlp.accuracy(scaler.transform(X_test), y_test)
    verdict = NOT_COMPARABLE if quick else verdict_of(cnn_accuracy > mlp_accuracy)
    result.add_row(f"digits: numnet's CNN {DIGITS_CNN} ({epochs} epochs) against E4's sound MLP, test accuracy",
                   f"{cnn_accuracy:.4f} vs {mlp_accuracy:.4f}", "the CNN is better", verdict)


def run_e12(output_dir, *, quick=False, seed=0):
    """E12: the book's SimpleConvNet on the 8x8 digits always, and on MNIST when its files are present, each
    beside an MLP trained the same way; and numnet's digits CNN against E4's sound MLP.

    ``quick`` trains 2 epochs (MNIST: on its first 5,000 images) and the digits CNN 3 epochs.
    """
    result = ExperimentResult("E12", "Convolution: the book's SimpleConvNet")
    folder = experiment_folder(output_dir, "E12")
    epochs = E12_QUICK_EPOCHS if quick else E12_EPOCHS
    split = digits_split()
    cnn, test_images = _e12_pair(result, folder, "digits (1x8x8)", (8, 8), split, epochs=epochs, seed=seed,
                                 book_row=False)
    _e12_digits_cnn(result, split, quick=quick, seed=seed)
    try:
        X_train, y_train, X_test, y_test = datasets.load_mnist()
    except FileNotFoundError as error:
        result.add_row("MNIST: SimpleConvNet test accuracy", "not run (no MNIST files)",
                       f"about {E12_BOOK_ACCURACY} (the book, 20 epochs)", INFORMATION)
        result.notes.append("MNIST part skipped: " + " ".join(str(error).split()))
    else:
        if quick:
            X_train, y_train = X_train[:E12_QUICK_MNIST_IMAGES], y_train[:E12_QUICK_MNIST_IMAGES]
        cnn, test_images = _e12_pair(result, folder, "MNIST (1x28x28)", (28, 28), (X_train, X_test, y_train, y_test),
                                     epochs=epochs, seed=seed, book_row=True)
    plots.plot_filters(to_numpy(cnn.parameters()["conv2d_0.W"]), path=folder / "filters.png",
                       title=f"SimpleConvNet's {E12_FILTERS} first-layer filters after training")
    result.add_figure("SimpleConvNet's first-layer filters (the last data set it trained on)", folder / "filters.png")
    plots.plot_feature_maps(cnn, test_images[0], path=folder / "feature_maps.png")
    result.add_figure("The first test image and its 30 feature maps after the convolution", folder / "feature_maps.png")
    result.notes += [
        f"SimpleConvNet: conv {E12_FILTERS} filters {E12_KERNEL}x{E12_KERNEL} (stride 1, no padding), relu, max pool "
        f"{E12_POOL}x{E12_POOL}, dense {E12_HIDDEN} relu, dense 10 softmax; weights N(0, {E12_WEIGHT_STD}²), biases "
        f"0; Adam lr {E12_LEARNING_RATE}, batches of {E12_BATCH_SIZE}, pixels in [0, 1]. The MLP beside it drops the "
        "convolution and pooling and trains the same way.",
        "On the 8x8 digits a 5x5 kernel leaves 4x4 maps and pooling 2x2: the book's architecture is made for "
        "28x28 images. numnet's digits CNN (two 3x3 convolutions with padding) suits them; it is what "
        "`numnet train --model cnn` trains.",
        "Digits split: E4's (80/20 stratified, seed 1), pixels divided by 16.",
    ]
    return result



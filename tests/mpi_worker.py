"""Run under ``mpiexec -n N`` by tests/test_distributed.py: one data-parallel fit, results saved by rank 0.

Usage: python mpi_worker.py OUTPUT.npz DTYPE BATCH_SIZE EPOCHS
                            [--architecture mlp|batch_norm_dropout|cnn|lstm|residual|seq2seq]
                            [--fail-rank R --fail-epoch E --checkpoint PATH] [--weighted]

--weighted trains with the sample weights of ``sample_weights()`` (zeros included).
"""

import argparse
import sys

import numpy as np

import numnet
from numnet.datasets import load_digits, make_spiral
from numnet.distributed import MPICommunicator, stop_all_ranks_on_failure

#: The networks the distributed tests train, by name; the test builds the same ones in one process.
ARCHITECTURES = {
    "mlp": {"layer_sizes": [2, 16, 16, 3], "activation": "tanh"},
    # Synchronised BatchNorm and Dropout masks drawn for the global batch.
    "batch_norm_dropout": {"layer_sizes": [2, 16, 16, 3], "activation": "tanh", "batch_norm": True,
                           "dropout": 0.25},
}


#: A convolutional network on the first 150 digits as 8x8 images: convolution, synchronised BatchNorm over
#: every pixel of a channel, Dropout masks on images, pooling and Flatten.
CNN_SAMPLES = 150


#: A language model on random token sequences whose targets ignore some positions, so that the ranks' shards
#: count different numbers of tokens: the loss is a mean over the global batch's counted tokens.
SEQUENCES, TIME_STEPS, VOCABULARY = 150, 6, 7


def build_network(architecture, dtype):
    if architecture == "seq2seq":  # fit gives Network.fit X = (source, decoder input): cut by the same rows
        return numnet.Seq2Seq(VOCABULARY, 4, 6, attention=True, peeky=False, dtype=dtype, seed=0)
    if architecture == "residual":  # a composite layer holding BatchNorm and Dropout: seen through on every rank
        block = numnet.Residual(numnet.Dense(16, 16, bias=False), numnet.BatchNorm(16), numnet.Activation("tanh"),
                                numnet.Dropout(0.25))
        return numnet.Network(layers=[numnet.Dense(2, 16, "tanh"), block, numnet.Dense(16, 3, "softmax")],
                              dtype=dtype, seed=0)
    if architecture == "lstm":
        return numnet.Network(layers=[numnet.Embedding(VOCABULARY, 4), numnet.LSTM(4, 8),
                                      numnet.Dense(8, VOCABULARY, "softmax")], dtype=dtype, seed=0)
    if architecture == "cnn":
        return numnet.Network(layers=[
            numnet.Conv2D(1, 4, 3, padding=1, bias=False), numnet.BatchNorm(4), numnet.Activation("tanh"), numnet.MaxPool2D(2),
            numnet.Dropout(0.25), numnet.Flatten(), numnet.Dense(64, 10, "softmax")], input_shape=(1, 8, 8),
            dtype=dtype, seed=0)
    options = dict(ARCHITECTURES[architecture])
    return numnet.Network(options.pop("layer_sizes"), output_activation="softmax", dtype=dtype, seed=0, **options)


def training_data(architecture):
    """(X, y): the spiral's 150 points, for the CNN the first 150 digits as (1, 8, 8) images, for the LSTM
    token ids and their next tokens with about a third of the targets ignored (-1)."""
    if architecture == "seq2seq":  # source ids and the answer, the source reversed after a start token (0)
        source = np.random.default_rng(8).integers(1, VOCABULARY, size=(SEQUENCES, TIME_STEPS))
        return source, np.concatenate([np.zeros((SEQUENCES, 1), dtype=np.int64), source[:, ::-1]], axis=1)
    if architecture == "lstm":
        rng = np.random.default_rng(7)
        ids = rng.integers(0, VOCABULARY, size=(SEQUENCES, TIME_STEPS + 1))
        targets = ids[:, 1:].copy()
        targets[rng.random(targets.shape) < 0.3] = -1
        return ids[:, :-1], targets
    if architecture == "cnn":
        X, y = load_digits(images=True)
        return X[:CNN_SAMPLES], y[:CNN_SAMPLES]
    return make_spiral(n_per_class=50, n_classes=3, seed=0)


def sample_weights(n_samples):
    """Integer weights 0-3 per sample, the same on every rank and in the single-process reference."""
    return np.random.default_rng(5).integers(0, 4, n_samples).astype(np.float64)


def parse(argv):
    parser = argparse.ArgumentParser()
    parser.add_argument("output")
    parser.add_argument("dtype")
    parser.add_argument("batch_size", type=int)
    parser.add_argument("epochs", type=int)
    parser.add_argument("--architecture", default="mlp", choices=sorted([*ARCHITECTURES, "cnn", "lstm", "residual", "seq2seq"]))
    parser.add_argument("--fail-rank", type=int, default=-1)
    parser.add_argument("--fail-epoch", type=int, default=-1)
    parser.add_argument("--checkpoint")
    parser.add_argument("--weighted", action="store_true")
    return parser.parse_args(argv)


def main(argv):
    args = parse(argv)
    communicator = MPICommunicator()
    X, y = training_data(args.architecture)
    network = build_network(args.architecture, args.dtype)

    def after_epoch(report):
        if args.checkpoint and communicator.is_root:
            numnet.save_model(network, args.checkpoint)
        if communicator.rank == args.fail_rank and report.epoch == args.fail_epoch:
            raise RuntimeError(f"simulated failure after epoch {report.epoch}")

    with stop_all_ranks_on_failure(communicator):
        weights = sample_weights(len(X)) if args.weighted else None
        history = network.fit(X, y, sample_weight=weights, epochs=args.epochs, batch_size=args.batch_size,
                              optimizer="adam", learning_rate=0.01, seed=3, validation_split=0.2,
                              distributed=communicator, progress=after_epoch)
    if communicator.is_root:
        np.savez(args.output, parameters=network.flat_parameters, state=network.flat_state,
                 iteration_loss=history.iteration_loss, accuracy=history.accuracy, val_loss=history.val_loss,
                 val_accuracy=history.val_accuracy, perplexity=history.perplexity,
                 val_perplexity=history.val_perplexity)


if __name__ == "__main__":
    main(sys.argv[1:])

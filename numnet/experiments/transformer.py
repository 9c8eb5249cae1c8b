"""E16, a GPT that trains on NumPy: nanoGPT's character-level model at its documented CPU settings, on the
census names, beside the LSTM of E13; samples, loss curves and each head's attention.

:data:`NANOGPT_CPU` is the recipe of nanoGPT's README for a CPU ("--device=cpu --compile=False
--eval_iters=20 --log_interval=1 --block_size=64 --batch_size=12 --n_layer=4 --n_head=4 --n_embd=128
--max_iters=2000 --lr_decay_iters=2000 --dropout=0.0" over ``config/train_shakespeare_char.py`` and
``train.py``'s defaults), which ``numnet train --data text --model gpt`` and ``benchmarks/`` use too.
:func:`gpt_windows` lays a token stream out as nanoGPT draws it (a window at any offset, batches drawn with
replacement), and :func:`train_gpt` trains with nanoGPT's optimiser, schedule and clipping.
"""

import dataclasses

import numpy as np

from numnet import plots
from numnet.models import gpt
from numnet.optimizers import AdamW
from numnet.recurrent import LSTM
from numnet.schedules import WarmupCosine
from numnet.text import generate, windows

from .sequences import language_model
from .results import INFORMATION, NOT_COMPARABLE, ExperimentResult, experiment_folder, verdict_of


@dataclasses.dataclass(frozen=True)
class GPTRecipe:
    """nanoGPT's settings (train.py's defaults, train_shakespeare_char.py and the README's CPU line)."""

    block_size: int = 64
    batch_size: int = 12
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    bias: bool = False
    max_iters: int = 2000
    learning_rate: float = 1e-3
    min_learning_rate: float = 1e-4
    warmup_iters: int = 100
    lr_decay_iters: int = 2000
    beta1: float = 0.9
    beta2: float = 0.99
    weight_decay: float = 0.1
    clip_norm: float = 1.0
    eval_interval: int = 250

    def optimizer(self):
        """nanoGPT's AdamW: weight decay on the matrices and embeddings only, the warmup-cosine schedule."""
        schedule = WarmupCosine(self.warmup_iters, self.lr_decay_iters, self.min_learning_rate)
        return AdamW(learning_rate=self.learning_rate, beta1=self.beta1, beta2=self.beta2,
                     weight_decay=self.weight_decay, decay="matrices", schedule=schedule)

    def model(self, vocab_size, *, seed=0, dtype="float32"):
        return gpt(vocab_size, self.block_size, self.n_layer, self.n_head, self.n_embd, dropout=self.dropout,
                   bias=self.bias, seed=seed, dtype=dtype)


NANOGPT_CPU = GPTRecipe()
#: The docs build's and the tests' quick setting: a smaller model for fewer steps.
QUICK = dataclasses.replace(NANOGPT_CPU, n_layer=2, n_embd=32, n_head=2, block_size=32, max_iters=60,
                            warmup_iters=10, lr_decay_iters=60, eval_interval=20)
#: nanoGPT's README: "we get ... a loss of about 1.88" after 2,000 iterations on a CPU (Shakespeare).
NANOGPT_CPU_LOSS = 1.88


def gpt_windows(train_ids, validation_ids, block_size):
    """(training (X, y), validation (X, y)): a training window at every offset of the training tokens (so
    that batches drawn with replacement are nanoGPT's random windows) and the held-out tokens cut in
    windows side by side, which the validation loss averages over every held-out token (but the first of
    each window, which has no context)."""
    return windows(train_ids, block_size, stride=1), windows(validation_ids, min(block_size, len(validation_ids) - 1))


def train_gpt(recipe, training, validation, vocab_size, *, seed=0, progress=None, dtype="float32"):
    """A GPT of ``recipe`` trained as nanoGPT trains: ``max_iters`` steps of ``batch_size`` windows drawn
    with replacement, the validation loss every ``eval_interval`` steps; returns (model, History)."""
    model = recipe.model(vocab_size, seed=seed, dtype=dtype)
    history = model.fit(*training, iterations=recipe.max_iters, batch_size=recipe.batch_size, sampling="replacement",
                        steps_per_epoch=recipe.eval_interval, optimizer=recipe.optimizer(), clip_norm=recipe.clip_norm,
                        validation_data=validation, seed=seed, record_gradients=False, progress=progress)
    return model, history


# ---------------------------------------------------------------------------------------------------------
# E16


def run_e16(output_dir, *, quick=False, seed=0):
    """E16: the tiny GPT on the census names (nanoGPT's CPU recipe), its samples and attention, and the LSTM
    of E13 beside it."""
    from numnet.cli.corpus import NAMES_DESCRIPTION, load_corpus  # the text `numnet train --data text` reads

    result = ExperimentResult("E16", "A GPT on the names")
    folder = experiment_folder(output_dir, "E16")
    recipe = QUICK if quick else NANOGPT_CPU
    data = load_corpus("text")
    training, validation = gpt_windows(data.train_ids, data.validation_ids, recipe.block_size)
    if quick:
        training = tuple(part[:20_000] for part in training)
        validation = tuple(part[:100] for part in validation)
    model, history = train_gpt(recipe, training, validation, len(data.vocabulary), seed=seed)
    model.vocabulary = data.vocabulary
    result.log.append("GPT: validation loss every eval_interval steps " + ", ".join(f"{value:.3f}" for value in history.val_loss))
    result.add_row(f"GPT ({model.n_parameters:,} parameters): validation loss after {recipe.max_iters} steps",
                   f"{history.val_loss[-1]:.3f} nats per character",
                   f"nanoGPT's README: about {NANOGPT_CPU_LOSS} on Shakespeare with this recipe (another corpus)",
                   INFORMATION)
    lstm = language_model(LSTM, len(data.vocabulary), 32 if quick else 128, seed=seed)
    lstm_history = lstm.fit(*training, iterations=recipe.max_iters, batch_size=recipe.batch_size,
                            sampling="replacement", steps_per_epoch=recipe.eval_interval, optimizer="adam",
                            learning_rate=3e-3, clip_norm=recipe.clip_norm, validation_data=validation, seed=seed,
                            record_gradients=False)
    result.add_row(f"LSTM of E13 ({lstm.n_parameters:,} parameters), the same steps and batches",
                   f"{lstm_history.val_loss[-1]:.3f}", "the GPT's about as low or lower at the same cost",
                   NOT_COMPARABLE if quick else verdict_of(history.val_loss[-1] <= lstm_history.val_loss[-1] + 0.05))
    draws = np.random.default_rng(seed)  # one stream for the eight names: each continues where the last stopped
    samples = [generate(model, data.vocabulary, "\n", 40, seed=draws).split("\n")[0] for _ in range(8)]
    result.add_row("names sampled from the GPT", ", ".join(samples), "name-like", INFORMATION)
    plots.plot_comparison_curves({"GPT: validation": history.val_loss, "LSTM: validation": lstm_history.val_loss,
                                  "GPT: training": history.epoch_loss},
                                 path=folder / "loss.png", xlabel=f"evaluation (every {recipe.eval_interval} steps)",
                                 ylabel="loss (nats per character)", title="GPT against LSTM on the names")
    result.add_figure("Loss every eval_interval steps, GPT and LSTM", folder / "loss.png")
    prompt = data.vocabulary.encode("\nmaria\n")
    plots.plot_attention(model, prompt, path=folder / "attention.png", title="Every head of the last block")
    result.add_figure("The last block's heads reading a prompt: rows look, columns are looked at", folder / "attention.png")
    result.notes.append(f"Recipe: {dataclasses.asdict(recipe)}. Data: {NAMES_DESCRIPTION}, the last 10% of the "
                        "characters held out (numnet train --data text's split).")
    return result

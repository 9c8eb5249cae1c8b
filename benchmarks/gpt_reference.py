"""The reference run of issue 25: nanoGPT's character model at its CPU settings, numnet against the same model
written plainly in PyTorch (as nanoGPT's model.py is), on the same batches, in one process.

Run from the repository root::

    python benchmarks/gpt_reference.py                 # the whole reference run (~1-2 hours on 2 cores)
    python benchmarks/gpt_reference.py --steps 200 --seeds 1 --skip-own   # a smoke run of a few minutes
    python benchmarks/gpt_reference.py --timing-only --threads 1

Data: the census names as ``numnet train --data text`` reads them (shuffled with seed 0, one per line, the last
10% of the characters held out). Recipe: numnet.experiments.NANOGPT_CPU (block_size 64, batch 12, 4 blocks of
4 heads, width 128, no biases, dropout 0; AdamW β2 0.99 with weight decay 0.1 on the matrices and embeddings,
the warmup-cosine schedule from 1e-3 to 1e-4 over 2,000 steps with 100 of warmup, clipping at 1.0).

Batches: numnet's fit draws each step's 12 window starts with ``default_rng([seed, epoch]).integers(0, n, 12)``
(sampling="replacement", an epoch of ``eval_interval`` steps); the PyTorch loop draws the same starts the same
way, so both models see the same windows in the same order.

Three measurements, printed as tables with the CPU model:

1. From the same initial weights (numnet's, copied into the PyTorch model): the loss on the whole validation
   split (its windows side by side) after the steps, for both (the issue: within 0.02).
2. From each side's own initialisation, for ``--seeds`` seeds: the mean of those losses (the issue: within
   0.03).
3. Time per step, numnet with its compiled kernels and with NUMNET_KERNELS=numpy, PyTorch eager, at the
   given thread count: the first and the last 100 steps of a run without evaluation (the issue: numnet within
   1.5x of PyTorch on 2 threads with the compiled kernels).

and samples from both models of measurement 1.
"""

import argparse
import contextlib
import math
import platform
import statistics
import time

import numpy as np
import threadpoolctl

import numnet
import numnet.kernels
from numnet.cli.corpus import load_corpus
from numnet.experiments import NANOGPT_CPU, gpt_windows
from numnet.text import generate

TIMED_STEPS = 100


# ---- the PyTorch twin ----------------------------------------------------------------------------------

def torch_gpt(recipe, vocab_size):
    """nanoGPT's GPT (model.py) for ``recipe``, written plainly: its modules, its weight tying, its init."""
    import torch
    from torch import nn
    from torch.nn import functional

    class CausalSelfAttention(nn.Module):
        def __init__(self):
            super().__init__()
            self.c_attn = nn.Linear(recipe.n_embd, 3 * recipe.n_embd, bias=recipe.bias)
            self.c_proj = nn.Linear(recipe.n_embd, recipe.n_embd, bias=recipe.bias)

        def forward(self, x):
            B, T, C = x.size()
            q, k, v = self.c_attn(x).split(recipe.n_embd, dim=2)
            q, k, v = (part.view(B, T, recipe.n_head, C // recipe.n_head).transpose(1, 2) for part in (q, k, v))
            y = functional.scaled_dot_product_attention(q, k, v, is_causal=True)
            return self.c_proj(y.transpose(1, 2).contiguous().view(B, T, C))

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln_1 = nn.LayerNorm(recipe.n_embd, bias=recipe.bias)
            self.attn = CausalSelfAttention()
            self.ln_2 = nn.LayerNorm(recipe.n_embd, bias=recipe.bias)
            self.c_fc = nn.Linear(recipe.n_embd, 4 * recipe.n_embd, bias=recipe.bias)
            self.c_proj = nn.Linear(4 * recipe.n_embd, recipe.n_embd, bias=recipe.bias)

        def forward(self, x):
            x = x + self.attn(self.ln_1(x))
            return x + self.c_proj(functional.gelu(self.c_fc(self.ln_2(x))))

    class GPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.wte = nn.Embedding(vocab_size, recipe.n_embd)
            self.wpe = nn.Embedding(recipe.block_size, recipe.n_embd)
            self.h = nn.ModuleList(Block() for _ in range(recipe.n_layer))
            self.ln_f = nn.LayerNorm(recipe.n_embd, bias=recipe.bias)
            self.lm_head = nn.Linear(recipe.n_embd, vocab_size, bias=False)
            self.lm_head.weight = self.wte.weight  # tied, as nanoGPT ties them
            self.apply(self._init_weights)
            for name, parameter in self.named_parameters():
                if name.endswith("c_proj.weight"):
                    nn.init.normal_(parameter, mean=0.0, std=0.02 / math.sqrt(2 * recipe.n_layer))

        @staticmethod
        def _init_weights(module):
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, mean=0.0, std=0.02)
                if getattr(module, "bias", None) is not None:
                    nn.init.zeros_(module.bias)

        def forward(self, idx):
            x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1]))
            for block in self.h:
                x = block(x)
            return self.lm_head(self.ln_f(x))

    return GPT()


def copy_numnet_weights(model, twin):
    """Write numnet's parameters into the PyTorch twin (Linear weights transposed; the tied matrix once)."""
    import torch

    weights = {name.split(".", 1)[1]: np.asarray(value) for name, value in model.parameters().items()}
    with torch.no_grad():
        twin.wte.weight.copy_(torch.tensor(weights["wte.W"]))
        twin.wpe.weight.copy_(torch.tensor(weights["wpe.W"]))
        for index, block in enumerate(twin.h):
            prefix = f"h_{index}"
            block.ln_1.weight.copy_(torch.tensor(weights[f"{prefix}.attention.ln_1.gamma"]))
            block.attn.c_attn.weight.copy_(torch.tensor(weights[f"{prefix}.attention.attn.W_qkv"].T))
            block.attn.c_proj.weight.copy_(torch.tensor(weights[f"{prefix}.attention.attn.W_o"].T))
            block.ln_2.weight.copy_(torch.tensor(weights[f"{prefix}.mlp.ln_2.gamma"]))
            block.c_fc.weight.copy_(torch.tensor(weights[f"{prefix}.mlp.c_fc.W"].T))
            block.c_proj.weight.copy_(torch.tensor(weights[f"{prefix}.mlp.c_proj.W"].T))
        twin.ln_f.weight.copy_(torch.tensor(weights["ln_f.gamma"]))


def torch_optimizer(recipe, twin):
    """nanoGPT's configure_optimizers: weight decay on every parameter of two or more dimensions."""
    import torch

    parameters = [parameter for parameter in twin.parameters() if parameter.requires_grad]
    groups = [{"params": [p for p in parameters if p.dim() >= 2], "weight_decay": recipe.weight_decay},
              {"params": [p for p in parameters if p.dim() < 2], "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=recipe.learning_rate, betas=(recipe.beta1, recipe.beta2), foreach=False)


def nanogpt_lr(recipe, step):
    """nanoGPT's get_lr(it)."""
    if step < recipe.warmup_iters:
        return recipe.learning_rate * (step + 1) / (recipe.warmup_iters + 1)
    if step > recipe.lr_decay_iters:
        return recipe.min_learning_rate
    ratio = (step - recipe.warmup_iters) / (recipe.lr_decay_iters - recipe.warmup_iters)
    return recipe.min_learning_rate + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (recipe.learning_rate
                                                                                 - recipe.min_learning_rate)


def batch_starts(seed, steps, n_windows, recipe):
    """The window indices of every step, as numnet's fit(sampling="replacement") draws them."""
    for step in range(steps):
        epoch, within = divmod(step, recipe.eval_interval)
        if within == 0:
            rng = np.random.default_rng([seed, epoch])
        yield rng.integers(0, n_windows, size=recipe.batch_size)


def train_torch(recipe, twin, training, steps, seed, step_seconds=None):
    """nanoGPT's training loop over the same batches numnet draws."""
    import torch
    from torch.nn import functional

    optimizer = torch_optimizer(recipe, twin)
    X, y = (torch.tensor(part) for part in training)
    twin.train()
    for step, rows in enumerate(batch_starts(seed, steps, len(X), recipe)):
        started = time.perf_counter()
        for group in optimizer.param_groups:
            group["lr"] = nanogpt_lr(recipe, step)
        rows = torch.tensor(rows)
        logits = twin(X[rows])
        loss = functional.cross_entropy(logits.view(-1, logits.size(-1)), y[rows].view(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(twin.parameters(), recipe.clip_norm)
        optimizer.step()
        if step_seconds is not None:
            step_seconds.append(time.perf_counter() - started)


def torch_validation_loss(twin, validation):
    import torch
    from torch.nn import functional

    twin.eval()
    with torch.no_grad():
        logits = twin(torch.tensor(validation[0]))
        return float(functional.cross_entropy(logits.view(-1, logits.size(-1)), torch.tensor(validation[1]).view(-1)))


def torch_sample(twin, vocabulary, length=200, seed=0):
    """Characters sampled one at a time from a line break, the context cropped to the block size."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    ids = torch.tensor(vocabulary.encode("\n")[None])
    with torch.no_grad():
        for _ in range(length):
            logits = twin(ids[:, -twin.wpe.num_embeddings:])[:, -1]
            ids = torch.cat([ids, torch.multinomial(torch.softmax(logits, -1), 1, generator=generator)], dim=1)
    return vocabulary.decode(ids[0, 1:].numpy())


# ---- numnet ----------------------------------------------------------------------------------------------

def train_numnet(recipe, model, training, validation, steps, seed):
    return model.fit(*training, iterations=steps, batch_size=recipe.batch_size, sampling="replacement",
                     steps_per_epoch=recipe.eval_interval, optimizer=recipe.optimizer(), clip_norm=recipe.clip_norm,
                     validation_data=validation, seed=seed, record_gradients=False)


def numnet_step_seconds(recipe, vocab_size, training, steps, kernels):
    """Seconds of each of ``steps`` training steps (no evaluation), with numnet's kernels choice."""
    model = recipe.model(vocab_size, seed=0)
    seconds = []
    with numnet.kernels.use_kernels(kernels):
        model.fit(*training, iterations=steps, batch_size=recipe.batch_size, sampling="replacement",
                  steps_per_epoch=1, optimizer=recipe.optimizer(), clip_norm=recipe.clip_norm, seed=0,
                  record_gradients=False, progress=lambda report: seconds.append(report.seconds))
    return seconds


# ---- the run ---------------------------------------------------------------------------------------------

def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=NANOGPT_CPU.max_iters)
    parser.add_argument("--seeds", type=int, default=3, help="seeds of measurement 2")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip-own", action="store_true", help="skip measurement 2")
    parser.add_argument("--timing-only", action="store_true", help="only measurement 3")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    recipe = NANOGPT_CPU
    data = load_corpus("text")
    training, validation = gpt_windows(data.train_ids, data.validation_ids, recipe.block_size)
    vocab_size = len(data.vocabulary)
    print(f"CPU: {platform.processor() or platform.machine()} ({_cpu_model()}), {args.threads} threads; "
          f"{len(training[0]):,} training windows, {validation[0].size:,} validation tokens, {vocab_size} ids")
    with threadpoolctl.threadpool_limits(args.threads):
        if not args.timing_only:
            _same_weights(recipe, data, training, validation, args.steps)
            if not args.skip_own:
                _own_initialisations(recipe, vocab_size, training, validation, args.steps, args.seeds)
        _timing(recipe, vocab_size, training, min(args.steps, 2 * TIMED_STEPS * 5))


def _same_weights(recipe, data, training, validation, steps):
    model = recipe.model(len(data.vocabulary), seed=0)
    twin = torch_gpt(recipe, len(data.vocabulary))
    copy_numnet_weights(model, twin)
    history = train_numnet(recipe, model, training, validation, steps, seed=0)
    train_torch(recipe, twin, training, steps, seed=0)
    numnet_loss, torch_loss = history.val_loss[-1], torch_validation_loss(twin, validation)
    print(f"\n1. same initial weights, {steps} steps: validation loss numnet {numnet_loss:.4f}, PyTorch "
          f"{torch_loss:.4f}, difference {abs(numnet_loss - torch_loss):.4f} (target <= 0.02)")
    model.vocabulary = data.vocabulary
    print("   numnet sample: ", generate(model, data.vocabulary, "\n", 200, seed=0).replace("\n", " / "))
    print("   PyTorch sample:", torch_sample(twin, data.vocabulary).replace("\n", " / "))


def _own_initialisations(recipe, vocab_size, training, validation, steps, seeds):
    import torch

    numnet_losses, torch_losses = [], []
    for seed in range(1, seeds + 1):
        history = train_numnet(recipe, recipe.model(vocab_size, seed=seed), training, validation, steps, seed=seed)
        numnet_losses.append(history.val_loss[-1])
        torch.manual_seed(seed)
        twin = torch_gpt(recipe, vocab_size)
        train_torch(recipe, twin, training, steps, seed=seed)
        torch_losses.append(torch_validation_loss(twin, validation))
    print(f"\n2. own initialisations, seeds 1-{seeds}: numnet {[round(v, 4) for v in numnet_losses]} mean "
          f"{statistics.mean(numnet_losses):.4f}; PyTorch {[round(v, 4) for v in torch_losses]} mean "
          f"{statistics.mean(torch_losses):.4f}; difference "
          f"{abs(statistics.mean(numnet_losses) - statistics.mean(torch_losses)):.4f} (target <= 0.03)")


def _timing(recipe, vocab_size, training, steps):
    torch_seconds = []
    train_torch(recipe, torch_gpt(recipe, vocab_size), training, steps, seed=0, step_seconds=torch_seconds)
    rows = {"PyTorch eager": torch_seconds}
    for kernels, name in (("auto", "numnet"), ("numpy", "numnet (NumPy only)")):
        rows[name] = numnet_step_seconds(recipe, vocab_size, training, steps, kernels)
    reference = statistics.mean(torch_seconds[-TIMED_STEPS:])
    print(f"\n3. ms per step ({steps} steps; first and last {TIMED_STEPS}):")
    print("| contender | first 100 | last 100 | last / PyTorch |\n| --- | --- | --- | --- |")
    for name, seconds in rows.items():
        first, last = statistics.mean(seconds[:TIMED_STEPS]), statistics.mean(seconds[-TIMED_STEPS:])
        print(f"| {name} | {first * 1e3:.1f} | {last * 1e3:.1f} | {last / reference:.2f}x |")


def _cpu_model():
    with contextlib.suppress(OSError):
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "unknown"


if __name__ == "__main__":
    main()

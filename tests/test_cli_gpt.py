"""``numnet train --data text:PATH --model gpt`` (nanoGPT's recipe, made small by the options) and the saved
GPT under ``numnet evaluate`` and ``numnet generate``, run as a user runs them.

Oracles: the perplexity recomputed here from the saved model's softmax on the file's last tenth (as
test_cli_text defines it), the number of evaluation rounds nanoGPT's eval_interval gives, the recipe the
options asked for read back from the saved model.
"""

import math

import pytest

import numnet
from numnet.experiments.transformer import NANOGPT_CPU
from numnet.persistence import load_model
from test_cli import number_after, run_numnet
from test_cli_text import (FLOAT32_TOLERANCE, PRINTED_TOLERANCE, TIME_STEPS, held_out_windows,  # noqa: F401
                           perplexity_from_probabilities, text_file)  # text_file: the shared fixture

ITERATIONS = 40
SMALL_GPT = ("--model", "gpt", "--iterations", str(ITERATIONS), "--blocks", "1", "--heads", "2", "--hidden", "16",
             "--time-steps", str(TIME_STEPS), "--learning-rate", "0.01")


@pytest.fixture(scope="module")
def gpt_job(tmp_path_factory, text_file):
    output = tmp_path_factory.mktemp("gpt-job")
    completed = run_numnet("train", "--data", f"text:{text_file}", *SMALL_GPT, "--output", output)
    assert completed.returncode == 0, completed.stderr
    return completed.stdout, output


def test_the_gpt_trains_nanogpts_recipe_with_the_options_changes_and_saves_it(gpt_job):
    stdout, output = gpt_job
    network = load_model(output / "model.npz")
    body = network.layers[0]
    assert isinstance(body, numnet.models.GPT)
    assert (body.n_layer, body.n_head, body.n_embd, body.block_size) == (1, 2, 16, TIME_STEPS)
    recipe = network.metadata["gpt"]
    assert recipe["max_iters"] == ITERATIONS and recipe["weight_decay"] == NANOGPT_CPU.weight_decay
    assert network.iterations_trained == ITERATIONS
    rounds = math.ceil(ITERATIONS / NANOGPT_CPU.eval_interval)
    assert len([line for line in stdout.splitlines() if line.startswith("epoch ")]) == rounds
    assert {"training.png", "gradients.png", "attention.png"} <= {path.name for path in output.iterdir()}


def test_the_printed_validation_perplexity_is_the_saved_gpts_on_the_files_last_tenth(gpt_job, text_file):
    stdout, output = gpt_job
    network = load_model(output / "model.npz")
    expected = perplexity_from_probabilities(network, *held_out_windows(text_file.read_text(encoding="utf-8")))
    printed = number_after("validation perplexity:", stdout)
    assert abs(printed - expected) <= PRINTED_TOLERANCE + FLOAT32_TOLERANCE * expected
    assert expected < len(network.vocabulary)  # better than a uniform guess


def test_generate_continues_a_prompt_longer_than_the_context_reproducibly(gpt_job):
    _, output = gpt_job
    arguments = ("generate", output / "model.npz", "--prompt", "the cat sat on the mat " * 3, "--length", "30",
                 "--seed", "4")
    first, second = run_numnet(*arguments), run_numnet(*arguments)
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout and len(first.stdout.strip()) > 0

"""``numnet train --data addition|dates --model seq2seq``, run as a user runs it (``python -m numnet``).

Oracles: the saved model's own greedy answers compared with the true answers of the test questions
(recounted here from the data set, independently of what the command printed), Python's html parser for the
examples page, and the PNG signature of every plot the command says it wrote.
"""

import html.parser

import numpy as np
import pytest

import numnet
from numnet.datasets import load_dates
from numnet.persistence import load_model
from test_cli import number_after, run_numnet

#: A small model over the whole set in a few seconds: it learns the answers' layout, not yet every date.
SMALL_OPTIONS = ("--epochs", "1", "--embedding", "8", "--hidden", "24", "--batch-size", "500", "--learning-rate", "0.01")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class _Cells(html.parser.HTMLParser):
    """The text of every table cell and the source of every image of a page."""

    def __init__(self):
        super().__init__()
        self.cells, self.images, self._in_cell = [], [], False

    def handle_starttag(self, tag, attributes):
        self._in_cell = tag == "td"
        if tag == "img":
            self.images.append(dict(attributes)["src"])

    def handle_data(self, data):
        if self._in_cell:
            self.cells.append(data)
            self._in_cell = False


@pytest.fixture(scope="module")
def dates_job(tmp_path_factory):
    output = tmp_path_factory.mktemp("dates")
    completed = run_numnet("train", "--data", "dates", "--model", "seq2seq", "--attention", "--reverse",
                           *SMALL_OPTIONS, "--output", output)
    assert completed.returncode == 0, completed.stderr
    return completed.stdout, output


def test_the_printed_exact_match_is_the_saved_models_on_the_test_dates(dates_job):
    stdout, output = dates_job
    model = load_model(output / "model.npz")
    assert type(model) is numnet.Seq2Seq and model.encoder_decoder.attention and model.encoder_decoder.reverse_input
    _, (X_test, Y_test), vocabulary = load_dates()
    written = model.generate(X_test, start_id=int(Y_test[0, 0]), length=Y_test.shape[1] - 1)
    recounted = float(np.mean(np.all(written == Y_test[:, 1:], axis=1)))
    assert number_after("test exact match:", stdout) == pytest.approx(recounted, abs=5e-5)
    assert model.vocabulary.symbols == vocabulary.symbols


def test_the_examples_page_shows_questions_answers_and_the_attention_maps_it_drew(dates_job):
    stdout, output = dates_job
    page = _Cells()
    page.feed((output / "examples.html").read_text(encoding="utf-8"))
    _, (X_test, Y_test), vocabulary = load_dates()
    questions = page.cells[0::4]
    assert questions[:3] == [vocabulary.decode(row) for row in X_test[:3]]
    assert page.cells[2::4][:3] == [vocabulary.decode(row[1:]) for row in Y_test[:3]]
    assert page.images == ["attention_0.png", "attention_1.png", "attention_2.png"]
    for name in ("training.png", "exact_match.png", *page.images):
        assert name in stdout and (output / name).read_bytes().startswith(PNG_SIGNATURE)


def test_seq2seq_options_that_do_not_fit_say_what_to_do(tmp_path):
    completed = run_numnet("train", "--data", "digits", "--model", "seq2seq", "--output", tmp_path)
    assert completed.returncode != 0
    assert "--model seq2seq trains on the book's toy sets: give --data addition or --data dates" in completed.stderr


def test_evaluate_and_doctor_read_the_saved_model_on_its_test_questions(dates_job):
    _, output = dates_job
    completed = run_numnet("evaluate", output / "model.npz", "dates")
    assert completed.returncode == 0, completed.stderr
    model = load_model(output / "model.npz")
    _, (X_test, Y_test), _ = load_dates()
    written = model.generate(X_test, start_id=int(Y_test[0, 0]), length=Y_test.shape[1] - 1)
    assert number_after("exact match:", completed.stdout) == pytest.approx(
        float(np.mean(np.all(written == Y_test[:, 1:], axis=1))), abs=5e-5)
    probabilities = model.forward((X_test, Y_test[:, :-1]))
    chosen = np.take_along_axis(probabilities, Y_test[:, 1:, None], axis=-1)[..., 0]
    assert number_after("loss:", completed.stdout) == pytest.approx(float(-np.mean(np.log(chosen))), abs=1e-3)
    doctor = run_numnet("doctor", output / "model.npz", "dates", "--json")
    assert doctor.returncode == 0, doctor.stderr
    wrong = run_numnet("evaluate", output / "model.npz", "addition")
    assert wrong.returncode != 0 and "trained on another vocabulary than the addition set's" in wrong.stderr

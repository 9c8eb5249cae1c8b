"""numnet playground's server and JSON API, through the standard library's HTTP client, as the page uses them.

Oracles: the downloaded model (numnet.load_model) must give exactly the output the frame showed over a grid
built here from its documented formula; the downloaded script, run as a user runs it, must end with the
same weights bit for bit; the reported test loss must equal binary cross-entropy written out in NumPy; two
sessions trained at the same time must end exactly where each ends when trained alone. Every bad request
of the issue gets its status and a message naming the field, and the server keeps answering. The request
parsers are fuzzed with hypothesis. The browser tests are in test_playground_browser.py.
"""

import base64
import contextlib
import http.client
import io
import json
import math
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from numnet.optimizers import OPTIMIZERS
from numnet.persistence import load_model
from numnet.playground import SessionStore, Settings, SettingsError, create_server, parse_settings
from numnet.doctor import diagnose
from numnet.playground.session import DOCTOR_INTERVAL_SECONDS, Session
from numnet.playground.settings import FIELD_NAMES, parse_training_request, parse_upload_request
from numnet.preprocessing import plane_features

MiB = 1 << 20
REQUEST_TIMEOUT_SECONDS = 30
# The promise: Ctrl-C ends the server within 2 seconds.
SHUTDOWN_SECONDS = 2.0
# A command's start-up (importing numpy and numnet) on a busy 2-core machine.
STARTUP_TIMEOUT_SECONDS = 60
# The losses are float32 computations reported as floats: float32 holds about 7 significant digits.
FLOAT32_TOLERANCE = 1e-6
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SPIRAL_SETUP = {"dataset": "spiral", "noise": 0.1, "n_samples": 200, "features": ["x", "y", "x2", "sinx"],
                "hidden": [6, 3], "activation": "relu", "regularization": "l2", "regularization_rate": 0.003,
                "optimizer": "momentum", "learning_rate": 0.03, "batch_size": 7, "seed": 11, "data_seed": 5}
# Dropout draws masks and BatchNorm keeps running statistics: both must survive the export and the script.
DROPOUT_SETUP = {"dataset": "gauss", "noise": 0.2, "hidden": [6, 4], "dropout": 0.3, "batch_norm": True,
                 "regularization": "l1", "regularization_rate": 0.001, "seed": 3}


# ---------------------------------------------------------------------------------------------------------
# A server on a free loopback port, and a client


@contextlib.contextmanager
def running_server(store=None):
    server = create_server(port=0, store=store)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield Client(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def client():
    with running_server() as running:
        yield running


class Client:
    """Requests to the playground on 127.0.0.1:port; each returns (status, headers, body)."""

    def __init__(self, port):
        self.port = port

    def request(self, method, path, body=None, headers=None):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=REQUEST_TIMEOUT_SECONDS)
        try:
            if isinstance(body, (dict, list)):
                body = json.dumps(body).encode()
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            raw = response.read()
            content_type = response.getheader("Content-Type", "")
            return response.status, response, json.loads(raw) if content_type == "application/json" else raw
        finally:
            connection.close()

    def post(self, path, body=None, headers=None):
        return self.request("POST", path, {} if body is None else body, headers)

    def new_session(self, settings=None):
        status, _, frame = self.post("/api/sessions", {"settings": settings or {}})
        assert status == 201, frame
        return frame

    def train(self, session, epochs):
        status, _, frame = self.post(f"/api/sessions/{session}/train", {"epochs": epochs})
        assert status == 200, frame
        return frame

    def model(self, session):
        status, _, raw = self.request("GET", f"/api/sessions/{session}/model.npz")
        assert status == 200
        return raw


def receive_all(connection):
    """Everything the server sends until it closes the connection."""
    answer = b""
    while chunk := connection.recv(65536):
        answer += chunk
    return answer


def decode_float32(text):
    return np.frombuffer(base64.b64decode(text), dtype="<f4")


def grid_of(output):
    """The picture's grid from its documented formula: cell centres, rows from the top (y = +domain) down."""
    size, domain = output["size"], output["domain"]
    centres = -domain + (np.arange(size) + 0.5) * (2 * domain / size)
    x, y = np.meshgrid(centres, centres[::-1])
    return np.column_stack([x.ravel(), y.ravel()]).astype(np.float32)


def loaded_model(raw, tmp_path, name="model.npz"):
    path = tmp_path / name
    path.write_bytes(raw)
    return load_model(path)


# ---------------------------------------------------------------------------------------------------------
# Files


def test_the_page_and_its_own_files_are_served_with_their_types_and_a_strict_policy(client):
    status, response, page = client.request("GET", "/")
    assert status == 200 and response.getheader("Content-Type").startswith("text/html")
    for testid in ("play", "pause", "step", "reset", "dataset", "activation", "learning-rate", "add-layer",
                   "remove-layer", "epoch", "train-loss", "test-loss", "export-model", "export-script", "heatmap"):
        assert f'data-testid="{testid}"'.encode() in page
    assert "default-src 'self'" in response.getheader("Content-Security-Policy")
    status, response, script = client.request("GET", "/static/playground.js")
    assert status == 200 and response.getheader("Content-Type").startswith("text/javascript")
    assert b"http://" not in script and b"https://" not in script  # nothing is fetched from elsewhere


@pytest.mark.parametrize("path", [
    "/static/../server.py", "/static/%2e%2e/server.py", "/static/..%2f..%2fsettings.py", "/../../etc/passwd",
    "/static/", "/static", "/numnet/playground/server.py", "//etc/passwd", "/static/playground.js/..",
    "/static/./index.html", "/index.html/../../__init__.py", "/api/../static/index.html",
])
def test_paths_outside_the_static_folder_get_404(client, path):
    status, _, body = client.request("GET", path)
    assert status == 404 and "error" in body


def test_the_pages_menus_come_from_the_server_built_from_numnets_tables(client):
    from numnet.playground import settings as playground_settings

    page = client.request("GET", "/")[2].decode()

    def options(select_id):
        block = re.search(rf'<select id="{select_id}".*?</select>', page, re.S).group(0)
        return set(re.findall(r'<option value="([^"]+)"', block))

    # The page lists none of these itself (only the uploaded file's entry, which the page enables)
    assert options("activation") == options("optimizer") == options("loss") == set()
    assert options("dataset") == {"csv"}
    assert options("regularization") == set(playground_settings.REGULARIZATIONS)
    status, response, menus = client.request("GET", "/api/menus")
    assert status == 200 and response.getheader("Content-Type") == "application/json"

    def values(entries):
        return [entry["value"] for entry in entries]

    # numnet's activations once each (no "logistic" or "identity" aliases), without the output-only ones
    assert sorted(values(menus["activation"])) == ["gelu", "gelu_tanh", "leaky_relu", "linear", "relu", "sigmoid",
                                                   "tanh"]
    assert {"value": "relu", "label": "ReLU"} in menus["activation"]
    assert values(menus["optimizer"]) == sorted(OPTIMIZERS)
    assert values(menus["loss"]) == list(playground_settings.LOSSES)
    assert {"value": "binary_cross_entropy", "label": "binary cross-entropy"} in menus["loss"]
    datasets = menus["dataset"]
    assert values(datasets["classification"]) == list(playground_settings.CLASSIFICATION_DATASETS)
    assert values(datasets["regression"]) == list(playground_settings.REGRESSION_DATASETS)
    # Every choice served is one the settings accept
    for field in ("activation", "optimizer", "loss"):
        for value in values(menus[field]):
            assert getattr(parse_settings({field: value}), field) == value
    for problem, entries in datasets.items():
        for value in values(entries):
            loss = {"regression": {"loss": "mse"}}.get(problem, {})  # regression trains with mse only
            assert parse_settings({"problem": problem, "dataset": value, **loss}).dataset == value


# ---------------------------------------------------------------------------------------------------------
# Sessions, training and what the frames say


def test_dropout_batch_norm_and_l1_reach_the_network(client):
    frame = client.new_session(DROPOUT_SETUP)
    assert frame["network"]["layers"] == ["Dense", "BatchNorm", "Activation", "Dropout"] * 2 + ["Dense"]
    assert frame["network"]["layer_sizes"] == [2, 6, 4, 1]
    assert [layer["name"] for layer in frame["weights"]] == ["dense_0", "dense_4", "dense_8"]
    assert len(frame["neurons"]["layers"]) == 2  # one picture column per hidden layer, as without them
    trained = client.train(frame["session"], 3)
    assert all(len(record["gradients"]) == 3 for record in trained["records"])


def test_the_frames_findings_are_numnet_diagnose_on_the_exported_model_and_points(client, tmp_path):
    # Six sigmoid layers of 8: the first layer's gradient is about 1e-5 of the last's from epoch 0 on, the
    # vanishing-gradient lesson (switch to relu and it goes away).
    frame = client.new_session({"activation": "sigmoid", "hidden": [8] * 6})
    codes = {finding["code"]: finding for finding in frame["findings"]}
    assert codes["vanishing_gradient"]["layer"] == "dense_0" and codes["vanishing_gradient"]["advice"]
    model = loaded_model(client.model(frame["session"]), tmp_path)
    X = decode_float32(frame["data"]["train"]).reshape(-1, 2)
    labels = np.array(frame["data"]["train_labels"])
    assert frame["findings"] == [finding.to_dict() for finding in diagnose(model, X, labels)]
    relu = client.new_session({"activation": "relu", "hidden": [8] * 6})
    assert "vanishing_gradient" not in {finding["code"] for finding in relu["findings"]}


def test_a_learning_rate_of_10_is_diagnosed_while_training(client):
    session = client.new_session({"optimizer": "sgd", "learning_rate": 10})["session"]
    client.train(session, 30)
    time.sleep(1.1 * DOCTOR_INTERVAL_SECONDS)  # the doctor examines a training network at most this often
    frame = client.train(session, 1)
    codes = {finding["code"] for finding in frame["findings"]}
    assert "learning_rate_too_high" in codes, frame["findings"]


def test_the_doctor_reexamines_a_training_network_at_most_every_half_second():
    session = Session("doctor-timing", Settings(optimizer="sgd", learning_rate=10))
    first = session.examine(now=100.0)
    session.train(5)
    assert session.examine(now=100.0 + DOCTOR_INTERVAL_SECONDS / 2) is first  # too soon: the same findings
    fresh = session.examine(now=100.0 + 2 * DOCTOR_INTERVAL_SECONDS)
    assert fresh is not first and session._diagnosed[0] == 5


def test_a_new_session_has_the_default_setup_at_epoch_0(client):
    frame = client.new_session()
    assert frame["epoch"] == 0 and frame["records"] == []
    assert frame["settings"] == Settings().to_json()
    assert frame["network"]["layer_sizes"] == [2, 4, 2, 1]
    assert frame["network"]["activations"] == ["tanh", "tanh", "sigmoid"]
    assert len(decode_float32(frame["data"]["train"])) == 2 * 250 and len(frame["data"]["test_labels"]) == 250


def test_one_step_trains_exactly_one_epoch_and_records_each_epoch(client):
    session = client.new_session()["session"]
    assert client.train(session, 1)["epoch"] == 1
    frame = client.train(session, 3)
    assert frame["epoch"] == 4 and [record["epoch"] for record in frame["records"]] == [2, 3, 4]
    assert all(len(record["gradients"]) == 3 for record in frame["records"])  # one per weight matrix


def test_training_lowers_the_loss_and_learns_the_circle(client):
    first = client.new_session()
    frame = client.train(first["session"], 40)
    assert frame["current"]["train_loss"] < first["current"]["train_loss"] / 4
    assert frame["current"]["test_accuracy"] > 0.95


def test_the_reported_test_loss_is_binary_cross_entropy_of_the_exported_models_probabilities(client, tmp_path):
    frame = client.new_session({"dataset": "gauss", "noise": 0.3})
    session = frame["session"]
    trained = client.train(session, 5)
    network = loaded_model(client.model(session), tmp_path)
    test_points = decode_float32(frame["data"]["test"]).reshape(-1, 2)
    labels = np.array(frame["data"]["test_labels"], dtype=np.float64)
    p = network.predict_proba(plane_features(test_points, ["x", "y"]))[:, 0].astype(np.float64)
    expected = -np.mean(labels * np.log(p) + (1 - labels) * np.log(1 - p))
    assert trained["current"]["test_loss"] == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("setup", [
    {},
    {"dataset": "moons", "loss": "softmax_cross_entropy", "features": ["x", "y", "xy"], "activation": "sigmoid"},
    {"dataset": "xor", "loss": "mse", "hidden": [], "features": ["xy"]},
    {"problem": "regression", "dataset": "multigauss", "loss": "mse", "hidden": [8, 8], "activation": "relu"},
    DROPOUT_SETUP,
])
def test_the_exported_model_predicts_exactly_the_output_the_page_showed(client, tmp_path, setup):
    session = client.new_session(setup)["session"]
    frame = client.train(session, 3)
    network = loaded_model(client.model(session), tmp_path)
    output = frame["output"]
    shown = decode_float32(output["values"]).reshape(-1, output["n_outputs"])
    features = network.metadata["playground"]["features"]
    np.testing.assert_array_equal(network.forward(plane_features(grid_of(output), features)), shown)
    assert network.epochs_trained == 3


def run_script(directory, text):
    path = directory / "numnet_playground.py"
    path.write_text(text)
    return subprocess.run([sys.executable, path.name], cwd=directory, capture_output=True, text=True,
                          timeout=STARTUP_TIMEOUT_SECONDS)


@pytest.mark.parametrize("setup", [
    SPIRAL_SETUP,
    DROPOUT_SETUP,
    {"dataset": "moons", "loss": "mse", "optimizer": "rmsprop", "batch_size": 16, "train_fraction": 0.7},
    {"problem": "regression", "dataset": "plane", "loss": "mse", "noise": 0.2, "optimizer": "sgd",
     "learning_rate": 0.01, "hidden": [3]},
])
def test_the_exported_script_retrains_the_exported_model_bit_for_bit(client, tmp_path, setup):
    session = client.new_session(setup)["session"]
    client.train(session, 2)
    client.train(session, 3)  # two requests: the script's single fit must match them
    exported = loaded_model(client.model(session), tmp_path, "exported.npz")
    status, response, script = client.request("GET", f"/api/sessions/{session}/script.py")
    assert status == 200 and "attachment" in response.getheader("Content-Disposition")
    completed = run_script(tmp_path, script.decode())
    assert completed.returncode == 0, completed.stderr
    rebuilt = load_model(tmp_path / "playground-model.npz")
    assert rebuilt.layer_sizes == exported.layer_sizes and rebuilt.epochs_trained == 5
    for name, value in {**exported.parameters(), **exported.state()}.items():
        np.testing.assert_array_equal({**rebuilt.parameters(), **rebuilt.state()}[name], value, err_msg=name)


def test_two_sessions_trained_at_once_each_end_as_if_trained_alone(client):
    setups = [DROPOUT_SETUP, SPIRAL_SETUP]
    sessions = [client.new_session(setup)["session"] for setup in setups]
    errors = []

    def train(session):
        try:
            for _ in range(8):
                client.train(session, 1)
        except AssertionError as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=train, args=(session,)) for session in sessions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    for setup, session in zip(setups, sessions):
        alone = client.new_session(setup)["session"]
        client.train(alone, 8)
        together, separate = (np.load(io.BytesIO(client.model(name))) for name in (session, alone))
        for key in separate.files:
            if key.startswith(("parameters/", "state/")):
                np.testing.assert_array_equal(together[key], separate[key], err_msg=key)


def test_a_settings_change_restarts_at_epoch_0_and_keeps_the_points_unless_data_settings_change(client):
    frame = client.new_session()
    session = frame["session"]
    client.train(session, 2)
    status, _, changed = client.post(f"/api/sessions/{session}/settings", {"settings": {"activation": "relu"}})
    assert status == 200 and changed["epoch"] == 0 and changed["network"]["activations"][0] == "relu"
    assert changed["data"]["version"] == frame["data"]["version"]
    status, _, redrawn = client.post(f"/api/sessions/{session}/settings", {"settings": {"data_seed": 9}})
    assert redrawn["data"]["version"] == frame["data"]["version"] + 1
    assert redrawn["data"]["train"] != frame["data"]["train"]


def test_reset_starts_the_same_network_again_from_its_seed(client, tmp_path):
    session = client.new_session()["session"]
    initial = loaded_model(client.model(session), tmp_path, "initial.npz")
    client.train(session, 2)
    status, _, frame = client.post(f"/api/sessions/{session}/reset")
    assert status == 200 and frame["epoch"] == 0
    again = loaded_model(client.model(session), tmp_path, "again.npz")
    np.testing.assert_array_equal(again.flat_parameters, initial.flat_parameters)


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning", "ignore:invalid value:RuntimeWarning")
def test_a_diverged_run_stops_with_a_message_and_trains_again_after_reset(client):
    # (NumPy warns about the overflow that the engine's divergence guard then reports.)
    # Plain SGD at rate 10 on a regression: the weights overflow within a few steps.
    setup = {"problem": "regression", "dataset": "plane", "loss": "mse", "optimizer": "sgd", "learning_rate": 10,
             "hidden": [8, 8], "activation": "relu", "features": ["x2", "y2"]}
    session = client.new_session(setup)["session"]
    frame = client.train(session, 20)
    assert "diverged" in frame["divergence"]
    status, _, body = client.post(f"/api/sessions/{session}/train", {"epochs": 1})
    assert status == 409 and "reset" in body["error"]
    assert client.post(f"/api/sessions/{session}/reset")[0] == 200
    assert client.train(session, 1)["epoch"] <= 1  # 200, not 409: it trains again (and may diverge again)


def test_an_uploaded_csv_is_read_from_a_temporary_folder_that_is_removed(client, tmp_path, monkeypatch):
    import tempfile

    temporary = tmp_path / "temporary"
    temporary.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temporary))
    rng = np.random.default_rng(0)
    rows = "\n".join(f"{x:.3f},{y:.3f},{label}" for (x, y), label in
                     zip(rng.normal(size=(60, 2)) * 30 + 100, ["a", "b", "c"] * 20))
    session = client.new_session()["session"]
    status, _, frame = client.post(f"/api/sessions/{session}/upload",
                                   {"file_name": "mine.csv", "text": "width,height,kind\n" + rows})
    assert status == 200, frame
    assert frame["settings"]["dataset"] == "csv" and frame["settings"]["loss"] == "softmax_cross_entropy"
    assert frame["data"]["class_names"] == ["a", "b", "c"] and frame["output"]["n_outputs"] == 3
    points = np.concatenate([decode_float32(frame["data"]["train"]), decode_float32(frame["data"]["test"])])
    assert len(points) == 120 and np.abs(points).max() == pytest.approx(5.0)
    assert list(temporary.iterdir()) == []
    assert client.train(session, 2)["epoch"] == 2


@pytest.mark.parametrize(("text", "message"), [
    ("a,b,c,label\n1,2,3,0\n4,5,6,1\n", "3 feature columns"),
    ("x,y,label\n1,2,0\n3,oops,1\n", r"mine\.csv, line 3, column 'y'"),
    ("x,y,label\n1,2,0\n3,4,0\n", "1 classes"),
    ("", "no data"),
])
def test_a_bad_upload_gets_400_naming_the_users_file_and_changes_nothing(client, text, message):
    session = client.new_session()["session"]
    status, _, body = client.post(f"/api/sessions/{session}/upload", {"file_name": "mine.csv", "text": text})
    assert status == 400 and body["field"] == "file" and re.search(message, body["error"]), body
    assert "numnet-playground-" not in body["error"]  # not the temporary path
    assert client.request("GET", f"/api/sessions/{session}")[2]["settings"]["dataset"] == "circle"


# ---------------------------------------------------------------------------------------------------------
# Bad requests


BAD_SETTINGS = [
    ({"hidden": [4] * 7}, "hidden", "at most 6"),
    ({"hidden": [8, 65]}, "hidden[1]", "from 1 to 64"),
    ({"hidden": [0]}, "hidden[0]", "from 1 to 64"),
    ({"learning_rate": -0.1}, "learning_rate", "finite number"),
    ({"learning_rate": 0}, "learning_rate", "finite number"),
    ({"learning_rate": "fast"}, "learning_rate", "got a string"),
    ({"activation": "rleu"}, "activation", "did you mean 'relu'"),
    ({"activation": "softmax"}, "activation", "choose one of"),
    ({"dataset": "plane"}, "dataset", "regression data set"),
    ({"features": []}, "features", "non-empty"),
    ({"features": ["x", "x"]}, "features", "repeat"),
    ({"batch_size": 2.5}, "batch_size", "integer"),
    ({"seed": -1}, "seed", "integer from 0"),
    ({"noise": 0.9}, "noise", r"\[0, 0.5\]"),
    ({"dropout": 1.0}, "dropout", r"\[0, 0.9\]"),
    ({"batch_norm": "yes"}, "batch_norm", "true or false"),
    ({"colour": "red"}, "colour", "unknown setting"),
]


@pytest.mark.parametrize(("settings", "field", "message"), BAD_SETTINGS)
def test_out_of_range_settings_get_400_naming_the_field(client, settings, field, message):
    session = client.new_session()["session"]
    status, _, body = client.post(f"/api/sessions/{session}/settings", {"settings": settings})
    assert status == 400 and body["field"] == field and re.search(message, body["error"]), body
    assert body["error"].startswith(field)
    status, _, body = client.post("/api/sessions", {"settings": settings})
    assert status == 400 and body["field"] == field


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_a_nan_or_infinite_learning_rate_gets_400_naming_the_field(client, literal):
    body = f'{{"settings": {{"learning_rate": {literal}}}}}'.encode()
    status, _, answer = client.post("/api/sessions", body, {"Content-Type": "application/json"})
    assert status == 400 and answer["field"] == "learning_rate" and "finite" in answer["error"]


@pytest.mark.parametrize(("body", "headers", "status", "message"), [
    (b'{"settings": ', None, 400, "not valid JSON"),
    (b"[1, 2]", None, 400, "must be a JSON object"),
    (b"\xff\xfe", None, 400, "not UTF-8"),
    (b"[" * 100_000 + b"]" * 100_000, None, 400, "JSON"),
    (b'{"epochs": 0}', None, 400, "epochs"),
    (b'{"epochs": "3"}', None, 400, "epochs"),
    (b'{"epochs": 1, "seconds": -1}', None, 400, "seconds"),
    (b'{"epochs": 5000}', None, 400, "epochs"),
    (b'{"rate": 1}', None, 400, "rate: unknown field"),
    (b"{}", {"Content-Length": "abc"}, 400, "Content-Length"),
    (b"{}", {"Transfer-Encoding": "chunked"}, 411, "Content-Length"),
])
def test_malformed_training_requests_get_an_error_and_the_server_keeps_running(client, body, headers, status,
                                                                                message):
    session = client.new_session()["session"]
    answer_status, _, answer = client.post(f"/api/sessions/{session}/train", body, headers)
    assert answer_status == status and message in answer["error"], answer
    assert client.train(session, 1)["epoch"] == 1


def test_a_post_without_content_length_gets_411(client):
    with socket.create_connection(("127.0.0.1", client.port), timeout=REQUEST_TIMEOUT_SECONDS) as connection:
        connection.sendall(b"POST /api/sessions HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        connection.shutdown(socket.SHUT_WR)
        assert receive_all(connection).startswith(b"HTTP/1.1 411")


def test_a_body_over_1_mib_gets_413_without_being_read(client):
    with socket.create_connection(("127.0.0.1", client.port), timeout=REQUEST_TIMEOUT_SECONDS) as connection:
        connection.sendall(b"POST /api/sessions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %d\r\n\r\n{"
                           % (MiB + 1))
        answer = receive_all(connection)
    assert answer.startswith(b"HTTP/1.1 413") and b"1,048,576" in answer


def test_a_body_of_exactly_1_mib_is_accepted(client):
    session = client.new_session()["session"]
    body = b'{"epochs": 1}'
    status, _, frame = client.post(f"/api/sessions/{session}/train", body + b" " * (MiB - len(body)))
    assert status == 200 and frame["epoch"] == 1


@pytest.mark.parametrize(("method", "path", "status"), [
    ("GET", "/api/sessions/{session}/train", 405),
    ("POST", "/api/sessions/{session}/model.npz", 405),
    ("GET", "/api/sessions/{session}/weights", 404),
    ("GET", "/api/sessions/not-a-session", 404),
    ("GET", "/api/nothing", 404),
    ("DELETE", "/api/sessions/{session}", 501),
])
def test_wrong_methods_and_paths_get_json_errors(client, method, path, status):
    session = client.new_session()["session"]
    answer_status, _, body = client.request(method, path.format(session=session), b"" if method == "POST" else None)
    assert answer_status == status and body["error"]


def test_a_request_addressed_to_another_host_name_is_refused(client):
    status, _, body = client.request("GET", "/", headers={"Host": "attacker.example:80"})
    assert status == 403 and "--host" in body["error"]


# ---------------------------------------------------------------------------------------------------------
# Bounded sessions


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_a_session_idle_for_10_minutes_is_dropped_and_then_gets_404_with_a_message():
    clock = FakeClock()
    with running_server(SessionStore(clock=clock)) as running:
        kept, dropped = running.new_session()["session"], running.new_session()["session"]
        clock.now += 9 * 60
        running.train(kept, 1)
        clock.now += 61  # `dropped` is now idle for 10 minutes and 1 second, `kept` for 61 seconds
        status, _, body = running.post(f"/api/sessions/{dropped}/train", {"epochs": 1})
        assert status == 404 and "expired" in body["error"] and "reload" in body["error"]
        assert running.train(kept, 1)["epoch"] == 2


def test_at_most_32_sessions_are_kept_dropping_the_least_recently_used():
    store = SessionStore()
    with running_server(store) as running:
        first = running.new_session()["session"]
        second = running.new_session()["session"]
        others = [running.new_session()["session"] for _ in range(30)]
        running.train(first, 1)  # first is now more recently used than second
        running.new_session()
        assert len(store) == 32
        assert running.request("GET", f"/api/sessions/{second}")[0] == 404
        assert running.request("GET", f"/api/sessions/{first}")[0] == 200
        assert running.request("GET", f"/api/sessions/{others[-1]}")[0] == 200


def test_closing_a_session_drops_it(client):
    session = client.new_session()["session"]
    assert client.post(f"/api/sessions/{session}/close")[0] == 200
    assert client.request("GET", f"/api/sessions/{session}")[0] == 404


# ---------------------------------------------------------------------------------------------------------
# The command


def start_playground(*arguments):
    process = subprocess.Popen([sys.executable, "-m", "numnet", "playground", "--no-browser", *arguments],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = process.stdout.readline()
    match = re.search(r"http://([0-9.]+):(\d+)/", line)
    assert match, (line, process.stderr.read() if process.poll() is not None else "")
    return process, match.group(1), int(match.group(2))


def test_numnet_playground_serves_on_loopback_and_ctrl_c_exits_0_within_2_seconds_without_traceback():
    process, host, port = start_playground()
    try:
        assert host == "127.0.0.1"
        connection = http.client.HTTPConnection(host, port, timeout=REQUEST_TIMEOUT_SECONDS)
        connection.request("GET", "/")
        assert connection.getresponse().status == 200
        connection.close()
        stopping = time.perf_counter()
        process.send_signal(signal.SIGINT)
        status = process.wait(timeout=10)
        elapsed = time.perf_counter() - stopping
    finally:
        if process.poll() is None:
            process.kill()
    stdout, stderr = process.communicate()
    assert status == 0 and elapsed < SHUTDOWN_SECONDS, (status, elapsed)
    assert "Traceback" not in stderr and "stopped" in stdout


def test_numnet_playground_with_an_explicit_host_warns_that_others_can_reach_it():
    process, host, port = start_playground("--host", "127.0.0.2", "--port", "0")
    try:
        connection = http.client.HTTPConnection(host, port, timeout=REQUEST_TIMEOUT_SECONDS)
        connection.request("GET", "/", headers={"Host": "anything.example"})  # --host turns off the Host check
        assert host == "127.0.0.2" and connection.getresponse().status == 200
        connection.close()
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=10)
    stderr = process.stderr.read()
    assert "warning: --host 127.0.0.2" in stderr and "anyone" in stderr and "Traceback" not in stderr


def test_numnet_playground_refuses_a_port_above_65535():
    completed = subprocess.run([sys.executable, "-m", "numnet", "playground", "--no-browser", "--port", "70000"],
                               capture_output=True, text=True, timeout=STARTUP_TIMEOUT_SECONDS)
    assert completed.returncode == 1 and "--port must be" in completed.stderr


# ---------------------------------------------------------------------------------------------------------
# Fuzzing the request parsers


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10 ** 30, 10 ** 30) | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=8) | st.dictionaries(
        st.sampled_from(FIELD_NAMES) | st.text(max_size=10), children, max_size=8),
    max_leaves=30,
)
settings_dicts = st.dictionaries(st.sampled_from(FIELD_NAMES), json_values, max_size=6)


@FUZZ
@given(json_values | settings_dicts)
def test_the_settings_parser_returns_settings_or_a_settings_error_for_any_json(value):
    try:
        parsed = parse_settings(value)
    except SettingsError as error:
        assert str(error).startswith(error.field)
        return
    assert isinstance(parsed, Settings)
    assert 0 < parsed.learning_rate <= 10 and math.isfinite(parsed.learning_rate)
    assert len(parsed.hidden) <= 6 and all(1 <= count <= 64 for count in parsed.hidden)
    assert parse_settings(parsed.to_json()) == parsed  # what the page gets back reads back the same


@FUZZ
@given(json_values)
def test_the_train_and_upload_parsers_accept_or_refuse_with_a_settings_error(value):
    for parse in (parse_training_request, parse_upload_request):
        try:
            parse(value)
        except SettingsError:
            pass


HTTP_STATUSES = {200, 201, 400, 403, 404, 405, 411, 413, 414, 431, 501, 505}


@FUZZ
@given(method=st.sampled_from([b"GET", b"POST", b"PUT", b"G\x00T", b""]),
       path=st.sampled_from([b"/", b"/api/sessions", b"/static/../x", b"/api/sessions/abc/train", b"*"])
       | st.binary(max_size=40),
       headers=st.lists(st.binary(max_size=40), max_size=4),
       body=st.binary(max_size=100))
def test_the_server_answers_any_request_bytes_without_crashing(client, method, path, headers, body):
    request = method + b" " + path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"\r\n".join(headers) + b"\r\n\r\n" + body
    with socket.create_connection(("127.0.0.1", client.port), timeout=REQUEST_TIMEOUT_SECONDS) as connection:
        connection.sendall(request)
        connection.shutdown(socket.SHUT_WR)  # no more bytes will come: the server must answer now
        answer = receive_all(connection)
    if answer:  # (a blank request line gets no answer, as in every HTTP server)
        assert re.match(rb"HTTP/1\.[01] (\d{3}) ", answer), answer[:300]
        assert int(answer.split(b" ", 2)[1]) in HTTP_STATUSES, answer[:300]
    assert client.request("GET", "/")[0] == 200


@FUZZ
@given(body=json_values.map(lambda value: json.dumps(value).encode()) | st.binary(max_size=200))
def test_settings_requests_with_any_body_get_200_or_400(client, body):
    session = FUZZ_SESSION.setdefault("id", client.new_session()["session"])
    status, _, answer = client.post(f"/api/sessions/{session}/settings", body)
    assert status in (200, 400), answer


FUZZ_SESSION = {}

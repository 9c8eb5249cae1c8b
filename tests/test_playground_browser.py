"""numnet playground end to end in headless Chromium, driven by selenium as a person would use the page.

Needs Debian's ``chromium`` and ``chromium-driver`` packages and selenium (the test extra); without them the
tests skip, except under CI (CI=true), where a missing browser is a failure because .ci/run installs it.
Oracles: the exported model, loaded by numnet.load_model, must predict exactly the output the page holds
for its picture; the server's own description of the session's network must follow the page's controls.
"""

import io
import os
import re
import shutil
import time

import numpy as np
import pytest

from numnet.persistence import load_model
from numnet.preprocessing import plane_features
from test_playground import grid_of, running_server

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
CHROMIUM_ARGUMENTS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                      "--disable-background-networking", "--disable-component-update", "--no-first-run",
                      "--window-size=1400,1000")
# Generous on a busy 2-core machine: the page draws several pictures a second when idle.
WAIT_SECONDS = 30
POLL_SECONDS = 0.05
# Distinct colours a drawn heatmap has at least (orange, blue, their blends, the points); a blank or
# single-colour canvas has one or two.
MIN_HEATMAP_COLOURS = 50


def browser_missing():
    """Why the browser tests cannot run here, or None."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[test]')"
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.access(path, os.X_OK):
            return f"{path} is missing (apt-get install chromium chromium-driver)"
    return None


class Page:
    """The playground page in a browser, with helpers that wait for what a person would wait for."""

    def __init__(self, driver, client, downloads):
        self.driver = driver
        self.client = client
        self.downloads = downloads

    def open(self, query=""):
        self.driver.get(f"http://127.0.0.1:{self.client.port}/{query}")
        self.wait_for(lambda: self.frame() >= 1 and self.script("return window.numnetPlayground.state.frame !== null"))

    def element(self, testid):
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, f'[data-testid="{testid}"]')

    def text(self, testid):
        return self.element(testid).text

    def frame(self):
        return int(self.element("heatmap").get_attribute("data-frame") or 0)

    def epoch(self):
        text = self.text("epoch")
        assert re.fullmatch(r"\d+", text), f"epoch shows {text!r}, not a plain integer"
        return int(text)

    def loss(self, testid):
        text = self.text(testid)
        assert re.fullmatch(r"\d+\.\d+", text), f"{testid} shows {text!r}, not a plain decimal"
        return float(text)

    def select(self, testid, value):
        from selenium.webdriver.support.select import Select

        Select(self.element(testid)).select_by_value(value)

    def script(self, source, *arguments):
        return self.driver.execute_script(source, *arguments)

    def session(self):
        return self.script("return window.numnetPlayground.state.session")

    def wait_for(self, condition, what="the page"):
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline:
            if condition():
                return
            time.sleep(POLL_SECONDS)
        raise AssertionError(f"timed out waiting for {what}; the page says: {self.text('message')!r}")

    def wait_for_epoch_change(self, click):
        before = self.element("heatmap").get_attribute("data-frame")
        click()
        self.wait_for(lambda: self.element("heatmap").get_attribute("data-frame") != before, "a new picture")

    def downloaded(self, name):
        path = self.downloads / name
        self.wait_for(lambda: path.exists() and not list(self.downloads.glob("*.crdownload")), f"{name}")
        return path


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    reason = browser_missing()
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run the browser tests, but {reason}")
        pytest.skip(reason)
    from selenium import webdriver

    downloads = tmp_path_factory.mktemp("downloads")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (*CHROMIUM_ARGUMENTS, f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(argument)
    # Chromium holds back a .py download as "unconfirmed" unless Safe Browsing, which settles its checks, is on
    # (with no network it finds nothing against the file).
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                              "download.prompt_for_download": False,
                                              "safebrowsing.enabled": True})
    # The driver's path is given, so selenium never tries to download one.
    service = webdriver.ChromeService(executable_path=CHROMEDRIVER)
    with running_server() as client:
        driver = webdriver.Chrome(service=service, options=options)
        try:
            yield Page(driver, client, downloads)
        finally:
            driver.quit()


def test_play_raises_the_epoch_and_lowers_the_training_loss(page):
    page.open()
    start_epoch, start_loss = page.epoch(), page.loss("train-loss")
    page.element("play").click()
    page.wait_for(lambda: page.epoch() >= 15, "epoch 15")
    page.element("pause").click()
    time.sleep(0.3)  # let a picture already on its way arrive
    paused_at = page.epoch()
    assert start_epoch == 0 and paused_at >= 15
    assert page.loss("train-loss") < start_loss
    assert page.loss("test-loss") >= 0
    time.sleep(0.5)
    assert page.epoch() == paused_at  # paused: no more training


def test_step_trains_exactly_one_epoch(page):
    page.open()
    for expected in (1, 2, 3):
        page.wait_for_epoch_change(page.element("step").click)
        assert page.epoch() == expected


def test_the_menus_show_the_servers_choices_with_their_labels(page):
    page.open()
    menus = page.client.request("GET", "/api/menus")[2]
    shown = page.script("""const pairs = (select) => [...select.options].map((option) => [option.value, option.text]);
        const groups = (select) => [...select.querySelectorAll("optgroup")].map((group) =>
            [group.label, [...group.querySelectorAll("option")].map((option) => option.value)]);
        return {activation: pairs(arguments[0]), optimizer: pairs(arguments[1]), loss: pairs(arguments[2]),
                dataset: groups(arguments[3])};""",
                        *(page.element(testid) for testid in ("activation", "optimizer", "loss", "dataset")))
    for field in ("activation", "optimizer", "loss"):
        assert shown[field] == [[entry["value"], entry["label"]] for entry in menus[field]], field
    assert shown["dataset"] == [["Classification", [entry["value"] for entry in menus["dataset"]["classification"]]],
                                ["Regression", [entry["value"] for entry in menus["dataset"]["regression"]]],
                                ["Your file", ["csv"]]]


def test_changing_the_data_set_redraws_the_points(page):
    page.open()
    heatmap = page.element("heatmap")
    before = (heatmap.get_attribute("data-data-version"), page.script("return arguments[0].toDataURL()", heatmap))
    page.select("dataset", "spiral")
    page.wait_for(lambda: heatmap.get_attribute("data-data-version") != before[0], "the new points")
    assert "dataset=spiral" in page.driver.current_url
    assert heatmap.get_attribute("data-points") == "500"  # 250 training and 250 test points, all drawn
    assert page.script("return arguments[0].toDataURL()", heatmap) != before[1]
    info = page.client.request("GET", f"/api/sessions/{page.session()}")[2]
    assert info["settings"]["dataset"] == "spiral"


def test_changing_the_activation_while_paused_updates_the_url_and_the_network(page):
    page.open()
    page.wait_for_epoch_change(page.element("step").click)
    page.select("activation", "sigmoid")
    page.wait_for(lambda: "activation=sigmoid" in page.driver.current_url, "the URL")
    page.wait_for(lambda: page.epoch() == 0, "the new network at epoch 0")
    info = page.client.request("GET", f"/api/sessions/{page.session()}")[2]
    assert info["settings"]["activation"] == "sigmoid"
    assert info["network"]["activations"] == ["sigmoid", "sigmoid", "sigmoid"]  # two hidden layers, then P(1)
    assert info["network"]["epochs_trained"] == 0


def test_a_link_reproduces_the_setup(page):
    query = "?dataset=moons&hidden=8,5,3&activation=relu&features=x,y,xy&seed=4&learning_rate=0.01&batch_size=20"
    page.open(query)
    info = page.client.request("GET", f"/api/sessions/{page.session()}")[2]
    assert info["network"]["layer_sizes"] == [3, 8, 5, 3, 1]
    assert (info["settings"]["seed"], info["settings"]["learning_rate"], info["settings"]["batch_size"]) == (4, 0.01, 20)
    assert page.element("activation").get_attribute("value") == "relu"
    assert page.element("learning-rate").get_attribute("value") == "0.01"
    assert page.text("hidden-count") == "3 hidden layers"


def test_adding_and_removing_a_layer_changes_the_network(page):
    page.open()
    page.element("add-layer").click()
    page.wait_for(lambda: "hidden=4%2C2%2C2" in page.driver.current_url, "a third hidden layer")
    assert page.client.request("GET", f"/api/sessions/{page.session()}")[2]["network"]["layer_sizes"] == [2, 4, 2, 2, 1]
    page.element("remove-layer").click()
    page.element("remove-layer").click()
    page.wait_for(lambda: "hidden=4&" in page.driver.current_url, "one hidden layer")


def test_the_exported_model_predicts_exactly_what_the_page_showed(page):
    page.open("?dataset=xor&features=x,y,xy&hidden=5")
    for _ in range(3):
        page.wait_for_epoch_change(page.element("step").click)
    shown = np.array(page.script("return window.numnetPlayground.lastOutput()"), dtype=np.float32)
    output = page.script("const o = window.numnetPlayground.state.frame.output; "
                         "return {size: o.size, domain: o.domain, n_outputs: o.n_outputs}")
    page.element("export-model").click()
    network = load_model(page.downloaded("playground-model.npz"))
    predicted = network.forward(plane_features(grid_of(output), ["x", "y", "xy"]))
    np.testing.assert_array_equal(predicted.ravel(), shown)
    assert network.epochs_trained == 3
    page.element("export-script").click()
    script = page.downloaded("numnet_playground.py").read_text()
    assert "numnet.Network([3, 5, 1]" in script and "epochs=3" in script


def test_a_screenshot_of_the_heatmap_is_not_blank(page):
    import matplotlib.image

    page.open("?dataset=spiral&hidden=8,8&activation=relu")
    for _ in range(5):
        page.wait_for_epoch_change(page.element("step").click)
    pixels = matplotlib.image.imread(io.BytesIO(page.element("heatmap").screenshot_as_png), format="png")
    colours = np.unique((pixels[..., :3] * 255).astype(np.uint8).reshape(-1, 3), axis=0)
    assert pixels.shape[0] >= 300 and pixels.shape[1] >= 300
    assert len(colours) >= MIN_HEATMAP_COLOURS
    red, blue = pixels[..., 0], pixels[..., 2]
    assert (red > blue + 0.3).mean() > 0.05 and (blue > red + 0.3).mean() > 0.05  # orange and blue regions


def test_hovering_a_weight_line_shows_that_weight(page, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains

    page.open("?hidden=3")
    link = page.script("const l = window.numnetPlayground.state.links[4]; "
                       "return {x: (l.x1 + l.x2) / 2, y: (l.y1 + l.y2) / 2, name: l.name};")
    network = page.element("network")
    size = network.size
    ActionChains(page.driver).move_to_element_with_offset(
        network, int(link["x"] - size["width"] / 2), int(link["y"] - size["height"] / 2)).perform()
    page.wait_for(lambda: page.element("weight-tooltip").is_displayed(), "the tooltip")
    name, value = re.fullmatch(r"(.+) = (-?\d+\.\d{4})", page.text("weight-tooltip")).groups()
    model = tmp_path / "model.npz"
    model.write_bytes(page.client.model(page.session()))
    row, column = map(int, re.search(r"\[(\d+), (\d+)\]", name).groups())
    weight = load_model(model).parameters()[name.split("[")[0]][row, column]
    assert abs(float(value) - weight) <= 0.5e-4  # the tooltip rounds to four decimals


def test_the_doctors_findings_appear_in_plain_words_with_their_advice(page):
    page.open("?optimizer=sgd&learning_rate=10")
    assert page.text("findings") == "No problems found."
    shown = []

    def finding_shown():
        text = page.script("const item = document.querySelector("
                           "'[data-testid=findings] li[data-code=learning_rate_too_high]');"
                           "return item === null ? null : item.textContent;")
        if text:
            shown.append(text)
        return bool(text)

    page.element("play").click()
    page.wait_for(finding_shown, "the doctor's learning_rate_too_high")
    page.element("pause").click()
    assert shown[0].startswith("learning rate too high (")  # for training as a whole or for one layer
    assert "divide the learning rate by 10" in shown[0]  # the advice, as numnet.diagnose words it

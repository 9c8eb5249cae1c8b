"""Speed of numnet playground, measured in the page itself, in headless Chromium driven by selenium.

Run from the repository root (needs Debian's chromium and chromium-driver, and selenium)::

    python benchmarks/playground_speed.py                     # both setups, prints a Markdown table
    python benchmarks/playground_speed.py --screenshots docs  # also writes the README's screenshots

It starts ``python -m numnet playground --no-browser`` as a user does and opens the page. The page itself
measures with performance.now(): the time of every painted picture (taken in the requestAnimationFrame
callback after the picture was drawn, i.e. at the start of the frame that paints it), and, for a control's
change event, the time until the next painted picture that shows the change. Per setup the script

1. presses play and counts the pictures painted per second (after one second of warm-up);
2. while playing, switches the activation back and forth ``--changes`` times and records each latency;
3. pauses and does the same again.

Setups: the default (circle, 500 points, features x and y, 4-2 tanh, Adam 0.03, batches of 10) and the
issue's 6x8 network on the same 500 points (six hidden layers of 8 tanh neurons).
"""

import argparse
import json
import os
import pathlib
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time

SETUPS = {
    "default (4-2 tanh, 500 points)": "",
    "6x8 tanh on 500 points": "?hidden=8,8,8,8,8,8",
}
SCREENSHOTS = {
    "playground-circle.png": ("", 4.0),
    "playground-spiral.png": ("?dataset=spiral&noise=0.1&features=x,y,x2,y2,sinx,siny&hidden=8,8,6&activation=tanh"
                              "&learning_rate=0.01", 12.0),
    "playground-regression.png": ("?problem=regression&dataset=multigauss&loss=mse&hidden=8,8,8&activation=relu"
                                  "&learning_rate=0.01", 10.0),
}
CHROMIUM_ARGUMENTS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                      "--disable-background-networking", "--disable-component-update", "--no-first-run",
                      "--window-size=1400,1000")
SCREENSHOT_WINDOW = (1400, 1120)  # the whole page
WARM_UP_SECONDS = 1.0
PAUSE_BETWEEN_CHANGES_SECONDS = 0.3
WAIT_SECONDS = 30


def start_server():
    process = subprocess.Popen([sys.executable, "-m", "numnet", "playground", "--no-browser"],
                               stdout=subprocess.PIPE, text=True)
    return process, re.search(r"http://\S+/", process.stdout.readline()).group(0)


def start_browser(profile):
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in (*CHROMIUM_ARGUMENTS, f"--user-data-dir={profile}"):
        options.add_argument(argument)
    return webdriver.Chrome(service=webdriver.ChromeService(executable_path="/usr/bin/chromedriver"),
                            options=options)


def element(driver, testid):
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, f'[data-testid="{testid}"]')


def metrics(driver):
    return driver.execute_script("return window.numnetPlayground.metrics()")


def wait_for(condition):
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the page did not answer in time")
        time.sleep(0.02)


def open_page(driver, url):
    driver.get(url)
    wait_for(lambda: int(element(driver, "heatmap").get_attribute("data-frame") or 0) >= 1)


def update_rate(driver, seconds):
    """Pictures and epochs per second while playing, over ``seconds`` after the warm-up."""
    element(driver, "play").click()
    time.sleep(WARM_UP_SECONDS)
    start = metrics(driver)["paintLog"][-1]
    time.sleep(seconds)
    log = [entry for entry in metrics(driver)["paintLog"] if entry[0] > start[0]]
    elapsed = (log[-1][0] - start[0]) / 1000
    return len(log) / elapsed, (log[-1][1] - start[1]) / elapsed


def latencies(driver, changes):
    """Milliseconds from each activation change to the next painted picture that shows it."""
    from selenium.webdriver.support.select import Select

    activation = Select(element(driver, "activation"))
    measured = []
    for _ in range(changes):
        done = len(metrics(driver)["latencies"])
        activation.select_by_value("relu" if activation.first_selected_option.get_attribute("value") != "relu"
                                   else "tanh")
        wait_for(lambda: len(metrics(driver)["latencies"]) > done)
        measured.append(metrics(driver)["latencies"][-1])
        time.sleep(PAUSE_BETWEEN_CHANGES_SECONDS)
    return measured


def summary(values):
    ordered = sorted(values)
    return {"median": statistics.median(ordered), "p90": ordered[int(0.9 * (len(ordered) - 1))],
            "max": ordered[-1]}


def measure(driver, url, seconds, changes):
    results = {}
    for name, query in SETUPS.items():
        open_page(driver, url + query)
        pictures, epochs = update_rate(driver, seconds)
        playing = latencies(driver, changes)
        element(driver, "pause").click()
        time.sleep(PAUSE_BETWEEN_CHANGES_SECONDS)
        paused = latencies(driver, changes)
        results[name] = {"pictures_per_second": pictures, "epochs_per_second": epochs,
                         "latency_playing_ms": summary(playing), "latency_paused_ms": summary(paused)}
    return results


def take_screenshots(driver, url, folder):
    folder.mkdir(parents=True, exist_ok=True)
    driver.set_window_size(*SCREENSHOT_WINDOW)
    for name, (query, seconds) in SCREENSHOTS.items():
        open_page(driver, url + query)
        element(driver, "play").click()
        time.sleep(seconds)
        element(driver, "pause").click()
        time.sleep(0.5)
        driver.save_screenshot(str(folder / name))
        print(f"wrote {folder / name}")


def cpu_model():
    for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def print_table(results, load):
    print(f"CPU: {cpu_model()}, {os.cpu_count()} cores; headless Chromium; Python {platform.python_version()}; "
          f"1-minute load average {load[0]:.1f} before, {load[1]:.1f} after\n")
    print("| setup | pictures/s while playing | epochs/s | latency playing (median / p90 / max ms) "
          "| latency paused (median / p90 / max ms) |")
    print("|---|---:|---:|---:|---:|")
    for name, result in results.items():
        playing, paused = result["latency_playing_ms"], result["latency_paused_ms"]
        print(f"| {name} | {result['pictures_per_second']:.1f} | {result['epochs_per_second']:.0f} | "
              f"{playing['median']:.0f} / {playing['p90']:.0f} / {playing['max']:.0f} | "
              f"{paused['median']:.0f} / {paused['p90']:.0f} / {paused['max']:.0f} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="seconds of play per setup (default 8)")
    parser.add_argument("--changes", type=int, default=15, help="activation changes timed per state (default 15)")
    parser.add_argument("--json", type=pathlib.Path, help="also write the results to this JSON file")
    parser.add_argument("--screenshots", type=pathlib.Path, metavar="FOLDER",
                        help="write the README's screenshots into this folder")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    server, url = start_server()
    try:
        with tempfile.TemporaryDirectory() as profile:
            driver = start_browser(profile)
            try:
                results = measure(driver, url, args.seconds, args.changes)
                if args.screenshots:
                    take_screenshots(driver, url, args.screenshots)
            finally:
                driver.quit()
    finally:
        server.terminate()
        server.wait()
    load = (load_before, os.getloadavg()[0])
    print_table(results, load)
    if args.json:
        args.json.write_text(json.dumps({"cpu": cpu_model(), "load_average": load, "results": results}, indent=2))


if __name__ == "__main__":
    main()

"""Screenshots of pages of the built site in headless Chromium (Debian's chromium and chromedriver, selenium).

    python3 docs/_ext/screenshot.py site tutorials/e03-spiral.html docs/site-tutorial.png [--height 2400]

The page is opened from the file system (the site needs no server and no network), at a width of 1400
pixels; the screenshot is as tall as ``--height`` (default: the page's full height, at most 4000 pixels).
"""

import argparse
import pathlib
import tempfile

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM_ARGUMENTS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                      "--disable-background-networking", "--disable-component-update", "--no-first-run")
WIDTH = 1400
TALLEST = 4000


def screenshot(site, page, output, height=None):
    """Open ``site/page`` in headless Chromium and save a PNG screenshot to ``output``."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    with tempfile.TemporaryDirectory(prefix="numnet-chromium-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for argument in (*CHROMIUM_ARGUMENTS, f"--user-data-dir={profile}", f"--window-size={WIDTH},1000"):
            options.add_argument(argument)
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        try:
            driver.get((pathlib.Path(site).resolve() / page).as_uri())
            full = driver.execute_script("return document.documentElement.scrollHeight")
            driver.set_window_size(WIDTH, min(height or full, TALLEST))
            driver.save_screenshot(str(output))
        finally:
            driver.quit()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("site", help="the built site's folder")
    parser.add_argument("page", help="the page, relative to the site, e.g. tutorials/e03-spiral.html")
    parser.add_argument("output", help="the PNG file to write")
    parser.add_argument("--height", type=int, help="the window's height in pixels (default: the whole page)")
    arguments = parser.parse_args()
    screenshot(arguments.site, arguments.page, arguments.output, arguments.height)


if __name__ == "__main__":
    main()

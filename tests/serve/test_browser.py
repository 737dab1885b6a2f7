"""The explorer page in a real browser: Debian's chromium driven by Selenium against a live
server on a loopback port. Moves a slider, clicks the map, uploads two images, scores an
upload, checks a narrow screen, and saves screenshots.

Needs ``chromium`` and ``chromedriver`` (``apt-get install chromium chromium-driver``;
``make test`` installs them as root); skipped with that reason otherwise. Set
``VAEKIT_SCREENSHOTS=DIR`` to keep the screenshots.
"""

import os
import shutil
import socket
import threading
import time

import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed (pip install vaekit[serve])")
pytest.importorskip("selenium", reason="selenium is not installed (pip install vaekit[dev])")
import uvicorn
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from vaekit.serve import create_app

from test_api import digit_png, make_runs

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER),
                       reason="browser tests need Debian's chromium and chromium-driver "
                              "(apt-get install chromium chromium-driver, or make test as root)"),
]
WAIT = 60  # seconds: the map's t-SNE and a shared CPU can be slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    runs = make_runs(tmp_path_factory.mktemp("browser") / "runs")
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(runs), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "the server did not start"
    yield f"http://127.0.0.1:{port}", runs
    server.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-dev-shm-usage", "--window-size=1200,1500"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def screenshot(driver, tmp_path, name):
    path = tmp_path / name
    driver.save_screenshot(str(path))
    keep = os.environ.get("VAEKIT_SCREENSHOTS")
    if keep:
        os.makedirs(keep, exist_ok=True)
        shutil.copy(path, os.path.join(keep, name))
    return path


def until(driver, script, timeout=WAIT):
    """Wait until the JavaScript expression ``script`` is truthy; returns its value."""
    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(lambda d: d.execute_script(f"return {script}"))


PIXELS = """const img = document.getElementById(arguments[0]);
const c = document.createElement('canvas'); c.width = img.naturalWidth; c.height = img.naturalHeight;
const ctx = c.getContext('2d'); ctx.drawImage(img, 0, 0);
return Array.from(ctx.getImageData(0, 0, c.width, c.height).data);"""


def open_run_page(driver, base, run):
    driver.get(f"{base}/?run={run}")
    until(driver, f"window.vaekit && window.vaekit.detail && window.vaekit.detail.name === '{run}' "
                  "&& window.vaekit.stats.decodes >= 1")


def test_moving_a_slider_changes_the_decoded_image(server, browser, tmp_path):
    base, _ = server
    open_run_page(browser, base, "digits4")
    sliders = browser.find_elements(By.CSS_SELECTOR, ".dim-slider")
    assert [int(s.get_attribute("data-dim")) for s in sliders] == browser.execute_script(
        "return window.vaekit.detail.dims_by_kl")
    before = browser.execute_script(PIXELS, "decoded")
    decodes = browser.execute_script("return window.vaekit.stats.decodes")
    sliders[0].send_keys(*[Keys.ARROW_RIGHT] * 60)  # +1.2 on the most used dimension, one input event per key
    until(browser, f"window.vaekit.stats.decodes > {decodes} && Math.abs(window.vaekit.z["
                   f"{sliders[0].get_attribute('data-dim')}] - 1.2) < 1e-6 && !document.querySelector('#decode-time')"
                   ".textContent.includes('NaN')")
    time.sleep(0.5)  # the last queued decode
    assert browser.execute_script(PIXELS, "decoded") != before
    assert "decoded in" in browser.find_element(By.ID, "decode-time").text
    screenshot(browser, tmp_path, "explorer.png")


def test_clicking_the_map_decodes_that_point(server, browser):
    base, _ = server
    open_run_page(browser, base, "digits4")
    until(browser, "window.vaekit.map !== null && window.vaekit.map.points.length > 0")
    canvas = browser.find_element(By.ID, "map")
    size = canvas.size
    for i in range(20):  # a point with no neighbour drawn closer to it
        spot = browser.execute_script("return window.vaekit.pointOnCanvas(arguments[0])", i)
        ActionChains(browser).move_to_element_with_offset(
            canvas, round(spot["x"] - size["width"] / 2), round(spot["y"] - size["height"] / 2)).click().perform()
        picked = until(browser, "window.vaekit.picked !== null ? [window.vaekit.picked] : null", timeout=5)[0]
        if picked == i:
            break
    code = browser.execute_script("return window.vaekit.map.codes[window.vaekit.picked]")
    assert browser.execute_script("return window.vaekit.z") == pytest.approx(code)
    slider = browser.find_element(By.CSS_SELECTOR, ".dim-slider")
    assert float(slider.get_attribute("value")) == pytest.approx(code[int(slider.get_attribute("data-dim"))], abs=0.02)


def test_two_uploads_make_a_strip(server, browser, tmp_path):
    base, _ = server
    open_run_page(browser, base, "digits4")
    for name, k in (("a.png", 0), ("b.png", 1)):
        (tmp_path / name).write_bytes(digit_png(k, size=32))
    browser.find_element(By.ID, "file-a").send_keys(str(tmp_path / "a.png"))
    browser.find_element(By.ID, "file-b").send_keys(str(tmp_path / "b.png"))
    steps = int(browser.find_element(By.ID, "steps").get_attribute("value"))
    width = until(browser, "(() => { const s = document.getElementById('strip'); "
                           "return !s.hidden && s.complete && s.naturalWidth; })()")
    assert width == steps * 9 + 1  # steps 8x8 images with a 1-pixel border
    screenshot(browser, tmp_path, "interpolation.png")


def test_temperature_redraws_the_samples(server, browser):
    base, _ = server
    open_run_page(browser, base, "digits4")
    until(browser, "document.getElementById('samples').naturalWidth > 0")
    before = browser.execute_script(PIXELS, "samples")
    src = browser.find_element(By.ID, "samples").get_attribute("src")
    browser.execute_script("const t = document.getElementById('temperature'); t.value = 0.3; "
                           "t.dispatchEvent(new Event('input'));")
    until(browser, f"document.getElementById('samples').src !== '{src}' && document.getElementById('samples').complete")
    assert browser.execute_script(PIXELS, "samples") != before


def test_anomaly_upload_shows_score_and_threshold(server, browser, tmp_path):
    base, _ = server
    open_run_page(browser, base, "detector")
    assert browser.find_element(By.ID, "anomaly-card").is_displayed()
    (tmp_path / "one.png").write_bytes(digit_png(1))
    browser.find_element(By.ID, "anomaly-file").send_keys(str(tmp_path / "one.png"))
    text = until(browser, "(() => { const t = document.getElementById('anomaly-text').textContent; "
                          "return t.includes('threshold') && t; })()")
    assert text.startswith(("Anomalous", "Normal")) and "recon" in text
    screenshot(browser, tmp_path, "anomaly.png")


def test_narrow_screen_has_no_sideways_scroll(server, browser, tmp_path):
    base, _ = server
    browser.set_window_size(390, 900)
    try:
        open_run_page(browser, base, "digits4")
        assert browser.execute_script("return document.documentElement.scrollWidth <= "
                                      "document.documentElement.clientWidth + 1")
        screenshot(browser, tmp_path, "narrow.png")
    finally:
        browser.set_window_size(1200, 1500)

"""`convosim report`: the HTML file is opened in real headless Chromium (Debian's, installed by
scripts/setup) and every chart must have rendered: drawn bars in the page, and a screenshot of each
chart area that is not blank."""

from __future__ import annotations

import io
import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from convosim.cli import app
from convosim.runners.report import report_data

from conftest import EXAMPLES
from support import run, scenario_for

CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[object]:
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    assert shutil.which(CHROMIUM) and shutil.which(DRIVER), "run scripts/setup: it installs Debian's chromium"
    options = Options()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1280,1000",
        f"--user-data-dir={tmp_path / 'chromium'}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def _not_blank(png: bytes) -> tuple[float, int]:
    """(share of pixels that are not white, number of distinct colours) of a screenshot."""
    image = Image.open(io.BytesIO(png)).convert("RGB")
    colours = image.getcolors(maxcolors=1 << 24) or []
    inked = sum(count for count, rgb in colours if sum(rgb) < 720)
    return inked / (image.width * image.height), len(colours)


def test_the_report_renders_every_chart_in_headless_chromium(tmp_path: Path, browser) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    run_dir = tmp_path / "run"
    # a short turn limit rejects some sessions, so that the rejection chart has something to show
    run(scenario_for(EXAMPLES / "retail" / "scenario.yaml", sessions=40, rules={"max_turns": 7}), run_dir)
    result = CliRunner().invoke(app, ["report", str(run_dir)])
    assert result.exit_code == 0, result.output
    page = run_dir / "report.html"
    data = report_data(run_dir)
    assert data["status"]["accepted"] and data["reasons"], data["status"]
    expected = [
        "chart-turns",
        "chart-subgoals",
        "chart-tools",
        "chart-status",
        "chart-tags",
        "chart-reasons",
        "chart-diversity",
    ]

    browser.get(page.as_uri())
    wait = WebDriverWait(browser, 30, poll_frequency=0.2)
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".js-plotly-plot .main-svg")) >= len(expected))
    ids = [e.get_attribute("id") for e in browser.find_elements(By.CSS_SELECTOR, ".js-plotly-plot")]
    assert ids == expected
    for chart_id in expected:
        element = browser.find_element(By.ID, chart_id)
        drawn = browser.execute_script(
            "return [...arguments[0].querySelectorAll('.point path, .bars path')]"
            ".filter(p => p.getBBox().height > 0).length",
            element,
        )
        assert drawn > 0, f"{chart_id}: no bar was drawn"
        inked, colours = _not_blank(element.screenshot_as_png)
        assert inked > 0.02 and colours > 8, (chart_id, inked, colours)
    embedded = json.loads(browser.find_element(By.ID, "report-data").get_attribute("textContent"))
    assert embedded["sessions"] == 40 and embedded["status"] == dict(data["status"])
    text = browser.find_element(By.TAG_NAME, "table").text
    assert f"accepted {data['status']['accepted']}" in text
    fetched = browser.execute_script("return performance.getEntriesByType('resource').map(r => r.name)")
    assert fetched == [], "the report is self-contained: it loads nothing"
    assert not re.search(r"<(?:script|img|link)[^>]+(?:src|href)=", page.read_text())

"""Run pages: rendered from real runs' reports (tests/data/reports), every
observation and the plot present; and opened in headless Chromium, where
they draw without errors and without a single network request."""

import base64
import json
import os
import re
import shutil
from pathlib import Path

import pytest

from lab.reports import page, store

RECORDED = sorted((Path(__file__).parent / "data" / "reports").glob("*.json"))


@pytest.fixture(params=RECORDED, ids=[p.stem for p in RECORDED])
def rendered(request, tmp_path) -> tuple[dict, str]:
    report = store.load(request.param)
    out = page.render(report, tmp_path)
    return report, out.read_text()


def test_there_is_a_recorded_report_of_every_scenario():
    from lab.scenario import catalog
    assert {json.loads(p.read_text())["scenario"] for p in RECORDED} == set(catalog.shipped())


def test_the_page_shows_the_verdict_every_observation_and_the_plot(rendered):
    report, html = rendered
    assert f"verdict <b>{report['verdict']}</b>" in html
    assert f"expected <b>{report['expected']['verdict']}</b>" in html
    for o in report["observations"]:
        assert f"<b>{o['name']}</b>" in html
    for d in report.get("detectors", []):   # each detector rule with its judgement and every status change
        assert f"<b>{d['source']}/{d['reason']}</b>" in html and d["why"] in html
        for t in d["transitions"]:
            assert t["message"][:60] in html
    assert html.count("<svg") == 1
    assert html.count('id="PathCollection_') >= len(report["observations"])   # a mark for each observation
    # Self-contained: nothing is fetched when the page opens (links to upstream references are not fetched).
    assert "<script" not in html and "src=" not in html and "@import" not in html
    assert not re.search(r"url\((?!#)", html)   # the SVG's clip paths point inside the page only


def test_the_index_lists_runs_newest_first(tmp_path):
    for i, path in enumerate(RECORDED[:3]):
        target = tmp_path / path.name
        shutil.copy(path, target)
        os.utime(target, (1_000_000 + i, 1_000_000 + i))
    html = page.render_index(tmp_path).read_text()
    positions = [html.index(json.loads(p.read_text())["run"] if "run" in json.loads(p.read_text()) else p.stem)
                 for p in reversed(RECORDED[:3])]
    assert positions == sorted(positions)


chromium = shutil.which("chromium")
chromedriver = shutil.which("chromedriver")


@pytest.mark.skipif(not (chromium and chromedriver), reason="needs Debian's chromium and chromium-driver "
                    "(apt-get install chromium chromium-driver; the ci tox env installs them)")
def test_a_page_draws_in_headless_chromium_without_errors_or_network(tmp_path):
    pytest.importorskip("selenium", reason="needs the selenium package (the ci tox env installs it)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    report = store.load(next(p for p in RECORDED if "cookie-xenial-ga" in p.name))
    html_path = page.render(report, tmp_path)
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,2000"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(chromedriver), options=options)
    try:
        driver.get(html_path.as_uri())
        assert driver.title.startswith("cookie on xenial-ga")
        size = driver.execute_script("const s = document.querySelector('.timeline svg').getBoundingClientRect();"
                                     "return [s.width, s.height];")
        assert size[0] > 600 and size[1] > 300, size
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert errors == []
        requests = [json.loads(e["message"])["message"] for e in driver.get_log("performance")]
        urls = [m["params"]["request"]["url"] for m in requests if m["method"] == "Network.requestWillBeSent"]
        # The browser's own pages (chrome://) are not the network; the page itself is the only file.
        assert html_path.as_uri() in urls
        fetched = [u for u in urls if not u.startswith(("chrome://", "chrome-extension://", "about:", "data:"))]
        assert fetched == [html_path.as_uri()], fetched
        shot = base64.b64decode(driver.get_screenshot_as_base64())
        artifacts = Path(os.environ.get("NODELAB_ARTIFACTS_DIR") or tmp_path)
        artifacts.mkdir(parents=True, exist_ok=True)
        (artifacts / "report-page-cookie-xenial-ga.png").write_bytes(shot)
        assert len(shot) > 50_000
    finally:
        driver.quit()

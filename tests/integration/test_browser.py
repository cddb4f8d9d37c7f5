"""The published report opens in headless Chromium: every figure decodes, no console errors.

Needs Debian's ``chromium`` and ``chromium-driver`` (installed by .ci/run) and selenium; skipped
where they are absent.
"""

import shutil
from pathlib import Path

import pytest

from bench.cli import main
from bench.report.synthetic import write_synthetic
from bench.store import Store

REPORT = Path(__file__).resolve().parents[2] / "reports" / "classic-control" / "index.html"

webdriver = pytest.importorskip("selenium.webdriver")
CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="needs chromium and chromium-driver")


@pytest.fixture(scope="module")
def browser():
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ["--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1000"]:
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    yield driver
    driver.quit()


def _open_and_check(driver, page: Path, screenshot: Path) -> list:
    driver.get_log("browser")  # drop messages from earlier pages
    driver.get(page.as_uri())
    images = driver.execute_async_script(
        """
        const done = arguments[arguments.length - 1];
        Promise.all(Array.from(document.images).map(i => i.decode().then(() => true, () => false)))
          .then(() => done(Array.from(document.images).map(i => [i.getAttribute('src'), i.naturalWidth])));
        """
    )
    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []
    assert driver.save_screenshot(str(screenshot))
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    broken = [src for src, width in images if not width]
    assert broken == [], f"images that did not decode: {broken}"
    return images


@pytest.mark.parametrize(
    "suite, tasks", [("classic-control", 2), ("lunarlander", 1), ("ppo-vs-trpo", 4), ("ablations", 3)]
)
def test_published_classic_control_reports_open_with_every_figure(browser, tmp_path, suite, tasks):
    report = REPORT.parents[1] / suite / "index.html"
    assert report.is_file(), f"reports/{suite}/index.html is committed (bench report --suite {suite})"
    images = _open_and_check(browser, report, tmp_path / f"{suite}.png")
    names = {Path(src).stem for src, _ in images}
    assert {f"task{i}" for i in range(1, tasks + 1)} <= names  # learning curves of every task
    if tasks > 1:  # the aggregate over tasks, performance profiles, probability of improvement
        assert {"aggregate", "profiles", "improvement"} <= names


@pytest.mark.parametrize(
    "suite, kinds",
    [
        ("control-alignment", ("frontier", "temperature")),
        ("control-alignment-ablations", ("frontier", "efficiency")),
        ("control-alignment-relatives", ("frontier", "temperature")),
    ],
)
def test_published_control_alignment_reports_open_with_every_figure(browser, tmp_path, suite, kinds):
    report = REPORT.parents[1] / suite / "index.html"
    assert report.is_file(), f"reports/{suite} is committed (bench report --suite {suite})"
    images = _open_and_check(browser, report, tmp_path / f"{suite}.png")
    names = {Path(src).stem for src, _ in images}
    # per task: the frontier, then temperature (main suite) or data efficiency (ablations); frontier first
    assert {f"{kind}{i}" for kind in kinds for i in (1, 2, 3)} <= names
    assert Path(images[0][0]).stem == "frontier1"


def test_published_lm_sentiment_report_opens_with_frontier_temperatures_and_samples(browser, tmp_path):
    report = REPORT.parents[1] / "lm-sentiment" / "index.html"
    assert report.is_file(), "reports/lm-sentiment is committed (bench report --suite lm-sentiment)"
    images = _open_and_check(browser, report, tmp_path / "lm-sentiment.png")
    assert {"task1", "frontier1", "temperature1", "kl1"} <= {Path(src).stem for src, _ in images}
    from selenium.webdriver.common.by import By

    rows = browser.find_elements(By.CSS_SELECTOR, "table.samples tr")
    assert len(rows) >= 1 + 5  # header, five samples of pi_SFT and more
    # the page leads with the paper claims (the DPO paper's four), then the frontier figure
    verdicts = [td.text.split(":")[0] for td in browser.find_elements(By.CSS_SELECTOR, "td.verdict")]
    papers = [td.text for td in browser.find_elements(By.CSS_SELECTOR, "td.paper")] or [
        "Rafailov et al. 2023"
    ] * 4
    assert papers.count("Rafailov et al. 2023") == 4  # the DPO paper's four (other papers' claims may follow)
    assert set(verdicts) <= {"holds", "does not hold", "inconclusive"}
    assert Path(images[0][0]).stem == "frontier1"


def test_published_lm_summarization_report_opens_with_win_rates_kl_curves_and_samples(browser, tmp_path):
    report = REPORT.parents[1] / "lm-summarization" / "index.html"
    assert report.is_file(), "reports/lm-summarization is committed (bench report --suite lm-summarization)"
    images = _open_and_check(browser, report, tmp_path / "lm-summarization.png")
    names = {Path(src).stem for src, _ in images}
    assert {"frontier1", "temperature1", "winrate1", "kl1"} <= names
    from selenium.webdriver.common.by import By

    assert len(browser.find_elements(By.CSS_SELECTOR, "table.samples tr")) >= 1 + 5
    body = browser.find_element(By.TAG_NAME, "body").text
    assert "Win rate against the reference" in body and "T = 0.25" in body
    # the page leads with the paper claims (the DPO paper's four), then the frontier figure
    verdicts = [td.text.split(":")[0] for td in browser.find_elements(By.CSS_SELECTOR, "td.verdict")]
    papers = [td.text for td in browser.find_elements(By.CSS_SELECTOR, "td.paper")] or [
        "Rafailov et al. 2023"
    ] * 4
    assert papers.count("Rafailov et al. 2023") == 4  # the DPO paper's four (other papers' claims may follow)
    assert set(verdicts) <= {"holds", "does not hold", "inconclusive"}
    assert Path(images[0][0]).stem == "frontier1"


@pytest.mark.parametrize(
    "suite, kinds",
    [
        ("lm-sentiment-relatives", {"frontier1", "temperature1", "task1", "kl1"}),
        ("lm-summarization-relatives", {"frontier1", "temperature1", "winrate1", "kl1"}),
    ],
)
def test_published_lm_relatives_reports_lead_with_the_frontier(browser, tmp_path, suite, kinds):
    report = REPORT.parents[1] / suite / "index.html"
    assert report.is_file(), f"reports/{suite} is committed (bench report --suite {suite})"
    images = _open_and_check(browser, report, tmp_path / f"{suite}.png")
    assert kinds <= {Path(src).stem for src, _ in images}
    assert Path(images[0][0]).stem == "frontier1"


def test_report_with_frontiers_and_markup_in_names_opens_cleanly(browser, tmp_path):
    store = Store(tmp_path / "bench.sqlite")
    write_synthetic(store, labels=["ppo", "<script>alert(1)</script>"], seeds=3, alignment=True, failed=1)
    store.close()
    out = tmp_path / "report"
    args = ["report", "--store", str(tmp_path / "bench.sqlite"), "--suite", "synthetic", "-o", str(out), "-q"]
    assert main(args) == 0
    images = _open_and_check(browser, out / "index.html", tmp_path / "synthetic.png")
    assert any("frontier" in src for src, _ in images) and any("temperature" in src for src, _ in images)
    assert Path(images[0][0]).stem == "frontier1"  # an alignment report leads with the frontier
    # the label rendered as text: the page has no script element at all
    assert browser.execute_script("return document.scripts.length") == 0
    assert "<script>alert(1)</script>" in browser.find_element("tag name", "body").text


def test_published_dppo_scaling_report_opens_with_the_scaling_study(browser, tmp_path):
    report = REPORT.parents[1] / "dppo-scaling" / "index.html"
    assert report.is_file(), "reports/dppo-scaling is committed (bench report --suite dppo-scaling)"
    images = _open_and_check(browser, report, tmp_path / "dppo-scaling.png")
    assert {"task1", "scaling1"} <= {Path(src).stem for src, _ in images}
    from selenium.webdriver.common.by import By

    body = browser.find_element(By.TAG_NAME, "body").text
    assert "Scaling: LunarLander-v3" in body and "efficiency" in body
    assert "wall time to threshold" in body  # the learning claim, not only throughput


def test_leaderboard_page_over_three_submissions_sorts_and_filters(browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    files = []
    for i, labels in enumerate([["ppo", "pg"], ["ppo", "sb3-ppo"], ["dpo"]]):
        store = Store(tmp_path / f"s{i}.sqlite")
        write_synthetic(store, labels=labels, tasks=["CartPole-v1", "Pendulum-v1"], seeds=3, seed=i)
        store.close()
        csv = tmp_path / f"team{i}.csv"
        assert (
            main(
                ["export", "--store", str(tmp_path / f"s{i}.sqlite"), "--suite", "synthetic", "-o", str(csv)]
            )
            == 0
        )
        files += ["--results", str(csv)]
    page = tmp_path / "board.html"
    assert main(["leaderboard", *files, "--suite", "synthetic", "--format", "html", "-o", str(page)]) == 0
    browser.get_log("browser")
    browser.get(page.as_uri())
    assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []

    def column(i):
        rows = browser.find_elements(By.CSS_SELECTOR, "#board tbody tr")
        return [r.find_elements(By.TAG_NAME, "td")[i].text for r in rows if r.is_displayed()]

    assert len(column(1)) == 10  # 5 labels (ppo twice, kept apart by submission) x 2 tasks
    assert "ppo (team0)" in column(1) and "ppo (team1)" in column(1)
    heads = browser.find_elements(By.CSS_SELECTOR, "#board thead th")
    iqm_col = [h.text for h in heads].index("normalised IQM")
    heads[iqm_col].click()  # ascending
    values = [float(v) for v in column(iqm_col)]
    assert values == sorted(values) and values != [float(v) for v in column(iqm_col)][::-1]
    heads[iqm_col].click()  # descending
    assert [float(v) for v in column(iqm_col)] == sorted(values, reverse=True)
    browser.find_element(By.ID, "filter").send_keys("ppo (team1)")  # every word must match
    assert column(1) == ["ppo (team1)", "ppo (team1)"]
    Select(browser.find_element(By.ID, "task")).select_by_visible_text("Pendulum-v1")
    assert column(1) == ["ppo (team1)"] and column(0) == ["Pendulum-v1"]
    assert "1 of 10 rows shown" in browser.find_element(By.ID, "shown").text
    assert driver_screenshot(browser, tmp_path / "board.png")


def driver_screenshot(driver, path) -> bool:
    return driver.save_screenshot(str(path)) and path.read_bytes()[:4] == b"\x89PNG"

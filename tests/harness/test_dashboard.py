"""The champion dashboard: rendered from the review scenario, opened in headless Chromium."""

from pathlib import Path

import pytest

from harness.dashboard import render
from harness.svg import line_chart, score_bar
from tests.harness.conftest import copy_registry, run_cli

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def test_empty_dashboard_renders():
    html = render({"generated": "now", "tracking_uri": "sqlite:///x.db", "registry": "registry", "site": "22",
                   "champion": {"members": []}, "alias_version": None, "runs": []})
    assert "No champion yet" in html
    assert "No exported runs" in html


def test_text_is_escaped():
    html = render({"generated": "now", "tracking_uri": "<script>", "registry": "r", "site": "22",
                   "champion": {"members": []}, "alias_version": None, "runs": []})
    assert "<script>" not in html
    assert "&lt;script&gt;" in html


def test_chart_helpers_handle_missing_values():
    assert "no val/site_auc logged" in line_chart([], "val/site_auc")
    assert score_bar(None) == "&ndash;"
    assert "0.7500" in score_bar(0.75)


@pytest.fixture(scope="module")
def dashboard(registry_scenario, tracking_uri) -> dict:
    """The dashboard of the review scenario: two runs, one promoted, one rejected."""
    path = registry_scenario["work"] / "dashboard.html"
    result = run_cli("dashboard", "--out", path, "--registry", registry_scenario["registry"], "--tracking-uri", tracking_uri)
    return {"path": path, "result": result}


@pytest.mark.slow
def test_dashboard_command(dashboard):
    assert dashboard["result"].code == 0, dashboard["result"].err
    assert "2 run(s), 1 champion member(s)" in dashboard["result"].out


@pytest.mark.slow
def test_dashboard_flags_tampered_ledger(registry_scenario, tracking_uri, tmp_path):
    registry = copy_registry(registry_scenario, tmp_path)
    second = registry_scenario["second"]
    path = registry / "decisions" / f"{second}.yaml"
    path.write_text(path.read_text().replace("decision: reject", "decision: promote"))
    out = tmp_path / "dashboard.html"
    result = run_cli("dashboard", "--out", out, "--registry", registry, "--tracking-uri", tracking_uri)
    assert result.code == 0, result.err
    assert "the ledger and MLflow disagree" in result.err
    html = out.read_text(encoding="utf-8")
    assert 'id="disagreements"' in html
    assert f"run {second}: ledger entry was edited" in html
    assert 'id="disagreements"' not in (registry_scenario["work"] / "dashboard.html").read_text(encoding="utf-8")


@pytest.mark.slow
@pytest.mark.browser
def test_dashboard_in_chromium(registry_scenario, dashboard):
    sync_api = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} not found; run scripts/ensure_chromium.sh (make test does)")
    page_url = dashboard["path"].resolve().as_uri()
    messages, errors, requests = [], [], []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.on("console", lambda message: messages.append(f"{message.type}: {message.text}"))
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.on("request", lambda request: requests.append(request.url))
            page.goto(page_url, wait_until="load")
            champion = page.inner_text("#champion")
            timeline = page.inner_text("#timeline")
            gates = page.inner_text("#gates")
            charts = page.locator("svg.chart").count()
        finally:
            browser.close()

    assert [m for m in messages if m.startswith("error")] == [], messages
    assert errors == []
    assert requests == [page_url]
    assert registry_scenario["first"] in champion
    assert registry_scenario["second"] not in champion
    assert "reject" in timeline
    assert "promote" in timeline
    assert "pass" in gates
    assert charts >= 5  # the timeline plus two curves per run


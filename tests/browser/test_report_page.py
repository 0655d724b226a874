"""The experiment report as an experimenter sees it: Debian's Chromium opens
`/v1/experiments/{id}/report` on the real server and finds the charts and the arms,
with no request to any other host and no console error."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Request, expect

from tests.browser.conftest import ReportServer
from tests.conftest import ADMIN

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.slow]

ARTIFACTS = Path(__file__).parent / "artifacts"


class Watched:
    """What a page asked for and complained about while it was open."""

    def __init__(self, page: Page) -> None:
        self.hosts: list[str] = []
        self.errors: list[str] = []
        page.on("request", self._request)
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.errors.append(f"page error: {error}"))

    def _request(self, request: Request) -> None:
        self.hosts.append(urlsplit(request.url).netloc)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(message.text)


@contextlib.contextmanager
def report_page(
    browser: Browser, server: ReportServer, width: int, height: int
) -> Iterator[tuple[Page, Watched]]:
    """The experiment's report, loaded with the admin key in a window of this size."""
    page = browser.new_page(viewport={"width": width, "height": height})
    try:
        page.set_extra_http_headers(ADMIN)
        watched = Watched(page)
        response = page.goto(f"{server.base}/v1/experiments/{server.experiment}/report")
        assert response is not None
        assert response.status == 200
        yield page, watched
    finally:
        page.close()


def test_the_report_shows_a_forest_chart_per_metric_and_both_arms(
    browser: Browser, report_server: ReportServer
) -> None:
    with report_page(browser, report_server, 1280, 900) as (page, watched):
        check_laptop_layout(page, report_server)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)
    assert watched.hosts
    assert set(watched.hosts) == {urlsplit(report_server.base).netloc}, watched.hosts
    assert watched.errors == []


def check_laptop_layout(page: Page, report_server: ReportServer) -> None:
    metrics = [m["name"] for m in report_server.results["metrics"]]
    assert metrics == ["clicked", "pages"]
    for name in metrics:
        expect(page.locator(f'figure.forest[data-metric="{name}"] svg.wide')).to_be_visible()
        expect(page.locator(f'figure.forest[data-metric="{name}"] svg.compact')).to_be_hidden()
        arms = page.locator(f'table.arms[data-metric="{name}"] tbody th')
        expect(arms).to_have_text(["control", "treatment"])
    expect(page.locator("#exposure")).to_be_visible()
    expect(page.locator("#srm")).to_have_count(0)  # the banner shows only on a mismatch
    expect(page).to_have_title(f"Experiment {report_server.experiment} — Omotenashi")


def test_on_a_phone_the_compact_charts_show_and_nothing_overflows(
    browser: Browser, report_server: ReportServer
) -> None:
    with report_page(browser, report_server, 390, 844) as (page, watched):
        for name in ("clicked", "pages"):
            forest = page.locator(f'figure.forest[data-metric="{name}"]')
            expect(forest.locator("svg.compact")).to_be_visible()
            expect(forest.locator("svg.wide")).to_be_hidden()
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0
        assert watched.errors == []

"""Browser tests: Debian's Chromium driven by Playwright, and the real servers: one
with an experiment that simulated shoppers have run through, `omotenashi demo` with
its shop, the demo's engine without Redis, and a second site on another origin.

Chromium comes from the system (`apt-get install chromium`), never from Playwright's
downloads, so the tests run where nothing outside the machine can be reached. A
missing browser fails the run: a skipped browser test would hide that the report was
never looked at.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import http.server
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Playwright, sync_playwright

from engine.app import SNAPSHOT_FILE
from engine.client import OmotenashiClient
from tests.conftest import ADMIN, SITE_KEY, delete_prefix
from tests.e2e.test_cli_server import cli_env, omotenashi, stop, wait_healthy
from tests.support.redis_server import free_port
from training.simulator import Persona, Simulator, World
from training.traffic import drive

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
EXPERIMENT = "hero_test"
VISITORS = 240
# A shopper's click comes a moment after the page: by then the server's decision log
# (flushed every 50 ms) has counted the exposure the click is attributed to.
THINK_TIME_S = 0.15


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """Headless Chromium, one for every browser test. Not kept for the whole session:
    while Playwright's sync API is started it holds a running event loop in the main
    thread, and every async test collected after this package would fail to start its
    own."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: the browser tests need Debian's Chromium "
            "(apt-get install chromium); Playwright's own downloads are not used"
        )
    playwright: Playwright = sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()
    finally:
        playwright.stop()


@dataclass(frozen=True)
class ReportServer:
    base: str
    experiment: str
    results: dict[str, Any]  # the experiment's results when traffic ended


def persona(name: str, views: float, control_rate: float) -> Persona:
    return Persona(
        name=name,
        share=1.0,
        devices={"desktop": 0.6, "mobile": 0.4},
        interests={"shoes": 0.7, "bags": 0.3},
        views_per_visit=views,
        click_rates={"hero": {"a": control_rate, "b": control_rate * 1.5}},
        conversion_given_click=0.0,
        order_value=0.0,
    )


WORLD = World(
    personas=[persona("browser", 4.0, 0.3), persona("visitor", 1.0, 0.1)],
    items_by_category={c: [f"{c}-{i}" for i in range(10)] for c in ("shoes", "bags")},
)
SLOT = {"variants": [{"id": v, "content": {"title": v}} for v in ("a", "b")], "default": "a"}
DEFINITION = {
    "target": "slot:hero",
    "arms": [{"name": "control", "variant": "a"}, {"name": "treatment", "variant": "b"}],
    "metrics": [
        {"name": "clicked", "event": "click", "primary": True},
        {"name": "pages", "event": "page_view", "aggregation": "count"},
    ],
    "covariate": "page_views",
    "segments": ["phones"],
}
PHONES = {"when": {"attr": "context.device", "op": "eq", "value": "mobile"}}


async def seed(base: str) -> dict[str, Any]:
    """Define and start the experiment, drive shoppers through it, and wait until the
    server has counted every exposure; the results then."""
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        for path, body in (
            ("/v1/segments/phones", PHONES),
            ("/v1/slots/hero", SLOT),
            (f"/v1/experiments/{EXPERIMENT}", DEFINITION),
        ):
            (await http.put(path, headers=ADMIN, json=body)).raise_for_status()
        (await http.post(f"/v1/experiments/{EXPERIMENT}/start", headers=ADMIN)).raise_for_status()
        simulator = Simulator(WORLD, seed=21)
        async with OmotenashiClient(base, site_key=SITE_KEY, timeout_s=10) as engine:
            tally = await drive(
                engine,
                simulator,
                simulator.visitors(VISITORS),
                ["hero"],
                visits_per_visitor=2,
                seconds=60,
                concurrency=24,
                before_events=lambda: asyncio.sleep(THINK_TIME_S),
            )
        assert not tally.errors, tally.errors
        for _ in range(50):
            response = await http.get(f"/v1/experiments/{EXPERIMENT}/results", headers=ADMIN)
            found: dict[str, Any] = response.raise_for_status().json()
            if sum(found["srm"]["counts"].values()) == VISITORS:
                return found
            await asyncio.sleep(0.1)
    raise AssertionError(f"the server counted {found['srm']['counts']} of {VISITORS} visitors")


@pytest.fixture(scope="package")
def report_server(
    tmp_path_factory: pytest.TempPathFactory, redis_url: str
) -> Iterator[ReportServer]:
    """`omotenashi serve` on the test Redis (a prefix of its own, deleted afterwards)
    with one running experiment that simulated shoppers have been through."""
    prefix = "test-browser-" + uuid.uuid4().hex[:12]
    folder = tmp_path_factory.mktemp("browser")
    port = free_port()
    with (folder / "server.log").open("wb") as log:  # a file: a full pipe would stall it
        process = subprocess.Popen(
            omotenashi("serve", "--port", str(port)),
            env=cli_env(folder / "data", REDIS_URL=redis_url, OMOTENASHI_KEY_PREFIX=prefix),
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, process)
        # in a thread of its own: the browser's event loop may be running in this one
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            results = pool.submit(asyncio.run, seed(base)).result()
        yield ReportServer(base, EXPERIMENT, results)
    finally:
        assert stop(process) == 0
        stderr = (folder / "server.log").read_text()
        assert "Traceback" not in stderr, stderr
        delete_prefix(redis_url, prefix)


@dataclass(frozen=True)
class OtherSite:
    """A plain static site on another port: the same files from two origins."""

    port: int
    folder: Path

    @property
    def allowed(self) -> str:
        """The origin the engine's CORS setting lets in."""
        return f"http://localhost:{self.port}"

    @property
    def refused(self) -> str:
        """The same site under an origin the engine does not know."""
        return f"http://127.0.0.1:{self.port}"


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="package")
def other_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OtherSite]:
    """A second web server (Python's http.server in a thread) serving a test's pages."""
    folder = tmp_path_factory.mktemp("other-site")
    handler = functools.partial(QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield OtherSite(server.server_address[1], folder)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@dataclass(frozen=True)
class DemoServer:
    base: str
    data_dir: Path


DEMO_READY = "keeps serving"


@pytest.fixture(scope="package")
def demo_server(
    tmp_path_factory: pytest.TempPathFactory, redis_url: str, other_site: OtherSite
) -> Iterator[DemoServer]:
    """`omotenashi demo` on the test Redis (a prefix of its own, deleted afterwards),
    after its shop, returning customers, shoppers and recommender are in; its CORS
    setting allows the other site's `allowed` origin only."""
    prefix = "test-demo-" + uuid.uuid4().hex[:12]
    folder = tmp_path_factory.mktemp("demo")
    port = free_port()
    env = cli_env(
        folder / "data",
        REDIS_URL=redis_url,
        OMOTENASHI_KEY_PREFIX=prefix,
        OMOTENASHI_CORS_ORIGINS=other_site.allowed,
    )
    args = ("demo", "--port", str(port), "--visitors", "12", "--seconds", "1")
    out, err = folder / "demo.out", folder / "demo.log"
    with out.open("wb") as stdout, err.open("wb") as stderr:  # files: a full pipe would stall
        process = subprocess.Popen(omotenashi(*args), env=env, stdout=stdout, stderr=stderr)
    try:
        wait_for_line(out, DEMO_READY, process)
        base = f"http://127.0.0.1:{port}"
        assert f"{base}/demo " in out.read_text()  # the next steps lead to the shop
        yield DemoServer(base, folder / "data")
    finally:
        assert stop(process) == 0
        assert "Traceback" not in err.read_text(), err.read_text()
        delete_prefix(redis_url, prefix)


def wait_for_line(path: Path, text: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while text not in path.read_text():
        if process.poll() is not None:
            raise RuntimeError(f"exited with {process.returncode}: {path.read_text()}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"no {text!r} in 60 s: {path.read_text()}")
        time.sleep(0.1)


@pytest.fixture(scope="package")
def fallback_server(
    tmp_path_factory: pytest.TempPathFactory, demo_server: DemoServer
) -> Iterator[str]:
    """The demo's engine once more, pointed at a Redis port where nothing listens. It
    knows the demo's slots from the definitions snapshot the demo server wrote."""
    data = tmp_path_factory.mktemp("fallback") / "data"
    data.mkdir()
    shutil.copy(demo_server.data_dir / SNAPSHOT_FILE, data / SNAPSHOT_FILE)
    port = free_port()
    env = cli_env(data, REDIS_URL=f"redis://127.0.0.1:{free_port()}/0", OMOTENASHI_DEMO="true")
    log = data.parent / "server.log"
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            omotenashi("serve", "--port", str(port)),
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, process, path="/healthz")  # /readyz stays 503 without Redis
        yield base
    finally:
        assert stop(process) == 0
        assert "Traceback" not in log.read_text(), log.read_text()

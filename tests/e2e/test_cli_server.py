"""The real thing: `omotenashi serve` and `omotenashi demo` as subprocesses over HTTP."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from loadtests.run import Plan
from loadtests.run import run as run_load_test
from loadtests.targets import Keys
from tests.conftest import ADMIN, ADMIN_KEY, SECRET, SITE, SITE_KEY
from tests.integration.test_decide_api import HERO
from tests.support.redis_server import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def cli_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("OMOTENASHI_") and k not in ("REDIS_URL", "PROMETHEUS_MULTIPROC_DIR")
    }
    env.update(
        OMOTENASHI_DATA_DIR=str(data_dir),
        OMOTENASHI_ARTIFACTS_DIR=str(data_dir.parent / "artifacts"),
        OMOTENASHI_SITE_KEYS=SITE_KEY,
        OMOTENASHI_ADMIN_KEY=ADMIN_KEY,
        OMOTENASHI_SECRET=SECRET,
        **extra,
    )
    return env


def omotenashi(*args: str) -> list[str]:
    return [sys.executable, "-m", "engine", *args]


def wait_healthy(
    base: str, process: subprocess.Popen[bytes], timeout: float = 30, path: str = "/readyz"
) -> None:
    """Until the server answers `path` with 200 (`/healthz`: up, even without Redis)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            if httpx.get(f"{base}{path}", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError("server did not become ready")


def stop(process: subprocess.Popen[bytes]) -> int:
    process.send_signal(signal.SIGINT)
    try:
        return process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise


@pytest.fixture
def embedded_server(embedded: tuple[str, int]) -> str:
    return embedded[0]


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[tuple[str, int]]:
    """`omotenashi serve` with no REDIS_URL: it runs on its embedded Redis. Its base URL
    and pid."""
    port = free_port()
    process = subprocess.Popen(
        omotenashi("serve", "--port", str(port)),
        env=cli_env(tmp_path / "data"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, process)
        yield base, process.pid
    finally:
        assert stop(process) == 0
        assert process.stderr is not None
        stderr = process.stderr.read().decode()
        process.stderr.close()
        assert "Traceback" not in stderr, stderr
    assert (tmp_path / "data" / "redis.db").exists(), (stderr, list((tmp_path / "data").iterdir()))


def test_the_load_generator_measures_decide_and_the_servers_cpu(
    embedded: tuple[str, int],
) -> None:
    """A short, bounded run of the real tool: it sets decide up through the API, both
    phases answer without errors, and the worker's CPU per request is reported."""
    base, pid = embedded
    plan = Plan(base, "decide", seconds=1.0, concurrency=2, max_requests=400, rounds=1,
                server_pid=pid)  # fmt: skip
    result = run_load_test(plan, Keys(site=SITE_KEY, admin=ADMIN_KEY))
    for phase in ("bare", "decide"):
        assert result[phase]["errors"] == 0
        assert 0 < result[phase]["requests"] <= 400
        # the worker's threads (model loads, snapshots) count too: up to the 2 cores
        assert 0 < result[phase]["server_busy"] <= os.cpu_count()
        assert result[phase]["server_cpu_us"] > 0
    assert result["decide"]["server_cpu_us"] > result["bare"]["server_cpu_us"]
    assert 0 < result["ratio_rps"] < 1


def test_help_lists_the_commands() -> None:
    out = subprocess.run(omotenashi("--help"), capture_output=True, text=True, check=True).stdout
    assert "serve" in out
    assert "demo" in out


def test_serve_on_embedded_redis_end_to_end(embedded_server: str) -> None:
    with httpx.Client(base_url=embedded_server, timeout=5) as http:
        assert http.put("/v1/slots/hero", headers=ADMIN, json=HERO).status_code == 201
        events = {
            "events": [
                {"type": "page_view", "visitor_id": "e2e", "properties": {"category": "sports"}}
            ]
            * 2
        }
        assert http.post("/v1/events", headers=SITE, json=events).json()["accepted"] == 2
        decision = http.post(
            "/v1/decide", headers=SITE, json={"visitor_id": "e2e", "slots": ["hero"]}
        ).json()["decisions"][0]
        assert (decision["variant"], decision["policy"]) == ("sporty", "rules")

        assert http.post("/v1/decide", json={}).status_code == 401
        assert http.put("/v1/slots/hero", headers=SITE, json=HERO).status_code == 403
        bad = http.post(
            "/v1/decide", headers={**SITE, "Content-Type": "application/json"}, content=b"{oops"
        )
        assert bad.status_code == 400
        assert bad.json()["error"]["code"] == "malformed_request"
        assert "Traceback" not in bad.text
        assert http.get("/docs").status_code == 200
        assert "omotenashi_decisions_total" in http.get("/metrics").text


def test_several_workers_share_definitions_and_metrics(
    tmp_path: Path, redis_url: str, key_prefix: str
) -> None:
    port = free_port()
    process = subprocess.Popen(
        omotenashi("serve", "--port", str(port), "--workers", "2"),
        env=cli_env(tmp_path / "data", REDIS_URL=redis_url, OMOTENASHI_KEY_PREFIX=key_prefix),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, process)
        httpx.put(f"{base}/v1/slots/hero", headers=ADMIN, json=HERO).raise_for_status()
        time.sleep(1.0)  # the promise: every worker sees a change within one second
        body = {"visitor_id": "w", "slots": ["hero"], "context": {"device": "mobile"}}
        for _ in range(20):  # a new connection each time lands on either worker
            response = httpx.post(f"{base}/v1/decide", headers=SITE, json=body)
            assert response.json()["decisions"][0]["variant"] == "mobile"
        metrics = httpx.get(f"{base}/metrics").text
        assert 'omotenashi_decisions_total{policy="rules"} 20.0' in metrics
    finally:
        assert stop(process) == 0


def test_demo_drives_traffic_and_reports(tmp_path: Path) -> None:
    port = free_port()
    env = cli_env(tmp_path / "data")
    for name in ("OMOTENASHI_SITE_KEYS", "OMOTENASHI_ADMIN_KEY", "OMOTENASHI_SECRET"):
        del env[name]  # a newcomer's defaults: generated development secrets
    result = subprocess.run(
        omotenashi(
            "demo",
            "--port",
            str(port),
            "--visitors",
            "60",
            "--seconds",
            "3",
            "--exit-after-traffic",
        ),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "home_hero: shown (clicks) by persona" in out
    assert "sports_fan" in out
    assert "events accepted" in out
    assert f"http://127.0.0.1:{port}/docs" in out
    # the offline loop ran: the traffic was archived, a recommender trained and served
    assert "recommender: archived" in out
    assert "(trained):" in out
    assert "someone-new      (popular)" in out
    assert list((tmp_path / "artifacts" / "recs").iterdir())
    assert (tmp_path / "data" / "secrets.json").exists()
    assert (tmp_path / "data" / "redis.db").exists()


def test_demo_keeps_serving_until_ctrl_c(tmp_path: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        omotenashi("demo", "--port", str(port), "--visitors", "20", "--seconds", "2"),
        env=cli_env(tmp_path / "data"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stderr is not None
    try:
        for line in process.stdout:  # the report ends with where to find the engine
            if "keeps serving" in line:
                break
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
    finally:
        code = stop(process)
        stderr = process.stderr.read()
        process.stdout.close()
        process.stderr.close()
    assert code == 0
    assert "stopped" in stderr
    assert "Traceback" not in stderr
    assert (tmp_path / "data" / "redis.db").exists()

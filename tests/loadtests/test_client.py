"""The load generator against the calibration server: it counts what it should, stops at
its bounds, and refuses anything but this machine. No timing assertions: CI machines vary."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import uvloop

from loadtests.__main__ import main
from loadtests.calibrate import TinyServer
from loadtests.client import Run, build_request, hammer
from loadtests.run import Plan, loopback_address, run
from loadtests.stats import summarize
from loadtests.targets import Keys


@pytest.fixture(scope="module")
def tiny_server() -> Iterator[TinyServer]:
    with TinyServer(lifetime_s=120) as server:
        yield server


def drive(port: int, path: str, *, seconds: float, max_requests: int) -> Run:
    request = build_request("GET", path, f"127.0.0.1:{port}")
    result, _ = uvloop.run(
        hammer(
            "127.0.0.1",
            port,
            [request],
            seconds=seconds,
            concurrency=4,
            max_requests=max_requests,
        )
    )
    return result


def test_ok_responses_are_counted_without_errors(tiny_server: TinyServer) -> None:
    result = drive(tiny_server.port, "/healthz", seconds=1.0, max_requests=2_000_000)
    assert len(result.latencies_ns) > 0
    assert result.errors == 0
    assert result.statuses == {200: len(result.latencies_ns)}
    assert min(result.latencies_ns) > 0


def test_max_requests_stops_the_run_before_its_deadline(tiny_server: TinyServer) -> None:
    result = drive(tiny_server.port, "/healthz", seconds=60.0, max_requests=300)
    assert result.sent == 300
    assert len(result.latencies_ns) == 300
    assert result.errors == 0


def test_non_2xx_responses_are_errors(tiny_server: TinyServer) -> None:
    result = drive(tiny_server.port, "/missing", seconds=60.0, max_requests=50)
    assert len(result.latencies_ns) == 50
    assert result.errors == 50
    assert result.statuses == {404: 50}


@pytest.mark.parametrize(
    "base_url",
    [
        "http://10.0.0.1:8765",
        "http://192.168.1.5",
        "http://example.com:8765",
        "http://localhost.example.com:8765",
        "https://127.0.0.1:8765",
        "127.0.0.1:8765",
    ],
)
def test_non_loopback_base_urls_are_refused(base_url: str) -> None:
    with pytest.raises(ValueError, match="only"):
        loopback_address(base_url)


def test_refused_before_any_setup_request() -> None:
    plan = Plan("http://10.0.0.1:8765", "decide", seconds=1, concurrency=4, max_requests=10)
    with pytest.raises(ValueError, match="this machine only"):
        run(plan, Keys(site="site", admin="admin"))


def test_cli_refuses_a_remote_base_url(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OMOTENASHI_SITE_KEY", "site")
    monkeypatch.setenv("OMOTENASHI_ADMIN_KEY", "admin")
    argv = ["run", "--base-url", "http://10.0.0.1:8765", "--target", "decide", "--seconds", "1"]
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    assert "this machine only" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("base_url", "expected"),
    [
        ("http://127.0.0.1:8765", ("127.0.0.1", 8765, "127.0.0.1:8765")),
        ("http://localhost:8765", ("127.0.0.1", 8765, "localhost:8765")),
        ("http://[::1]:8765", ("::1", 8765, "[::1]:8765")),
    ],
)
def test_loopback_base_urls_are_accepted(base_url: str, expected: tuple[str, int, str]) -> None:
    assert loopback_address(base_url) == expected


@pytest.mark.parametrize(
    ("seconds", "max_requests"), [(301.0, 10), (0.0, 10), (1.0, 0), (1.0, 10**9)]
)
def test_runs_out_of_bounds_are_refused(seconds: float, max_requests: int) -> None:
    plan = Plan("http://127.0.0.1:1", "decide", seconds, concurrency=4, max_requests=max_requests)
    with pytest.raises(ValueError, match="must be in"):
        run(plan, Keys(site="site", admin="admin"))


def test_percentiles_match_numpy_on_known_latencies() -> None:
    latencies_ms = np.arange(1, 101, dtype=np.float64)  # 1..100 ms
    rng = np.random.default_rng(7)
    shuffled = rng.permutation(latencies_ms)
    result = Run(deadline=0.0, max_requests=100, latencies_ns=[int(v * 1e6) for v in shuffled])
    summary = summarize(result, elapsed_s=2.0)
    assert summary.p50_ms == pytest.approx(50.5)
    assert summary.p99_ms == pytest.approx(99.01)
    assert summary.p90_ms == pytest.approx(float(np.percentile(latencies_ms, 90)))
    assert summary.max_ms == pytest.approx(100.0)
    assert summary.requests == 100
    assert summary.rps == pytest.approx(50.0)


def test_request_bytes_carry_length_and_keep_alive() -> None:
    request = build_request("POST", "/v1/decide", "127.0.0.1:1", {"X-Api-Key": "k"}, b"{}")
    head, body = request.split(b"\r\n\r\n")
    assert head.startswith(b"POST /v1/decide HTTP/1.1\r\n")
    assert b"\r\nContent-Length: 2" in head
    assert b"\r\nConnection: keep-alive" in head
    assert body == b"{}"


def test_a_hang_up_before_the_response_is_an_error(tiny_server: TinyServer) -> None:
    result = drive(tiny_server.port, "/close", seconds=60.0, max_requests=50)
    assert result.latencies_ns == []
    assert result.errors == 4  # one per connection, each of which then ends
    assert result.sent == 4


def test_a_closed_port_fails_without_leaking_connections() -> None:
    with TinyServer(lifetime_s=10) as server:
        port = server.port
    with pytest.raises(ConnectionRefusedError):
        drive(port, "/healthz", seconds=1.0, max_requests=10)

"""Server CPU per request: read from /proc for the process the generator drives."""

from __future__ import annotations

import os
import time

import pytest
import uvloop

from loadtests.calibrate import TinyServer
from loadtests.client import build_request, hammer
from loadtests.cpu import CpuSample, per_request, process_cpu_s, sample
from loadtests.run import Plan, check_plan


def test_a_process_cpu_grows_with_its_work() -> None:
    user_before, _ = process_cpu_s(os.getpid())
    deadline = time.process_time() + 0.3
    while time.process_time() < deadline:
        sum(range(1000))
    user_after, _ = process_cpu_s(os.getpid())
    assert user_after - user_before >= 0.2  # clock ticks are 10 ms: a generous margin


def test_the_driven_server_is_seen_busy_and_its_cost_per_request_reported() -> None:
    with TinyServer(lifetime_s=60) as server:
        request = build_request("GET", "/healthz", f"127.0.0.1:{server.port}")
        before = sample(server.process.pid)
        run, elapsed = uvloop.run(
            hammer(
                "127.0.0.1",
                server.port,
                [request],
                seconds=1.5,
                concurrency=4,
                max_requests=1_000_000,
            )
        )
        spent = sample(server.process.pid) - before
    figures = per_request(spent, len(run.latencies_ns), elapsed)
    assert spent.server_user_s + spent.server_system_s > 0.05  # it answered thousands
    assert 0 < figures["server_busy"] <= 1.05  # one thread: at most one core
    assert figures["server_cpu_us"] == pytest.approx(
        figures["server_user_us"] + figures["server_system_us"], abs=0.2
    )
    assert figures["generator_cpu_us"] > 0


def test_per_request_figures_are_plain_arithmetic() -> None:
    spent = CpuSample(server_user_s=0.3, server_system_s=0.1, generator_s=0.05)
    assert per_request(spent, 2000, 0.5) == {
        "server_cpu_us": 200.0,
        "server_user_us": 150.0,
        "server_system_us": 50.0,
        "server_busy": 0.8,
        "generator_cpu_us": 25.0,
    }
    assert per_request(spent, 0, 0.5) == {}


def test_a_server_pid_with_no_process_is_refused_before_any_request() -> None:
    plan = Plan("http://127.0.0.1:9", "decide", 1.0, 4, 100, server_pid=2**22 + 12345)
    with pytest.raises(ValueError, match="no process"):
        check_plan(plan)

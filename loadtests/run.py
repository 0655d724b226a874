"""One load test: set up, warm up, then measure the bare endpoint and the target."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import uvloop

from loadtests.client import Run, hammer
from loadtests.cpu import NO_CPU, per_request, sample
from loadtests.stats import summarize
from loadtests.targets import TARGETS, Keys, bare_requests

MAX_SECONDS = 300.0
MAX_REQUESTS = 5_000_000
MAX_CONCURRENCY = 256
WARMUP_S = 1.0


@dataclass(frozen=True)
class Plan:
    """`seconds` per endpoint, split in `rounds` alternating slices: this machine's
    speed drifts by tens of percent over seconds, and alternating makes both
    endpoints see the same drift, so their ratio holds still."""

    base_url: str
    target: str
    seconds: float
    concurrency: int
    max_requests: int
    rounds: int = 5
    server_pid: int | None = None  # the worker's, to report its CPU per request


def loopback_address(base_url: str) -> tuple[str, int, str]:
    """(ip, port, Host header) of a loopback URL; refuses anything else.

    Only `localhost` and literal loopback addresses pass, with no DNS lookup, so no
    name can point the generator at another machine."""
    parts = urlsplit(base_url)
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"{base_url!r}: only http://<loopback>:<port> is allowed")
    name = parts.hostname
    try:
        ip = ipaddress.ip_address("127.0.0.1" if name == "localhost" else name)
    except ValueError:
        ip = None
    if ip is None or not ip.is_loopback:
        raise ValueError(
            f"{base_url!r}: load tests target this machine only (127.0.0.1, localhost, ::1)"
        )
    port = parts.port or 80
    host = f"[{name}]" if ip.version == 6 else name
    return str(ip), port, f"{host}:{port}"


def check_plan(plan: Plan) -> None:
    if not 0 < plan.seconds <= MAX_SECONDS:
        raise ValueError(f"--seconds must be in (0, {MAX_SECONDS:g}]")
    if not 0 < plan.max_requests <= MAX_REQUESTS:
        raise ValueError(f"--max-requests must be in (0, {MAX_REQUESTS}]")
    if not 1 <= plan.concurrency <= MAX_CONCURRENCY:
        raise ValueError(f"--concurrency must be 1..{MAX_CONCURRENCY}")
    if not 1 <= plan.rounds <= 100:
        raise ValueError("--rounds must be 1..100")
    if plan.server_pid is not None:
        sample(plan.server_pid)  # refuses a pid with no process here
    if plan.target not in TARGETS:
        raise ValueError(f"unknown target {plan.target!r}; known: {', '.join(TARGETS)}")


def run(plan: Plan, keys: Keys) -> dict[str, Any]:
    check_plan(plan)
    ip, port, host = loopback_address(plan.base_url)
    target = TARGETS[plan.target]
    with httpx.Client(base_url=plan.base_url, timeout=10) as client:
        target.setup(client, keys)
    phases = {"bare": bare_requests(host, keys), plan.target: target.requests(host, keys)}
    for requests in phases.values():  # warm up both, unmeasured
        uvloop.run(
            hammer(
                ip,
                port,
                requests,
                seconds=WARMUP_S,
                concurrency=plan.concurrency,
                max_requests=plan.max_requests,
            )
        )
    runs = {name: Run(deadline=0.0, max_requests=plan.max_requests) for name in phases}
    elapsed = dict.fromkeys(phases, 0.0)
    cpu = dict.fromkeys(phases, NO_CPU)
    pid = plan.server_pid
    for _ in range(plan.rounds):
        for name, requests in phases.items():
            budget = plan.max_requests - len(runs[name].latencies_ns)
            if budget <= 0:
                continue
            before = sample(pid) if pid is not None else NO_CPU
            part, took = uvloop.run(
                hammer(
                    ip,
                    port,
                    requests,
                    seconds=plan.seconds / plan.rounds,
                    concurrency=plan.concurrency,
                    max_requests=budget,
                )
            )
            if pid is not None:
                cpu[name] += sample(pid) - before
            runs[name].latencies_ns += part.latencies_ns
            runs[name].errors += part.errors
            elapsed[name] += took
    bare, measured = (summarize(runs[name], elapsed[name]) for name in phases)
    bare_json, target_json = bare.to_json(), measured.to_json()
    if pid is not None:
        bare_json.update(per_request(cpu["bare"], bare.requests, bare.seconds))
        target_json.update(per_request(cpu[plan.target], measured.requests, measured.seconds))
    if target.items_per_request > 1:
        target_json["items_per_request"] = target.items_per_request
        target_json["items_per_s"] = round(measured.rps * target.items_per_request, 1)
    return {
        "bare": bare_json,
        plan.target: target_json,
        "ratio_rps": round(measured.rps / bare.rps, 3) if bare.rps else None,
        "concurrency": plan.concurrency,
        "seconds": plan.seconds,
        "rounds": plan.rounds,
    }

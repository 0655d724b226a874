"""One load test: set up, warm up, then measure the bare endpoint and the target."""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import uvloop

from loadtests.client import hammer
from loadtests.stats import PhaseResult, summarize
from loadtests.targets import TARGETS, Keys, bare_requests

MAX_SECONDS = 300.0
MAX_REQUESTS = 5_000_000
WARMUP_S = 1.0


@dataclass(frozen=True)
class Plan:
    base_url: str
    target: str
    seconds: float
    concurrency: int
    max_requests: int


def loopback_address(base_url: str) -> tuple[str, int, str]:
    """(ip, port, Host header) of a loopback URL; refuses anything else."""
    parts = urlsplit(base_url)
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"{base_url!r}: only http://<loopback>:<port> is allowed")
    try:
        ip = ipaddress.ip_address(socket.gethostbyname(parts.hostname))
    except (OSError, ValueError) as exc:
        raise ValueError(f"{base_url!r}: cannot resolve {parts.hostname}") from exc
    if not ip.is_loopback:
        raise ValueError(f"{base_url!r}: load tests target this machine's loopback only")
    port = parts.port or 80
    return str(ip), port, f"{parts.hostname}:{port}"


def check_plan(plan: Plan) -> None:
    if not 0 < plan.seconds <= MAX_SECONDS:
        raise ValueError(f"--seconds must be in (0, {MAX_SECONDS:g}]")
    if not 0 < plan.max_requests <= MAX_REQUESTS:
        raise ValueError(f"--max-requests must be in (0, {MAX_REQUESTS}]")
    if not 1 <= plan.concurrency <= 256:
        raise ValueError("--concurrency must be 1..256")
    if plan.target not in TARGETS:
        raise ValueError(f"unknown target {plan.target!r}; known: {', '.join(TARGETS)}")


def run(plan: Plan, keys: Keys) -> dict[str, Any]:
    check_plan(plan)
    ip, port, host = loopback_address(plan.base_url)
    target = TARGETS[plan.target]
    with httpx.Client(base_url=plan.base_url, timeout=10) as client:
        target.setup(client, keys)
    phases = {"bare": bare_requests(host, keys), plan.target: target.requests(host, keys)}
    results: dict[str, PhaseResult] = {}
    for name, requests in phases.items():
        uvloop.run(_measure(ip, port, requests, WARMUP_S, plan.concurrency, plan.max_requests))
        results[name] = uvloop.run(
            _measure(ip, port, requests, plan.seconds, plan.concurrency, plan.max_requests)
        )
    bare, measured = results["bare"], results[plan.target]
    return {
        "bare": bare.to_json(),
        plan.target: measured.to_json(),
        "ratio_rps": round(measured.rps / bare.rps, 3) if bare.rps else None,
        "concurrency": plan.concurrency,
        "seconds": plan.seconds,
    }


async def _measure(
    ip: str, port: int, requests: list[bytes], seconds: float, concurrency: int, max_requests: int
) -> PhaseResult:
    result, elapsed = await hammer(
        ip, port, requests, seconds=seconds, concurrency=concurrency, max_requests=max_requests
    )
    return summarize(result, elapsed)

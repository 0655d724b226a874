"""Summaries of a measured phase: throughput and latency percentiles."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from loadtests.client import Run


@dataclass(frozen=True)
class PhaseResult:
    requests: int
    errors: int
    seconds: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float

    def to_json(self) -> dict[str, Any]:
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in asdict(self).items()}


def summarize(run: Run, elapsed_s: float) -> PhaseResult:
    latencies = np.asarray(run.latencies_ns, dtype=np.float64) / 1e6
    if latencies.size == 0:
        latencies = np.asarray([np.nan])
    p50, p90, p99 = np.percentile(latencies, [50, 90, 99])
    done = len(run.latencies_ns)
    return PhaseResult(
        requests=done,
        errors=run.errors,
        seconds=elapsed_s,
        rps=done / elapsed_s if elapsed_s > 0 else 0.0,
        p50_ms=float(p50),
        p90_ms=float(p90),
        p99_ms=float(p99),
        max_ms=float(np.max(latencies)),
    )

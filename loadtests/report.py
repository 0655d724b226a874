"""A readable table of a load test, for the terminal."""

from __future__ import annotations

from typing import Any

COLUMNS = ("requests", "errors", "rps", "p50_ms", "p90_ms", "p99_ms", "max_ms")


def table(result: dict[str, Any]) -> str:
    phases = [(name, value) for name, value in result.items() if isinstance(value, dict)]
    lines = [f"{'endpoint':<16}" + "".join(f"{c:>12}" for c in COLUMNS)]
    for name, phase in phases:
        lines.append(f"{name:<16}" + "".join(_cell(phase[c]) for c in COLUMNS))
    for name, phase in phases:
        if "items_per_s" in phase:
            lines.append(
                f"{name}: {phase['items_per_s']:,.0f} per second"
                f" ({phase['items_per_request']} per request)"
            )
    for name, phase in phases:
        if "server_cpu_us" in phase:
            lines.append(
                f"{name}: server {phase['server_cpu_us']:.0f} us CPU per request"
                f" (user {phase['server_user_us']:.0f}, system {phase['server_system_us']:.0f}),"
                f" busy {phase['server_busy']:.0%};"
                f" generator {phase['generator_cpu_us']:.0f} us"
            )
    if result.get("ratio_rps") is not None:
        lines.append(
            f"req/s ratio to bare: {result['ratio_rps']:.3f}"
            f"  (concurrency {result['concurrency']}, {result['seconds']:g} s per endpoint,"
            f" {result.get('rounds', 1)} alternating rounds)"
        )
    return "\n".join(lines)


def _cell(value: Any) -> str:
    return f"{value:>12.3f}" if isinstance(value, float) else f"{value:>12}"

"""Hand-built pieces of the experiment results document, for the report tests."""

from __future__ import annotations

from typing import Any


def arm_row(name: str, n: int, mean: float | None, **stats: Any) -> dict[str, Any]:
    """One arm's row as the results API writes it; a control unless a lift is given."""
    row: dict[str, Any] = {
        "arm": name,
        "control": "lift" not in stats,
        "n": n,
        "mean": mean,
        "std": None,
        "lift": None,
        "lift_ci": None,
        "p_value": None,
        "p_value_adjusted": None,
        "chance_to_beat_control": None,
        "significant": False,
        "cuped": None,
        "sequential": None,
    }
    row.update(stats)
    return row

"""An experiment's results: its stats hash, read in one call, turned into the JSON that
`GET /v1/experiments/{id}/results`, the HTML report and `omotenashi report` show.

`results(experiment, stats)` is a pure function of the definition and the hash's
fields (engine/store/lua/experiment_sums.lua names them), so it is tested without
Redis; reading is O(arms x segments x metrics), never O(visitors). `load_results`
reads both from Redis and calls it: the API's routes and the CLI share it.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.decisions.slots import check_name
from engine.experiments.definitions import HOLDOUT_ARM, Experiment, Metric, compile_experiment
from engine.experiments.lifecycle import get_experiment
from engine.experiments.stats import (
    DEFAULT_MINIMAL_LIFT,
    SRM_ALPHA,
    ArmStats,
    Comparison,
    CovariateStats,
    Effect,
    benjamini_hochberg,
    compare,
    cuped_compare,
    holm,
    minimum_detectable_effect,
    mvt_cell_means,
    mvt_effects,
    sample_size_needed,
    sequential_compare,
    srm_p_value,
)
from engine.store.client import Store
from engine.store.definitions import DefinitionRepository

ALL = "*"  # the segment everyone is in


@dataclass
class Sums:
    """The stats hash, parsed: sums by (arm, segment) and by (metric, arm, segment)."""

    n: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    x: dict[tuple[str, str], float] = field(default_factory=lambda: defaultdict(float))
    xx: dict[tuple[str, str], float] = field(default_factory=lambda: defaultdict(float))
    s: dict[tuple[str, str, str], float] = field(default_factory=lambda: defaultdict(float))
    ss: dict[tuple[str, str, str], float] = field(default_factory=lambda: defaultdict(float))
    xy: dict[tuple[str, str, str], float] = field(default_factory=lambda: defaultdict(float))
    days: dict[tuple[int, str], int] = field(default_factory=lambda: defaultdict(int))

    @classmethod
    def parse(cls, raw: Mapping[bytes, bytes]) -> Sums:
        sums = cls()
        for key, value in raw.items():
            kind, *parts = key.decode().split("/")
            if kind == "n" and len(parts) == 2:
                sums.n[(parts[0], parts[1])] += int(value)
            elif kind in ("x", "xx") and len(parts) == 2:
                getattr(sums, kind)[(parts[0], parts[1])] += float(value)
            elif kind in ("s", "ss", "xy") and len(parts) == 3:
                getattr(sums, kind)[(parts[0], parts[1], parts[2])] += float(value)
            elif kind == "d" and len(parts) == 2:
                sums.days[(int(parts[0]), parts[1])] += int(value)
        return sums

    def arm(self, metric: str, arm: str, segment: str = ALL) -> ArmStats:
        key = (metric, arm, segment)
        return ArmStats(self.n.get((arm, segment), 0), self.s.get(key, 0.0), self.ss.get(key, 0.0))

    def covariate(self, metric: str, arm: str) -> CovariateStats:
        return CovariateStats(
            self.x.get((arm, ALL), 0.0),
            self.xx.get((arm, ALL), 0.0),
            self.xy.get((metric, arm, ALL), 0.0),
        )


async def read_sums(store: Store, experiment_id: str) -> Sums:
    async with store.guard("experiment_results"):
        raw: Any = await store.redis.hgetall(store.keys.experiment_stats(experiment_id))
    return Sums.parse(raw)


async def load_results(
    store: Store, repository: DefinitionRepository, experiment_id: str
) -> dict[str, Any]:
    """An experiment's results as they stand now, from its stored definition and stats
    hash; `InvalidInput` for a malformed id, `NotFound` for an unknown one."""
    check_name("experiment", experiment_id)
    document = await get_experiment(repository, experiment_id)
    experiment = compile_experiment(experiment_id, document)
    return results(experiment, await read_sums(store, experiment_id))


def results(experiment: Experiment, sums: Sums, alpha: float = 0.05) -> dict[str, Any]:
    """Everything an experimenter reads, as JSON-ready values (None where undefined)."""
    arms = [a.name for a in experiment.arms]
    shown = arms + ([HOLDOUT_ARM] if sums.n.get((HOLDOUT_ARM, ALL)) else [])
    metrics = [_metric(experiment, sums, m, shown, alpha) for m in experiment.metrics]
    _adjust(metrics, alpha)
    counts = [sums.n.get((a, ALL), 0) for a in arms]
    total, weight_sum = sum(counts), sum(experiment.weights)
    srm = srm_p_value(counts, experiment.weights) if total else None
    return {
        "experiment": _header(experiment),
        "alpha": alpha,
        "srm": {
            "p_value": srm,
            "flag": srm is not None and srm < SRM_ALPHA,
            "counts": dict(zip(arms, counts, strict=True)),
            "expected": {a.name: total * a.weight / weight_sum for a in experiment.arms},
        },
        "exposure": _exposure(sums, shown),
        "metrics": metrics,
        "guardrails_breached": _breaches(metrics),
    }


def _breaches(metrics: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Guardrail metrics (all but the primary) an arm made significantly worse: a win on
    the primary metric that costs one of these is not a win to ship unexamined."""
    return [
        {"metric": m["name"], "arm": row["arm"]}
        for m in metrics
        if not m["primary"]
        for row in m["arms"]
        if row["significant"] and (row.get("difference") or 0.0) < 0
    ]


def _header(e: Experiment) -> dict[str, Any]:
    return {
        "id": e.id,
        "target": e.target,
        "type": e.type,
        "status": e.status,
        "started_at": e.started_at,
        "stopped_at": e.stopped_at,
        "traffic": e.traffic,
        "layer": e.layer,
        "holdout": e.holdout,
        "arms": [{"name": a.name, "weight": a.weight} for a in e.arms],
        "factors": [{"name": f.name, "levels": list(f.levels)} for f in e.factors] or None,
        "metrics": [
            {
                "name": m.name,
                "event": m.event,
                "aggregation": m.aggregation,
                "window_s": m.window_s,
                "primary": m.primary,
            }
            for m in e.metrics
        ],
        "control": e.control,
        "covariate": e.covariate,
        "segments": list(e.segments),
    }


def _metric(
    e: Experiment, sums: Sums, metric: Metric, arms: list[str], alpha: float
) -> dict[str, Any]:
    control = sums.arm(metric.name, e.control)
    rows = [_arm_row(e, sums, metric.name, arm, control, alpha) for arm in arms]
    # the holdout is usually small on purpose: it must not set the test's power
    n_per_arm = min((r["n"] for r in rows if r["arm"] != HOLDOUT_ARM), default=0)
    mde = minimum_detectable_effect(control, n_per_arm, alpha) if n_per_arm >= 2 else None
    needed = sample_size_needed(control, DEFAULT_MINIMAL_LIFT, alpha)
    out: dict[str, Any] = {
        "name": metric.name,
        "primary": metric.primary,
        "aggregation": metric.aggregation,
        "arms": rows,
        "mde": mde,
        "mde_target": DEFAULT_MINIMAL_LIFT,
        "sample_size_needed": None if needed is None else max(0, needed - n_per_arm),
        "segments": [_segment(e, sums, metric.name, s, alpha) for s in e.segments],
        "effects": None,
        "cells": None,
    }
    if e.type == "mvt":
        cells = {tuple(a.name.split("|")): sums.arm(metric.name, a.name) for a in e.arms}
        factors = [(f.name, f.levels) for f in e.factors]
        out["effects"] = [_effect(x) for x in mvt_effects(cells, factors, alpha)]
        out["cells"] = [
            {"cell": "|".join(c.levels), "n": c.n, "mean": c.mean, "ci": _pair(c.ci)}
            for c in mvt_cell_means(cells, alpha)
        ]
    return out


def _arm_row(
    e: Experiment, sums: Sums, metric: str, arm: str, control: ArmStats, alpha: float
) -> dict[str, Any]:
    stats = sums.arm(metric, arm)
    row: dict[str, Any] = {
        "arm": arm,
        "control": arm == e.control,
        "n": stats.n,
        "mean": stats.mean if stats.n else None,
        "std": stats.variance**0.5 if stats.n >= 2 else None,
        "lift": None,
        "lift_ci": None,
        "difference": None,
        "difference_ci": None,
        "p_value": None,
        "p_value_adjusted": None,
        "p_value_fdr": None,
        "chance_to_beat_control": None,
        "significant": False,
        "cuped": None,
        "sequential": None,
    }
    if arm == e.control:
        return row
    c = compare(control, stats, alpha)
    row.update(_comparison(c))
    if e.covariate is not None:
        cuped = cuped_compare(
            control, sums.covariate(metric, e.control), stats, sums.covariate(metric, arm), alpha
        )
        row["cuped"] = {**_comparison(cuped), "variance_reduction": cuped.variance_reduction}
    seq = sequential_compare(control, stats, alpha)
    row["sequential"] = {
        "p_value": seq.p_value,
        "lift_ci": _pair(seq.lift_ci),
        "significant": seq.significant,
    }
    return row


def _comparison(c: Comparison) -> dict[str, Any]:
    return {
        "lift": c.lift,
        "lift_ci": _pair(c.lift_ci),
        "difference": c.difference,
        "difference_ci": _pair(c.difference_ci),
        "p_value": c.p_value,
        "chance_to_beat_control": c.chance_to_beat_control,
    }


def _segment(e: Experiment, sums: Sums, metric: str, segment: str, alpha: float) -> dict[str, Any]:
    control = sums.arm(metric, e.control, segment)
    rows = []
    for arm in (a.name for a in e.arms):
        stats = sums.arm(metric, arm, segment)
        row: dict[str, Any] = {
            "arm": arm,
            "n": stats.n,
            "mean": stats.mean if stats.n else None,
            "lift": None,
            "lift_ci": None,
            "p_value": None,
        }
        if arm != e.control:
            c = compare(control, stats, alpha)
            row.update(lift=c.lift, lift_ci=_pair(c.lift_ci), p_value=c.p_value)
        rows.append(row)
    return {"segment": segment, "arms": rows}


def _adjust(metrics: list[dict[str, Any]], alpha: float) -> None:
    """Holm (family-wise) and Benjamini-Hochberg (false discovery rate) over every
    comparison of every metric: looking at many arms and metrics at once must not
    make a chance difference look real."""
    rows = [r for m in metrics for r in m["arms"] if not r["control"]]
    p_values = [r["p_value"] for r in rows]
    for row, adjusted, fdr in zip(rows, holm(p_values), benjamini_hochberg(p_values), strict=True):
        row["p_value_adjusted"] = adjusted
        row["p_value_fdr"] = fdr
        row["significant"] = adjusted is not None and adjusted < alpha


def _exposure(sums: Sums, arms: list[str]) -> list[dict[str, Any]]:
    days = sorted({day for day, _ in sums.days})
    out, totals = [], dict.fromkeys(arms, 0)
    for day in days:
        for arm in arms:
            totals[arm] += sums.days.get((day, arm), 0)
            out.append({"day": _date(day), "arm": arm, "cumulative": totals[arm]})
    return out


def _date(day: int) -> str:
    return (dt.date(1970, 1, 1) + dt.timedelta(days=day)).isoformat()


def _pair(ci: tuple[float, float] | None) -> list[float] | None:
    return None if ci is None else [ci[0], ci[1]]


def _effect(effect: Effect) -> dict[str, Any]:
    return {
        "term": effect.term,
        "estimate": effect.estimate,
        "standard_error": effect.standard_error,
        "ci": _pair(effect.ci),
        "p_value": effect.p_value,
    }

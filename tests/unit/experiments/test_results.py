"""results(): the stats hash, parsed, read out per arm with the same statistics
functions the tests of engine/experiments/stats.py check against scipy; p-values
adjusted over every comparison; SRM, exposure series and empty arms."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import astuple
from typing import Any

import numpy as np
import pytest
from statsmodels.stats.multitest import multipletests

from engine.experiments.definitions import Experiment, compile_experiment
from engine.experiments.results import ALL, Sums, results
from engine.experiments.stats import (
    SRM_ALPHA,
    ArmStats,
    Comparison,
    CovariateStats,
    compare,
    cuped_compare,
    srm_p_value,
)

THREE_ARMS = [{"name": n, "variant": n} for n in ("a", "b", "c")]
METRICS = [
    {"name": "clicked", "event": "click"},
    {"name": "revenue", "event": "purchase", "aggregation": "sum"},
]


def experiment(**fields: Any) -> Experiment:
    raw: dict[str, Any] = {
        "target": "slot:hero",
        "arms": THREE_ARMS,
        "metrics": METRICS,
        "covariate": "page_views",
        "segments": ["phones"],
        **fields,
    }
    return compile_experiment("exp1", raw)


class Visitors:
    """Synthetic per-visitor data and the stats hash the Lua scripts would hold for it."""

    def __init__(self, arms: dict[str, int], seed: int, day: int = 19_800) -> None:
        rng = np.random.default_rng(seed)
        self.arm = np.repeat(list(arms), list(arms.values()))
        n = self.arm.size
        self.phone = rng.random(n) < 0.3
        self.x = rng.poisson(3.0, n).astype(float)
        lift = np.where(self.arm == "b", 0.05, 0.0)
        self.y = {
            "clicked": (rng.random(n) < 0.1 + 0.02 * self.x + lift).astype(float),
            "revenue": np.round(rng.gamma(2.0, 10.0 + self.x, n) * (rng.random(n) < 0.2), 2),
        }
        self.day = day + rng.integers(0, 3, n)

    def hash(self) -> dict[bytes, bytes]:
        fields: dict[str, float] = defaultdict(float)
        for i, arm in enumerate(self.arm):
            for seg in [ALL] + (["phones"] if self.phone[i] else []):
                fields[f"n/{arm}/{seg}"] += 1
                x = float(self.x[i])
                fields[f"x/{arm}/{seg}"] += x
                fields[f"xx/{arm}/{seg}"] += x * x
                for metric, values in self.y.items():
                    y = float(values[i])
                    fields[f"s/{metric}/{arm}/{seg}"] += y
                    fields[f"ss/{metric}/{arm}/{seg}"] += y * y
                    fields[f"xy/{metric}/{arm}/{seg}"] += x * y
            fields[f"d/{self.day[i]}/{arm}"] += 1
        # Redis keeps counters as integers and float sums as their shortest text
        return {
            k.encode(): (str(int(v)) if k[0] in "nd" else repr(v)).encode()
            for k, v in fields.items()
        }

    def stats(self, metric: str, arm: str, phones_only: bool = False) -> ArmStats:
        mask = (self.arm == arm) & (self.phone if phones_only else True)
        y = self.y[metric][mask]
        return ArmStats(int(mask.sum()), float(y.sum()), float(y @ y))

    def covariate(self, metric: str, arm: str) -> CovariateStats:
        mask = self.arm == arm
        x, y = self.x[mask], self.y[metric][mask]
        return CovariateStats(float(x.sum()), float(x @ x), float(x @ y))


@pytest.fixture(scope="module")
def visitors() -> Visitors:
    return Visitors({"a": 400, "b": 420, "c": 390}, seed=7)


def rows(body: dict[str, Any], metric: str) -> dict[str, dict[str, Any]]:
    found = next(m for m in body["metrics"] if m["name"] == metric)
    return {r["arm"]: r for r in found["arms"]}


def assert_same(row: dict[str, Any], c: Comparison) -> None:
    assert row["lift"] == pytest.approx(c.lift)
    assert row["lift_ci"] == pytest.approx(list(c.lift_ci or ()))
    assert row["difference"] == pytest.approx(c.difference)
    assert row["difference_ci"] == pytest.approx(list(c.difference_ci or ()))
    assert row["p_value"] == pytest.approx(c.p_value)
    assert row["chance_to_beat_control"] == pytest.approx(c.chance_to_beat_control)


def test_sums_parse_reads_every_field_of_the_stats_hash(visitors: Visitors) -> None:
    sums = Sums.parse(visitors.hash())
    assert sums.n[("b", ALL)] == 420
    assert sums.n[("b", "phones")] == int(visitors.phone[visitors.arm == "b"].sum())
    assert astuple(sums.arm("revenue", "c")) == pytest.approx(
        astuple(visitors.stats("revenue", "c"))
    )
    assert astuple(sums.arm("clicked", "a", "phones")) == pytest.approx(
        astuple(visitors.stats("clicked", "a", phones_only=True))
    )
    assert astuple(sums.covariate("revenue", "b")) == pytest.approx(
        astuple(visitors.covariate("revenue", "b"))
    )
    assert sum(v for (_, arm), v in sums.days.items() if arm == "a") == 400


def test_arm_rows_are_compare_and_cuped_compare_of_the_same_sums(visitors: Visitors) -> None:
    body = results(experiment(), Sums.parse(visitors.hash()))
    for metric in ("clicked", "revenue"):
        by_arm = rows(body, metric)
        control = visitors.stats(metric, "a")
        assert by_arm["a"]["control"]
        assert by_arm["a"]["p_value"] is None
        for arm in ("a", "b", "c"):
            y = visitors.y[metric][visitors.arm == arm]
            assert by_arm[arm]["n"] == y.size
            assert by_arm[arm]["mean"] == pytest.approx(y.mean())
            assert by_arm[arm]["std"] == pytest.approx(y.std(ddof=1))
        for arm in ("b", "c"):
            treatment = visitors.stats(metric, arm)
            assert_same(by_arm[arm], compare(control, treatment))
            cuped = cuped_compare(
                control,
                visitors.covariate(metric, "a"),
                treatment,
                visitors.covariate(metric, arm),
            )
            assert_same(by_arm[arm]["cuped"], cuped)
            assert by_arm[arm]["cuped"]["variance_reduction"] == pytest.approx(
                cuped.variance_reduction
            )
            assert by_arm[arm]["cuped"]["variance_reduction"] > 0.0  # x predicts y here


def test_segment_rows_compare_the_segments_sums(visitors: Visitors) -> None:
    body = results(experiment(), Sums.parse(visitors.hash()))
    clicked = next(m for m in body["metrics"] if m["name"] == "clicked")
    (phones,) = clicked["segments"]
    assert phones["segment"] == "phones"
    by_arm = {r["arm"]: r for r in phones["arms"]}
    control = visitors.stats("clicked", "a", phones_only=True)
    for arm in ("b", "c"):
        c = compare(control, visitors.stats("clicked", arm, phones_only=True))
        assert by_arm[arm]["n"] == visitors.stats("clicked", arm, phones_only=True).n
        assert by_arm[arm]["p_value"] == pytest.approx(c.p_value)
        assert by_arm[arm]["lift"] == pytest.approx(c.lift)


def test_p_values_are_adjusted_over_every_arm_of_every_metric(visitors: Visitors) -> None:
    body = results(experiment(), Sums.parse(visitors.hash()), alpha=0.05)
    compared = [r for m in body["metrics"] for r in m["arms"] if not r["control"]]
    assert len(compared) == 4  # two treatments times two metrics: one family
    p_values = [r["p_value"] for r in compared]
    holm = multipletests(p_values, alpha=0.05, method="holm")[1]
    fdr = multipletests(p_values, alpha=0.05, method="fdr_bh")[1]
    assert [r["p_value_adjusted"] for r in compared] == pytest.approx(list(holm))
    assert [r["p_value_fdr"] for r in compared] == pytest.approx(list(fdr))
    assert [r["significant"] for r in compared] == [p < 0.05 for p in holm]
    assert any(a != p for a, p in zip(holm, p_values, strict=True))  # the adjustment bites


def test_srm_is_flagged_when_counts_are_far_off_the_weights() -> None:
    weighted = [{**THREE_ARMS[0], "weight": 1}, {**THREE_ARMS[1], "weight": 2}]
    e = experiment(arms=weighted)
    fits = results(e, Sums.parse({b"n/a/*": b"1000", b"n/b/*": b"2030"}))["srm"]
    assert fits["flag"] is False
    assert fits["counts"] == {"a": 1000, "b": 2030}
    assert fits["expected"] == pytest.approx({"a": 1010.0, "b": 2020.0})
    assert fits["p_value"] == pytest.approx(srm_p_value([1000, 2030], [1, 2]))
    off = results(e, Sums.parse({b"n/a/*": b"1500", b"n/b/*": b"1530"}))["srm"]
    assert off["flag"] is True
    assert off["p_value"] < SRM_ALPHA


def test_the_holdout_is_reported_but_not_counted_in_the_srm(visitors: Visitors) -> None:
    raw = {**visitors.hash(), b"n/holdout/*": b"130", b"s/clicked/holdout/*": b"9"}
    body = results(experiment(holdout=0.1), Sums.parse(raw))
    assert rows(body, "clicked")["holdout"]["n"] == 130
    assert set(body["srm"]["counts"]) == {"a", "b", "c"}
    assert body["srm"]["p_value"] == pytest.approx(srm_p_value([400, 420, 390], [1, 1, 1]))


def test_mvt_cell_names_with_bars_are_parsed_and_reported() -> None:
    factors = [
        {"name": "colour", "levels": [{"name": "grey"}, {"name": "red"}]},
        {"name": "size", "levels": [{"name": "s"}, {"name": "l"}]},
    ]
    e = compile_experiment(
        "exp1",
        {
            "target": "slot:hero",
            "type": "mvt",
            "factors": factors,
            "metrics": [{"name": "clicked", "event": "click"}],
        },
    )
    rng = np.random.default_rng(11)
    raw: dict[bytes, bytes] = {}
    expected = {}
    for cell in ("grey|s", "grey|l", "red|s", "red|l"):
        y = (rng.random(300) < 0.2).astype(float)
        expected[cell] = ArmStats(300, float(y.sum()), float(y @ y))
        raw[f"n/{cell}/*".encode()] = b"300"
        raw[f"s/clicked/{cell}/*".encode()] = repr(float(y.sum())).encode()
        raw[f"ss/clicked/{cell}/*".encode()] = repr(float(y @ y)).encode()
        raw[f"d/19800/{cell}".encode()] = b"300"
    sums = Sums.parse(raw)
    assert sums.n[("red|l", ALL)] == 300
    assert sums.arm("clicked", "red|l") == expected["red|l"]
    body = results(e, sums)
    (clicked,) = body["metrics"]
    assert [c["cell"] for c in clicked["cells"]] == ["grey|s", "grey|l", "red|s", "red|l"]
    assert {c["cell"]: c["mean"] for c in clicked["cells"]} == pytest.approx(
        {cell: s.mean for cell, s in expected.items()}
    )
    # sum-to-zero coding: one term per level but the last
    assert [e["term"] for e in clicked["effects"]] == [
        "Intercept",
        "colour[grey]",
        "size[s]",
        "colour[grey]:size[s]",
    ]
    assert {r["arm"]: r["n"] for r in clicked["arms"]} == dict.fromkeys(expected, 300)
    assert body["exposure"][-1] == {"day": "2024-03-18", "arm": "red|l", "cumulative": 300}


def test_exposure_is_a_cumulative_series_per_arm_and_day() -> None:
    raw = {b"d/19800/a": b"3", b"d/19802/a": b"2", b"d/19800/b": b"1", b"d/19801/b": b"4"}
    body = results(experiment(arms=THREE_ARMS[:2]), Sums.parse(raw))
    assert body["exposure"] == [
        {"day": "2024-03-18", "arm": "a", "cumulative": 3},
        {"day": "2024-03-18", "arm": "b", "cumulative": 1},
        {"day": "2024-03-19", "arm": "a", "cumulative": 3},
        {"day": "2024-03-19", "arm": "b", "cumulative": 5},
        {"day": "2024-03-20", "arm": "a", "cumulative": 5},
        {"day": "2024-03-20", "arm": "b", "cumulative": 5},
    ]


def test_a_control_without_visitors_gives_none_never_an_exception(visitors: Visitors) -> None:
    raw = {k: v for k, v in visitors.hash().items() if b"/a/" not in k and not k.endswith(b"/a")}
    body = results(experiment(), Sums.parse(raw))
    for metric in ("clicked", "revenue"):
        by_arm = rows(body, metric)
        assert (by_arm["a"]["n"], by_arm["a"]["mean"], by_arm["a"]["std"]) == (0, None, None)
        for arm in ("b", "c"):
            assert by_arm[arm]["n"] > 0
            assert by_arm[arm]["mean"] is not None
            for field in ("lift", "lift_ci", "p_value", "p_value_adjusted", "p_value_fdr"):
                assert by_arm[arm][field] is None, field
            assert by_arm[arm]["significant"] is False
            assert by_arm[arm]["cuped"]["p_value"] is None
            assert by_arm[arm]["sequential"]["p_value"] is None
    assert body["srm"]["flag"] is True  # nobody in a third of the traffic: tracking is broken


def test_an_experiment_without_visitors_reads_as_empty() -> None:
    body = results(experiment(), Sums())
    assert body["srm"] == {
        "p_value": None,
        "flag": False,
        "counts": {"a": 0, "b": 0, "c": 0},
        "expected": {"a": 0.0, "b": 0.0, "c": 0.0},
    }
    assert body["exposure"] == []
    for metric in body["metrics"]:
        assert metric["mde"] is None
        assert metric["sample_size_needed"] is None
        assert all(r["n"] == 0 and r["mean"] is None for r in metric["arms"])


def test_a_guardrail_an_arm_makes_significantly_worse_is_flagged() -> None:
    """Arm b wins the primary metric but loses revenue: a breach to look at."""
    two = [THREE_ARMS[0], THREE_ARMS[1]]
    e = experiment(arms=two, covariate=None, segments=[])
    n = 2000
    hash_ = {
        b"n/a/*": str(n).encode(),
        b"n/b/*": str(n).encode(),
        # clicked (primary): 10% vs 13%
        b"s/clicked/a/*": b"200",
        b"ss/clicked/a/*": b"200",
        b"s/clicked/b/*": b"260",
        b"ss/clicked/b/*": b"260",
        # revenue (guardrail): 1.0 vs 0.5 per visitor, same spread
        b"s/revenue/a/*": b"2000",
        b"ss/revenue/a/*": b"4000",
        b"s/revenue/b/*": b"1000",
        b"ss/revenue/b/*": b"2500",
    }
    body = results(e, Sums.parse(hash_))
    assert body["guardrails_breached"] == [{"metric": "revenue", "arm": "b"}]
    assert rows(body, "clicked")["b"]["significant"]  # the primary win itself is no breach

"""Assignment as a pure function of (salt, pid): arms filled by their weights, traffic
and holdout shares honoured, layers partitioning one hash space, independent layers
independent. Checked on 100k synthetic pseudonyms with scipy's tests at p > 0.001."""

from __future__ import annotations

import base64
import hashlib
from collections import Counter
from typing import Any

import numpy as np
import pytest
from scipy import stats

from engine.experiments.assignment import HOLDOUT_SALT, assign, pick, unit
from engine.experiments.definitions import HOLDOUT_ARM, Experiment, compile_experiment

N = 100_000
ALPHA = 0.001  # a test at this level fails by chance once in a thousand seeds, not here


@pytest.fixture(scope="module")
def pids() -> list[str]:
    """Pseudonyms shaped like the engine's (URL-safe base64 of 16 random bytes)."""
    rng = np.random.default_rng(20240611)
    raw = rng.bytes(16 * N)
    return [
        base64.urlsafe_b64encode(raw[i : i + 16]).rstrip(b"=").decode()
        for i in range(0, 16 * N, 16)
    ]


def experiment(experiment_id: str = "exp1", **fields: Any) -> Experiment:
    raw: dict[str, Any] = {
        "target": "slot:hero",
        "arms": [{"name": "a", "variant": "a"}, {"name": "b", "variant": "b"}],
        "metrics": [{"name": "clicked", "event": "click"}],
        **fields,
    }
    return compile_experiment(experiment_id, raw)


def arms_of(e: Experiment, pids: list[str]) -> list[str | None]:
    out = []
    for pid in pids:
        assignment = assign(e, pid)
        out.append(None if assignment is None else assignment.arm)
    return out


def test_unit_is_blake2b_of_salt_and_pid_pinned() -> None:
    # Changing the hash reshuffles every running experiment: it must be deliberate.
    assert unit("experiment:exp1", "abc") == 0.27731192305053304
    digest = hashlib.blake2b(b"layer:hero\x1fpid-1", digest_size=8).digest()
    assert unit("layer:hero", "pid-1") == int.from_bytes(digest, "big") / 2**64


def test_units_are_uniform_on_zero_one(pids: list[str]) -> None:
    u = np.array([unit("experiment:exp1", pid) for pid in pids])
    assert u.min() >= 0.0
    assert u.max() < 1.0
    assert stats.kstest(u, "uniform").pvalue > ALPHA


def test_arms_are_filled_in_proportion_to_their_weights(pids: list[str]) -> None:
    arms = [
        {"name": "a", "variant": "a", "weight": 1},
        {"name": "b", "variant": "b", "weight": 1},
        {"name": "c", "variant": "c", "weight": 2},
    ]
    counts = Counter(arms_of(experiment(arms=arms), pids))
    assert set(counts) == {"a", "b", "c"}
    observed = [counts["a"], counts["b"], counts["c"]]
    assert stats.chisquare(observed, [N / 4, N / 4, N / 2]).pvalue > ALPHA


def test_pick_maps_the_unit_interval_onto_cumulative_weights() -> None:
    weights = (1.0, 1.0, 2.0)
    assert [pick(weights, u) for u in (0.0, 0.2499, 0.25, 0.4999, 0.5, 0.9999)] == [
        0,
        0,
        1,
        1,
        2,
        2,
    ]


def test_assignment_is_deterministic_across_calls_and_compilations(pids: list[str]) -> None:
    first = arms_of(experiment(), pids[:5000])
    assert arms_of(experiment(), pids[:5000]) == first  # a fresh compilation, another worker
    assert arms_of(experiment(), list(reversed(pids[:5000]))) == first[::-1]  # order-free
    assert len(set(first)) == 2


def test_another_experiment_id_reshuffles_visitors(pids: list[str]) -> None:
    first = arms_of(experiment("exp1"), pids[:5000])
    other = arms_of(experiment("exp2"), pids[:5000])
    agree = sum(a == b for a, b in zip(first, other, strict=True))
    assert stats.binomtest(agree, 5000, 0.5).pvalue > ALPHA


@pytest.mark.parametrize("traffic", [0.05, 0.3, 0.9])
def test_the_traffic_share_is_honoured(pids: list[str], traffic: float) -> None:
    inside = sum(a is not None for a in arms_of(experiment(traffic=traffic), pids))
    assert stats.binomtest(inside, N, traffic).pvalue > ALPHA


def test_experiments_sharing_a_layer_never_share_a_visitor(pids: list[str]) -> None:
    # what start gives two experiments of 0.3 and 0.5 of layer "hero" (first fit)
    first = experiment("exp1", layer="hero", traffic=0.3, bucket=[0.0, 0.3])
    second = experiment("exp2", layer="hero", traffic=0.5, bucket=[0.3, 0.8])
    a, b = arms_of(first, pids), arms_of(second, pids)
    both = sum(x is not None and y is not None for x, y in zip(a, b, strict=True))
    assert both == 0
    in_a, in_b = sum(x is not None for x in a), sum(y is not None for y in b)
    assert stats.binomtest(in_a, N, 0.3).pvalue > ALPHA
    assert stats.binomtest(in_b, N, 0.5).pvalue > ALPHA
    # each one's arms are still even within its stretch
    for arms in (a, b):
        counts = Counter(x for x in arms if x is not None)
        assert stats.chisquare([counts["a"], counts["b"]]).pvalue > ALPHA


def test_experiments_in_different_layers_are_independent(pids: list[str]) -> None:
    three = [{"name": n, "variant": n} for n in ("a", "b", "c")]
    first = experiment("exp1", layer="hero", arms=three)
    second = experiment("exp2", layer="footer")
    table = Counter(zip(arms_of(first, pids), arms_of(second, pids), strict=True))
    contingency = [[table[(x, y)] for y in ("a", "b")] for x in ("a", "b", "c")]
    assert stats.chi2_contingency(contingency).pvalue > ALPHA


def test_experiments_without_a_layer_are_independent(pids: list[str]) -> None:
    first, second = experiment("exp1", traffic=0.5), experiment("exp2", traffic=0.5)
    table = Counter(
        (x is not None, y is not None)
        for x, y in zip(arms_of(first, pids), arms_of(second, pids), strict=True)
    )
    contingency = [[table[(x, y)] for y in (False, True)] for x in (False, True)]
    assert stats.chi2_contingency(contingency).pvalue > ALPHA


def test_the_holdout_is_the_same_visitors_in_every_experiment(pids: list[str]) -> None:
    first = experiment("exp1", holdout=0.1)
    second = experiment("exp2", layer="footer", holdout=0.1)
    wider = experiment("exp3", holdout=0.2)
    held = [
        {p for p, a in zip(pids, arms_of(e, pids), strict=True) if a == HOLDOUT_ARM}
        for e in (first, second, wider)
    ]
    assert held[0] == held[1]
    assert held[0] < held[2]  # a larger holdout holds out the smaller one's visitors too
    assert held[0] == {p for p in pids if unit(HOLDOUT_SALT, p) < 0.1}
    assert stats.binomtest(len(held[0]), N, 0.1).pvalue > ALPHA
    assert stats.binomtest(len(held[2]), N, 0.2).pvalue > ALPHA


def test_the_holdout_share_holds_within_partial_traffic(pids: list[str]) -> None:
    e = experiment(traffic=0.4, holdout=0.25)
    arms = [a for a in arms_of(e, pids) if a is not None]
    counts = Counter(arms)
    assert stats.binomtest(len(arms), N, 0.4).pvalue > ALPHA
    assert stats.binomtest(counts[HOLDOUT_ARM], len(arms), 0.25).pvalue > ALPHA
    assert stats.chisquare([counts["a"], counts["b"]]).pvalue > ALPHA
    someone = next(p for p in pids if (a := assign(e, p)) is not None and a.arm == HOLDOUT_ARM)
    held = assign(e, someone)
    assert held is not None
    assert held.holdout
    assert held.definition is None


def test_a_bucket_is_rescaled_so_arm_shares_hold_inside_it(pids: list[str]) -> None:
    # Unrescaled, every unit in [0.3, 0.7) would fall in the 1:3 split's second arm.
    arms = [{"name": "a", "variant": "a", "weight": 1}, {"name": "b", "variant": "b", "weight": 3}]
    e = experiment(layer="hero", traffic=0.4, bucket=[0.3, 0.7], arms=arms)
    assigned = arms_of(e, pids)
    inside = {p for p in pids if 0.3 <= unit("layer:hero", p) < 0.7}
    assert {p for p, a in zip(pids, assigned, strict=True) if a is not None} == inside
    counts = Counter(a for a in assigned if a is not None)
    total = counts["a"] + counts["b"]
    assert stats.chisquare([counts["a"], counts["b"]], [total / 4, 3 * total / 4]).pvalue > ALPHA

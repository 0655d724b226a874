"""Which recommender serves a visitor under a running experiment: their arm's version
when this worker holds it, else the live model flagged; the holdout unpersonalized."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from typing import Any

from engine.decisions.registry import (
    arm_model_versions,
    compile_all,
    recs_arm_versions,
)
from engine.experiments.assignment import assign
from engine.experiments.definitions import Experiment, compile_experiment
from engine.recs.serve import ArmChoice, choose_model, recommendation_exposure

LIVE: Any = object()  # choose_model passes states through without looking inside
CANDIDATE: Any = object()
METRICS = [{"name": "clicked", "event": "click"}]


def recs_experiment(holdout: float = 0.0, **extra: Any) -> Experiment:
    definition = {
        "target": "recommendations",
        "arms": [{"name": "current"}, {"name": "candidate", "model_version": "v2"}],
        "metrics": METRICS,
        "holdout": holdout,
        "status": "running",
        **extra,
    }
    return compile_experiment("recs1", definition)


def test_each_arm_gets_its_version_and_the_holdout_the_unpersonalized_list() -> None:
    experiment = recs_experiment(holdout=0.2)
    seen: Counter[str] = Counter()
    for i in range(300):
        pid = f"p{i}"
        choice = choose_model(LIVE, {"v2": CANDIDATE}, [experiment], pid)
        arm = assign(experiment, pid)
        assert arm is not None
        assert (choice.experiment, choice.arm) == (experiment, arm.arm)
        expected = {
            "current": ArmChoice(LIVE, "model", experiment, "current"),
            "candidate": ArmChoice(CANDIDATE, "model", experiment, "candidate"),
            "holdout": ArmChoice(LIVE, "holdout", experiment, "holdout"),
        }[arm.arm]
        assert choice == expected
        assert choice.personalized == (arm.arm != "holdout")
        seen[arm.arm] += 1
    assert set(seen) == {"current", "candidate", "holdout"}


def test_an_arm_whose_version_is_not_held_gets_the_live_model_as_a_fallback() -> None:
    experiment = recs_experiment()
    choices = [choose_model(LIVE, {}, [experiment], f"p{i}") for i in range(50)]
    by_arm = {c.arm: c for c in choices}
    assert by_arm["candidate"] == ArmChoice(LIVE, "fallback", experiment, "candidate")
    assert by_arm["current"] == ArmChoice(LIVE, "model", experiment, "current")


def test_without_a_running_experiment_the_live_model_answers() -> None:
    assert choose_model(LIVE, {"v2": CANDIDATE}, [], "p1") == ArmChoice(LIVE, "model")
    outside = recs_experiment(traffic=0.5)
    pids = [f"p{i}" for i in range(100) if assign(outside, f"p{i}") is None]
    assert pids
    assert choose_model(LIVE, {}, [outside], pids[0]) == ArmChoice(LIVE, "model")


class Untouchable(Mapping[bytes, bytes]):
    """Features that must not be read."""

    def __getitem__(self, key: bytes) -> bytes:
        raise AssertionError("features decoded")

    def __iter__(self) -> Iterator[bytes]:
        raise AssertionError("features decoded")

    def __len__(self) -> int:
        raise AssertionError("features decoded")


def test_an_exposure_reads_features_only_when_the_experiment_needs_them() -> None:
    plain = recommendation_exposure(recs_experiment(), "candidate", 5.0, Untouchable(), ())
    assert (plain.experiment, plain.arm, plain.ts, plain.covariate, plain.segments) == (
        "recs1",
        "candidate",
        5.0,
        None,
        (),
    )
    adjusted = recommendation_exposure(
        recs_experiment(covariate="page_views"), "current", 5.0, {}, ()
    )
    assert adjusted.covariate == 0.0  # a newcomer's value before the exposure


def test_recommender_versions_and_scorer_versions_stay_apart() -> None:
    slot = {"variants": [{"id": "a", "content": {}}, {"id": "b", "content": {}}], "default": "a"}
    on_slot = {
        "target": "slot:hero",
        "arms": [{"name": "rules", "policy": "rules"}, {"name": "new", "model_version": "s7"}],
        "metrics": METRICS,
        "status": "running",
    }
    on_recs = {
        "target": "recommendations",
        "arms": [{"name": "current"}, {"name": "candidate", "model_version": "r3"}],
        "metrics": METRICS,
        "status": "running",
    }
    draft = {**on_recs, "arms": [{"name": "x"}, {"name": "y", "model_version": "r9"}]}
    definitions = compile_all(
        1,
        {
            "slots": {"hero": slot},
            "experiments": {
                "hero1": on_slot,
                "recs1": on_recs,
                "recs2": draft | {"status": "draft"},
            },
        },
    )
    assert arm_model_versions(definitions) == {"s7": "hero"}
    assert recs_arm_versions(definitions) == {"r3"}
    assert recs_arm_versions(None) == frozenset()

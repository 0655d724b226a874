"""The scorer learns who clicks what from a uniform log, its greedy policy beats
uniform on the simulator's truth, and the off-policy estimates bracket that truth."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson
import pytest

from models.artifacts import ArtifactError
from models.scorer import NativeTrees, load_scorer
from training.attribution import AttributedDecisions
from training.scorer_train import (
    ScorerParams,
    binary_log_loss,
    calibration,
    roc_auc,
    save_trained_scorer,
    train_scorer,
)

VARIANTS = ["a", "b", "c"]


def true_rate(page_views: np.ndarray, variant: str) -> np.ndarray:
    """Heavy browsers click `a`, light ones `b`; `c` is middling for all."""
    heavy = page_views >= 5
    return {
        "a": np.where(heavy, 0.30, 0.05),
        "b": np.where(heavy, 0.03, 0.25),
        "c": np.full(page_views.shape, 0.12),
    }[variant]


def uniform_log(n: int, seed: int) -> tuple[AttributedDecisions, np.ndarray]:
    rng = np.random.default_rng(seed)
    views = rng.integers(0, 10, n)
    chosen = rng.choice(VARIANTS, size=n)
    rate = np.select([chosen == v for v in VARIANTS], [true_rate(views, v) for v in VARIANTS])
    clicked = rng.random(n) < rate
    props = [
        {"slot": "hero", "chosen": c, "eligible": VARIANTS, "features": {"page_views": int(v)}}
        for c, v in zip(chosen, views, strict=True)
    ]
    log = AttributedDecisions(
        event_ids=np.array([f"d{i}" for i in range(n)]),
        pids=np.array([f"p{i}" for i in range(n)]),
        slots=np.array(["hero"] * n),
        chosen=chosen.astype(np.str_),
        policies=np.array(["uniform"] * n),
        propensities=np.full(n, 1 / 3),
        ts=np.arange(n, dtype=np.float64),
        properties=props,
        clicked=clicked,
        converted=np.zeros(n, dtype=bool),
        value=np.zeros(n),
    )
    return log, views


def test_the_greedy_scorer_beats_uniform_and_ope_brackets_its_true_value() -> None:
    log, views = uniform_log(9000, seed=3)
    scorer, metrics = train_scorer(log, "hero", ScorerParams(rounds=60))
    test = np.arange(len(log))[-metrics.n_test :]
    picks = [
        VARIANTS[int(np.argmax(scorer.score({"page_views": int(v)}, VARIANTS)))]
        for v in views[test]
    ]
    greedy_truth = float(
        np.mean([true_rate(views[i : i + 1], p)[0] for i, p in zip(test, picks, strict=True)])
    )
    uniform_truth = float(np.mean([true_rate(views[test], v).mean() for v in VARIANTS]))
    assert greedy_truth > uniform_truth + 0.08  # ~0.27 against ~0.15
    assert metrics.auc is not None
    assert metrics.auc > 0.65
    report = metrics.policy_value
    assert report is not None
    for estimator in ("ips", "snips", "dr"):
        estimate = report.estimate(estimator)  # type: ignore[arg-type]
        assert estimate.ci_low <= greedy_truth <= estimate.ci_high, estimator
        assert estimate.ci_high - estimate.ci_low < 0.1


def test_a_saved_scorer_loads_and_scores_the_same(tmp_path: Path) -> None:
    log, _ = uniform_log(600, seed=4)
    scorer, metrics = train_scorer(log, "hero", ScorerParams(rounds=20))
    version = save_trained_scorer(tmp_path, scorer, metrics, {"decisions": len(log)})
    loaded = load_scorer(tmp_path / "scorer" / version)
    features = {"page_views": 7}
    np.testing.assert_allclose(loaded.score(features, VARIANTS), scorer.score(features, VARIANTS))
    assert (loaded.slot, loaded.variants, loaded.version) == ("hero", tuple(VARIANTS), version)
    assert metrics.n_train + metrics.n_test == 600


def test_a_scorer_trained_on_another_feature_layout_is_refused(tmp_path: Path) -> None:
    log, _ = uniform_log(300, seed=5)
    scorer, metrics = train_scorer(log, "hero", ScorerParams(rounds=5))
    version = save_trained_scorer(tmp_path, scorer, metrics, {})
    manifest = tmp_path / "scorer" / version / "manifest.json"
    document = orjson.loads(manifest.read_bytes())
    document["schema_hash"] = "0123456789abcdef"  # what an older feature table produced
    manifest.write_bytes(orjson.dumps(document))
    with pytest.raises(ArtifactError, match="retrain"):
        load_scorer(tmp_path / "scorer" / version)


def test_auc_log_loss_and_calibration_on_hand_computed_cases() -> None:
    truth = np.array([0.0, 0.0, 1.0, 1.0])
    assert roc_auc(truth, np.array([0.1, 0.4, 0.35, 0.8])) == pytest.approx(0.75)
    assert roc_auc(truth, np.array([0.5, 0.5, 0.5, 0.5])) == pytest.approx(0.5)
    assert binary_log_loss(np.array([1.0]), np.array([0.5])) == pytest.approx(np.log(2))
    table = calibration(truth, np.array([0.1, 0.2, 0.7, 0.9]), bins=2)
    assert table == [
        {"predicted": pytest.approx(0.15), "observed": 0.0, "rows": 2.0},
        {"predicted": pytest.approx(0.8), "observed": 1.0, "rows": 2.0},
    ]


def test_too_few_decisions_is_a_clear_error() -> None:
    log, _ = uniform_log(5, seed=1)
    with pytest.raises(ValueError, match="need 10"):
        train_scorer(log, "hero", ScorerParams())


def test_the_compiled_scorer_predicts_what_lightgbm_predicts(tmp_path: Path) -> None:
    log, _ = uniform_log(800, seed=6)
    scorer, metrics = train_scorer(log, "hero", ScorerParams(rounds=30))
    version = save_trained_scorer(tmp_path, scorer, metrics, {})
    compiled = load_scorer(tmp_path / "scorer" / version, compiled=True)
    assert compiled.compiled is not None
    for views in (0, 4, 9):
        features = {"page_views": views, "sessions": 2}
        np.testing.assert_allclose(
            compiled.score(features, VARIANTS), scorer.score(features, VARIANTS), rtol=1e-9
        )


def test_serving_rows_are_the_training_rows(tmp_path: Path) -> None:
    """`score` builds its matrix its own way (one encoded row broadcast, a cached one-hot
    block); LightGBM on the training layout must give the same numbers."""
    log, _ = uniform_log(400, seed=8)
    scorer, _ = train_scorer(log, "hero", ScorerParams(rounds=20))
    variants = ["c", "a", "new-variant", "b"]  # any order; one the model never saw
    for features in (
        {},
        {"page_views": 7, "sessions": 3, "last_channel": "app", "views_30d.shoes": 2},
        {"page_views": 0.1, "aov": 19.99, "last_channel": "store"},
    ):
        training_rows = scorer.rows([features] * len(variants), variants)
        expected = scorer.booster.predict(training_rows, num_threads=1)
        np.testing.assert_allclose(scorer.score(features, variants), expected, rtol=1e-12)


def test_native_trees_give_lleaves_own_predictions_and_fall_back_without_its_entry(
    tmp_path: Path,
) -> None:
    log, _ = uniform_log(400, seed=9)
    scorer, metrics = train_scorer(log, "hero", ScorerParams(rounds=20))
    version = save_trained_scorer(tmp_path, scorer, metrics, {})
    native = load_scorer(tmp_path / "scorer" / version, compiled=True).compiled
    assert native is not None
    rows = np.random.default_rng(0).gamma(1.0, 3.0, size=(64, scorer.booster.num_feature()))
    expected = native.model.predict(rows, n_jobs=1)
    np.testing.assert_array_equal(native.predict(rows), expected)
    np.testing.assert_array_equal(native.predict(rows[::2]), expected[::2])  # strided input

    class WithoutEntry:  # an lleaves release that renamed its private entry point
        use_fp64 = True

        def num_model_per_iteration(self) -> int:
            return 1

        def predict(self, data: np.ndarray, n_jobs: int) -> np.ndarray:
            return np.asarray(native.model.predict(data, n_jobs=n_jobs))

    np.testing.assert_array_equal(NativeTrees(WithoutEntry()).predict(rows), expected)

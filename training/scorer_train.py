"""Training the variant scorer from the decision log, and judging it before it ships.

Rows are logged decisions of one slot with their attributed outcome (`training.
attribution`); features are the visitor's as they were at decision time, so nothing
learnt leaks from later. The split is by time (the latest share is the test set), as
the model will meet the future, not a shuffled past. On the test set: AUC, log loss, a
calibration table, and the value of the scorer's greedy policy estimated off-policy
from the logged propensities (IPS, SNIPS, DR), next to the logged policy's value.
"""

from __future__ import annotations

import collections
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import numpy.typing as npt
from scipy.stats import rankdata

from models.artifacts import write_artifact
from models.encoding import CATEGORY_FAMILIES, FeatureEncoder
from models.scorer import Objective, VariantScorer, save_scorer, variant_rows
from training.attribution import AttributedDecisions
from training.ope import OpeReport, evaluate

MAX_CATEGORIES = 50
CALIBRATION_BINS = 10


@dataclass(frozen=True, slots=True)
class ScorerParams:
    objective: Objective = "click"
    num_leaves: int = 15
    learning_rate: float = 0.05
    rounds: int = 200
    min_data_in_leaf: int = 20
    test_share: float = 0.2
    seed: int = 7

    def lightgbm(self) -> dict[str, Any]:
        return {
            "objective": "regression" if self.objective == "value" else "binary",
            "num_leaves": self.num_leaves,
            "learning_rate": self.learning_rate,
            "min_data_in_leaf": self.min_data_in_leaf,
            "seed": self.seed,
            "deterministic": True,
            "num_threads": 1,
            "verbose": -1,
        }


@dataclass(frozen=True, slots=True)
class ScorerMetrics:
    n_train: int
    n_test: int
    auc: float | None  # None for the value objective, or a test set of one class
    log_loss: float | None
    calibration: list[dict[str, float]]  # per bin: mean prediction, observed, rows
    policy_value: OpeReport | None  # the greedy policy, off-policy, on the test set
    train_seconds: float = field(default=0.0)

    def to_json(self) -> dict[str, Any]:
        return {
            "n_train": self.n_train,
            "n_test": self.n_test,
            "auc": self.auc,
            "log_loss": self.log_loss,
            "calibration": self.calibration,
            "policy_value": None if self.policy_value is None else self.policy_value.to_json(),
            "train_seconds": self.train_seconds,
        }


def labels(decisions: AttributedDecisions, objective: Objective) -> npt.NDArray[np.float64]:
    if objective == "click":
        return decisions.clicked.astype(np.float64)
    if objective == "conversion":
        return decisions.converted.astype(np.float64)
    return decisions.value.astype(np.float64)


def categories_of(decisions: AttributedDecisions, limit: int = MAX_CATEGORIES) -> tuple[str, ...]:
    """The categories the visitors' windowed counts name most often (a column each)."""
    counts: collections.Counter[str] = collections.Counter()
    prefixes = tuple(f"{family}." for family in CATEGORY_FAMILIES)
    for props in decisions.properties:
        for name in props.get("features", {}):
            if name.startswith(prefixes):
                counts[name.split(".", 1)[1]] += 1
    return tuple(sorted(c for c, _ in counts.most_common(limit)))


def train_scorer(
    decisions: AttributedDecisions, slot: str, params: ScorerParams
) -> tuple[VariantScorer, ScorerMetrics]:
    """Fit on the earlier rows, evaluate on the latest `test_share`, then refit on all
    rows for the scorer that ships (the metrics describe the held-out evaluation)."""
    if len(decisions) < 10:
        raise ValueError(f"slot {slot!r} has {len(decisions)} logged decisions; need 10 or more")
    features = [props.get("features", {}) for props in decisions.properties]
    variants = tuple(sorted({v for p in decisions.properties for v in p.get("eligible", [])}))
    encoder = FeatureEncoder(categories_of(decisions))
    y = labels(decisions, params.objective)
    order = np.argsort(decisions.ts, kind="stable")
    cut = round(len(order) * (1.0 - params.test_share))
    train, test = order[:cut], order[cut:]
    started = time.perf_counter()
    fitted = _fit(encoder, variants, features, decisions.chosen, y, train, params)
    probe = VariantScorer(slot, params.objective, encoder, variants, fitted)
    metrics = _evaluate(probe, decisions, features, y, test, len(train), params)
    booster = _fit(encoder, variants, features, decisions.chosen, y, order, params)
    seconds = time.perf_counter() - started
    scorer = VariantScorer(slot, params.objective, encoder, variants, booster)
    return scorer, ScorerMetrics(
        metrics.n_train,
        metrics.n_test,
        metrics.auc,
        metrics.log_loss,
        metrics.calibration,
        metrics.policy_value,
        seconds,
    )


def _fit(
    encoder: FeatureEncoder,
    variants: tuple[str, ...],
    features: list[dict[str, Any]],
    chosen: npt.NDArray[np.str_],
    y: npt.NDArray[np.float64],
    rows: npt.NDArray[np.int64],
    params: ScorerParams,
) -> lgb.Booster:
    x = variant_rows(encoder, variants, [features[i] for i in rows], [str(chosen[i]) for i in rows])
    names = [f"f{j}" for j in range(x.shape[1])]  # the manifest holds the real layout
    dataset = lgb.Dataset(x, label=y[rows], feature_name=names, free_raw_data=True)
    return lgb.train(params.lightgbm(), dataset, num_boost_round=params.rounds)


def _evaluate(
    scorer: VariantScorer,
    decisions: AttributedDecisions,
    features: list[dict[str, Any]],
    y: npt.NDArray[np.float64],
    test: npt.NDArray[np.int64],
    n_train: int,
    params: ScorerParams,
) -> ScorerMetrics:
    if test.size == 0:
        return ScorerMetrics(n_train, 0, None, None, [], None)
    logged = [str(decisions.chosen[i]) for i in test]
    x = scorer.rows([features[i] for i in test], logged)
    predicted = np.asarray(scorer.booster.predict(x, num_threads=1), dtype=np.float64)
    truth = y[test]
    auc = log_loss = None
    if params.objective != "value" and 0 < truth.sum() < truth.size:
        auc = roc_auc(truth, predicted)
        log_loss = binary_log_loss(truth, predicted)
    # the greedy policy: the best-scored eligible variant; its probability of the
    # logged action is 1 or 0, and the reward model for DR is the scorer itself
    target, q_target = [], []
    for i, row in enumerate(test):
        eligible = decisions.properties[row].get("eligible") or [logged[i]]
        scores = scorer.score(features[row], eligible)
        best = int(np.argmax(scores))
        target.append(1.0 if eligible[best] == logged[i] else 0.0)
        q_target.append(float(scores[best]))
    value = evaluate(
        truth, decisions.propensities[test], np.asarray(target), predicted, np.asarray(q_target)
    )
    return ScorerMetrics(
        n_train, int(test.size), auc, log_loss, calibration(truth, predicted), value
    )


def roc_auc(truth: npt.NDArray[np.float64], scores: npt.NDArray[np.float64]) -> float:
    """Area under the ROC curve by the Mann-Whitney U statistic (ties get half credit)."""
    ranks = rankdata(scores)
    positives = truth > 0.5
    n_pos, n_neg = int(positives.sum()), int((~positives).sum())
    return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def binary_log_loss(truth: npt.NDArray[np.float64], p: npt.NDArray[np.float64]) -> float:
    p = np.clip(p, 1e-15, 1 - 1e-15)
    return float(-np.mean(truth * np.log(p) + (1 - truth) * np.log(1 - p)))


def calibration(
    truth: npt.NDArray[np.float64], predicted: npt.NDArray[np.float64], bins: int = CALIBRATION_BINS
) -> list[dict[str, float]]:
    """Rows sorted by prediction into equal-count bins: mean prediction against the
    observed rate in each (a calibrated model has them equal)."""
    order = np.argsort(predicted, kind="stable")
    table = []
    for part in np.array_split(order, min(bins, order.size)):
        if part.size:
            table.append(
                {
                    "predicted": float(predicted[part].mean()),
                    "observed": float(truth[part].mean()),
                    "rows": float(part.size),
                }
            )
    return table


def save_trained_scorer(
    root: Path, scorer: VariantScorer, metrics: ScorerMetrics, data: dict[str, Any]
) -> str:
    """Write `root/scorer/<version>/` (LightGBM text model, manifest with the row layout,
    the metrics and the data summary) and return the version."""
    manifest: dict[str, Any] = {"metrics": metrics.to_json(), "data": data}

    def files(folder: Path) -> None:
        manifest.update(save_scorer(folder, scorer))  # read when the manifest is written

    return write_artifact(root, "scorer", files, manifest)

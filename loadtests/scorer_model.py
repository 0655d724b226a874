"""A variant scorer for load tests: 8 variants of `loadtest_model`, trained here on a
synthetic uniform log (visitors' page views decide which variant they click), 200
trees as `omotenashi train scorer` fits by default. Labelled synthetic; speed only."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from training.attribution import AttributedDecisions
from training.scorer_train import ScorerParams, save_trained_scorer, train_scorer

SLOT = "loadtest_model"
VARIANTS = tuple(f"v{i}" for i in range(8))


def synthetic_log(n: int = 20_000, seed: int = 0) -> AttributedDecisions:
    rng = np.random.default_rng(seed)
    views = rng.integers(0, 16, n)
    chosen = rng.integers(0, len(VARIANTS), n)
    rate = 0.03 + 0.25 * (chosen == views // 2)  # each variant suits a range of visitors
    props = [
        {
            "slot": SLOT,
            "chosen": VARIANTS[c],
            "eligible": list(VARIANTS),
            "features": {"page_views": int(v), "sessions": int(1 + v // 4)},
        }
        for c, v in zip(chosen, views, strict=True)
    ]
    return AttributedDecisions(
        event_ids=np.array([f"d{i}" for i in range(n)]),
        pids=np.array([f"p{i}" for i in range(n)]),
        slots=np.array([SLOT] * n),
        chosen=np.array([VARIANTS[c] for c in chosen]),
        policies=np.array(["uniform"] * n),
        propensities=np.full(n, 1 / len(VARIANTS)),
        ts=np.arange(n, dtype=np.float64),
        properties=props,
        clicked=rng.random(n) < rate,
        converted=np.zeros(n, dtype=bool),
        value=np.zeros(n),
    )


def build(root: Path) -> str:
    scorer, metrics = train_scorer(synthetic_log(), SLOT, ScorerParams())
    return save_trained_scorer(root, scorer, metrics, {"source": "synthetic (loadtests)"})

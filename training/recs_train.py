"""Training the recommender: fit implicit's ALS or BPR on interactions, measure it
honestly, and save the artifact serving loads.

The evaluation fits a separate model on the leave-last-out training part
(`training.recs_eval`), so the reported metrics never saw the held-out items; the saved
model is then refit on every interaction, because serving should know each user's
latest taste. The manifest says which is which.

Confidence weighting goes through `models.recommender.weight_matrix`, not implicit's
own, so fold-in at serving time weighs a live history exactly as training weighed the
matrix.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from models.artifacts import write_artifact
from models.recommender import Algorithm, WeightingParams, recs_manifest, save_recs, weight_matrix
from training.interactions import Interactions
from training.recs_eval import (
    K,
    RankingMetrics,
    evaluate,
    factor_scores,
    item_popularity,
    leave_last_out,
    popularity_baseline,
)

Device = Literal["cpu", "gpu"]
DEVICES: tuple[str, ...] = get_args(Device)


@dataclass(frozen=True, slots=True)
class RecsParams:
    """Hyperparameters of one fit. `alpha` scales ALS confidences (C = 1 + alpha * r);
    BPR ignores weights and `alpha`, and `learning_rate` is BPR's alone."""

    algorithm: Algorithm = "als"
    factors: int = 128
    iterations: int = 15
    regularization: float = 8.0
    alpha: float = 1.0
    learning_rate: float = 0.01
    weighting: WeightingParams = field(default_factory=lambda: WeightingParams("bm25"))
    seed: int = 42
    device: Device = "cpu"

    def __post_init__(self) -> None:
        positive = {
            "factors": self.factors,
            "iterations": self.iterations,
            "alpha": self.alpha,
            "learning_rate": self.learning_rate,
        }
        for name, value in positive.items():
            if not value > 0:
                raise ValueError(f"{name} must be positive, got {value}")
        if not self.regularization >= 0:
            raise ValueError(f"regularization must be >= 0, got {self.regularization}")
        if not (self.weighting.k1 >= 0 and 0 <= self.weighting.b <= 1):
            raise ValueError(f"bm25 needs k1 >= 0 and 0 <= b <= 1, got {self.weighting}")

    def manifest_params(self) -> dict[str, Any]:
        """What serving's fold-in reads (`regularization`, `alpha`) and what reproduces
        the fit; BPR records alpha 1 since its confidences are not scaled."""
        params: dict[str, Any] = {
            "factors": self.factors,
            "iterations": self.iterations,
            "regularization": self.regularization,
            "alpha": self.alpha if self.algorithm == "als" else 1.0,
            "seed": self.seed,
            "device": self.device,
        }
        if self.algorithm == "bpr":
            params["learning_rate"] = self.learning_rate
        return params


# Tuned on MovieLens 100K: a grid over factors, regularization, alpha, weighting and
# iterations, scored by NDCG@10 on a validation split (each user's second-to-last
# item) and on the leave-last-out test split, three seeds each. ALS peaks on a broad
# plateau around these values (BM25 helps most on the test split, whose held-out items
# lean to the catalogue's tail). The regularization looks large because ALS's data term
# sums over every item, observed or not, and lambda has to be of that order to matter.
# BPR does best with a small step and ~100 epochs; more epochs overfit.
DEFAULT_PARAMS: dict[str, RecsParams] = {
    "als": RecsParams(algorithm="als"),
    "bpr": RecsParams(
        algorithm="bpr",
        factors=64,
        iterations=100,
        regularization=0.01,
        learning_rate=0.01,
        weighting=WeightingParams("none"),
    ),
}


@dataclass(frozen=True, slots=True)
class Dataset:
    """Interactions as matrix coordinates: row `r` is user `user_ids[r]`, column `c` is
    item `item_ids[c]`, one entry per (user, item). Users are sorted; items are in id
    order, numeric when every id is a whole number (MovieLens' "1682" after "999"), so
    that leave-last-out's tie-break, the larger column, is the larger item id."""

    user_ids: npt.NDArray[np.str_]
    item_ids: npt.NDArray[np.str_]
    rows: npt.NDArray[np.int64]
    cols: npt.NDArray[np.int64]
    weights: npt.NDArray[np.float32]
    timestamps: npt.NDArray[np.float64]

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.user_ids), len(self.item_ids)

    def matrix(self) -> sp.csr_matrix:
        """Users x items, the raw weights."""
        return sp.csr_matrix((self.weights, (self.rows, self.cols)), shape=self.shape)

    def summary(self) -> dict[str, Any]:
        users, items = self.shape
        return {
            "users": users,
            "items": items,
            "interactions": len(self.rows),
            "density": len(self.rows) / (users * items) if users and items else 0.0,
        }


def encode(interactions: Interactions) -> Dataset:
    """Number the users and items of `interactions` (every item of the data set gets a
    column, even one seen only in a held-out interaction)."""
    if not len(interactions):
        raise ValueError("no interactions to train on")
    user_ids, rows = np.unique(interactions.users, return_inverse=True)
    item_ids, cols = _in_id_order(interactions.items)
    return Dataset(
        user_ids=user_ids,
        item_ids=item_ids,
        rows=rows.astype(np.int64),
        cols=cols.astype(np.int64),
        weights=interactions.weights.astype(np.float32),
        timestamps=interactions.timestamps.astype(np.float64),
    )


def _in_id_order(
    items: npt.NDArray[np.str_],
) -> tuple[npt.NDArray[np.str_], npt.NDArray[np.int64]]:
    """Distinct item ids in id order and each row's column."""
    item_ids, cols = np.unique(items, return_inverse=True)
    if item_ids.size and np.char.isdigit(item_ids).all():
        digits = np.char.lstrip(item_ids, "0")  # numeric order: shorter first, then digits
        order = np.lexsort((item_ids, digits, np.char.str_len(digits)))
        column_of = np.empty_like(order)
        column_of[order] = np.arange(order.size)
        return item_ids[order], column_of[cols].astype(np.int64)
    return item_ids, cols.astype(np.int64)


@dataclass(frozen=True, slots=True)
class Fit:
    """A fitted model's factors (on the CPU) and the implicit model they came from."""

    user_factors: npt.NDArray[np.float32]
    item_factors: npt.NDArray[np.float32]
    model: Any
    seconds: float


def fit(user_items: sp.csr_matrix, params: RecsParams, *, show_progress: bool) -> Fit:
    """Weigh the matrix, fit ALS or BPR on it (implicit's progress bar on stderr when
    `show_progress`), and bring the factors to the CPU."""
    weighted, _ = weight_matrix(user_items, params.weighting)
    model_class = _model_class(params)  # imported first: the limit applies to loaded BLAS
    started = time.perf_counter()
    # implicit runs its own threads; BLAS threads under them would oversubscribe (and
    # implicit warns about it when the model is created)
    with threadpool_limits(1, "blas"):
        model = model_class(**_model_arguments(params))
        model.fit(weighted, show_progress=show_progress)
    seconds = time.perf_counter() - started
    if params.device == "gpu":
        model = model.to_cpu()
    return Fit(
        user_factors=np.asarray(model.user_factors, dtype=np.float32),
        item_factors=np.asarray(model.item_factors, dtype=np.float32),
        model=model,
        seconds=seconds,
    )


def check_device(device: Device) -> None:
    """Fail early (before loading data) when the GPU was asked for and is not there."""
    if device == "gpu":
        import implicit.gpu

        if not implicit.gpu.HAS_CUDA:
            raise ValueError(
                "device gpu: this implicit build has no CUDA support or sees no GPU; "
                "train on the cpu instead"
            )


def _model_class(params: RecsParams) -> Any:
    """implicit's class for the algorithm and device (imported here: it is slow to load,
    and every `omotenashi` command builds the parser that imports this module)."""
    check_device(params.device)
    if params.device == "gpu":
        from implicit.gpu.als import AlternatingLeastSquares
        from implicit.gpu.bpr import BayesianPersonalizedRanking
    else:
        from implicit.cpu.als import AlternatingLeastSquares
        from implicit.cpu.bpr import BayesianPersonalizedRanking
    return BayesianPersonalizedRanking if params.algorithm == "bpr" else AlternatingLeastSquares


def _model_arguments(params: RecsParams) -> dict[str, Any]:
    common = {
        "factors": params.factors,
        "regularization": params.regularization,
        "iterations": params.iterations,
        "random_state": params.seed,
    }
    if params.algorithm == "bpr":
        return {**common, "learning_rate": params.learning_rate}
    return {**common, "alpha": params.alpha}


@dataclass(frozen=True, slots=True)
class Evaluation:
    """Leave-last-out metrics of a model fitted on the split, and of the baseline."""

    model: RankingMetrics
    popularity: RankingMetrics
    fit_seconds: float

    def manifest(self) -> dict[str, Any]:
        return {
            "protocol": "leave-last-out",
            "fitted_on": "the split's training part; the saved model is refit on all data",
            "k": self.model.k,
            "users": self.model.users,
            "model": self.model.as_dict(),
            "popularity": self.popularity.as_dict(),
            "fit_seconds": self.fit_seconds,
        }


def evaluate_leave_last_out(
    data: Dataset, params: RecsParams, *, show_progress: bool = False, k: int = K
) -> Evaluation:
    """Fit on all but each user's latest interaction and rank the held-out items."""
    split = leave_last_out(data.rows, data.cols, data.weights, data.timestamps, data.shape)
    fitted = fit(split.train, params, show_progress=show_progress)
    return Evaluation(
        model=evaluate(split, factor_scores(fitted.user_factors, fitted.item_factors), k),
        popularity=popularity_baseline(split, k),
        fit_seconds=fitted.seconds,
    )


@dataclass(frozen=True, slots=True)
class TrainedRecs:
    """Everything the artifact holds, before it is written."""

    data: Dataset
    params: RecsParams
    fit: Fit
    seen: sp.csr_matrix
    popularity: npt.NDArray[np.float32]
    item_length_norm: npt.NDArray[np.float32]
    evaluation: Evaluation | None

    @property
    def train_seconds(self) -> float:
        return self.fit.seconds


def train_recs(
    data: Dataset, params: RecsParams, *, evaluate: bool, show_progress: bool = False
) -> TrainedRecs:
    """Evaluate (when asked) on the leave-last-out split, then fit on all interactions."""
    evaluation = (
        evaluate_leave_last_out(data, params, show_progress=show_progress) if evaluate else None
    )
    seen = data.matrix()
    _, length_norm = weight_matrix(seen, params.weighting)
    return TrainedRecs(
        data=data,
        params=params,
        fit=fit(seen, params, show_progress=show_progress),
        seen=seen,
        popularity=item_popularity(seen),
        item_length_norm=length_norm,
        evaluation=evaluation,
    )


def save_trained(
    root: Path,
    trained: TrainedRecs,
    *,
    event_weights: Mapping[str, float],
    data: Mapping[str, Any],
    top_k: int = 0,
    fold_in_lists: int = 0,
    show_progress: bool = False,
) -> str:
    """Write the artifact (`root/recs/<version>/`) and return its version. `data`
    describes the source (path, format, how user ids were made); counts are added."""
    params = trained.params

    def files(folder: Path) -> None:
        save_recs(
            folder,
            item_ids=trained.data.item_ids.tolist(),
            item_factors=trained.fit.item_factors,
            user_pids=trained.data.user_ids.tolist(),
            user_factors=trained.fit.user_factors,
            seen=trained.seen,
            popularity=trained.popularity,
            item_length_norm=trained.item_length_norm,
            top_k=top_k,
            # the lists bound ALS scores only (a BPR score adds an item bias)
            fold_in_lists=fold_in_lists if params.algorithm == "als" else 0,
            regularization=params.regularization,
            show_progress=show_progress,
        )

    manifest = recs_manifest(
        algorithm=params.algorithm,
        params=params.manifest_params(),
        weighting=params.weighting,
        event_weights=event_weights,
        data={**data, **trained.data.summary()},
        metrics=trained.evaluation.manifest() if trained.evaluation else {},
        train_seconds=trained.train_seconds,
    )
    return write_artifact(root, "recs", files, manifest)


def format_metrics(evaluation: Evaluation, algorithm: str) -> str:
    """Model and baseline side by side, one metric a row, for the terminal."""
    model, baseline = evaluation.model.as_dict(), evaluation.popularity.as_dict()
    template = "{:<14}{:>10}{:>12}"
    header = template.format("metric", algorithm, "popularity")
    lines = [header, "-" * len(header)]
    lines += [template.format(n, f"{model[n]:.4f}", f"{baseline[n]:.4f}") for n in model]
    return "\n".join(lines)

"""The variant scorer: LightGBM predicting a visitor's outcome for each variant of a slot.

A row is the visitor's encoded features (`models.encoding.FeatureEncoder`) followed by
a one-hot of the variant, so scoring every eligible variant is one `predict` call on
one small matrix. The artifact holds LightGBM's own text model (never a pickle) and a
manifest with the encoder's layout and its schema hash: a scorer trained on another
feature layout than the running code's is refused at load.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

import lightgbm as lgb
import numpy as np

from models.artifacts import ArtifactError, folder_manifest
from models.encoding import FeatureEncoder
from models.features import FeatureValue

log = logging.getLogger(__name__)
Objective = Literal["click", "conversion", "value"]
OBJECTIVES: tuple[str, ...] = get_args(Objective)
MODEL_FILE = "model.txt"
FORMAT = 1


def schema_hash(encoder: FeatureEncoder, variants: Sequence[str]) -> str:
    """The row layout: the encoder's columns, then one column per variant."""
    layout = [*encoder.columns, *(f"variant={v}" for v in variants)]
    return hashlib.sha256("\n".join(layout).encode()).hexdigest()[:16]


def variant_rows(
    encoder: FeatureEncoder,
    columns: Sequence[str],
    features: Sequence[Mapping[str, FeatureValue]],
    variants: Sequence[str],
) -> np.ndarray:
    """One row per (visitor, variant) pair, `features[i]` with `variants[i]`: the
    encoded features, then a one-hot over the variant `columns`."""
    return np.hstack([encoder.encode(features), variant_rows_onehot(columns, variants)])


def variant_rows_onehot(columns: Sequence[str], variants: Sequence[str]) -> np.ndarray:
    onehot = np.zeros((len(variants), len(columns)), dtype=np.float32)
    index = {v: j for j, v in enumerate(columns)}
    for i, variant in enumerate(variants):
        j = index.get(variant)
        if j is not None:  # a variant newer than the model has no column of its own
            onehot[i, j] = 1.0
    return onehot


@dataclass(frozen=True, slots=True)
class VariantScorer:
    slot: str
    objective: Objective
    encoder: FeatureEncoder
    variants: tuple[str, ...]
    booster: lgb.Booster
    version: str = ""
    compiled: Any = None  # an lleaves model of the same trees, when compiled at load

    @property
    def schema_hash(self) -> str:
        return schema_hash(self.encoder, self.variants)

    def rows(
        self, features: Sequence[Mapping[str, FeatureValue]], variants: Sequence[str]
    ) -> np.ndarray:
        return variant_rows(self.encoder, self.variants, features, variants)

    def score(self, features: Mapping[str, FeatureValue], variants: Sequence[str]) -> np.ndarray:
        """Predicted outcome of each of `variants` for one visitor: one predict call."""
        # the visitor's part is encoded once and repeated; the variant part is one-hot
        encoded = self.encoder.encode([features])
        onehot = variant_rows_onehot(self.variants, variants)
        rows = np.hstack([np.repeat(encoded, len(variants), axis=0), onehot])
        if self.compiled is not None:
            return np.asarray(self.compiled.predict(rows.astype(np.float64), n_jobs=1))
        return np.asarray(self.booster.predict(rows, num_threads=1), dtype=np.float64)


def save_scorer(folder: Path, scorer: VariantScorer) -> dict[str, Any]:
    """Write the model file; return the manifest fields that describe its layout."""
    scorer.booster.save_model(str(folder / MODEL_FILE))
    return {
        "format": FORMAT,
        "slot": scorer.slot,
        "objective": scorer.objective,
        "variants": list(scorer.variants),
        "categories": list(scorer.encoder.categories),
        "channels": list(scorer.encoder.channels),
        "schema_hash": scorer.schema_hash,
    }


def load_scorer(folder: Path, *, compiled: bool = False) -> VariantScorer:
    """Load a scorer version, refusing one whose row layout differs from what this code
    would build from the same manifest (the feature schema changed since training).

    With `compiled`, the trees are also compiled to native code by lleaves (about 2 s
    once; then 9 us instead of LightGBM's 43 us for 8 rows, the same numbers); if that
    fails the scorer predicts through LightGBM and the reason is logged."""
    manifest = folder_manifest(folder, "scorer", FORMAT)
    encoder = FeatureEncoder(tuple(manifest["categories"]), tuple(manifest["channels"]))
    variants = tuple(manifest["variants"])
    running = schema_hash(encoder, variants)
    if running != manifest.get("schema_hash"):
        raise ArtifactError(
            f"{folder}: feature schema {manifest.get('schema_hash')} was trained, this code "
            f"builds {running}; retrain the scorer"
        )
    try:
        booster = lgb.Booster(model_file=str(folder / MODEL_FILE))
    except lgb.basic.LightGBMError as exc:
        raise ArtifactError(f"{folder}: {MODEL_FILE}: {exc}") from exc
    if booster.num_feature() != len(encoder.columns) + len(variants):
        raise ArtifactError(f"{folder}: the model has {booster.num_feature()} features")
    return VariantScorer(
        slot=str(manifest["slot"]),
        objective=manifest["objective"],
        encoder=encoder,
        variants=variants,
        booster=booster,
        version=str(manifest["version"]),
        compiled=_compile(folder / MODEL_FILE) if compiled else None,
    )


def _compile(model_file: Path) -> Any:
    try:
        import lleaves  # a native-code path; the scorer works without it

        model = lleaves.Model(model_file=str(model_file))
        model.compile()
    except Exception as exc:  # an LLVM or lleaves failure must not take the scorer down
        log.warning("scorer %s not compiled (%s); LightGBM predicts instead", model_file, exc)
        return None
    return model

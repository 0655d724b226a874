"""The variant scorer: LightGBM predicting a visitor's outcome for each variant of a slot.

A row is the visitor's encoded features (`models.encoding.FeatureEncoder`) followed by
a one-hot of the variant, so scoring every eligible variant is one `predict` call on
one small matrix. The artifact holds LightGBM's own text model (never a pickle) and a
manifest with the encoder's layout and its schema hash: a scorer trained on another
feature layout than the running code's is refused at load.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import logging
from collections.abc import Callable, Mapping, Sequence
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


@functools.lru_cache(maxsize=1024)
def _onehot_block(columns: tuple[str, ...], variants: tuple[str, ...]) -> np.ndarray:
    block = variant_rows_onehot(columns, variants)
    block.flags.writeable = False  # shared by every request of the slot
    return block


class NativeTrees:
    """An lleaves model's compiled trees, called directly.

    `lleaves.Model.predict` converts both arrays to typed ctypes pointers and releases
    the GIL around the call: for the 8 rows of a decide that costs three times the
    trees themselves. This calls the same entry point with raw addresses, holding the
    GIL (the call lasts microseconds). Only for what it can serve the same way:
    float64 and one output per row; anything else goes through `predict`.
    """

    __slots__ = ("_entry", "model")

    def __init__(self, model: Any) -> None:
        self.model = model  # owns the compiled code: it must outlive `_entry`
        self._entry: Callable[[int, int, int, int], None] | None = None
        entry = getattr(model, "_c_entry_func", None)
        address = None if entry is None else ctypes.cast(entry, ctypes.c_void_p).value
        if address and model.use_fp64 and model.num_model_per_iteration() == 1:
            signature = ctypes.PYFUNCTYPE(
                None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_int
            )
            self._entry = signature(address)

    def predict(self, rows: np.ndarray) -> np.ndarray:
        """Raw model output per row of a float64 matrix."""
        if self._entry is None:
            return np.asarray(self.model.predict(rows, n_jobs=1))
        rows = np.ascontiguousarray(rows, dtype=np.float64)
        out = np.zeros(len(rows))
        self._entry(rows.ctypes.data, out.ctypes.data, 0, len(rows))
        return out


@dataclass(frozen=True, slots=True)
class VariantScorer:
    slot: str
    objective: Objective
    encoder: FeatureEncoder
    variants: tuple[str, ...]
    booster: lgb.Booster
    version: str = ""
    compiled: NativeTrees | None = None  # the same trees compiled by lleaves at load

    @property
    def schema_hash(self) -> str:
        return schema_hash(self.encoder, self.variants)

    def rows(
        self, features: Sequence[Mapping[str, FeatureValue]], variants: Sequence[str]
    ) -> np.ndarray:
        return variant_rows(self.encoder, self.variants, features, variants)

    def score(self, features: Mapping[str, FeatureValue], variants: Sequence[str]) -> np.ndarray:
        """Predicted outcome of each of `variants` for one visitor: one predict call."""
        # the visitor's part is encoded once (in float32, as training saw it) and
        # broadcast over the rows; the variant part is a one-hot block kept per slot
        encoded = self.encoder.encode_one(features)
        onehot = _onehot_block(self.variants, tuple(variants))
        rows = np.empty((len(variants), len(encoded) + onehot.shape[1]))
        rows[:, : len(encoded)] = encoded
        rows[:, len(encoded) :] = onehot
        if self.compiled is not None:
            return np.asarray(self.compiled.predict(rows))
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


def _compile(model_file: Path) -> NativeTrees | None:
    try:
        import lleaves  # a native-code path; the scorer works without it

        model = lleaves.Model(model_file=str(model_file))
        model.compile()
    except Exception as exc:  # an LLVM or lleaves failure must not take the scorer down
        log.warning("scorer %s not compiled (%s); LightGBM predicts instead", model_file, exc)
        return None
    return NativeTrees(model)

"""Feature vectors for models: the decoded visitor features as one numeric row.

Training and serving both encode through `FeatureEncoder`, so a model sees the same
columns in the same order either way; `schema_hash` names that layout, and a model
artifact whose hash differs from the serving encoder's is refused (ARCHITECTURE.md).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from models.features import ALL_FEATURES, FeatureValue

# Per-category families worth a column each; the vocabulary comes from the catalogue.
CATEGORY_FAMILIES: tuple[str, ...] = ("views_7d", "views_30d", "purchases_30d")
NUMERIC_FEATURES: tuple[str, ...] = tuple(
    f.name for f in ALL_FEATURES if not f.family and f.type in ("int", "float")
)


@dataclass(frozen=True, slots=True)
class FeatureEncoder:
    """Columns: every numeric feature, per-category windowed counts, last channel one-hot."""

    categories: tuple[str, ...]
    channels: tuple[str, ...] = ("web", "app", "store", "email")
    columns: tuple[str, ...] = field(init=False)
    _defaults: np.ndarray = field(init=False, repr=False, compare=False)
    _index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        columns = list(NUMERIC_FEATURES)
        columns += [f"{fam}.{c}" for fam in CATEGORY_FAMILIES for c in self.categories]
        columns += [f"last_channel={c}" for c in self.channels]
        object.__setattr__(self, "columns", tuple(columns))
        defaults = {f.name: f.default for f in ALL_FEATURES}
        row = [float(defaults[name]) for name in NUMERIC_FEATURES]
        row += [0.0] * (len(columns) - len(row))
        object.__setattr__(self, "_defaults", np.asarray(row, dtype=np.float32))
        object.__setattr__(self, "_index", {name: i for i, name in enumerate(columns)})

    @property
    def schema_hash(self) -> str:
        """Changes whenever a column is added, removed or reordered."""
        return hashlib.sha256("\n".join(self.columns).encode()).hexdigest()[:16]

    def encode(self, profiles: Sequence[Mapping[str, FeatureValue]]) -> np.ndarray:
        """An (n, len(columns)) float32 matrix; absent features take their defaults."""
        out = np.tile(self._defaults, (len(profiles), 1))
        for row, features in enumerate(profiles):
            self._fill(out[row], features)
        return out

    def encode_one(self, features: Mapping[str, FeatureValue]) -> np.ndarray:
        """One visitor's row, float32 like `encode`'s (decide encodes one per request)."""
        out = self._defaults.copy()
        self._fill(out, features)
        return out

    def _fill(self, row: np.ndarray, features: Mapping[str, FeatureValue]) -> None:
        index = self._index
        for name, value in features.items():
            if isinstance(value, str):
                if name == "last_channel":
                    j = index.get(f"last_channel={value}")
                    if j is not None:
                        row[j] = 1.0
                continue
            j = index.get(name)
            if j is not None:
                row[j] = value

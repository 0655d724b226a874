"""The catalogue as a recommender model sees it: numpy arrays aligned to its item rows.

Built once per (model version, catalogue version) so a request filters by
availability and category with array indexing, never a loop over items. Items the
catalogue does not list are recommendable (a model trained on a data set may come
before its catalogue); items the model does not know are kept apart, to fill a list
that filters left short.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import orjson

from models.recommender import RecsModel

ALL = ""


@dataclass(frozen=True, slots=True)
class CatalogView:
    catalog_version: int
    unavailable: np.ndarray  # rows the catalogue marks unavailable
    blocked: np.ndarray  # bool per row: unavailable (a lookup, for candidate lists)
    members: dict[str, np.ndarray]  # category -> its available rows, ascending
    category_of: np.ndarray  # int32 per row: index into `categories`, -1 if not listed
    categories: dict[str, int]
    popular: np.ndarray  # available rows, most popular first (ties: lower row)
    popular_in: dict[str, np.ndarray]  # the same per category
    # category (ALL: any) -> available ids the model does not know
    newcomers: dict[str, tuple[str, ...]]

    def candidates(self, category: str | None) -> np.ndarray | None:
        """Rows a request may get: None means every row but `unavailable`."""
        if category is None:
            return None
        return self.members.get(category, np.zeros(0, np.int64))

    def fill(self, category: str | None) -> tuple[str, ...]:
        return self.newcomers.get(ALL if category is None else category, ())


def build_view(model: RecsModel, version: int, raw_items: Mapping[bytes, bytes]) -> CatalogView:
    """Align catalogue entries (item id -> JSON, as stored) with the model's rows."""
    index = model.item_index
    unavailable: list[int] = []
    by_category: dict[str, list[int]] = {}
    newcomers: dict[str, list[str]] = {ALL: []}
    for raw_id, raw in raw_items.items():
        item = orjson.loads(raw)
        item_id = raw_id.decode()
        available = bool(item.get("available", True))
        category = str(item.get("category", ""))
        row = index.get(item_id)
        if row is None:
            if available:
                newcomers[ALL].append(item_id)
                newcomers.setdefault(category, []).append(item_id)
        elif not available:
            unavailable.append(row)
        else:
            by_category.setdefault(category, []).append(row)
    blocked = np.zeros(model.n_items, dtype=bool)
    blocked[unavailable] = True
    popularity = np.asarray(model.popularity)
    by_popularity = np.lexsort((np.arange(model.n_items), -popularity))
    members = {c: np.array(sorted(rows), dtype=np.int64) for c, rows in by_category.items()}
    categories = {c: code for code, c in enumerate(sorted(members))}
    category_of = np.full(model.n_items, -1, dtype=np.int32)
    for name, rows in members.items():
        category_of[rows] = categories[name]
    return CatalogView(
        catalog_version=version,
        unavailable=np.flatnonzero(blocked),
        blocked=blocked,
        members=members,
        category_of=category_of,
        categories=categories,
        popular=by_popularity[~blocked[by_popularity]],
        popular_in={c: rows[np.lexsort((rows, -popularity[rows]))] for c, rows in members.items()},
        newcomers={c: tuple(sorted(ids)) for c, ids in newcomers.items()},
    )

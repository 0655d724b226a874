"""An approximate inner-product index over item factors, for catalogues where exact
scoring costs too much per request (100,000 items x 64 factors is ~2.5 ms of memory
traffic per visitor; an HNSW search is ~50 us).

The index is a usearch HNSW graph saved next to the factors (`items.usearch`) and
memory-mapped by every worker (`view=True`), like the `.npy` arrays. Keys are item
rows. It answers "which rows score highest"; scores are recomputed exactly from the
factors, so a returned score is always the model's own.

Item factors' norms vary a hundredfold (popular items are long), and HNSW searches
inner products poorly then (recall@10 0.66 on the load-test model). So the index holds
each item with one extra coordinate, sqrt(M^2 - |y|^2), and the query gets a 0 there:
then |q - y'|^2 = |q|^2 + M^2 - 2 q.y, and the nearest items in L2 are the highest
inner products (Bachrach et al. 2014, "Speeding up the Xbox recommender system").
Recall@10 on the same model: 0.94.
"""

from __future__ import annotations

import os
from pathlib import Path

import lightgbm  # noqa: F401  # must load before usearch: see below
import numpy as np
from usearch.index import Index

# usearch's compiled module carries its own copy of libstdc++ and exports it; a
# LightGBM library loaded after it binds its stream functions to those copies and
# fails to build any dataset ("Feature (Column_) appears more than one time").
# Loaded first, LightGBM keeps its own. tests/unit/models/test_ann.py checks it.

INDEX_FILE = "items.usearch"
CONNECTIVITY = 32
EXPANSION_ADD = 200
EXPANSION_SEARCH = 128  # recall@10 0.94 at ~100 us on the 100k-item load-test model
CANDIDATES = 40  # rows fetched per top-10, rescored exactly


def build_index(item_factors: np.ndarray, threads: int = 0) -> Index:
    factors = np.asarray(item_factors, dtype=np.float64)
    squares = np.einsum("ij,ij->i", factors, factors)
    extra = np.sqrt(np.maximum(squares.max(initial=0.0) - squares, 0.0))
    augmented = np.ascontiguousarray(np.hstack([factors, extra[:, None]]), dtype=np.float32)
    index = Index(
        ndim=augmented.shape[1],
        metric="l2sq",
        dtype="f32",
        connectivity=CONNECTIVITY,
        expansion_add=EXPANSION_ADD,
        expansion_search=EXPANSION_SEARCH,
    )
    index.add(np.arange(augmented.shape[0], dtype=np.uint64), augmented, threads=threads)
    return index


def add_index(
    folder: Path, item_factors: np.ndarray, user_vectors: np.ndarray, sample: int = 500
) -> float:
    """Write the folder's index (aside, then renamed into place: a worker never opens
    half a file) and return its recall@10 against exact scoring on up to `sample`
    user vectors (NaN without users)."""
    factors = np.asarray(item_factors, dtype=np.float32)
    index = build_index(factors)
    staging = folder / f".{INDEX_FILE}.tmp"
    index.save(str(staging))
    os.replace(staging, folder / INDEX_FILE)
    if len(user_vectors) == 0:
        return float("nan")
    rows = np.random.default_rng(0).choice(
        len(user_vectors), size=min(sample, len(user_vectors)), replace=False
    )
    return recall_at(index, factors, np.asarray(user_vectors)[np.sort(rows)])


def open_index(folder: Path, expansion_search: int = EXPANSION_SEARCH) -> Index | None:
    """The folder's index, memory-mapped; None if it has none."""
    path = folder / INDEX_FILE
    if not path.is_file():
        return None
    index = Index.restore(str(path), view=True)
    if index is None:
        raise ValueError(f"{path} is not a usearch index")
    index.expansion_search = expansion_search  # type: ignore[misc]  # it has a setter
    return index


def search_rows(index: Index, user_vector: np.ndarray, count: int) -> np.ndarray:
    """Up to `count` rows with (approximately) the highest inner product, best first."""
    query = np.zeros(len(user_vector) + 1, dtype=np.float32)
    query[:-1] = user_vector
    matches = index.search(query, count, threads=1)  # the default pool spins on 2 cores
    keys: np.ndarray = matches.keys.astype(np.int64)
    return keys


def recall_at(
    index: Index,
    item_factors: np.ndarray,
    user_vectors: np.ndarray,
    k: int = 10,
    candidates: int = CANDIDATES,
) -> float:
    """Mean share of the exact top-k that serving finds: `candidates` rows from the
    index, rescored exactly, best k kept."""
    hits = 0
    for vector in user_vectors:
        exact = np.argpartition(-(item_factors @ vector), k - 1)[:k]
        rows = search_rows(index, vector, candidates)
        found = rows[np.argsort(-(item_factors[rows] @ vector), kind="stable")[:k]]
        hits += len(set(exact.tolist()) & set(found.tolist()))
    return hits / (k * len(user_vectors))

"""The approximate index finds what exact scoring finds, and is written whole."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from models.ann import INDEX_FILE, add_index, open_index, recall_at, search_rows


def clustered(rows: int, dims: int, seed: int) -> np.ndarray:
    """Vectors around 30 centres: the structure trained factors have."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((30, dims))
    labels = rng.integers(0, 30, rows)
    return (centres[labels] + 0.3 * rng.standard_normal((rows, dims))).astype(np.float32)


def test_the_index_recalls_the_exact_top_ten(tmp_path: Path) -> None:
    items, users = clustered(3000, 16, 1), clustered(200, 16, 2)
    recall = add_index(tmp_path, items, users)
    assert recall >= 0.9
    index = open_index(tmp_path)
    assert index is not None
    assert len(index) == 3000
    assert recall_at(index, items, users) == pytest.approx(recall)
    rows = search_rows(index, users[0], 5)
    scores = items[rows] @ users[0]
    assert np.all(np.diff(scores) <= 1e-5)  # best first


def test_a_folder_without_an_index_has_none_and_no_temp_file_is_left(tmp_path: Path) -> None:
    assert open_index(tmp_path) is None
    add_index(tmp_path, clustered(100, 8, 3), np.zeros((0, 8), np.float32))
    assert sorted(p.name for p in tmp_path.iterdir()) == [INDEX_FILE]


def test_lightgbm_still_trains_after_the_index_module_is_imported() -> None:
    """A fresh interpreter, so the import order is the index module's, not pytest's."""
    code = (
        "import models.ann, lightgbm as lgb, numpy as np\n"
        "x = np.random.default_rng(0).random((50, 3))\n"
        "lgb.train({'objective': 'binary', 'verbose': -1}, "
        "lgb.Dataset(x, label=(x[:, 0] > 0.5).astype(float)), num_boost_round=2)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr

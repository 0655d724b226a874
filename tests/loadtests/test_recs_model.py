"""The load-test recommender: a loadable artifact whose trained visitors the server
finds, with an index that recalls the exact top ten and lists for fold-in visitors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.keyring import Keyring
from engine.privacy.pseudonym import Pseudonymizer
from loadtests.__main__ import main
from loadtests.recs_model import build, synthetic_interactions, trained_visitor
from loadtests.targets import Keys, recs_requests
from models.artifacts import list_versions
from models.fold_in_lists import LIST_LENGTH
from models.recommender import load_recs

SECRET = "s" * 40


def test_synthetic_interactions_have_taste_groups() -> None:
    matrix = synthetic_interactions(items=2000, users=300, seed=1)
    assert matrix.shape == (300, 2000)
    per_user = np.diff(matrix.indptr)
    assert per_user.min() >= 5
    assert per_user.max() <= 40
    assert matrix.data.max() == 1.0  # duplicates summed away, one entry per pair


def test_build_writes_a_model_with_an_index_and_pseudonymized_visitors(tmp_path: Path) -> None:
    built = build(tmp_path, SECRET, items=1500, users=400, index=True)
    assert built.recall_at_10 is not None
    assert built.recall_at_10 >= 0.8
    model = load_recs(tmp_path / "recs" / built.version, with_index=True)
    assert model.ann is not None
    assert model.n_items == 1500
    pid = Pseudonymizer(Keyring.from_secret(SECRET).pseudonyms)(trained_visitor(7))
    assert model.user_row(pid) is not None
    (manifest,) = list_versions(tmp_path, "recs")
    assert manifest["data"]["source"].startswith("synthetic")
    assert manifest["metrics"]["ann_recall@10"] == pytest.approx(built.recall_at_10, abs=1e-4)
    # fold-in visitors are ranked from the lists, as after `omotenashi train recs`
    assert model.fold_in_lists is not None
    assert model.fold_in_lists.rows.shape == (1500, LIST_LENGTH)


def test_recommendation_requests_mix_trained_folding_in_and_cold_visitors() -> None:
    requests = recs_requests("127.0.0.1:8765", Keys(site="k", admin="a"))
    paths = [r.split(b" ")[1].decode() for r in requests]
    assert len(set(paths)) == len(paths) == 1600
    assert sum("visitor_id=lt-u" in p for p in paths) == 800
    assert sum("visitor_id=lt-f" in p for p in paths) == 400
    assert all(r.startswith(b"GET /v1/recommendations?") for r in requests)


def test_recs_model_needs_the_servers_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMOTENASHI_SECRET", raising=False)
    with pytest.raises(SystemExit):
        main(["recs-model", "--artifacts-dir", "/tmp/unused", "--items", "10"])

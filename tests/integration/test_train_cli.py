"""`omotenashi train recs` end to end: a ratings file in, an artifact with pseudonymized
users out, metrics as JSON, and the version made live in the real Redis."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import redis

from engine.cli.main import main
from engine.events.archive import SCHEMA
from engine.keyring import Keyring
from engine.privacy.pseudonym import Pseudonymizer
from engine.store.keys import Keys
from models.artifacts import list_versions
from models.fold_in_lists import LIST_LENGTH
from models.recommender import load_recs
from tests.conftest import SECRET

pytestmark = pytest.mark.integration

FAST = ["--factors", "8", "--iterations", "4", "--regularization", "0.1"]
METRICS = {"hit_rate@10", "ndcg@10", "precision@10", "coverage@10"}


@pytest.fixture
def cli_env(
    monkeypatch: pytest.MonkeyPatch, redis_url: str, key_prefix: str, tmp_path: Path
) -> Path:
    """The environment `omotenashi` reads; returns the artifacts folder."""
    artifacts = tmp_path / "artifacts"
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("OMOTENASHI_KEY_PREFIX", key_prefix)
    monkeypatch.setenv("OMOTENASHI_SECRET", SECRET)
    monkeypatch.setenv("OMOTENASHI_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("OMOTENASHI_ARTIFACTS_DIR", str(artifacts))
    return artifacts


def u_data(path: Path, users: int = 40, items: int = 30, seed: int = 2) -> list[str]:
    """A GroupLens `u.data`-style file (no header); returns the raw user ids."""
    rng = np.random.default_rng(seed)
    lines = []
    for user in range(1, users + 1):
        for item in rng.choice(items, 6, replace=False) + 1:
            rating, ts = rng.integers(1, 6), 880_000_000 + rng.integers(0, 10**6)
            lines.append(f"{user}\t{item}\t{rating}\t{ts}")
    path.write_text("\n".join(lines) + "\n")
    return [str(user) for user in range(1, users + 1)]


def train(*args: str) -> int:
    return main(["train", "recs", *args])


def test_train_recs_writes_metrics_artifact_and_activates(
    cli_env: Path, tmp_path: Path, redis_sync: redis.Redis, key_prefix: str
) -> None:
    ratings = tmp_path / "u.data"
    raw_users = u_data(ratings)
    metrics_path = tmp_path / "metrics.json"
    code = train(
        "--interactions",
        str(ratings),
        "--format",
        "movielens",
        "--eval",
        "leave-last-out",
        "--metrics-json",
        str(metrics_path),
        "--activate",
        *FAST,
    )
    assert code == 0
    metrics = orjson.loads(metrics_path.read_bytes())
    assert set(metrics) == {"model", "popularity", "train_seconds", "version"}
    assert set(metrics["model"]) == METRICS
    assert set(metrics["popularity"]) == METRICS
    assert metrics["train_seconds"] > 0

    version = metrics["version"]
    assert [m["version"] for m in list_versions(cli_env, "recs")] == [version]
    active = redis_sync.hgetall(Keys(key_prefix).active_models)
    assert active == {b"recs": version.encode()}

    model = load_recs(cli_env / "recs" / version)
    pseudonymize = Pseudonymizer(Keyring.from_secret(SECRET).pseudonyms)
    assert sorted(model.user_pids.tolist()) == sorted(pseudonymize(u).encode() for u in raw_users)
    assert model.user_row(pseudonymize("7")) is not None
    assert model.user_row("7") is None  # no raw id in the artifact
    assert model.params["factors"] == 8
    assert model.manifest["metrics"]["model"] == metrics["model"]
    assert model.manifest["data"]["format"] == "movielens"
    assert model.manifest["data"]["users"] == len(raw_users)
    # lists for fold-in visitors (64 by default: all 30 items here), by the item-to-item
    # score of the model's own Gram matrix
    assert model.fold_in_lists is not None
    length = min(LIST_LENGTH, model.n_items)
    assert model.fold_in_lists.rows.shape == (model.n_items, length)
    item = model.item_factors[0].astype(np.float64)
    scores = (item @ model.gram_inverse) @ model.item_factors.T.astype(np.float64)
    best = np.sort(scores)[::-1][:length]
    np.testing.assert_allclose(scores[model.fold_in_lists.rows[0]], best, rtol=1e-4, atol=1e-6)


def test_bpr_from_csv_without_eval_or_activation(
    cli_env: Path, tmp_path: Path, redis_sync: redis.Redis, key_prefix: str
) -> None:
    path = tmp_path / "interactions.csv"
    path.write_text("user,item,weight\nann,a,1\nann,b,2\nben,b,1\nben,c,1\ncy,a,3\n")
    assert train("--interactions", str(path), "--format", "csv", "--algorithm", "bpr") == 0
    (manifest,) = list_versions(cli_env, "recs")
    assert manifest["algorithm"] == "bpr"
    assert manifest["params"]["alpha"] == 1.0
    assert manifest["params"]["learning_rate"] == 0.01
    assert manifest["metrics"] == {}
    assert not redis_sync.exists(Keys(key_prefix).active_models)
    # a BPR score adds an item bias the fold-in lists cannot bound: none are written
    assert load_recs(cli_env / "recs" / manifest["version"]).fold_in_lists is None


def test_archive_profiles_are_pids_already_and_stay_as_they_are(
    cli_env: Path, tmp_path: Path
) -> None:
    archive = tmp_path / "archive"
    day = archive / "day=2024-06-01"
    day.mkdir(parents=True)
    events = [
        {
            "stream_id": f"{n}-0",
            "event_id": f"e{n}",
            "type": "page_view",
            "pid": profile,
            "profile": profile,
            "ts": 1_717_200_000.0 + n,
            "channel": "web",
            "item_id": item,
            "properties": "{}",
        }
        for n, (profile, item) in enumerate(
            [("pidA", "x"), ("pidA", "y"), ("pidB", "y"), ("pidB", "z"), ("pidC", "x")]
        )
    ]
    pq.write_table(pa.Table.from_pylist(events, schema=SCHEMA), day / "part-1.parquet")
    assert train("--interactions", str(archive), "--format", "events", *FAST) == 0
    (manifest,) = list_versions(cli_env, "recs")
    model = load_recs(cli_env / "recs" / manifest["version"])
    assert model.user_pids.tolist() == [b"pidA", b"pidB", b"pidC"]
    assert model.item_ids.tolist() == ["x", "y", "z"]
    assert manifest["data"]["user_ids"] == "archive profiles (pids)"


@pytest.mark.parametrize(
    ("content", "args", "message"),
    [
        ("user,item,weight\nann,a,x\n", ["--format", "csv"], "interactions.csv:2: weight"),
        ("user,item\nann,a\n", ["--format", "csv"], "missing weight"),
        (
            "user,item,weight\nann,a,1\n",
            ["--format", "csv", "--metrics-json", "m.json"],
            "--metrics-json needs --eval",
        ),
        (
            "user,item,weight\nann,a,1\n",
            ["--format", "csv", "--event-weights", "hover=2"],
            "TYPE=WEIGHT",
        ),
        ("user,item,weight\nann,a,1\n", ["--format", "csv", "--factors", "0"], "factors"),
        ("user,item,weight\nann,a,1\n", ["--format", "csv", "--device", "gpu"], "device gpu"),
        ("user,item,weight\nann,a,1\n", ["--format", "csv", "--eval", "leave-last-out"], "no user"),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(
    cli_env: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    content: str,
    args: list[str],
    message: str,
) -> None:
    if "gpu" in args:
        import implicit.gpu

        if implicit.gpu.HAS_CUDA:
            pytest.skip("this machine has CUDA")
    path = tmp_path / "interactions.csv"
    path.write_text(content)
    assert train("--interactions", str(path), *args) == 2
    assert message in capsys.readouterr().err
    assert not (cli_env / "recs").exists() or not list((cli_env / "recs").iterdir())


def test_a_missing_file_exits_2(cli_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert train("--interactions", "/nonexistent/ratings", "--format", "movielens") == 2
    assert "No such file" in capsys.readouterr().err
    assert not (cli_env / "recs").exists()


def test_models_lists_adds_fold_in_lists_to_a_version_trained_without(
    cli_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ratings = tmp_path / "u.data"
    u_data(ratings)
    assert (
        train(
            "--interactions", str(ratings), "--format", "movielens", "--fold-in-lists", "0", *FAST
        )
        == 0
    )
    (manifest,) = list_versions(cli_env, "recs")
    version = manifest["version"]
    assert load_recs(cli_env / "recs" / version).fold_in_lists is None
    assert main(["models", "lists", version, "--length", "7"]) == 0
    assert "fold-in lists of 7 items" in capsys.readouterr().out
    model = load_recs(cli_env / "recs" / version)
    assert model.fold_in_lists is not None
    assert model.fold_in_lists.rows.shape == (model.n_items, 7)
    # lists are never replaced in place: a worker could be loading them
    assert main(["models", "lists", version]) == 2
    assert "has fold-in lists already" in capsys.readouterr().err
    # a BPR version is refused, and nothing is written to it
    path = tmp_path / "interactions.csv"
    path.write_text("user,item,weight\nann,a,1\nann,b,2\nben,b,1\nben,c,1\ncy,a,3\n")
    assert train("--interactions", str(path), "--format", "csv", "--algorithm", "bpr") == 0
    bpr = next(m["version"] for m in list_versions(cli_env, "recs") if m["algorithm"] == "bpr")
    assert main(["models", "lists", bpr]) == 2
    assert "bound ALS only" in capsys.readouterr().err
    assert load_recs(cli_env / "recs" / bpr).fold_in_lists is None

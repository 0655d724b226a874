"""`omotenashi train scorer` on an archive of logged decisions and their clicks."""

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
from models.scorer import load_scorer
from tests.integration.test_train_cli import cli_env  # noqa: F401  # the fixture

pytestmark = [pytest.mark.integration]

DAY = 86_400.0
START = 1_790_000_000.0


def write_archive(folder: Path, n: int = 1500, seed: int = 1) -> None:
    """Uniformly chosen variants of `hero`; light browsers click `b`, heavy ones `a`."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        views = int(rng.integers(0, 10))
        chosen = str(rng.choice(["a", "b"]))
        ts = START + i * 10.0
        token = f"tok{i}"
        props = {
            "slot": "hero",
            "chosen": chosen,
            "eligible": ["a", "b"],
            "propensity": 0.5,
            "policy": "uniform",
            "features": {"page_views": views},
        }
        rows.append(archived("decision", f"d{i}", ts, token, orjson.dumps(props).decode()))
        rate = (0.4 if views >= 5 else 0.05) if chosen == "a" else (0.05 if views >= 5 else 0.4)
        if rng.random() < rate:
            rows.append(archived("click", f"c{i}", ts + 5.0, token, "{}"))
    day = folder / "day=2026-09-21"
    day.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMA), day / "part-1.parquet")


def archived(kind: str, event_id: str, ts: float, token: str, props: str) -> dict[str, object]:
    return {
        "stream_id": f"{int(ts * 1000)}-0",
        "event_id": event_id,
        "type": kind,
        "pid": "p",
        "profile": "p",
        "ts": ts,
        "channel": "web",
        "token": token,
        "item_id": None,
        "value": None,
        "properties": props,
    }


def test_train_scorer_reports_saves_and_activates(
    cli_env: Path,  # noqa: F811
    tmp_path: Path,
    redis_sync: redis.Redis,
    key_prefix: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    write_archive(tmp_path / "archive")
    metrics = tmp_path / "scorer.json"
    args = ["--slot", "hero", "--archive", str(tmp_path / "archive"), "--rounds", "40"]
    code = main(["train", "scorer", *args, "--metrics-json", str(metrics), "--activate"])
    assert code == 0
    out = capsys.readouterr().out
    assert "AUC" in out
    assert "greedy policy, off-policy" in out
    document = orjson.loads(metrics.read_bytes())
    assert document["n_train"] + document["n_test"] == 1500
    assert document["auc"] > 0.65
    dr = next(e for e in document["policy_value"]["estimates"] if e["estimator"] == "dr")
    assert dr["estimate"] > document["policy_value"]["observed"]  # greedy beats uniform
    version = document["version"]
    assert load_scorer(cli_env / "scorer" / version).variants == ("a", "b")
    assert redis_sync.hget(f"{key_prefix}:models:active", "scorer:hero") == version.encode()


def test_train_scorer_without_decisions_of_the_slot_fails_cleanly(
    cli_env: Path,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    write_archive(tmp_path / "archive", n=50)
    code = main(["train", "scorer", "--slot", "banner", "--archive", str(tmp_path / "archive")])
    assert code == 2
    assert "banner" in capsys.readouterr().err
    assert not (cli_env / "scorer").exists()


def test_ope_on_the_engines_decision_log_for_uniform_and_a_scorer(
    cli_env: Path,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    write_archive(tmp_path / "archive", n=1500, seed=3)
    log = ["--log", str(tmp_path / "archive"), "--format", "engine", "--slot", "hero"]
    uniform_json = tmp_path / "uniform.json"
    assert main(["ope", *log, "--policy", "uniform", "--json", str(uniform_json)]) == 0
    uniform = orjson.loads(uniform_json.read_bytes())
    ips = next(e for e in uniform["estimates"] if e["estimator"] == "ips")
    # the log is uniform: its own value, exactly (every weight is 1)
    assert ips["estimate"] == pytest.approx(uniform["observed"])
    metrics = tmp_path / "scorer.json"
    args = ["--slot", "hero", "--archive", str(tmp_path / "archive"), "--rounds", "40"]
    assert main(["train", "scorer", *args, "--metrics-json", str(metrics)]) == 0
    version = orjson.loads(metrics.read_bytes())["version"]
    greedy_json = tmp_path / "greedy.json"
    policy = ["--policy", f"scorer:{version}", "--json", str(greedy_json)]
    assert main(["ope", *log, *policy]) == 0
    greedy = orjson.loads(greedy_json.read_bytes())
    dr = next(e for e in greedy["estimates"] if e["estimator"] == "dr")
    assert dr["ci_low"] > uniform["observed"]  # clearly better than the uniform log
    capsys.readouterr()
    assert main(["ope", *log[:-2], "--policy", "uniform"]) == 2  # no --slot
    assert "--slot" in capsys.readouterr().err


def test_ope_on_a_bandit_log_warns_that_its_propensities_are_estimates(
    cli_env: Path,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    rng = np.random.default_rng(8)
    rows = []
    for i in range(200):
        chosen = str(rng.choice(["a", "b"]))
        props = {
            "slot": "hero",
            "chosen": chosen,
            "eligible": ["a", "b"],
            "propensity": 0.7 if chosen == "a" else 0.3,
            "policy": "bandit",
            "propensity_estimated": i % 2 == 0,  # half the log came from the bandit
            "features": {},
        }
        ts = START + i
        rows.append(archived("decision", f"d{i}", ts, f"t{i}", orjson.dumps(props).decode()))
        if rng.random() < 0.2:
            rows.append(archived("click", f"c{i}", ts + 1.0, f"t{i}", "{}"))
    day = tmp_path / "archive" / "day=2026-09-21"
    day.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMA), day / "part-1.parquet")
    log = ["--log", str(tmp_path / "archive"), "--format", "engine", "--slot", "hero"]
    assert main(["ope", *log, "--policy", "uniform"]) == 0
    out = capsys.readouterr().out
    assert "100 of 200 logged propensities are Monte Carlo estimates" in out

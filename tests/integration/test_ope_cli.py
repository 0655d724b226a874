"""`omotenashi ope` on generated Open Bandit Dataset logs: the table, the JSON file, and
exit 2 with a message for bad input. No Redis: the command only reads files."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest

from engine.cli.ope import add_arguments, run
from tests.unit.training.test_obd import write_item_context, write_obd_log

N_ITEMS = 6
POSITIONS = (1, 2, 3)  # as OBD writes them


@pytest.fixture
def logs(tmp_path: Path) -> tuple[Path, Path]:
    """A uniform-random log and a log of a context-free policy that favours item 0."""
    rng = np.random.default_rng(0)
    n = 3_000
    favoured = np.full(N_ITEMS, 0.5 / (N_ITEMS - 1))
    favoured[0] = 0.5
    click_rates = np.linspace(0.02, 0.12, N_ITEMS)[::-1]
    paths = []
    for name, probs in (("random", np.full(N_ITEMS, 1 / N_ITEMS)), ("bts", favoured)):
        folder = tmp_path / name
        folder.mkdir()
        write_item_context(folder, N_ITEMS)
        actions = rng.choice(N_ITEMS, size=n, p=probs)
        clicks = rng.random(n) < click_rates[actions]
        positions = rng.choice(POSITIONS, size=n)
        paths.append(write_obd_log(folder / "all.csv", actions, positions, clicks, probs[actions]))
    return paths[0], paths[1]


def ope(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="omotenashi ope")
    add_arguments(parser)
    return run(parser.parse_args(argv))


def test_a_policy_is_estimated_from_another_policy_s_log(
    logs: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    random_log, bts_log = logs
    out = tmp_path / "ope.json"
    code = ope(
        "--log", str(random_log), "--format", "obd", "--policy", f"bts-empirical:{bts_log}",
        "--bootstrap", "200", "--seed", "3", "--json", str(out),
    )  # fmt: skip
    assert code == 0
    table = capsys.readouterr().out
    assert "estimator" in table
    assert "95% CI low" in table
    assert "ESS" in table
    document = json.loads(out.read_text())
    assert document["format"] == "obd"
    assert document["policy"] == f"bts-empirical:{bts_log}"
    assert document["n"] == 3_000
    assert document["n_bootstrap"] == 200
    assert document["seed"] == 3
    assert document["warnings"] == []
    assert set(document["diagnostics"]) >= {"ess", "ess_share", "max_weight", "min_propensity"}
    assert [e["estimator"] for e in document["estimates"]] == ["ips", "snips", "dr"]
    # The favoured item clicks best: 0.5 x 0.12 + 0.1 x (0.10 + ... + 0.02) = 0.090.
    for e in document["estimates"]:
        assert set(e) == {"estimator", "estimate", "ci_low", "ci_high"}
        assert e["ci_low"] <= 0.090 <= e["ci_high"]


def test_the_uniform_policy_on_a_uniform_log_is_the_observed_click_rate(
    logs: tuple[Path, Path], tmp_path: Path
) -> None:
    out = tmp_path / "ope.json"
    code = ope(
        "--log", str(logs[0]), "--format", "obd", "--policy", "uniform",
        "--bootstrap", "100", "--json", str(out),
    )  # fmt: skip
    assert code == 0
    document = json.loads(out.read_text())
    assert document["estimates"][0]["estimate"] == pytest.approx(document["observed"])
    assert document["diagnostics"]["ess_share"] == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        ("uniform", "No such file"),
        ("greedy", "expected 'uniform' or 'bts-empirical:PATH'"),
        ("bts-empirical:", "expected 'uniform' or 'bts-empirical:PATH'"),
    ],
)
def test_bad_input_exits_2_with_a_message(
    logs: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    policy: str,
    message: str,
) -> None:
    log = tmp_path / "missing.csv" if message == "No such file" else logs[0]
    assert ope("--log", str(log), "--format", "obd", "--policy", policy) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("omotenashi: ")
    assert message in captured.err


def test_a_policy_log_that_is_not_obd_exits_2(
    logs: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "other.csv"
    other.write_text("user,item\n1,2\n")
    code = ope("--log", str(logs[0]), "--format", "obd", "--policy", f"bts-empirical:{other}")
    assert code == 2
    assert "not an Open Bandit Dataset log" in capsys.readouterr().err


def test_an_unknown_format_is_refused_by_the_parser(logs: tuple[Path, Path]) -> None:
    with pytest.raises(SystemExit) as caught:
        ope("--log", str(logs[0]), "--format", "decisions", "--policy", "uniform")
    assert caught.value.code == 2

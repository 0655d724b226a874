"""`omotenashi report EXP_ID` against the real Redis: the terminal table, and files that
say exactly what `GET /v1/experiments/{id}/results` and `/report` say."""

from __future__ import annotations

from pathlib import Path

import anyio
import httpx
import orjson
import pytest
from fastapi import FastAPI

from engine.cli.main import main
from engine.settings import Settings
from tests.conftest import ADMIN, ADMIN_KEY, SECRET, SITE_KEY
from tests.integration.test_experiments_api import decide, events, setup

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    """The environment `omotenashi` reads: the same Redis and key prefix as the app's."""
    monkeypatch.setenv("REDIS_URL", str(settings.redis_url))
    monkeypatch.setenv("OMOTENASHI_KEY_PREFIX", settings.key_prefix)
    monkeypatch.setenv("OMOTENASHI_SECRET", SECRET)
    monkeypatch.setenv("OMOTENASHI_ADMIN_KEY", ADMIN_KEY)
    monkeypatch.setenv("OMOTENASHI_SITE_KEYS", SITE_KEY)
    monkeypatch.setenv("OMOTENASHI_DATA_DIR", str(settings.data_dir))


async def report(*args: str) -> int:
    """The command in a thread: it runs its own event loop, as it does from a shell."""
    return await anyio.to_thread.run_sync(main, ["report", *args])


async def test_report_prints_the_table_and_writes_the_page_and_the_json(
    cli_env: None,
    app: FastAPI,
    client: httpx.AsyncClient,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    await setup(client)
    assert (await client.post("/v1/experiments/exp1/start", headers=ADMIN)).status_code == 200
    for i in range(40):
        await events(client, *[{"type": "page_view", "visitor_id": f"v{i}"}] * (1 + i % 3))
        await decide(client, f"v{i}")
    await app.state.services.decision_log.flush()
    for i in range(0, 40, 3):
        await events(client, {"type": "click", "visitor_id": f"v{i}", "item_id": "x"})
    capsys.readouterr()

    html, data = tmp_path / "report.html", tmp_path / "results.json"
    assert await report("exp1", "--html", str(html), "--json", str(data)) == 0

    out = capsys.readouterr().out
    assert out.startswith("Experiment exp1  (slot:hero, ab, running)")
    assert "clicked" in out
    assert "treat" in out
    api_results = (await client.get("/v1/experiments/exp1/results", headers=ADMIN)).json()
    assert orjson.loads(data.read_bytes()) == api_results
    assert sum(r["n"] for r in api_results["metrics"][0]["arms"]) == 40
    api_page = (await client.get("/v1/experiments/exp1/report", headers=ADMIN)).text
    assert html.read_text(encoding="utf-8") == api_page


async def test_an_unknown_experiment_exits_2_and_says_so(
    cli_env: None, app: FastAPI, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    html = tmp_path / "report.html"
    assert await report("nope", "--html", str(html)) == 2
    captured = capsys.readouterr()
    assert captured.err.strip() == "omotenashi: no experiment named 'nope'"
    assert captured.out == ""
    assert not html.exists()


async def test_a_file_that_cannot_be_written_exits_2(
    cli_env: None, client: httpx.AsyncClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await setup(client)
    missing = tmp_path / "no-such-folder" / "results.json"
    assert await report("exp1", "--json", str(missing)) == 2
    assert "no-such-folder" in capsys.readouterr().err

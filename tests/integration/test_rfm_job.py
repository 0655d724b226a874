"""`omotenashi segments rfm` end to end: a purchase file in, scores in the real Redis out,
seen by the engine when the customer comes back, with consent and erasure honoured."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import anyio
import httpx
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import redis

from engine.cli.main import main
from engine.keyring import Keyring
from engine.privacy.pseudonym import Pseudonymizer
from engine.store.keys import Keys
from models.features import FeatureValue
from tests.conftest import ADMIN, ADMIN_KEY, SECRET, SITE, SITE_KEY
from training.rfm import SEGMENTS, feature_rows, rfm_scores
from training.transactions import load_transactions

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
CDNOW = REPO.parent / "shared" / "datasets" / "cdnow" / "CDNOW_master.txt"
RFM_FIELDS = (
    "rfm_r",
    "rfm_f",
    "rfm_m",
    "rfm_segment",
    "rfm_recency_days",
    "rfm_frequency",
    "rfm_monetary",
    "rfm_as_of",
)
# eve buys often and lately: a champion; cy refused personalization; dee was erased
ORDERS = """customer,date,value
eve,2024-05-01,50.00
eve,2024-05-20,80.00
eve,2024-06-01,20.00
eve,2024-06-02,35.50
ann,2024-06-01,12.00
ann,2024-01-15,30.00
ben,2023-11-02,15.00
cy,2024-05-30,99.00
cy,2024-05-31,99.00
dee,2024-05-29,70.00
fay,2024-02-11,8.00
gus,2024-04-04,18.00
"""
VIP_SLOT = {
    "variants": [{"id": "plain", "content": {}}, {"id": "vip", "content": {"offer": "lounge"}}],
    "default": "plain",
    "rules": [
        {
            "when": {"attr": "features.rfm_segment", "op": "eq", "value": "champions"},
            "variant": "vip",
        }
    ],
}


def pid(customer_id: str) -> str:
    return Pseudonymizer(Keyring.from_secret(SECRET).pseudonyms)(customer_id)


@pytest.fixture
def cli_env(
    monkeypatch: pytest.MonkeyPatch, redis_url: str, key_prefix: str, tmp_path: Path
) -> None:
    """The environment `omotenashi` reads: the test's Redis, prefix and secrets."""
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("OMOTENASHI_KEY_PREFIX", key_prefix)
    monkeypatch.setenv("OMOTENASHI_SECRET", SECRET)
    monkeypatch.setenv("OMOTENASHI_ADMIN_KEY", ADMIN_KEY)
    monkeypatch.setenv("OMOTENASHI_SITE_KEYS", SITE_KEY)
    monkeypatch.setenv("OMOTENASHI_DATA_DIR", str(tmp_path))


def stored(client: redis.Redis, key: str) -> dict[str, str]:
    raw: dict[bytes, bytes] = client.hgetall(key)  # type: ignore[assignment]
    return {k.decode(): v.decode() for k, v in raw.items()}


def as_stored(fields: dict[str, FeatureValue]) -> dict[str, str]:
    """What redis-py sends for each value (str of the int, repr of the float)."""
    return {k: repr(v) if isinstance(v, float) else str(v) for k, v in fields.items()}


async def post(http: httpx.AsyncClient, *events: dict[str, Any]) -> None:
    response = await http.post("/v1/events", headers=SITE, json={"events": list(events)})
    assert response.status_code == 202, response.text


@pytest.mark.anyio
@pytest.mark.usefixtures("cli_env")
async def test_rfm_job_writes_scores_that_the_engine_serves_to_the_customer(
    client: httpx.AsyncClient,
    redis_sync: redis.Redis,
    key_prefix: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    keys = Keys(key_prefix)
    orders = tmp_path / "orders.csv"
    orders.write_text(ORDERS)
    assert (await client.put("/v1/slots/hero", headers=ADMIN, json=VIP_SLOT)).is_success
    await post(
        client, {"type": "page_view", "visitor_id": "ann", "properties": {"category": "tea"}}
    )
    refused = await client.put(
        "/v1/visitors/cy/consent", headers=SITE, json={"personalization": False}
    )
    assert refused.is_success
    assert (await client.delete("/v1/visitors/dee", headers=ADMIN)).is_success

    code = await anyio.to_thread.run_sync(main, ["segments", "rfm", "--transactions", str(orders)])

    assert code == 0
    out = capsys.readouterr().out
    assert "5 profiles written, 2 skipped" in out
    assert "champions" in out
    table = rfm_scores(load_transactions(orders))
    expected = feature_rows(table, [pid(c) for c in table.customer.tolist()])
    for customer in ("eve", "ann", "ben", "fay", "gus"):
        fields = stored(redis_sync, keys.visitor_features(pid(customer)))
        assert {k: fields[k] for k in RFM_FIELDS} == as_stored(expected[pid(customer)]), customer
        ttl = redis_sync.ttl(keys.visitor_features(pid(customer)))
        assert 0 < ttl <= 400 * 86_400
    assert stored(redis_sync, keys.visitor_features(pid("ann")))["page_views"] == "1"
    for customer in ("cy", "dee"):
        assert not stored(redis_sync, keys.visitor_features(pid(customer))), customer

    # a shopper identifies as eve: the engine finds her scores and targets her as a champion
    await post(
        client,
        {"type": "identify", "visitor_id": "cookie-9", "properties": {"customer_id": "eve"}},
    )
    export = (await client.get("/v1/visitors/cookie-9", headers=ADMIN)).json()
    assert export["profile"] == pid("eve")
    assert export["features"]["rfm_segment"] == "champions"
    assert export["features"]["rfm_r"] == 5
    decided = await client.post(
        "/v1/decide", headers=SITE, json={"visitor_id": "cookie-9", "slots": ["hero"]}
    )
    assert decided.json()["decisions"][0]["variant"] == "vip", decided.json()


@pytest.mark.usefixtures("cli_env")
def test_the_archive_job_scores_profiles_by_their_pid_as_of_the_given_day(
    redis_sync: redis.Redis, key_prefix: str, tmp_path: Path
) -> None:
    day = tmp_path / "archive" / "day=2024-06-01"
    day.mkdir(parents=True)
    noon = dt.datetime(2024, 6, 1, 12, tzinfo=dt.UTC).timestamp()
    events = pa.table(
        {
            "event_id": ["e1", "e2", "e3", "e1"],
            "type": ["purchase", "purchase", "page_view", "purchase"],
            "pid": ["v1", "v2", "v2", "v1"],
            "profile": ["prof-1", "prof-2", "prof-2", "prof-1"],
            "ts": [noon, noon, noon, noon],
            "value": [10.0, 20.0, None, 10.0],
        }
    )
    pq.write_table(events, day / "part-0.parquet")
    argv = ["segments", "rfm", "--archive", str(tmp_path / "archive"), "--as-of", "2024-06-11"]

    assert main(argv) == 0

    keys = Keys(key_prefix)
    one = stored(redis_sync, keys.visitor_features("prof-1"))
    assert one["rfm_frequency"] == "1"  # the event archived twice counts once
    assert one["rfm_monetary"] == "10.0"
    assert one["rfm_recency_days"] == "10.0"
    assert float(one["rfm_as_of"]) == dt.datetime(2024, 6, 11, tzinfo=dt.UTC).timestamp()
    assert stored(redis_sync, keys.visitor_features("prof-2"))["rfm_monetary"] == "20.0"


@pytest.mark.usefixtures("cli_env")
def test_a_dry_run_prints_the_segments_and_writes_nothing(
    redis_sync: redis.Redis, key_prefix: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    orders = tmp_path / "orders.csv"
    orders.write_text(ORDERS)

    assert main(["segments", "rfm", "--transactions", str(orders), "--dry-run"]) == 0

    out = capsys.readouterr().out
    assert "segment" in out
    assert "mean R days" in out
    assert "dry run" in out
    assert list(redis_sync.scan_iter(match=f"{key_prefix}:*")) == []


@pytest.mark.usefixtures("cli_env")
def test_a_malformed_file_or_date_stops_the_job_with_where_and_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    orders = tmp_path / "orders.csv"
    orders.write_text("customer,date,value\nann,2024-06-01,12\nben,2024-13-01,3\n")

    assert main(["segments", "rfm", "--transactions", str(orders)]) == 2
    assert f"{orders}:3: date '2024-13-01'" in capsys.readouterr().err

    orders.write_text(ORDERS)
    assert main(["segments", "rfm", "--transactions", str(orders), "--as-of", "June"]) == 2
    assert "--as-of 'June'" in capsys.readouterr().err


def test_every_cdnow_customer_gets_scores_and_a_segment() -> None:
    table = rfm_scores(load_transactions(CDNOW))
    assert len(table) == 23_570
    assert int(table.frequency.sum()) == 69_659
    assert table.as_of == np.datetime64("1998-07-01")
    for scores in (table.r, table.f, table.m):
        assert scores.min() >= 1
        assert scores.max() == 5
    assert set(table.segment.tolist()) <= set(SEGMENTS)
    assert table.recency_days.min() == 1

"""Interaction loaders: MovieLens (both layouts), CSV with line-numbered errors, and the
event archive weighed the way serving weighs a visitor's history."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from engine.events.archive import SCHEMA
from engine.privacy.pseudonym import Pseudonymizer
from models.interactions import DEFAULT_WEIGHTS
from training.interactions import (
    Interactions,
    from_archive,
    from_csv,
    from_movielens,
    load_interactions,
    pseudonymized,
)

INTER = (
    "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
    "196\t242\t3\t881250949\n"
    "186\t302\t5\t891717742\n"
    "196\t51\t2\t881250950\n"
)
U_DATA = "196\t242\t3\t881250949\n186\t302\t5\t891717742\n196\t51\t2\t881250950\n"


def rows(interactions: Interactions) -> dict[tuple[str, str], tuple[float, float]]:
    return {
        (str(u), str(i)): (float(w), float(t))
        for u, i, w, t in zip(
            interactions.users,
            interactions.items,
            interactions.weights,
            interactions.timestamps,
            strict=True,
        )
    }


@pytest.mark.parametrize("text", [INTER, U_DATA], ids=["inter", "u.data"])
def test_movielens_reads_both_layouts_with_weight_one_per_rating(tmp_path: Path, text: str) -> None:
    path = tmp_path / "ratings"
    path.write_text(text)
    loaded = from_movielens(path)
    assert rows(loaded) == {
        ("196", "242"): (1.0, 881250949.0),
        ("186", "302"): (1.0, 891717742.0),
        ("196", "51"): (1.0, 881250950.0),
    }
    assert loaded.weights.dtype == np.float32
    assert loaded.timestamps.dtype == np.float64


def test_movielens_rating_weights_use_the_rating(tmp_path: Path) -> None:
    path = tmp_path / "ml.inter"
    path.write_text(INTER)
    weights = {key: w for key, (w, _) in rows(from_movielens(path, rating_weights=True)).items()}
    assert weights == {("196", "242"): 3.0, ("186", "302"): 5.0, ("196", "51"): 2.0}


def test_movielens_bad_row_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "ml.inter"
    path.write_text(INTER + "7\t8\tfive\t881250951\n")
    with pytest.raises(ValueError, match=r"ml\.inter:5: rating 'five' is not a number"):
        from_movielens(path)
    path.write_text(INTER + "7\t8\t5\n")
    with pytest.raises(ValueError, match=r"ml\.inter:5: expected 4 fields"):
        from_movielens(path)


def test_csv_sums_repeated_pairs_and_keeps_the_latest_time(tmp_path: Path) -> None:
    path = tmp_path / "interactions.csv"
    path.write_text(
        "user,item,weight,timestamp\n"
        "ann,sku-1,1,100\n"
        "ann,sku-2,2.5,2024-01-01T00:00:00\n"
        "ann,sku-1,3,50\n"
        "ben,sku-1,1,2024-01-01T01:00:00+01:00\n"
    )
    assert rows(from_csv(path)) == {
        ("ann", "sku-1"): (4.0, 100.0),
        ("ann", "sku-2"): (2.5, 1704067200.0),
        ("ben", "sku-1"): (1.0, 1704067200.0),
    }


def test_csv_without_timestamps_takes_line_order_for_time(tmp_path: Path) -> None:
    path = tmp_path / "interactions.csv"
    path.write_text("item,user,weight,note\nx,ann,1,first\ny,ann,1,second\n")
    assert rows(from_csv(path)) == {("ann", "x"): (1.0, 2.0), ("ann", "y"): (1.0, 3.0)}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("ann,x,heavy,1\n", r"\.csv:2: weight 'heavy' is not a number"),
        ("ann,x,1,1\nann,y,0,2\n", r"\.csv:3: weight 0.0 is not positive"),
        ("ann,x,1,1\n,y,1,2\n", r"\.csv:3: empty user id"),
        ("ann,x,1,yesterday\n", r"\.csv:2: timestamp 'yesterday' is neither"),
        ("ann,x\n", r"\.csv:2: expected at least 4 fields, got 2"),
        ("", r"\.csv: no interactions"),
    ],
)
def test_csv_bad_rows_name_their_line(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("user,item,weight,timestamp\n" + body)
    with pytest.raises(ValueError, match=message):
        from_csv(path)


def test_csv_header_must_name_the_columns(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("customer,item,weight\nann,x,1\n")
    with pytest.raises(ValueError, match=r"bad\.csv:1: .*missing user"):
        load_interactions(path, "csv")


def test_a_file_that_is_not_text_is_a_value_error(tmp_path: Path) -> None:
    path = tmp_path / "binary.csv"
    path.write_bytes(b"user,item,weight\n\xff\xfe,x,1\n")
    with pytest.raises(ValueError, match="not UTF-8"):
        load_interactions(path, "csv")


def event(
    kind: str, profile: str, ts: float, item: str | None = None, **props: Any
) -> dict[str, Any]:
    return {
        "stream_id": f"{int(ts)}-0",
        "event_id": f"e-{profile}-{kind}-{ts}",
        "type": kind,
        "pid": "device-" + profile,
        "profile": profile,
        "ts": ts,
        "channel": "web",
        "token": None,
        "item_id": item,
        "value": None,
        "properties": orjson.dumps(props).decode(),
    }


def write_archive(folder: Path, events: list[dict[str, Any]]) -> None:
    day = folder / "day=2024-06-01"
    day.mkdir(parents=True)
    table = pa.Table.from_pylist(events, schema=SCHEMA)
    pq.write_table(table, day / "part-1.parquet")


def test_archive_weighs_each_distinct_type_once_per_item(tmp_path: Path) -> None:
    lines = [{"item_id": "sku-1", "price": 9.0, "qty": 1}, {"item_id": "sku-2", "price": 5.0}]
    write_archive(
        tmp_path,
        [
            *(event("page_view", "p1", 100.0 + n, "sku-1") for n in range(5)),
            event("click", "p1", 110.0, "sku-1"),
            event("purchase", "p1", 120.0, items=lines),
            event("page_view", "p2", 130.0, "sku-3"),
            event("impression", "p2", 140.0, "sku-4"),  # no interest: not a weighted type
            event("page_view", "p2", 150.0),  # no item
        ],
    )
    loaded = from_archive(tmp_path)
    weights = DEFAULT_WEIGHTS
    assert rows(loaded) == {
        ("p1", "sku-1"): (weights["page_view"] + weights["click"] + weights["purchase"], 120.0),
        ("p1", "sku-2"): (weights["purchase"], 120.0),
        ("p2", "sku-3"): (weights["page_view"], 130.0),
    }


def test_archive_custom_weights_can_leave_a_type_out(tmp_path: Path) -> None:
    write_archive(
        tmp_path,
        [event("page_view", "p1", 1.0, "a"), event("add_to_cart", "p1", 2.0, "a")],
    )
    loaded = from_archive(tmp_path, {**DEFAULT_WEIGHTS, "page_view": 0.0, "add_to_cart": 7.0})
    assert rows(loaded) == {("p1", "a"): (7.0, 2.0)}


def test_an_empty_archive_is_a_value_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no archived events"):
        load_interactions(tmp_path, "events")


def test_pseudonymized_replaces_user_ids_only(tmp_path: Path, pseudonymize: Pseudonymizer) -> None:
    path = tmp_path / "u.data"
    path.write_text(U_DATA)
    raw = from_movielens(path)
    pids = pseudonymized(raw, pseudonymize)
    assert pids.users.tolist() == [pseudonymize(u) for u in raw.users.tolist()]
    assert pids.items.tolist() == raw.items.tolist()
    np.testing.assert_array_equal(pids.weights, raw.weights)

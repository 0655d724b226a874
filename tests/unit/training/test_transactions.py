"""Purchase histories from CDNOW files, CSV exports and the event archive, and the
errors a malformed file gets."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from engine.events.archive import SCHEMA as ARCHIVE_SCHEMA
from training.transactions import Transactions, from_archive, load_transactions

CDNOW_HEADER = " customer_id  date number_of_cds  dollar_value\r\n"
CDNOW_ROWS = (
    " 00001 19970101  1   11.77\r\n"
    " 00002 19970112  1   12.00\r\n"
    " 00002 19970112  5   77.00\r\n"
    " 00003 19970102  2   20.76\r\n"
)


def write(path: Path, text: str) -> Path:
    path.write_bytes(text.encode())
    return path


def days(*iso: str) -> np.ndarray:
    return np.array(iso, dtype="datetime64[D]")


def assert_same(a: Transactions, b: Transactions) -> None:
    assert a.customer.tolist() == b.customer.tolist()
    assert a.day.tolist() == b.day.tolist()
    assert a.value.tolist() == b.value.tolist()


def test_a_cdnow_file_gives_one_row_per_line_with_ids_kept_as_written(tmp_path: Path) -> None:
    tx = load_transactions(write(tmp_path / "cdnow.txt", CDNOW_HEADER + CDNOW_ROWS), "cdnow")
    assert tx.customer.tolist() == ["00001", "00002", "00002", "00003"]
    assert tx.day.dtype == np.dtype("datetime64[D]")
    assert tx.day.tolist() == days("1997-01-01", "1997-01-12", "1997-01-12", "1997-01-02").tolist()
    assert tx.value.dtype == np.float64
    assert tx.value.tolist() == [11.77, 12.0, 77.0, 20.76]
    assert len(tx) == 4


def test_a_cdnow_file_reads_the_same_with_or_without_its_header(tmp_path: Path) -> None:
    with_header = load_transactions(write(tmp_path / "a.txt", CDNOW_HEADER + CDNOW_ROWS))
    without = load_transactions(write(tmp_path / "b.txt", "\n" + CDNOW_ROWS.replace("\r", "")))
    assert_same(with_header, without)


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        (" 00004 19970103  1\n", "expected 4 fields"),
        (" 00004 19971303  1   9.99\n", "date '19971303'"),
        (" 00004 1997-2-3  1   9.99\n", "is not YYYYMMDD or YYYY-MM-DD"),
        (" 00004 19970103  one 9.99\n", "number_of_cds 'one'"),
        (" 00004 19970103  1   $9.99\n", "value '$9.99' is not a number"),
        (" 00004 19970103  1   nan\n", "value 'nan' is not finite"),
    ],
)
def test_a_malformed_cdnow_row_is_reported_with_file_and_line(
    tmp_path: Path, row: str, problem: str
) -> None:
    path = write(tmp_path / "bad.txt", CDNOW_HEADER + CDNOW_ROWS + row)
    with pytest.raises(ValueError, match=re.escape(problem)) as caught:
        load_transactions(path)
    assert f"{path}:6:" in str(caught.value)


def test_a_csv_export_is_read_by_column_name_with_either_date_form(tmp_path: Path) -> None:
    text = (
        "\ufefforder,Value,Customer,date,channel\n"  # BOM, any case, any order, extra columns
        "o1,10.5,alice,2024-03-01,web\n"
        "\n"
        'o2,4,"bob, jr",20240302,store\n'
        "o3,0,alice,2024-03-03,app\n"
    )
    tx = load_transactions(write(tmp_path / "orders.csv", text))
    assert tx.customer.tolist() == ["alice", "bob, jr", "alice"]
    assert tx.day.tolist() == days("2024-03-01", "2024-03-02", "2024-03-03").tolist()
    assert tx.value.tolist() == [10.5, 4.0, 0.0]


def test_auto_detection_tells_csv_from_cdnow(tmp_path: Path) -> None:
    cdnow = write(tmp_path / "data", CDNOW_ROWS)
    csv_file = write(tmp_path / "data2", "customer,date,value\n00001,19970101,11.77\n")
    assert load_transactions(cdnow).customer.tolist()[0] == "00001"
    assert_same(load_transactions(csv_file), load_transactions(csv_file, "csv"))
    with pytest.raises(ValueError, match="expected 4 fields"):
        load_transactions(csv_file, "cdnow")


@pytest.mark.parametrize(
    ("text", "problem", "line"),
    [
        ("customer,date\nalice,2024-03-01\n", "missing value", 1),
        ("customer,date,value\nalice,2024-03-01,1\nbob,2024-03-02\n", "at least 3 fields", 3),
        ("customer,date,value\nalice,2024-02-30,1\n", "day is out of range", 2),
        ("customer,date,value\n,2024-03-01,1\n", "empty customer id", 2),
        ("customer,date,value\nalice,2024-03-01,ten\n", "value 'ten'", 2),
    ],
)
def test_a_malformed_csv_is_reported_with_file_and_line(
    tmp_path: Path, text: str, problem: str, line: int
) -> None:
    path = write(tmp_path / "bad.csv", text)
    with pytest.raises(ValueError, match=re.escape(problem)) as caught:
        load_transactions(path, "csv")
    assert f"{path}:{line}:" in str(caught.value)


@pytest.mark.parametrize("text", ["", "\n\n", "customer,date,value\n", CDNOW_HEADER])
def test_a_file_without_purchases_is_an_error(tmp_path: Path, text: str) -> None:
    with pytest.raises(ValueError, match="no transactions"):
        load_transactions(write(tmp_path / "empty.csv", text))


def purchase(
    event_id: str, profile: str, when: dt.datetime, value: float | None, type_: str = "purchase"
) -> dict[str, object]:
    return {
        "event_id": event_id,
        "type": type_,
        "pid": "visitor-" + profile,
        "profile": profile,
        "ts": when.timestamp(),
        "value": value,
    }


def write_day(folder: Path, day: str, rows: list[dict[str, object]], name: str = "part-0") -> None:
    (folder / f"day={day}").mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pylist(rows, schema=ARCHIVE_SCHEMA)  # absent fields: null
    pq.write_table(table, folder / f"day={day}/{name}.parquet")


def test_the_archive_gives_purchases_by_profile_once_each_on_their_utc_day(tmp_path: Path) -> None:
    utc = dt.UTC
    late = dt.datetime(2024, 3, 1, 23, 59, 59, tzinfo=utc)
    write_day(
        tmp_path,
        "2024-03-01",
        [
            purchase("e1", "pA", late, 30.0),
            purchase("e2", "pB", late, None),  # no value: counts, adds nothing
            purchase("v1", "pA", late, None, type_="page_view"),
        ],
    )
    write_day(
        tmp_path,
        "2024-03-02",
        [
            purchase("e3", "pA", dt.datetime(2024, 3, 2, 0, 0, 1, tzinfo=utc), 5.0),
            purchase("e1", "pA", late, 30.0),  # archived twice (at-least-once delivery)
        ],
    )
    write_day(tmp_path, "2024-03-02", [purchase("e4", "pC", late, 1.0)], name="part-1")
    tx = from_archive(tmp_path)
    assert tx.customer.tolist() == ["pA", "pB", "pA", "pC"]
    assert tx.day.tolist() == days("2024-03-01", "2024-03-01", "2024-03-02", "2024-03-01").tolist()
    assert tx.value.tolist() == [30.0, 0.0, 5.0, 1.0]


def test_an_archive_without_purchases_or_their_profiles_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no archived events"):
        from_archive(tmp_path)
    now = dt.datetime(2024, 3, 1, 12, tzinfo=dt.UTC)
    write_day(tmp_path, "2024-03-01", [purchase("v", "p", now, None, "click")])
    with pytest.raises(ValueError, match="no purchase events"):
        from_archive(tmp_path)
    (tmp_path / "day=2024-03-02").mkdir()
    pq.write_table(
        pa.table({"event_id": ["e1"], "type": ["purchase"], "ts": [now.timestamp()]}),
        tmp_path / "day=2024-03-02/old.parquet",
    )
    with pytest.raises(ValueError, match="1 purchase events without profile"):
        from_archive(tmp_path)


def test_a_file_that_is_not_text_or_has_no_header_is_an_error(tmp_path: Path) -> None:
    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes("customer,date,value\nJosé,2024-03-01,1\n".encode("latin-1"))
    with pytest.raises(ValueError, match="not UTF-8 text"):
        load_transactions(latin1)
    with pytest.raises(ValueError, match="empty file"):
        load_transactions(write(tmp_path / "empty.csv", "\n"), "csv")

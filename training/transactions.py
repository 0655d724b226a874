"""Purchase histories for offline segmentation: one row per purchase (customer, day, value).

Three sources give the same `Transactions`:

- the CDNOW master file (whitespace-separated `customer_id date number_of_cds
  dollar_value`, date `YYYYMMDD`, with or without that header line), the classic RFM
  and customer-lifetime-value benchmark;
- a CSV export with a header naming at least `customer`, `date` and `value` (date
  `YYYYMMDD` or `YYYY-MM-DD`), what a shop's order system usually gives;
- the engine's own event archive (`purchase` events in Parquet, ids already pseudonymized).

Text files are parsed row by row so that a bad row is reported with its file and line;
that costs about a second per million rows, which an offline job can afford.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt
import pyarrow.compute as pc

from engine.events.archive import read_archive
from training.csv_columns import csv_columns

TransactionFormat = Literal["auto", "cdnow", "csv"]

CDNOW_COLUMNS = ("customer_id", "date", "number_of_cds", "dollar_value")
CSV_COLUMNS = ("customer", "date", "value")
SECONDS_PER_DAY = 86_400

_DATE = re.compile(r"(\d{4})(\d{2})(\d{2})|(\d{4})-(\d{2})-(\d{2})", re.ASCII)
_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()


@dataclass(frozen=True, slots=True)
class Transactions:
    """Purchases, one per row: who bought (raw customer id or pid), on which UTC day, for
    how much. Columns are numpy arrays of equal length."""

    customer: npt.NDArray[np.object_]
    day: npt.NDArray[np.datetime64]
    value: npt.NDArray[np.float64]

    def __post_init__(self) -> None:
        if not len(self.customer) == len(self.day) == len(self.value):
            raise ValueError("transactions: columns of different lengths")

    def __len__(self) -> int:
        return len(self.customer)


def load_transactions(path: Path, format: TransactionFormat = "auto") -> Transactions:
    """Purchases from a CDNOW master file or a CSV export.

    `auto` takes a file whose first non-blank line has a comma for CSV, any other for
    CDNOW: the two formats differ exactly there.
    """
    try:
        if format == "auto":
            format = "csv" if "," in _first_line(path) else "cdnow"
        return _load_cdnow(path) if format == "cdnow" else _load_csv(path)
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 text ({exc.reason})") from None


def from_archive(folder: Path) -> Transactions:
    """Purchases from the engine's event archive (`folder/day=YYYY-MM-DD/*.parquet`).

    Read with the archiver's own `read_archive`, which keeps each event id once (the
    archiver delivers at least once). The customer is the profile the event landed on:
    the customer's profile for a visitor who had identified, so purchases from every
    device of a known customer count together (a purchase made before the visitor
    identified stays with their anonymous profile). A purchase without a value counts
    toward frequency and adds nothing to the total.
    """
    table = read_archive(folder)
    if not table.num_rows:
        raise ValueError(f"{folder}: no archived events (day=YYYY-MM-DD/*.parquet)")
    table = table.filter(pc.equal(table.column("type"), "purchase"))
    if not table.num_rows:
        raise ValueError(f"{folder}: no purchase events")
    for column in ("profile", "ts"):
        nulls = table.column(column).null_count
        if nulls:
            raise ValueError(f"{folder}: {nulls} purchase events without {column}")
    ts = table.column("ts").to_numpy()
    return Transactions(
        customer=np.asarray(table.column("profile").to_pylist(), dtype=object),
        day=np.floor(ts / SECONDS_PER_DAY).astype(np.int64).astype("datetime64[D]"),
        value=pc.fill_null(table.column("value"), 0.0).to_numpy().astype(np.float64),
    )


def _first_line(path: Path) -> str:
    with path.open(encoding="utf-8-sig") as fh:
        for line in fh:
            if line.strip():
                return line
    return ""


def _load_cdnow(path: Path) -> Transactions:
    rows = _Rows(path)
    with path.open(encoding="utf-8-sig") as fh:
        for number, line in enumerate(fh, start=1):
            fields = line.split()
            if not fields:
                continue
            if not rows and fields[0].lower() == CDNOW_COLUMNS[0]:
                continue  # the header line some copies of the file carry
            if len(fields) != len(CDNOW_COLUMNS):
                raise ValueError(
                    f"{path}:{number}: expected {len(CDNOW_COLUMNS)} fields "
                    f"({' '.join(CDNOW_COLUMNS)}), got {len(fields)}"
                )
            customer, date, cds, dollars = fields
            if not cds.isdigit():
                raise ValueError(f"{path}:{number}: number_of_cds {cds!r} is not a count")
            rows.add(number, customer, date, dollars)
    return rows.transactions()


def _load_csv(path: Path) -> Transactions:
    rows = _Rows(path)
    for line, (customer, date, value), _ in csv_columns(path, CSV_COLUMNS):
        rows.add(line, customer, date, value)
    return rows.transactions()


class _Rows:
    """Columns being collected from a text file; every value checked where it is read."""

    __slots__ = ("_customers", "_days", "_known_days", "_path", "_values")

    def __init__(self, path: Path) -> None:
        self._path = path
        self._customers: list[str] = []
        self._days: list[int] = []
        self._values: list[float] = []
        # a file has few distinct dates: parse each once
        self._known_days: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._customers)

    def add(self, line: int, customer: str, date: str, value: str) -> None:
        if not customer:
            raise ValueError(f"{self._path}:{line}: empty customer id")
        day = self._known_days.get(date)
        if day is None:
            day = self._known_days[date] = self._parse_day(line, date)
        try:
            amount = float(value)
        except ValueError:
            raise ValueError(f"{self._path}:{line}: value {value!r} is not a number") from None
        if not math.isfinite(amount):
            raise ValueError(f"{self._path}:{line}: value {value!r} is not finite")
        self._customers.append(customer)
        self._days.append(day)
        self._values.append(amount)

    def _parse_day(self, line: int, text: str) -> int:
        match = _DATE.fullmatch(text)
        if match is None:
            raise ValueError(f"{self._path}:{line}: date {text!r} is not YYYYMMDD or YYYY-MM-DD")
        year, month, day = (int(g) for g in match.groups() if g is not None)
        try:
            return dt.date(year, month, day).toordinal() - _EPOCH_ORDINAL
        except ValueError as exc:
            raise ValueError(f"{self._path}:{line}: date {text!r}: {exc}") from None

    def transactions(self) -> Transactions:
        if not self._customers:
            raise ValueError(f"{self._path}: no transactions")
        return Transactions(
            customer=np.asarray(self._customers, dtype=object),
            day=np.asarray(self._days, dtype=np.int64).astype("datetime64[D]"),
            value=np.asarray(self._values, dtype=np.float64),
        )

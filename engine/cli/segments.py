"""`omotenashi segments rfm|report`: offline segmentation jobs and the segment report.

`rfm` scores every customer's recency, frequency and monetary value from a purchase
history and writes the scores and segment name into their profile, where targeting
rules (`rfm_segment == "at_risk"`) and the segment report pick them up.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import math
import sys
import time
from collections.abc import Mapping, Sequence

import numpy as np

from engine.cli.runtime import cli_store, prepared_settings
from engine.errors import ConfigError, StoreUnavailable
from engine.keyring import Keyring
from engine.privacy.pseudonym import Pseudonymizer
from engine.settings import Settings
from engine.store.offline_features import FieldValue, write_offline_features
from training.rfm import RfmTable, SegmentSummary, feature_rows, rfm_scores, summary
from training.transactions import from_archive, load_transactions

# a bulk job sends pipelines of a thousand writes: the serving timeout is too short
WRITE_TIMEOUT_MS = 10_000


def run(args: argparse.Namespace) -> int:
    if args.segments_command == "report":
        from engine.cli.segment_report import run_report

        return run_report(args)
    if args.segments_command == "rfm":
        return run_rfm(args)
    raise ValueError(f"unknown segments job {args.segments_command!r}")


def run_rfm(args: argparse.Namespace) -> int:
    """Load, score, print the segments and (unless `--dry-run`) write the profiles."""
    started = time.perf_counter()
    try:
        as_of = _parse_as_of(args.as_of)
        if args.archive is not None:
            source = f"event archive {args.archive}"
            tx = from_archive(args.archive)
        else:
            source = str(args.transactions)
            tx = load_transactions(args.transactions, args.format)
        loaded = time.perf_counter()
        table = rfm_scores(tx, as_of)
    except (ValueError, OSError) as exc:
        print(f"omotenashi: {exc}", file=sys.stderr)
        return 2
    scored = time.perf_counter()
    purchases = int(table.frequency.sum())
    print(f"RFM as of {table.as_of}: {purchases} purchases by {len(table)} customers ({source})")
    print(format_summary(summary(table)))
    timings = f"load {loaded - started:.2f}s, score {scored - loaded:.2f}s"
    if args.dry_run:
        print(f"dry run: no profile written; took {scored - started:.2f}s ({timings})")
        return 0
    with prepared_settings() as settings:
        # a transactions file has the shop's customer ids; the archive has pids already
        pids = _customer_pids(settings, table) if args.archive is None else table.customer
        rows = feature_rows(table, list(pids))
        try:
            written = asyncio.run(_write(settings, rows))
        except StoreUnavailable as exc:
            # every write sets whole fields, so a rerun finishes the job without harm
            print(f"omotenashi: {exc.message}; run the job again", file=sys.stderr)
            return 1
    finished = time.perf_counter()
    skipped = len(rows) - written
    print(
        f"{written} profiles written, {skipped} skipped (refused personalization, erased, "
        f"or merged into another profile)"
    )
    print(f"took {finished - started:.2f}s ({timings}, write {finished - scored:.2f}s)")
    return 0


def format_summary(rows: Sequence[SegmentSummary]) -> str:
    """The segments as a fixed-width table for the terminal; `-` for an empty one's means."""
    head = ("segment", "customers", "share", "mean R days", "mean F", "mean M")
    template = "{:<20}{:>10}{:>8}{:>13}{:>8}{:>10}"
    header = template.format(*head)
    lines = [header, "-" * len(header)]
    for s in rows:
        cells = (
            s.segment,
            s.customers,
            f"{s.share:.1%}",
            _number(s.mean_recency_days, 1),
            _number(s.mean_frequency, 2),
            _number(s.mean_monetary, 2),
        )
        lines.append(template.format(*cells))
    total = sum(s.customers for s in rows)
    lines.append(template.format("total", total, f"{1 if total else 0:.1%}", "", "", "").rstrip())
    return "\n".join(lines)


def _number(value: float, digits: int) -> str:
    return "-" if math.isnan(value) else f"{value:.{digits}f}"


def _parse_as_of(text: str | None) -> np.datetime64 | None:
    if text is None:
        return None
    try:
        return np.datetime64(dt.date.fromisoformat(text), "D")
    except ValueError:
        raise ValueError(f"--as-of {text!r}: expected a date YYYY-MM-DD") from None


def _customer_pids(settings: Settings, table: RfmTable) -> list[str]:
    """The profile pid of each customer id, built exactly as `engine.app` builds it, so a
    visitor who later identifies with that customer id lands on the scored profile."""
    if settings.secret is None:
        raise ConfigError("secrets missing after resolution")
    pseudonymize = Pseudonymizer(Keyring.from_secret(settings.secret.get_secret_value()).pseudonyms)
    return [pseudonymize(customer) for customer in table.customer.tolist()]


async def _write(settings: Settings, rows: Mapping[str, Mapping[str, FieldValue]]) -> int:
    store = cli_store(settings, WRITE_TIMEOUT_MS)
    try:
        return await write_offline_features(
            store,
            rows,
            ttl_s=settings.visitor_ttl_s,
            personalization_default=settings.consent_default == "opt_out",
        )
    finally:
        await store.close()

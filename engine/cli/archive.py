"""`omotenashi archive`: move the event log into Parquet files (once, or following)."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

from engine.cli.runtime import cli_store, prepared_settings
from engine.errors import StoreUnavailable
from engine.events.archive import ArchiveBusy, ArchiveRun, archive_once
from engine.settings import Settings

FOLLOW_INTERVAL_S = 5.0


def run_archive(args: argparse.Namespace) -> int:
    """Archive once (exit 1 if Redis is away or another archiver is busy), or with
    `--follow` every few seconds until Ctrl-C, riding out such failures."""
    with prepared_settings() as settings:
        root: Path = args.dir or settings.archive_path
        return asyncio.run(_archive(settings, root, follow=args.follow))


async def _archive(settings: Settings, root: Path, *, follow: bool) -> int:
    store = cli_store(settings)
    try:
        while True:
            started = time.perf_counter()
            try:
                run = await archive_once(store, root)
            except (StoreUnavailable, ArchiveBusy) as exc:
                print(f"omotenashi: {exc.message}", file=sys.stderr)
                if not follow:
                    return 1
            else:
                if not follow or run.entries or run.erased_rows_dropped:
                    print(_summary(run, root, time.perf_counter() - started), flush=True)
                if not follow:
                    return 0
            await asyncio.sleep(FOLLOW_INTERVAL_S)
    finally:
        await store.close()


def _summary(run: ArchiveRun, root: Path, seconds: float) -> str:
    return (
        f"archived {run.entries} log entries into {root}: {run.rows_written} rows in "
        f"{len(run.files_written)} files, {run.duplicates_skipped} duplicates skipped, "
        f"{run.erased_rows_dropped} rows of erased visitors dropped ({seconds:.2f} s)"
    )

"""`omotenashi archive`: move the event log into Parquet files (once, or following)."""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path

from engine.cli.runtime import prepared_settings
from engine.events.archive import ArchiveRun, archive_once
from engine.store.client import Store, connect
from engine.store.keys import Keys

FOLLOW_INTERVAL_S = 5.0


def run_archive(args: argparse.Namespace) -> int:
    with prepared_settings() as settings:
        root = args.dir or settings.archive_path
        assert settings.redis_url is not None
        url, prefix = settings.redis_url, settings.key_prefix
        while True:
            started = time.perf_counter()
            run = asyncio.run(_once(url, prefix, root))
            print(_summary(run, root, time.perf_counter() - started))
            if not args.follow:
                return 0
            time.sleep(FOLLOW_INTERVAL_S)


async def _once(url: str, prefix: str, root: Path) -> ArchiveRun:
    store = Store(connect(url, 5000), Keys(prefix))
    try:
        return await archive_once(store, root)
    finally:
        await store.close()


def _summary(run: ArchiveRun, root: Path, seconds: float) -> str:
    return (
        f"archived {run.entries} log entries into {root}: {run.rows_written} rows in "
        f"{len(run.files_written)} files, {run.duplicates_skipped} duplicates skipped, "
        f"{run.erased_rows_dropped} rows of erased visitors dropped ({seconds:.2f} s)"
    )

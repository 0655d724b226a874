"""`omotenashi items load FILE`: upsert a catalogue file, in batches of the API's size."""

from __future__ import annotations

import argparse
import asyncio
import sys

from engine.catalog_files import read_items
from engine.cli.runtime import cli_store, prepared_settings
from engine.errors import StoreUnavailable
from engine.settings import Settings
from engine.store.catalog import CatalogRepository

BATCH = 1000
WRITE_TIMEOUT_MS = 10_000


def run(args: argparse.Namespace) -> int:
    try:
        items = [item.model_dump() for item in read_items(args.file, args.format)]
    except (OSError, ValueError) as exc:
        print(f"omotenashi: {exc}", file=sys.stderr)
        return 2
    with prepared_settings() as settings:
        try:
            created = asyncio.run(_upsert(settings, items))
        except StoreUnavailable as exc:
            print(f"omotenashi: {exc.message}", file=sys.stderr)
            return 1
    print(f"loaded {len(items)} items from {args.file} ({created} new)")
    return 0


async def _upsert(settings: Settings, items: list[dict[str, object]]) -> int:
    store = cli_store(settings, WRITE_TIMEOUT_MS)
    catalog = CatalogRepository(store)
    created = 0
    try:
        for start in range(0, len(items), BATCH):
            created += await catalog.upsert(items[start : start + BATCH])
    finally:
        await store.close()
    return created

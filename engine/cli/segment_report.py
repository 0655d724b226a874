"""`omotenashi segments report`: the segment report in the terminal (or as JSON)."""

from __future__ import annotations

import argparse
import asyncio

import orjson

from engine.cli.runtime import cli_store, prepared_settings
from engine.decisions.registry import compile_all
from engine.decisions.segment_report import SegmentRow, format_table, segment_report
from engine.settings import Settings
from engine.store.definitions import DefinitionRepository
from engine.store.profile_scan import scan_profiles


def run_report(args: argparse.Namespace) -> int:
    with prepared_settings() as settings:
        rows, profiles = asyncio.run(_report(settings))
    if args.json:
        out = {"profiles": profiles, "segments": [r.to_json() for r in rows]}
        print(orjson.dumps(out, option=orjson.OPT_INDENT_2).decode())
    else:
        print(f"{profiles} visitor profiles")
        print(format_table(rows))
    return 0


async def _report(settings: Settings) -> tuple[list[SegmentRow], int]:
    store = cli_store(settings, 5000)
    try:
        version, raw = await DefinitionRepository(store).load_all()
        definitions = compile_all(version, raw)
        profiles = [p async for p in scan_profiles(store)]
    finally:
        await store.close()
    return segment_report(profiles, definitions.segments), len(profiles)

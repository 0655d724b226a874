"""`omotenashi report EXP_ID`: an experiment's results in the terminal, and the HTML
page or the JSON in files, for an experimenter with Redis but no running server.

A thin layer over `engine.experiments.results.load_results`, the function the
`/results` and `/report` routes call, so the terminal, the files and the API agree.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

import orjson

from engine.cli.runtime import cli_store, prepared_settings
from engine.errors import OmotenashiError
from engine.experiments.report_html import render_report
from engine.experiments.report_text import render_text
from engine.experiments.results import load_results
from engine.settings import Settings
from engine.store.definitions import DefinitionRepository


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`report EXP_ID [--html FILE] [--json FILE]`: the options of the `report` command."""
    parser.add_argument("experiment", metavar="EXP_ID", help="the experiment's id")
    parser.add_argument(
        "--html", type=Path, metavar="FILE", help="also write the report page to FILE"
    )
    parser.add_argument(
        "--json", type=Path, metavar="FILE", help="also write the results (as /results) to FILE"
    )


def run(args: argparse.Namespace) -> int:
    """Print the table and write the files; 2 with a message for an unknown experiment,
    an unreachable Redis or a file that cannot be written."""
    with prepared_settings() as settings:
        try:
            found = asyncio.run(_load(settings, args.experiment))
        except OmotenashiError as exc:
            print(f"omotenashi: {exc.message}", file=sys.stderr)
            return 2
    sys.stdout.write(render_text(found))
    try:
        if args.html is not None:
            args.html.write_text(render_report(found), encoding="utf-8")
        if args.json is not None:
            args.json.write_bytes(orjson.dumps(found, option=orjson.OPT_INDENT_2))
    except OSError as exc:
        print(f"omotenashi: {exc}", file=sys.stderr)
        return 2
    return 0


async def _load(settings: Settings, experiment_id: str) -> dict[str, Any]:
    store = cli_store(settings)
    try:
        return await load_results(store, DefinitionRepository(store), experiment_id)
    finally:
        await store.close()

"""`omotenashi --help` lists every command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from engine.errors import ConfigError
from models.artifacts import ARTIFACT_KINDS


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="omotenashi",
        description="Omotenashi: a real-time personalization engine.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the HTTP service (uvicorn)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)

    demo = commands.add_parser(
        "demo",
        help="start the engine with a demo shop, drive simulated shoppers through it, keep serving",
    )
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8000)
    demo.add_argument("--visitors", type=int, default=300, help="simulated shoppers")
    demo.add_argument("--seconds", type=float, default=5.0, help="at most this long of traffic")
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument(
        "--exit-after-traffic", action="store_true", help="stop after the report instead of serving"
    )
    segments = commands.add_parser("segments", help="offline segmentation jobs and reports")
    segment_jobs = segments.add_subparsers(dest="segments_command", required=True, metavar="JOB")
    rfm = segment_jobs.add_parser(
        "rfm",
        help="RFM quintile scores and named segments, written to the visitors' features",
    )
    source = rfm.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--transactions", type=Path, help="CSV (customer,date,value) or CDNOW master file"
    )
    source.add_argument("--archive", type=Path, help="event archive folder (purchase events)")
    rfm.add_argument(
        "--format", choices=("auto", "cdnow", "csv"), default="auto", help="transactions format"
    )
    rfm.add_argument("--as-of", help="reference date YYYY-MM-DD (default: day after the last)")
    rfm.add_argument("--dry-run", action="store_true", help="compute and print, write nothing")
    report = segment_jobs.add_parser(
        "report", help="per segment: size, conversion, revenue per visitor, top categories"
    )
    report.add_argument("--json", action="store_true", help="print JSON instead of a table")

    archive = commands.add_parser(
        "archive", help="move the event log into Parquet files partitioned by day"
    )
    archive.add_argument("--dir", type=Path, help="archive folder (default: data_dir/archive)")
    archive.add_argument(
        "--follow", action="store_true", help="keep archiving every few seconds until Ctrl-C"
    )
    from engine.cli.report import add_arguments as add_report_arguments

    add_report_arguments(commands.add_parser("report", help="an experiment's results and report"))
    _add_model_commands(commands)
    return parser


def _add_model_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`train`, `models`, `ope` and `items`: the models' offline side."""
    train = commands.add_parser("train", help="train a model and save it as a versioned artifact")
    from engine.cli.train import add_arguments as add_train_arguments

    add_train_arguments(train)

    models = commands.add_parser("models", help="list model versions, switch the active one")
    model_commands = models.add_subparsers(dest="models_command", required=True, metavar="ACTION")
    model_list = model_commands.add_parser("list", help="versions per kind, the active one marked")
    model_list.add_argument("--json", action="store_true", help="print JSON instead of a table")
    activate = model_commands.add_parser(
        "activate", help="make a version live; every worker switches within seconds"
    )
    activate.add_argument("kind", choices=ARTIFACT_KINDS)
    activate.add_argument("version")
    index = model_commands.add_parser(
        "index",
        help="build a recommender version's approximate index (served with "
        "OMOTENASHI_RECS_INDEX=hnsw) and print its recall@10 against exact scoring",
    )
    index.add_argument("version")
    lists = model_commands.add_parser(
        "lists",
        help="add fold-in lists to an ALS recommender version trained without them "
        "(workers use them when they next load the version: activate it again)",
    )
    lists.add_argument("version")
    lists.add_argument(
        "--length", type=int, metavar="K", help="items per list (default: as training's)"
    )

    ope = commands.add_parser(
        "ope", help="estimate a policy's value off-policy from a logged bandit dataset"
    )
    from engine.cli.ope import add_arguments as add_ope_arguments

    add_ope_arguments(ope)

    items = commands.add_parser("items", help="the item catalogue")
    item_commands = items.add_subparsers(dest="items_command", required=True, metavar="ACTION")
    load = item_commands.add_parser(
        "load", help="upsert items from JSON lines, CSV or a MovieLens item file"
    )
    load.add_argument("file", type=Path)
    load.add_argument("--format", choices=("auto", "jsonl", "csv", "movielens"), default="auto")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "serve":
            from engine.cli.serve import serve

            serve(host=args.host, port=args.port, workers=args.workers)
        elif args.command == "demo":
            from engine.cli.demo import demo

            demo(
                host=args.host,
                port=args.port,
                visitors=args.visitors,
                seconds=args.seconds,
                seed=args.seed,
                exit_after_traffic=args.exit_after_traffic,
            )
        elif args.command == "segments":
            from engine.cli import segments

            return segments.run(args)
        elif args.command == "archive":
            from engine.cli.archive import run_archive

            return run_archive(args)
        elif args.command == "train":
            from engine.cli.train import run as run_train

            return run_train(args)
        elif args.command == "models":
            from engine.cli.models import run as run_models

            return run_models(args)
        elif args.command == "ope":
            from engine.cli.ope import run as run_ope

            return run_ope(args)
        elif args.command == "items":
            from engine.cli.items import run as run_items

            return run_items(args)
        elif args.command == "report":
            from engine.cli.report import run as run_report

            return run_report(args)
    except ConfigError as exc:
        print(f"omotenashi: {exc.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nomotenashi: stopped", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""python -m loadtests run --base-url URL --target decide --seconds N [--concurrency C]
[--max-requests M] [--server-pid PID] --json FILE;  python -m loadtests calibrate --seconds N;
python -m loadtests recs-model --artifacts-dir DIR [--items N --index]"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import httpx
import orjson

from loadtests.calibrate import calibrate
from loadtests.report import table
from loadtests.run import MAX_REQUESTS, Plan, run
from loadtests.targets import TARGETS, Keys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run_cmd = commands.add_parser("run", help="measure a target against the bare endpoint")
    run_cmd.add_argument("--base-url", required=True, help="http://127.0.0.1:PORT")
    run_cmd.add_argument("--target", required=True, choices=sorted(TARGETS))
    run_cmd.add_argument("--json", type=Path, help="write the results here")
    run_cmd.add_argument(
        "--rounds",
        type=int,
        default=5,
        help="alternate bare and target this many times (a steadier ratio)",
    )
    run_cmd.add_argument(
        "--server-pid",
        type=int,
        help="the server worker's pid: report its CPU per request and how busy it was",
    )
    model = commands.add_parser(
        "recs-model",
        help="train a synthetic recommender of load-test size into an artifacts folder",
    )
    model.add_argument("--artifacts-dir", type=Path, required=True)
    model.add_argument("--items", type=int, default=100_000)
    model.add_argument("--users", type=int, default=50_000)
    model.add_argument("--index", action="store_true", help="also build the HNSW index")
    scorer = commands.add_parser(
        "scorer-model", help="train a synthetic 8-variant scorer into an artifacts folder"
    )
    scorer.add_argument("--artifacts-dir", type=Path, required=True)
    cal = commands.add_parser("calibrate", help="the generator's ceiling on a do-nothing server")
    for sub in (run_cmd, cal):
        sub.add_argument("--seconds", type=float, default=10.0)
        sub.add_argument("--concurrency", type=int, default=4)
        sub.add_argument("--max-requests", type=int, default=2_000_000)
    args = parser.parse_args(argv)
    if args.command == "recs-model":
        return _recs_model(args, parser)
    if args.command == "scorer-model":
        from loadtests.scorer_model import build as build_scorer

        print(f"scorer {build_scorer(args.artifacts_dir)} under {args.artifacts_dir}")
        return 0
    if args.max_requests > MAX_REQUESTS:
        parser.error(f"--max-requests is capped at {MAX_REQUESTS}")

    if args.command == "calibrate":
        try:
            ceiling = calibrate(args.seconds, args.concurrency, args.max_requests)
        except ValueError as exc:
            parser.error(str(exc))
        print(table({"generator ceiling": ceiling.to_json()}))
        return 0
    site, admin = os.environ.get("OMOTENASHI_SITE_KEY"), os.environ.get("OMOTENASHI_ADMIN_KEY")
    if not site or not admin:
        parser.error("set OMOTENASHI_SITE_KEY and OMOTENASHI_ADMIN_KEY")
    plan = Plan(
        args.base_url,
        args.target,
        args.seconds,
        args.concurrency,
        args.max_requests,
        args.rounds,
        args.server_pid,
    )
    try:
        result = run(plan, Keys(site=site, admin=admin))
    except ValueError as exc:
        parser.error(str(exc))
    except (OSError, httpx.HTTPError) as exc:  # server down, or setup refused
        print(f"load test failed: {exc}", file=sys.stderr)
        return 1
    print(table(result))
    if args.json:
        args.json.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    return 0


def _recs_model(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """The server's secret (OMOTENASHI_SECRET) pseudonymizes the trained visitors."""
    from loadtests.recs_model import build

    secret = os.environ.get("OMOTENASHI_SECRET")
    if not secret:
        parser.error("set OMOTENASHI_SECRET to the server's secret")
    if not (1 <= args.items <= 2_000_000 and 1 <= args.users <= 2_000_000):
        parser.error("--items and --users must be 1..2,000,000")
    built = build(args.artifacts_dir, secret, args.items, args.users, args.index)
    recall = "" if built.recall_at_10 is None else f", index recall@10 {built.recall_at_10:.3f}"
    print(f"recs {built.version}: {args.items} items, {args.users} users{recall}")
    print(f"built in {built.seconds:.1f} s under {args.artifacts_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

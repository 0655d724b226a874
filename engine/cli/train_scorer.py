"""`omotenashi train scorer --slot SLOT`: fit the variant scorer on the decision log.

Reads the event archive, joins outcomes to logged decisions by token within the
attribution window, trains LightGBM on one slot's decisions, prints the held-out
metrics and the greedy policy's off-policy value, and saves a scorer version.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
from pathlib import Path
from typing import Any

import orjson

from engine.cli.runtime import cli_store, prepared_settings
from engine.errors import OmotenashiError
from engine.events.archive import read_archive
from engine.model_versions import activate_version
from engine.settings import Settings, resolve_settings
from models.scorer import OBJECTIVES
from training.attribution import DEFAULT_WINDOW_S, attribute
from training.scorer_train import ScorerMetrics, ScorerParams, save_trained_scorer, train_scorer

ACTIVATE_TIMEOUT_MS = 5_000


def add_parser(models: Any) -> None:
    scorer = models.add_parser(
        "scorer",
        help="LightGBM variant scorer for one slot, from the decision log",
        description="Join outcomes to logged decisions, fit LightGBM, evaluate on the "
        "latest 20%% of decisions (AUC, log loss, calibration, off-policy value of the "
        "greedy policy) and save the scorer.",
    )
    scorer.add_argument("--slot", required=True)
    scorer.add_argument("--archive", type=Path, help="archive folder (default: data_dir/archive)")
    scorer.add_argument("--since", help="first day YYYY-MM-DD (inclusive)")
    scorer.add_argument("--until", help="last day YYYY-MM-DD (inclusive)")
    scorer.add_argument("--objective", choices=OBJECTIVES, default="click")
    scorer.add_argument(
        "--attribution-window",
        type=float,
        default=DEFAULT_WINDOW_S,
        metavar="SECONDS",
        help="outcomes count for a decision this long after it (default one day)",
    )
    scorer.add_argument("--rounds", type=int, default=ScorerParams().rounds)
    scorer.add_argument("--metrics-json", type=Path, metavar="FILE")
    scorer.add_argument("--activate", action="store_true", help="make it the live scorer")


def run_scorer(args: argparse.Namespace) -> int:
    settings = resolve_settings(Settings())
    try:
        since, until = _day(args.since), _day(args.until)
        table = read_archive(args.archive or settings.archive_path, since, until)
        decisions = attribute(table, args.attribution_window, args.slot)
        params = ScorerParams(objective=args.objective, rounds=args.rounds)
        scorer, metrics = train_scorer(decisions, args.slot, params)
    except (ValueError, OSError) as exc:
        print(f"omotenashi: {exc}", file=sys.stderr)
        return 2
    data = {
        "archive": str(args.archive or settings.archive_path),
        "since": args.since,
        "until": args.until,
        "decisions": len(decisions),
        "attribution_window_s": args.attribution_window,
    }
    version = save_trained_scorer(settings.artifacts_dir, scorer, metrics, data)
    print(format_scorer_metrics(metrics))
    print(f"saved scorer version {version} in {settings.artifacts_dir / 'scorer' / version}")
    if args.metrics_json is not None:
        document = {"version": version, **metrics.to_json()}
        args.metrics_json.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2))
    if args.activate:
        with prepared_settings() as ready:
            try:
                asyncio.run(_activate(ready, version))
            except OmotenashiError as exc:
                print(f"omotenashi: {exc.message}", file=sys.stderr)
                return 1
        print(f"scorer version {version} is now live")
    return 0


def format_scorer_metrics(metrics: ScorerMetrics) -> str:
    def number(value: float | None) -> str:
        return "-" if value is None else f"{value:.4f}"

    lines = [
        f"decisions: {metrics.n_train} to train, {metrics.n_test} held out (the latest)",
        f"AUC {number(metrics.auc)}   log loss {number(metrics.log_loss)}",
        "calibration   predicted  observed   rows",
    ]
    lines += [
        f"              {b['predicted']:9.4f} {b['observed']:9.4f} {int(b['rows']):6d}"
        for b in metrics.calibration
    ]
    report = metrics.policy_value
    if report is not None:
        lines.append(f"greedy policy, off-policy (logged policy observed {report.observed:.4f}):")
        for e in report.estimates:
            lines.append(
                f"  {e.estimator:<6}{e.value:9.4f}   {report.level:.0%} CI "
                f"{e.ci_low:.4f} - {e.ci_high:.4f}"
            )
        lines += [f"  warning: {w}" for w in report.warnings]
    lines.append(f"fit: {metrics.train_seconds:.2f}s")
    return "\n".join(lines)


def _day(text: str | None) -> dt.date | None:
    if text is None:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"expected a day YYYY-MM-DD, got {text!r}") from None


async def _activate(settings: Settings, version: str) -> None:
    store = cli_store(settings, ACTIVATE_TIMEOUT_MS)
    try:
        await activate_version(store, settings.artifacts_dir, "scorer", version)
    finally:
        await store.close()

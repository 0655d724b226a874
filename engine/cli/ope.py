"""`omotenashi ope`: estimate from a logged policy's decisions what another policy would
have earned, before it ships.

A thin layer: `training.obd` reads the log, `training.ope` does the math; this module
parses the arguments and prints the table (and the JSON). Only the Open Bandit Dataset
format exists for now; the engine's own decision log becomes another `--format`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Literal, get_args

import orjson

from training.obd import ObdLog, load_obd
from training.ope import (
    OpeReport,
    SlotPolicy,
    empirical_policy,
    evaluate_slot_policy,
    uniform_policy,
)

LogFormat = Literal["obd"]
LOG_FORMATS: tuple[LogFormat, ...] = get_args(LogFormat)
PolicyName = Literal["uniform", "bts-empirical"]
POLICIES: tuple[PolicyName, ...] = get_args(PolicyName)
LEVEL = 0.95


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`ope --log PATH --format obd --policy POLICY`: the options of the `ope` command."""
    parser.add_argument(
        "--log", type=Path, required=True, help="logged decisions with propensities (OBD all.csv)"
    )
    parser.add_argument("--format", choices=LOG_FORMATS, required=True, help="the log's format")
    parser.add_argument(
        "--policy",
        required=True,
        metavar="POLICY",
        help="the policy to evaluate: 'uniform' (every item equally likely at each "
        "position), or 'bts-empirical:PATH' (the context-free policy that wrote the log "
        "at PATH, e.g. OBD's Bernoulli Thompson sampling, averaged over that log)",
    )
    parser.add_argument(
        "--bootstrap",
        type=int,
        default=1000,
        metavar="B",
        help="percentile-bootstrap resamples of the logged rows (default: 1000)",
    )
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default: 0)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the results to FILE")


def run(args: argparse.Namespace) -> int:
    """Evaluate, print the table, write the JSON; 2 with a message for bad input."""
    try:
        log = load_log(args.log, args.format)
        policy = target_policy(args.policy, log, args.format)
        report = evaluate_slot_policy(
            log.actions,
            log.positions,
            log.rewards,
            log.propensities,
            policy,
            n_bootstrap=args.bootstrap,
            level=LEVEL,
            seed=args.seed,
        )
    except (ValueError, OSError) as exc:
        print(f"omotenashi: {exc}", file=sys.stderr)
        return 2
    print(format_report(report, log=args.log, log_format=args.format, policy=args.policy))
    if args.json is not None:
        try:
            args.json.write_bytes(orjson.dumps(document(report, args), option=orjson.OPT_INDENT_2))
        except OSError as exc:
            print(f"omotenashi: --json: {exc}", file=sys.stderr)
            return 2
    return 0


def load_log(path: Path, log_format: LogFormat) -> ObdLog:
    if log_format == "obd":
        return load_obd(path)
    raise ValueError(f"unknown log format {log_format!r}; one of {', '.join(LOG_FORMATS)}")


def target_policy(spec: str, log: ObdLog, log_format: LogFormat) -> SlotPolicy:
    """The policy named by `--policy`, over the evaluated log's items and positions."""
    name, _, argument = spec.partition(":")
    if name == "uniform" and not argument:
        return uniform_policy(log.n_actions, log.positions)
    if name == "bts-empirical" and argument:
        source = load_log(Path(argument), log_format)
        return empirical_policy(
            source.actions, source.positions, source.propensities, log.n_actions
        )
    raise ValueError(f"--policy {spec!r}: expected 'uniform' or 'bts-empirical:PATH'")


def document(report: OpeReport, args: argparse.Namespace) -> dict[str, Any]:
    """The `--json` file: the arguments that produced the report, then the report."""
    return {
        "log": str(args.log),
        "format": args.format,
        "policy": args.policy,
        **report.to_json(),
    }


def format_report(report: OpeReport, *, log: Path, log_format: str, policy: str) -> str:
    diagnostics = report.diagnostics
    percent = f"{report.level:.0%}"
    lines = [
        f"log     {log} ({log_format}): {report.n} rows, "
        f"logged policy's observed mean reward {report.observed:.6f}",
        f"policy  {policy}",
        "",
        f"{'estimator':<10} {'estimate':>10} {percent + ' CI low':>12} {percent + ' CI high':>12}",
    ]
    lines += [
        f"{e.estimator:<10} {e.value:>10.6f} {e.ci_low:>12.6f} {e.ci_high:>12.6f}"
        for e in report.estimates
    ]
    lines += [
        f"(percentile bootstrap over logged rows, {report.n_bootstrap} resamples, "
        f"seed {report.seed})",
        "",
        f"ESS {diagnostics.ess:.1f} ({diagnostics.ess / diagnostics.n:.1%} of n), "
        f"max weight {diagnostics.max_weight:.3g} "
        f"({diagnostics.max_weight_share:.2%} of all weight), "
        f"mean weight {diagnostics.mean_weight:.3f}, "
        f"min propensity {diagnostics.min_propensity:.3g}",
    ]
    if report.warnings:
        lines += ["warnings:", *(f"  - {w}" for w in report.warnings)]
    else:
        lines.append("warnings: none")
    return "\n".join(lines)

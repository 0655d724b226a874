"""`omotenashi ope`: estimate from a logged policy's decisions what another policy would
have earned, before it ships.

A thin layer: `training.obd` reads the log, `training.ope` does the math; this module
parses the arguments and prints the table (and the JSON). Logs: the Open Bandit
Dataset (`--format obd`) and the engine's own decision log in its archive
(`--format engine --slot S`, with `training.attribution` and `training.ope_engine`).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal, get_args

import orjson

from engine.events.archive import read_archive
from engine.settings import Settings, resolve_settings
from models.artifacts import ArtifactError, artifact_path
from models.scorer import load_scorer
from training.attribution import DEFAULT_WINDOW_S, attribute
from training.obd import ObdLog, load_obd
from training.ope import (
    OpeReport,
    SlotPolicy,
    empirical_policy,
    evaluate,
    evaluate_slot_policy,
    uniform_policy,
)
from training.ope_engine import (
    estimated_propensities_warning,
    greedy_inputs,
    uniform_inputs,
)

LogFormat = Literal["obd", "engine"]
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
        "position), 'bts-empirical:PATH' (OBD: the context-free policy that wrote the log "
        "at PATH, averaged over that log), or 'scorer:VERSION' (engine: a scorer's greedy "
        "policy)",
    )
    parser.add_argument(
        "--bootstrap",
        type=int,
        default=1000,
        metavar="B",
        help="percentile-bootstrap resamples of the logged rows (default: 1000)",
    )
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default: 0)")
    parser.add_argument("--slot", help="with --format engine: the slot whose decisions to use")
    parser.add_argument(
        "--attribution-window",
        type=float,
        default=DEFAULT_WINDOW_S,
        metavar="SECONDS",
        help="with --format engine: clicks count this long after a decision",
    )
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the results to FILE")


def run(args: argparse.Namespace) -> int:
    """Evaluate, print the table, write the JSON; 2 with a message for bad input."""
    if args.format == "engine":
        return run_engine(args)
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


def run_engine(args: argparse.Namespace) -> int:
    """The engine's archive (`--log` is the archive folder): one slot's decisions, their
    attributed clicks, `uniform` or `scorer:<version>` as the target policy."""
    try:
        if not args.slot:
            raise ValueError("--format engine needs --slot")
        decisions = attribute(read_archive(args.log), args.attribution_window, args.slot)
        if not len(decisions):
            raise ValueError(f"no logged decisions of slot {args.slot!r} under {args.log}")
        name, _, version = args.policy.partition(":")
        if name == "uniform" and not version:
            inputs = uniform_inputs(decisions)
        elif name == "scorer" and version:
            root = resolve_settings(Settings()).artifacts_dir
            inputs = greedy_inputs(decisions, load_scorer(artifact_path(root, "scorer", version)))
        else:
            raise ValueError(f"--policy {args.policy!r}: expected 'uniform' or 'scorer:VERSION'")
        report = evaluate(
            inputs.rewards,
            inputs.propensities,
            inputs.target_probs,
            inputs.q_logged,
            inputs.q_target,
            n_bootstrap=args.bootstrap,
            level=LEVEL,
            seed=args.seed,
        )
    except (ValueError, OSError, ArtifactError) as exc:
        print(f"omotenashi: {exc}", file=sys.stderr)
        return 2
    warning = estimated_propensities_warning(decisions)
    if warning is not None:
        diagnostics = report.diagnostics
        warnings = (*diagnostics.warnings, warning)
        report = replace(report, diagnostics=replace(diagnostics, warnings=warnings))
    print(format_report(report, log=args.log, log_format=args.format, policy=args.policy))
    if args.json is not None:
        args.json.write_bytes(orjson.dumps(document(report, args), option=orjson.OPT_INDENT_2))
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

"""`omotenashi train recs`: fit the recommender on interactions, report how it ranks
each user's held-out latest item against the most-popular baseline, and save it as a
versioned artifact (optionally making it the live one).

A thin layer: arguments in, `training.interactions` and `training.recs_train` do the
work. Client user ids (MovieLens, CSV) are pseudonymized with the engine's secret here,
exactly as the API pseudonymizes `visitor_id`, so serving finds trained users.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any, TypeVar

import orjson

from engine.cli.runtime import cli_store, prepared_settings
from engine.cli.train_scorer import add_parser as add_scorer_parser
from engine.cli.train_scorer import run_scorer
from engine.errors import ConfigError, StoreUnavailable
from engine.keyring import Keyring
from engine.privacy.pseudonym import Pseudonymizer
from engine.settings import Settings, resolve_settings
from engine.store.active_models import activate
from models.fold_in_lists import LIST_LENGTH
from models.interactions import DEFAULT_WEIGHTS, parse_weights
from models.recommender import ALGORITHMS, WEIGHTINGS, WeightingParams
from training.interactions import INTERACTION_FORMATS, load_interactions, pseudonymized
from training.recs_train import (
    DEFAULT_PARAMS,
    DEVICES,
    RecsParams,
    TrainedRecs,
    check_device,
    encode,
    format_metrics,
    save_trained,
    train_recs,
)

EVALUATIONS = ("leave-last-out",)
ACTIVATE_TIMEOUT_MS = 5_000

T = TypeVar("T")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`train recs` here, `train scorer` in engine.cli.train_scorer."""
    models = parser.add_subparsers(dest="train_command", required=True, metavar="MODEL")
    recs = models.add_parser(
        "recs",
        help="implicit ALS or BPR recommender from interactions",
        description="Fit the recommender, optionally evaluate it leave-last-out against "
        "the most-popular baseline, and save it under the artifacts folder. Options "
        "left out take the algorithm's tuned defaults.",
    )
    als, bpr = DEFAULT_PARAMS["als"], DEFAULT_PARAMS["bpr"]

    def default(name: str) -> str:
        return f"default: {getattr(als, name)} for als, {getattr(bpr, name)} for bpr"

    recs.add_argument(
        "--interactions",
        type=Path,
        required=True,
        help="MovieLens ratings file, CSV (user,item,weight[,timestamp]) or event archive folder",
    )
    recs.add_argument("--format", choices=INTERACTION_FORMATS, required=True)
    recs.add_argument("--algorithm", choices=ALGORITHMS, default="als")
    recs.add_argument("--factors", type=int, help=f"latent factors ({default('factors')})")
    recs.add_argument("--iterations", type=int, help=f"epochs ({default('iterations')})")
    recs.add_argument("--regularization", type=float, help=default("regularization"))
    recs.add_argument(
        "--alpha", type=float, help=f"ALS confidence scale, C = 1 + alpha*r ({default('alpha')})"
    )
    recs.add_argument(
        "--learning-rate", type=float, help=f"BPR step size ({default('learning_rate')})"
    )
    recs.add_argument(
        "--weighting",
        choices=WEIGHTINGS,
        help=f"confidence weighting (default: {als.weighting.kind} for als, "
        f"{bpr.weighting.kind} for bpr)",
    )
    recs.add_argument("--bm25-k1", type=float, help=f"BM25 K1 (default {als.weighting.k1})")
    recs.add_argument("--bm25-b", type=float, help=f"BM25 B (default {als.weighting.b})")
    recs.add_argument(
        "--event-weights",
        default="",
        metavar="TEXT",
        help="weights per event type over the defaults, e.g. purchase=5,click=2 "
        f"(defaults {','.join(f'{k}={v:g}' for k, v in DEFAULT_WEIGHTS.items())}); they "
        "weigh archived events and, in every format, the live histories serving folds in",
    )
    recs.add_argument(
        "--rating-weights",
        action="store_true",
        help="movielens: weigh each interaction by its rating instead of 1",
    )
    recs.add_argument("--seed", type=int, help=f"random seed (default {als.seed})")
    recs.add_argument("--device", choices=DEVICES, default="cpu")
    recs.add_argument(
        "--precompute-top",
        type=int,
        default=100,
        metavar="K",
        help="save each trained user's K best unseen items, so serving them is a short "
        "walk instead of a pass over the catalogue (0: off; costs users x items work)",
    )
    recs.add_argument(
        "--fold-in-lists",
        type=int,
        default=LIST_LENGTH,
        metavar="K",
        help="ALS: save each item's K best items by the model's item-to-item score, so a "
        "visitor folded in from their clicks gets the exact top-n from a few hundred "
        "candidates instead of a pass over the catalogue (0: off; costs items^2 work)",
    )
    recs.add_argument(
        "--eval",
        choices=EVALUATIONS,
        help="hold out each user's latest interaction, fit on the rest, report top-10 metrics",
    )
    recs.add_argument(
        "--metrics-json", type=Path, metavar="FILE", help="write the metrics as JSON (with --eval)"
    )
    recs.add_argument(
        "--activate", action="store_true", help="make the new version the live one in Redis"
    )
    add_scorer_parser(models)


def run(args: argparse.Namespace) -> int:
    if args.train_command == "recs":
        return run_recs(args)
    if args.train_command == "scorer":
        return run_scorer(args)
    raise ValueError(f"unknown model {args.train_command!r}")


def run_recs(args: argparse.Namespace) -> int:
    """Load, (evaluate,) fit, save, report; exit 2 with nothing written on bad input."""
    try:
        params = recs_params(args)
        event_weights = parse_weights(args.event_weights)
        _check_options(args)
        check_device(params.device)
        settings = resolve_settings(Settings())
        interactions = load_interactions(
            args.interactions,
            args.format,
            rating_weights=args.rating_weights,
            event_weights=event_weights,
        )
        if args.format != "events":  # the archive holds pids already
            interactions = pseudonymized(interactions, _pseudonymizer(settings))
        data = encode(interactions)
        summary = data.summary()
        print(
            f"{args.algorithm}: {summary['interactions']} interactions, "
            f"{summary['users']} users x {summary['items']} items "
            f"(density {summary['density']:.4f}) from {args.interactions}"
        )
        if args.eval is not None:
            print("fitting on the leave-last-out split, then on all interactions")
        trained = train_recs(
            data, params, evaluate=args.eval is not None, show_progress=sys.stderr.isatty()
        )
    except (ValueError, OSError) as exc:
        print(f"omotenashi: {exc}", file=sys.stderr)
        return 2
    version = save_trained(
        settings.artifacts_dir,
        trained,
        event_weights=event_weights,
        data=_source(args),
        top_k=max(args.precompute_top, 0),
        fold_in_lists=max(args.fold_in_lists, 0),
        show_progress=sys.stderr.isatty(),
    )
    _report(trained, version, settings)
    if args.metrics_json is not None:
        args.metrics_json.write_bytes(
            orjson.dumps(metrics_document(trained, version), option=orjson.OPT_INDENT_2)
        )
    if args.activate:
        with prepared_settings() as live:
            try:
                asyncio.run(_activate(live, version))
            except StoreUnavailable as exc:
                print(
                    f"omotenashi: {exc.message}; version {version} is saved but not live: "
                    f"run `omotenashi models activate recs {version}`",
                    file=sys.stderr,
                )
                return 1
        print(f"recs version {version} is now live")
    return 0


def recs_params(args: argparse.Namespace) -> RecsParams:
    """The command line over the algorithm's tuned defaults."""
    base = DEFAULT_PARAMS[args.algorithm]
    weighting = WeightingParams(
        kind=_given(args.weighting, base.weighting.kind),
        k1=_given(args.bm25_k1, base.weighting.k1),
        b=_given(args.bm25_b, base.weighting.b),
    )
    return RecsParams(
        algorithm=args.algorithm,
        factors=_given(args.factors, base.factors),
        iterations=_given(args.iterations, base.iterations),
        regularization=_given(args.regularization, base.regularization),
        alpha=_given(args.alpha, base.alpha),
        learning_rate=_given(args.learning_rate, base.learning_rate),
        weighting=weighting,
        seed=_given(args.seed, base.seed),
        device=args.device,
    )


def metrics_document(trained: TrainedRecs, version: str) -> dict[str, Any]:
    """What `--metrics-json` writes: model and baseline metrics, fit time, version."""
    if trained.evaluation is None:
        raise ValueError("no evaluation to write")
    return {
        "model": trained.evaluation.model.as_dict(),
        "popularity": trained.evaluation.popularity.as_dict(),
        "train_seconds": trained.train_seconds,
        "version": version,
    }


def _given(value: T | None, default: T) -> T:
    return default if value is None else value


def _check_options(args: argparse.Namespace) -> None:
    if args.metrics_json is not None:
        if args.eval is None:
            raise ValueError("--metrics-json needs --eval leave-last-out")
        if not args.metrics_json.parent.is_dir():
            raise ValueError(f"--metrics-json: no folder {args.metrics_json.parent}")
    if args.rating_weights and args.format != "movielens":
        raise ValueError("--rating-weights applies to --format movielens only")


def _pseudonymizer(settings: Settings) -> Pseudonymizer:
    if settings.secret is None:
        raise ConfigError("secrets missing after resolution")
    return Pseudonymizer(Keyring.from_secret(settings.secret.get_secret_value()).pseudonyms)


def _source(args: argparse.Namespace) -> dict[str, Any]:
    """How the data was read, for the manifest."""
    if args.format == "events":
        users, weights = "archive profiles (pids)", "sum over distinct event types"
    else:
        users = "client ids pseudonymized with the engine secret"
        weights = "rating" if args.rating_weights else "file weights"
        if args.format == "movielens" and not args.rating_weights:
            weights = "1 per rating"
    return {
        "source": str(args.interactions.resolve()),
        "format": args.format,
        "user_ids": users,
        "weights": weights,
    }


def _report(trained: TrainedRecs, version: str, settings: Settings) -> None:
    evaluation = trained.evaluation
    if evaluation is not None:
        print(
            f"leave-last-out: {evaluation.model.users} users, top {evaluation.model.k} among "
            "the items each had not interacted with in training"
        )
        print(format_metrics(evaluation, trained.params.algorithm))
        print(f"fit on the split: {evaluation.fit_seconds:.2f}s")
    print(f"fit on all interactions: {trained.train_seconds:.2f}s")
    print(f"saved recs version {version} in {settings.artifacts_dir / 'recs' / version}")


async def _activate(settings: Settings, version: str) -> None:
    store = cli_store(settings, ACTIVATE_TIMEOUT_MS)
    try:
        await activate(store, "recs", version)
    finally:
        await store.close()

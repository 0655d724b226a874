"""`omotenashi models list|activate|index|lists`: the listing and switch of `/v1/models`,
and adding a version's approximate index or fold-in lists after training."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import orjson

from engine.cli.runtime import cli_store, prepared_settings
from engine.errors import OmotenashiError
from engine.model_versions import activate_version, overview
from engine.settings import Settings
from models.ann import add_index
from models.artifacts import ArtifactError, artifact_path
from models.fold_in_lists import LIST_LENGTH, build_lists, save_lists
from models.recommender import load_recs


def run(args: argparse.Namespace) -> int:
    with prepared_settings() as settings:
        try:
            return asyncio.run(_run(settings, args))
        except OmotenashiError as exc:
            print(f"omotenashi: {exc.message}", file=sys.stderr)
            return 2
        except ArtifactError as exc:
            print(f"omotenashi: {exc}", file=sys.stderr)
            return 2


async def _run(settings: Settings, args: argparse.Namespace) -> int:
    if args.models_command == "index":
        return index_version(settings.artifacts_dir, args.version)
    if args.models_command == "lists":
        return add_fold_in_lists(settings.artifacts_dir, args.version, args.length)
    store = cli_store(settings)
    try:
        if args.models_command == "activate":
            await activate_version(store, settings.artifacts_dir, args.kind, args.version)
            print(f"{args.kind} {args.version} is active; workers switch within seconds")
            return 0
        found = await overview(store, settings.artifacts_dir)
    finally:
        await store.close()
    if args.json:
        sys.stdout.write(orjson.dumps(found, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        print(format_table(found))
    return 0


def format_table(found: dict[str, Any]) -> str:
    lines = [f"{'kind':<7} {'version':<22} {'created':<26} {'algorithm':<9} ndcg@10  active"]
    for kind, versions in found["versions"].items():
        for v in versions:
            manifest = v["manifest"]
            ndcg = manifest.get("metrics", {}).get("model", {}).get("ndcg@10")
            lines.append(
                f"{kind:<7} {v['version']:<22} {v['created']:<26} "
                f"{manifest.get('algorithm', '-'):<9} "
                f"{'-' if ndcg is None else f'{ndcg:.4f}':<8} {'*' if v['active'] else ''}"
            )
    if len(lines) == 1:
        lines.append("(no versions yet: omotenashi train recs ...)")
    return "\n".join(lines)


def index_version(root: Path, version: str) -> int:
    """Add `items.usearch` to a version folder and say how close it comes to exact."""
    folder = artifact_path(root, "recs", version)
    model = load_recs(folder)
    started = time.perf_counter()
    recall = add_index(folder, model.item_factors, model.user_factors)
    print(
        f"indexed {model.n_items} items of recs {version} in {time.perf_counter() - started:.1f} s;"
        f" recall@10 against exact scoring for trained users: {recall:.3f}"
    )
    return 0


def add_fold_in_lists(root: Path, version: str, length: int | None) -> int:
    """Build and add the fold-in lists of an ALS version (`models.fold_in_lists`)."""
    length = LIST_LENGTH if length is None else length
    folder = artifact_path(root, "recs", version)
    model = load_recs(folder)
    if model.algorithm != "als":
        raise ArtifactError(f"recs {version} is {model.algorithm}: fold-in lists bound ALS only")
    if length < 1:
        raise ArtifactError(f"list length must be at least 1, got {length}")
    if model.fold_in_lists is not None:
        # replacing them in place could show a loading worker old rows with new scores
        raise ArtifactError(f"recs {version} has fold-in lists already: train a new version")
    if not model.gram_inverse.size:
        raise ArtifactError(f"recs {version}: its Gram matrix is not positive definite")
    started = time.perf_counter()
    lists = build_lists(model.item_factors, model.gram_inverse, length, show_progress=True)
    save_lists(folder, lists)
    print(
        f"fold-in lists of {lists.rows.shape[1]} items for each of {model.n_items} items of "
        f"recs {version} in {time.perf_counter() - started:.1f} s"
    )
    return 0

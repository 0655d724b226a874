"""Listing model versions and switching the active one: what the API and CLI share."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from engine.errors import InvalidInput, NotFound
from engine.store.active_models import activate, active_versions
from engine.store.client import Store
from models.artifacts import ARTIFACT_KINDS, ArtifactError, artifact_path, list_versions
from models.recommender import load_recs
from models.scorer import load_scorer


async def activate_version(store: Store, root: Path, kind: str, version: str) -> None:
    """Activate only what loads here: a broken folder must never reach the workers."""
    if kind not in ARTIFACT_KINDS:
        raise NotFound(f"unknown model kind {kind!r}")
    try:
        folder = artifact_path(root, kind, version)
    except ArtifactError as exc:
        raise NotFound(str(exc)) from exc
    if not folder.is_dir():
        raise NotFound(f"no {kind} version {version} under {root}")
    try:
        if kind == "recs":
            await asyncio.to_thread(load_recs, folder)
            slot = None
        else:
            slot = (await asyncio.to_thread(load_scorer, folder)).slot
    except ArtifactError as exc:
        raise InvalidInput(f"{kind} {version} does not load: {exc}") from exc
    await activate(store, kind, version, slot)


async def overview(store: Store, root: Path) -> dict[str, Any]:
    """The active version per kind and every version on disk, newest first."""
    active = await active_versions(store)
    versions: dict[str, list[dict[str, Any]]] = {}
    for kind in ARTIFACT_KINDS:
        found = await asyncio.to_thread(list_versions, root, kind)
        versions[kind] = [
            {
                "version": m["version"],
                "created": m.get("created", ""),
                "active": m["version"] in (active.get(kind), active.get(f"{kind}:{m.get('slot')}")),
                "manifest": m,
            }
            for m in reversed(found)
        ]
    return {"active": active, "versions": versions}

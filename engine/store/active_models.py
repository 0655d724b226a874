"""Which artifact version of each kind is live: one Redis hash every worker polls.

Activation is a single HSET, so all workers switch to the same version within their
polling interval; the artifact folders themselves live on disk (`artifacts_dir`).
"""

from __future__ import annotations

from typing import Any

from engine.store.client import Store
from models.artifacts import check_kind, check_version


async def active_versions(store: Store) -> dict[str, str]:
    """kind (or `scorer:<slot>`) -> active version; never-activated ones are absent."""
    async with store.guard("models_active"):
        raw: Any = await store.redis.hgetall(store.keys.active_models)
    return {kind.decode(): version.decode() for kind, version in raw.items()}


async def activate(store: Store, kind: str, version: str, slot: str | None = None) -> None:
    """Make `version` the live one for `kind`, or for `kind` on one slot (scorers are per
    slot: field `scorer:<slot>`). Callers check that the folder loads."""
    field = check_kind(kind) if slot is None else f"{check_kind(kind)}:{slot}"
    async with store.guard("models_activate"):
        await store.redis.hset(store.keys.active_models, field, check_version(version))

"""The variant scorers a worker decides with: one per slot, kept in step with Redis.

Every `models_refresh_ms` the worker reads the active versions (`scorer:<slot>` fields)
and loads what changed in a thread; a version that fails to load (a missing folder, a
feature schema this code no longer builds) is logged and counted, and the slot keeps
its previous scorer, or decides by its rules if it never had one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.background import pause
from engine.errors import StoreUnavailable
from engine.store.client import Store
from models.artifacts import ArtifactError, artifact_path
from models.scorer import VariantScorer, load_scorer

log = logging.getLogger(__name__)
PREFIX = "scorer:"


class ScorerRegistry:
    def __init__(
        self,
        store: Store,
        artifacts_dir: Path,
        on_load_error: Callable[[str], None] = lambda kind: None,
        *,
        compiled: bool = True,
    ) -> None:
        self._compiled = compiled
        self._store = store
        self._artifacts_dir = artifacts_dir
        self._on_load_error = on_load_error
        self._failed: dict[str, str] = {}  # slot -> version that failed (not retried)
        self.current: dict[str, VariantScorer] = {}

    async def refresh(self) -> bool:
        async with self._store.guard("models_poll"):
            raw: Any = await self._store.redis.hgetall(self._store.keys.active_models)
        wanted = {
            k.decode().removeprefix(PREFIX): v.decode()
            for k, v in raw.items()
            if k.decode().startswith(PREFIX)
        }
        changed = False
        current = dict(self.current)
        for slot, version in wanted.items():
            have = current.get(slot)
            if (have is not None and have.version == version) or self._failed.get(slot) == version:
                continue
            try:
                folder = artifact_path(self._artifacts_dir, "scorer", version)
                scorer = await asyncio.to_thread(load_scorer, folder, compiled=self._compiled)
                if scorer.slot != slot:
                    raise ArtifactError(f"scorer {version} was trained for slot {scorer.slot!r}")
            except ArtifactError as exc:
                self._failed[slot] = version
                self._on_load_error("scorer")
                log.error("scorer %s for slot %s not loaded: %s", version, slot, exc)
                continue
            current[slot] = scorer
            changed = True
            log.info("scorer %s loaded for slot %s", version, slot)
        for slot in set(current) - set(wanted):
            del current[slot]
            changed = True
        if changed:
            self.current = current  # swapped whole: a request sees one set or the other
        return changed

    async def run(self, interval_s: float) -> None:
        while True:
            try:
                await self.refresh()
            except StoreUnavailable:
                pass
            except Exception:  # a dead poller would pin old scorers silently
                log.exception("scorer refresh failed; retrying")
            await pause(interval_s)

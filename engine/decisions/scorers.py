"""The variant scorers a worker decides with: one per slot, kept in step with Redis.

Every `models_refresh_ms` the worker reads the active versions (`scorer:<slot>` fields)
and loads what changed in a thread; a version that fails to load (a missing folder, a
feature schema this code no longer builds) is logged and counted, and the slot keeps
its previous scorer, or decides by its rules if it never had one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
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
    """`current`: the active scorer per slot; `versions`: every loaded scorer by version,
    the active ones and those that running experiments' arms name."""

    def __init__(
        self,
        store: Store,
        artifacts_dir: Path,
        on_load_error: Callable[[str], None] = lambda kind: None,
        *,
        compiled: bool = True,
        experiment_versions: Callable[[], Mapping[str, str]] = dict,
    ) -> None:
        self._compiled = compiled
        self._store = store
        self._artifacts_dir = artifacts_dir
        self._on_load_error = on_load_error
        self._experiment_versions = experiment_versions  # version -> slot
        self._failed: set[str] = set()  # versions that failed to load (not retried)
        self.current: dict[str, VariantScorer] = {}
        self.versions: dict[str, VariantScorer] = {}

    async def refresh(self) -> bool:
        async with self._store.guard("models_poll"):
            raw: Any = await self._store.redis.hgetall(self._store.keys.active_models)
        active = {
            k.decode().removeprefix(PREFIX): v.decode()
            for k, v in raw.items()
            if k.decode().startswith(PREFIX)
        }
        wanted = {version: slot for slot, version in active.items()}
        wanted.update(self._experiment_versions())
        versions: dict[str, VariantScorer] = {}
        for version, slot in wanted.items():
            have = self.versions.get(version)
            if have is not None:
                versions[version] = have
            elif version not in self._failed:
                scorer = await self._load(slot, version)
                if scorer is not None:
                    versions[version] = scorer
        current = {}
        for slot, version in active.items():
            scorer = versions.get(version) or self.current.get(slot)  # a failed load keeps the old
            if scorer is not None:
                current[slot] = scorer
        changed = current != self.current or versions.keys() != self.versions.keys()
        # swapped whole: a request sees one set or the other
        self.current, self.versions = current, versions
        return changed

    async def _load(self, slot: str, version: str) -> VariantScorer | None:
        try:
            folder = artifact_path(self._artifacts_dir, "scorer", version)
            scorer = await asyncio.to_thread(load_scorer, folder, compiled=self._compiled)
            if scorer.slot != slot:
                raise ArtifactError(f"scorer {version} was trained for slot {scorer.slot!r}")
        except ArtifactError as exc:
            self._failed.add(version)
            self._on_load_error("scorer")
            log.error("scorer %s for slot %s not loaded: %s", version, slot, exc)
            return None
        log.info("scorer %s loaded for slot %s", version, slot)
        return scorer

    async def run(self, interval_s: float) -> None:
        while True:
            try:
                await self.refresh()
            except StoreUnavailable:
                pass
            except Exception:  # a dead poller would pin old scorers silently
                log.exception("scorer refresh failed; retrying")
            await pause(interval_s)

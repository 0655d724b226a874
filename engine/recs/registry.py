"""The recommender a worker serves with, kept in step with the active version in Redis.

Every `models_refresh_ms` a worker reads the active versions and the catalogue version
(one pipelined round trip). A new model version is memory-mapped in a thread and
swapped in whole: requests in flight finish on the state they started with, none is
dropped. A version that fails to load is logged and counted, and the worker keeps
serving the one it has.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.background import pause
from engine.errors import StoreUnavailable
from engine.recs.catalog_view import CatalogView, build_view
from engine.store.catalog import CatalogRepository
from engine.store.client import Store
from models.artifacts import ArtifactError, artifact_path
from models.recommender import RecsModel, load_recs

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RecsState:
    model: RecsModel
    catalog: CatalogView


class RecsRegistry:
    """`current` is None until an active version has loaded."""

    def __init__(
        self,
        store: Store,
        catalog: CatalogRepository,
        artifacts_dir: Path,
        *,
        with_index: bool = False,
        index_ef: int = 0,
        on_load_error: Callable[[str], None] = lambda kind: None,
    ) -> None:
        self._store = store
        self._catalog = catalog
        self._artifacts_dir = artifacts_dir
        self._on_load_error = on_load_error
        self._with_index = with_index
        self._index_ef = index_ef
        self._failed: str | None = None  # a version that failed: not retried every poll
        self.current: RecsState | None = None
        self.active: str | None = None  # the version Redis named at the last poll

    async def refresh(self) -> bool:
        """Load a newly activated version or rebuild filters for a new catalogue."""
        version, catalog_version = await self._poll()
        self.active = version
        state = self.current
        if version is None or version == self._failed:
            return False
        if state is not None and state.model.version == version:
            if state.catalog.catalog_version == catalog_version:
                return False
            model = state.model
        else:
            try:
                folder = artifact_path(self._artifacts_dir, "recs", version)
                model = await asyncio.to_thread(
                    load_recs, folder, with_index=self._with_index, index_ef=self._index_ef
                )
            except ArtifactError as exc:
                self._failed = version
                self._on_load_error("recs")
                log.error("recommender %s not loaded, keeping %s: %s", version, self.version, exc)
                return False
        self._failed = None
        catalog_version, raw_items = await self._catalog.load_all()
        view = await asyncio.to_thread(build_view, model, catalog_version, raw_items)
        self.current = RecsState(model, view)
        if state is None or state.model is not model:
            log.info("recommender %s loaded (%d items)", model.version, model.n_items)
        return True

    @property
    def version(self) -> str | None:
        return None if self.current is None else self.current.model.version

    async def run(self, interval_s: float) -> None:
        """Poll forever (the app's lifespan cancels it)."""
        while True:
            try:
                await self.refresh()
            except StoreUnavailable:
                pass  # counted by the store; keep serving what we have
            except Exception:  # a dead poller would pin the old model silently
                log.exception("recommender refresh failed; retrying")
            await pause(interval_s)

    async def _poll(self) -> tuple[str | None, int]:
        keys = self._store.keys
        async with self._store.guard("models_poll"):
            pipe = self._store.redis.pipeline(transaction=False)
            pipe.hget(keys.active_models, "recs")
            pipe.get(keys.items_version)
            version, catalog_version = await pipe.execute()
        active: Any = version
        return (None if active is None else active.decode()), int(catalog_version or 0)

"""The recommenders a worker serves with, kept in step with Redis and the experiments.

Every `models_refresh_ms` a worker reads the active version and the catalogue version
(one pipelined round trip) and asks the experiment definitions it already holds which
versions running recommender experiments' arms name. Each version it lacks is
memory-mapped in a thread, and the set is swapped in whole: requests in flight finish
on the state they started with, none is dropped. A version no longer named is
released. A version that fails to load is logged and counted and not tried again
while it stays named; the worker keeps serving the active version it has, and an
experiment arm that names it gets the active one (the route flags those lists).

Each catalogue a worker loads for the active version is also written to a snapshot
file (with that version's name), so that a worker starting while Redis is away still
serves: unpersonalized lists (policy "fallback") from the last catalogue seen, until
Redis answers and the usual refresh takes over.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from engine.background import pause
from engine.errors import StoreUnavailable
from engine.recs.catalog_view import CatalogView, build_view
from engine.snapshots import write_snapshot
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
    """`current`: the active version's state, None until one has loaded; `versions`:
    every loaded state by version, `current`'s and those experiments' arms name."""

    def __init__(
        self,
        store: Store,
        catalog: CatalogRepository,
        artifacts_dir: Path,
        *,
        with_index: bool = False,
        index_ef: int = 0,
        on_load_error: Callable[[str], None] = lambda kind: None,
        experiment_versions: Callable[[], Collection[str]] = frozenset,
        snapshot_path: Path | None = None,
    ) -> None:
        self._store = store
        self._catalog = catalog
        self._artifacts_dir = artifacts_dir
        self._on_load_error = on_load_error
        self._experiment_versions = experiment_versions
        self._snapshot_path = snapshot_path
        self._snapshot_of: tuple[str, int] | None = None  # (version, catalogue) written
        self.from_snapshot = False
        self._with_index = with_index
        self._index_ef = index_ef
        self._failed: set[str] = set()  # versions that failed while named: not retried
        self.current: RecsState | None = None
        self.versions: dict[str, RecsState] = {}
        self.active: str | None = None  # the version Redis named at the last poll
        self.polled = False  # a poll has reached Redis since the worker started

    async def refresh(self) -> bool:
        """Load newly named versions, release dropped ones, and rebuild the catalogue
        filters of those a new catalogue version made stale; True if anything changed."""
        active, catalog_version = await self._poll()
        self.active, self.polled = active, True
        wanted = set(self._experiment_versions())
        if active is not None:
            wanted.add(active)
        self._failed &= wanted  # a version named again later gets another try
        models: dict[str, RecsModel] = {}
        for version in sorted(wanted - self._failed):
            held = self.versions.get(version)
            model = held.model if held is not None else await self._load(version, active)
            if model is not None:
                models[version] = model
        previous = self.current
        if previous is not None and (active is None or active not in models):
            models.setdefault(previous.model.version, previous.model)  # keep serving it
        states = {
            version: state
            for version, state in self.versions.items()
            if version in models and state.catalog.catalog_version == catalog_version
        }
        stale = [model for version, model in models.items() if version not in states]
        if stale:
            catalog_version, raw_items = await self._catalog.load_all()
            for model in stale:
                view = await asyncio.to_thread(build_view, model, catalog_version, raw_items)
                states[model.version] = RecsState(model, view)
            if active is not None and active in states:
                await asyncio.to_thread(self._write_snapshot, active, catalog_version, raw_items)
        current = None if active is None else states.get(active)
        if current is None and previous is not None:
            current = states.get(previous.model.version)
        for version in states.keys() - self.versions.keys():
            log.info("recommender %s loaded (%d items)", version, states[version].model.n_items)
        for version in self.versions.keys() - states.keys():
            log.info("recommender %s released", version)
        if current is not None and (previous is None or current.model is not previous.model):
            log.info("recommender %s is the active one", current.model.version)
        changed = bool(stale) or states.keys() != self.versions.keys() or current is not previous
        # swapped together, with no await between: a request sees one set or the other
        self.current, self.versions = current, states
        self.from_snapshot = False
        return changed

    @property
    def version(self) -> str | None:
        return None if self.current is None else self.current.model.version

    async def run(self, interval_s: float) -> None:
        """Poll forever (the app's lifespan cancels it)."""
        tried_snapshot = False
        while True:
            try:
                await self.refresh()
            except StoreUnavailable:  # counted by the store; keep serving what we have
                if self.current is None and not tried_snapshot:
                    tried_snapshot = True
                    await self._serve_snapshot()
            except Exception:  # a dead poller would pin the old model silently
                log.exception("recommender refresh failed; retrying")
            await pause(interval_s)

    def _write_snapshot(
        self, version: str, catalog_version: int, raw_items: Mapping[bytes, bytes]
    ) -> None:
        if self._snapshot_path is None or self._snapshot_of == (version, catalog_version):
            return  # an experiment arm's load re-reads the catalogue: written already
        snapshot = {
            "version": version,
            "catalog_version": catalog_version,
            "items": {k.decode(): v.decode() for k, v in raw_items.items()},
        }
        write_snapshot(self._snapshot_path, snapshot, "recommender")
        self._snapshot_of = (version, catalog_version)

    async def _serve_snapshot(self) -> None:
        """Redis away since the start: the last active version and catalogue written."""
        path = self._snapshot_path
        if path is None:
            return
        try:
            data = orjson.loads(await asyncio.to_thread(path.read_bytes))
            version, catalog_version = str(data["version"]), int(data["catalog_version"])
            raw_items = {k.encode(): v.encode() for k, v in data["items"].items()}
        except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            log.warning("redis unavailable and no recommender snapshot (%s): recs will 503", exc)
            return
        model = await self._load(version, version)
        if model is None:
            return
        view = await asyncio.to_thread(build_view, model, catalog_version, raw_items)
        state = RecsState(model, view)
        if self.current is None:  # Redis may have answered meanwhile
            self.current, self.versions, self.from_snapshot = state, {version: state}, True
            log.warning("redis unavailable: serving recommender %s from %s", version, path)

    async def _load(self, version: str, active: str | None) -> RecsModel | None:
        try:
            folder = artifact_path(self._artifacts_dir, "recs", version)
            model = await asyncio.to_thread(
                load_recs, folder, with_index=self._with_index, index_ef=self._index_ef
            )
            if model.version != version:  # states are found by the name Redis or an arm gives
                raise ArtifactError(f"{folder} holds version {model.version}")
        except ArtifactError as exc:
            self._failed.add(version)
            self._on_load_error("recs")
            if version == active:
                log.error("recommender %s not loaded, keeping %s: %s", version, self.version, exc)
            else:
                log.error(
                    "recommender %s not loaded, its experiment arms get the active one: %s",
                    version,
                    exc,
                )
            return None
        return model

    async def _poll(self) -> tuple[str | None, int]:
        keys = self._store.keys
        async with self._store.guard("models_poll"):
            pipe = self._store.redis.pipeline(transaction=False)
            pipe.hget(keys.active_models, "recs")
            pipe.get(keys.items_version)
            version, catalog_version = await pipe.execute()
        active: Any = version
        return (None if active is None else active.decode()), int(catalog_version or 0)

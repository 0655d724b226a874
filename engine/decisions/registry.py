"""The compiled definitions a worker decides with, kept fresh from Redis.

Each worker polls the definitions version (one GET) every `refresh_ms` and recompiles
on change, so an admin's change reaches every worker within a second. The last good
set is also written to a snapshot file, so a worker that starts while Redis is down
still knows the slots' defaults.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from engine.background import pause
from engine.decisions.segments import Segment, compile_segment
from engine.decisions.slots import Slot, compile_slot
from engine.errors import OmotenashiError, StoreUnavailable
from engine.experiments.definitions import RECOMMENDATIONS, Experiment, Metric, compile_experiment
from engine.snapshots import write_snapshot
from engine.store.definitions import DefinitionKind, DefinitionRepository

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CompiledDefinitions:
    version: int
    slots: dict[str, Slot] = field(default_factory=dict)
    segments: tuple[Segment, ...] = ()
    experiments: dict[str, Experiment] = field(default_factory=dict)
    running: dict[str, tuple[Experiment, ...]] = field(default_factory=dict)  # by target
    # event type -> (experiment, metric) of running experiments that count it
    metrics_by_event: dict[str, tuple[tuple[str, Metric], ...]] = field(default_factory=dict)
    # `<experiment>|<metric>` of every conversion metric: a merge combines them by max
    conversion_metrics: frozenset[str] = frozenset()

    def running_on(self, target: str) -> tuple[Experiment, ...]:
        return self.running.get(target, ())


def compile_all(
    version: int, raw: dict[DefinitionKind, dict[str, dict[str, Any]]]
) -> CompiledDefinitions:
    """Compile every definition; a bad one is logged and left out, never fatal."""
    slots: dict[str, Slot] = {}
    segments: list[Segment] = []
    for name, definition in raw.get("slots", {}).items():
        try:
            slots[name] = compile_slot(name, definition)
        except OmotenashiError as exc:
            log.error("slot %r left out: %s", name, exc.message)
    for name, definition in sorted(raw.get("segments", {}).items()):
        try:
            segments.append(compile_segment(name, definition))
        except OmotenashiError as exc:
            log.error("segment %r left out: %s", name, exc.message)
    experiments: dict[str, Experiment] = {}
    running: dict[str, list[Experiment]] = {}
    for name, definition in sorted(raw.get("experiments", {}).items()):
        try:
            experiment = compile_experiment(name, definition, slots)
        except OmotenashiError as exc:
            log.error("experiment %r left out: %s", name, exc.message)
            continue
        experiments[name] = experiment
        if experiment.status == "running":
            running.setdefault(experiment.target, []).append(experiment)
    by_event: dict[str, list[tuple[str, Metric]]] = {}
    for found in running.values():
        for experiment in found:
            for metric in experiment.metrics:
                by_event.setdefault(metric.event, []).append((experiment.id, metric))
    return CompiledDefinitions(
        version=version,
        slots=slots,
        segments=tuple(segments),
        experiments=experiments,
        running={target: tuple(found) for target, found in running.items()},
        metrics_by_event={event: tuple(pairs) for event, pairs in by_event.items()},
        conversion_metrics=frozenset(
            f"{e.id}|{m.name}"
            for e in experiments.values()
            for m in e.metrics
            if m.aggregation == "conversion"
        ),
    )


def arm_model_versions(definitions: CompiledDefinitions | None) -> dict[str, str]:
    """Scorer versions that running experiments' arms name: version -> slot."""
    if definitions is None:
        return {}
    return {
        arm.model_version: experiment.slot
        for found in definitions.running.values()
        for experiment in found
        if experiment.slot is not None
        for arm in experiment.arms
        if arm.model_version is not None
    }


def recs_arm_versions(definitions: CompiledDefinitions | None) -> frozenset[str]:
    """Recommender versions that running recommender experiments' arms name: what a
    worker loads in the background, beside the active one, before requests need them."""
    if definitions is None:
        return frozenset()
    return frozenset(
        arm.model_version
        for experiment in definitions.running.get(RECOMMENDATIONS, ())
        for arm in experiment.arms
        if arm.model_version is not None
    )


class DefinitionRegistry:
    """Holds the current `CompiledDefinitions`; `current` is None until first loaded."""

    def __init__(self, repository: DefinitionRepository, snapshot_path: Path) -> None:
        self._repository = repository
        self._snapshot_path = snapshot_path
        self.current: CompiledDefinitions | None = None
        self.from_snapshot = False

    async def refresh(self) -> bool:
        """Reload if the stored version moved; True if something changed."""
        version = await self._repository.version()
        if self.current is not None and not self.from_snapshot and version == self.current.version:
            return False
        version, raw = await self._repository.load_all()
        self.current = compile_all(version, raw)
        self.from_snapshot = False
        self._write_snapshot(version, raw)
        return True

    async def start(self) -> None:
        """First load: from Redis, else from the snapshot file (logged)."""
        try:
            await self.refresh()
        except StoreUnavailable:
            self._read_snapshot()

    async def run(self, interval_s: float) -> None:
        """Poll forever (the app's lifespan cancels it)."""
        while True:
            await pause(interval_s)
            try:
                await self.refresh()
            except StoreUnavailable:
                pass  # counted and logged by the store; keep serving what we have
            except Exception:  # a dead refresher would freeze definitions silently
                log.exception("definitions refresh failed; retrying")

    def _write_snapshot(self, version: int, raw: dict[DefinitionKind, Any]) -> None:
        write_snapshot(self._snapshot_path, {"version": version, "definitions": raw}, "definitions")

    def _read_snapshot(self) -> None:
        try:
            data = orjson.loads(self._snapshot_path.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            log.warning("redis unavailable and no definitions snapshot: decide will 503")
            return
        self.current = compile_all(int(data["version"]), data["definitions"])
        self.from_snapshot = True
        log.warning(
            "redis unavailable: serving definitions v%s from %s",
            data["version"],
            self._snapshot_path,
        )

"""An experiment's life: defined (draft), started (running), stopped.

Definitions live with slots and segments (`{defs}:experiments`), so every worker
sees a start or stop within `definitions_refresh_ms`. Changes are read-check-write
against concurrent admins (engine.store.definitions `replace_all`): a start in a
layer takes a free stretch of the layer's hash space that another start cannot take
at the same time.

A running or stopped experiment's definition is frozen: changing arms, metrics or
traffic midway would mix two experiments in one set of statistics. Stop it and
create a new one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from engine.decisions.registry import DefinitionRegistry
from engine.errors import Conflict, InvalidInput, NotFound
from engine.experiments.definitions import MANAGED, compile_experiment
from engine.store.definitions import DefinitionRepository

EDITABLE_WHILE_RUNNING = ("description",)


async def put_experiment(
    repository: DefinitionRepository,
    registry: DefinitionRegistry,
    experiment_id: str,
    definition: dict[str, Any],
) -> tuple[bool, dict[str, Any]]:
    """Create or replace a draft; True if new, and the stored document. The fields the
    engine manages (status, times, bucket) may come back as a GET gave them, not
    changed."""
    given = {k: definition[k] for k in MANAGED if k in definition}
    definition = {k: v for k, v in definition.items() if k not in MANAGED}
    current = registry.current
    compile_experiment(experiment_id, definition, current.slots if current else None)
    outcome: dict[str, Any] = {}

    def change(stored: dict[str, bytes]) -> dict[str, Any]:
        old = _load(stored, experiment_id)
        managed = {"status": "draft", **{k: old[k] for k in MANAGED if old and k in old}}
        changed = sorted(k for k, v in given.items() if managed.get(k) != v)
        if changed:
            raise InvalidInput(f"{', '.join(changed)}: set by the engine (start, stop)")
        document = dict(definition)
        if old is not None and old.get("status", "draft") != "draft":
            if _frozen_part(old) != _frozen_part(document):
                raise Conflict(
                    f"experiment {experiment_id!r} is {old['status']}: its definition is "
                    "frozen; stop it and create a new experiment"
                )
            document.update({k: old[k] for k in MANAGED if k in old})
        outcome["created"] = old is None
        outcome["document"] = document
        return {experiment_id: document}

    await repository.replace_all("experiments", change)
    await registry.refresh()
    return bool(outcome["created"]), outcome["document"]


async def get_experiment(repository: DefinitionRepository, experiment_id: str) -> dict[str, Any]:
    document = await repository.get("experiments", experiment_id)
    if document is None:
        raise NotFound(f"no experiment named {experiment_id!r}")
    return document


async def start_experiment(
    repository: DefinitionRepository,
    registry: DefinitionRegistry,
    experiment_id: str,
    now: float,
) -> dict[str, Any]:
    """Start a draft: it gets its stretch of hash space and begins assigning visitors."""
    current = registry.current
    slots = current.slots if current else None

    def start(document: dict[str, Any], stored: dict[str, bytes]) -> dict[str, Any]:
        if document.get("status", "draft") != "draft":
            raise Conflict(f"experiment {experiment_id!r} is {document['status']}, not a draft")
        experiment = compile_experiment(experiment_id, document, slots)
        running = [
            compile_experiment(name, orjson.loads(raw))
            for name, raw in stored.items()
            if name != experiment_id and orjson.loads(raw).get("status") == "running"
        ]
        clash = [
            e.id
            for e in running
            if e.target == experiment.target and (e.layer is None or e.layer != experiment.layer)
        ]
        if clash:
            raise Conflict(
                f"{', '.join(sorted(clash))} already run on {experiment.target} outside this "
                "experiment's layer: a visitor could be in both; put them in one layer"
            )
        if experiment.layer is None:
            bucket = (0.0, experiment.traffic)
        else:
            taken = sorted(e.bucket for e in running if e.layer == experiment.layer)
            bucket = _free_stretch(taken, experiment.traffic, experiment.layer)
        return {**document, "status": "running", "started_at": now, "bucket": list(bucket)}

    return await _transition(repository, registry, experiment_id, start)


async def stop_experiment(
    repository: DefinitionRepository,
    registry: DefinitionRegistry,
    experiment_id: str,
    now: float,
) -> dict[str, Any]:
    """Stop a running experiment: visitors get the slot's own policy again; results stay."""

    def stop(document: dict[str, Any], stored: dict[str, bytes]) -> dict[str, Any]:
        if document.get("status", "draft") != "running":
            raise Conflict(f"experiment {experiment_id!r} is {document.get('status', 'draft')}")
        return {**document, "status": "stopped", "stopped_at": now}

    return await _transition(repository, registry, experiment_id, stop)


async def _transition(
    repository: DefinitionRepository,
    registry: DefinitionRegistry,
    experiment_id: str,
    step: Callable[[dict[str, Any], dict[str, bytes]], dict[str, Any]],
) -> dict[str, Any]:
    """Apply `step` to the stored document (given every stored one too), atomically."""
    outcome: dict[str, Any] = {}

    def change(stored: dict[str, bytes]) -> dict[str, Any]:
        document = _load(stored, experiment_id)
        if document is None:
            raise NotFound(f"no experiment named {experiment_id!r}")
        outcome["document"] = step(document, stored)
        return {experiment_id: outcome["document"]}

    await repository.replace_all("experiments", change)
    await registry.refresh()
    document: dict[str, Any] = outcome["document"]
    return document


def _load(stored: dict[str, bytes], experiment_id: str) -> dict[str, Any] | None:
    raw = stored.get(experiment_id)
    return None if raw is None else orjson.loads(raw)


def _frozen_part(document: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in document.items() if k not in (*MANAGED, *EDITABLE_WHILE_RUNNING)}


def _free_stretch(
    taken: list[tuple[float, float]], width: float, layer: str
) -> tuple[float, float]:
    """The first gap of the layer's [0, 1) wide enough for `width` (first fit)."""
    start = 0.0
    for low, high in [*taken, (1.0, 1.0)]:
        if low - start >= width - 1e-12:
            return (start, start + width)
        start = max(start, high)
    free = 1.0 - sum(high - low for low, high in taken)
    raise Conflict(
        f"layer {layer!r} has no free stretch of {width:g} of its traffic "
        f"({free:g} free in all); stop an experiment in it or lower the traffic"
    )

"""Changing definitions: check, store, and make this worker see the change at once.

Other workers see it within `definitions_refresh_ms` through the version key.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from engine.decisions.registry import DefinitionRegistry
from engine.decisions.segments import compile_segment
from engine.decisions.slots import Slot, check_name, compile_slot
from engine.errors import Conflict, NotFound
from engine.store.definitions import DefinitionKind, DefinitionRepository

COMPILERS: dict[DefinitionKind, Callable[[str, dict[str, Any]], object]] = {
    "slots": compile_slot,
    "segments": compile_segment,
}
SINGULAR = {"slots": "slot", "segments": "segment"}


async def put_definition(
    repository: DefinitionRepository,
    registry: DefinitionRegistry,
    kind: DefinitionKind,
    name: str,
    definition: dict[str, Any],
) -> bool:
    """Store a definition once it compiles; True if it is new. A slot change that would
    break a running experiment on it is refused (stop the experiment first)."""
    compiled = COMPILERS[kind](name, definition)  # raises InvalidInput with the reason
    if kind == "slots" and isinstance(compiled, Slot):
        _check_running_experiments(registry, name, compiled)
    created = await repository.put(kind, name, definition)
    await registry.refresh()
    return created


async def get_definition(
    repository: DefinitionRepository, kind: DefinitionKind, name: str
) -> dict[str, Any]:
    check_name(SINGULAR[kind], name)
    definition = await repository.get(kind, name)
    if definition is None:
        raise NotFound(f"no {SINGULAR[kind]} named {name!r}")
    return definition


async def delete_definition(
    repository: DefinitionRepository,
    registry: DefinitionRegistry,
    kind: DefinitionKind,
    name: str,
) -> None:
    check_name(SINGULAR[kind], name)
    if kind == "slots":
        _check_running_experiments(registry, name, None)
    if not await repository.delete(kind, name):
        raise NotFound(f"no {SINGULAR[kind]} named {name!r}")
    await registry.refresh()


def _check_running_experiments(registry: DefinitionRegistry, name: str, slot: Slot | None) -> None:
    """Running experiments on slot `name` must keep working with its new definition
    (`None`: deleted): a slot edit must not end an experiment silently."""
    current = registry.current
    for experiment in current.running_on(f"slot:{name}") if current else ():
        broken = slot is None or any(
            (arm.variant is not None and arm.variant not in slot.variants)
            or (arm.policy == "bandit" and slot.bandit is None)
            for arm in experiment.arms
        )
        if experiment.base is not None and slot is not None:
            broken = broken or experiment.base not in slot.variants
        if broken:
            action = "deleting the slot" if slot is None else "this change"
            raise Conflict(
                f"experiment {experiment.id!r} is running on slot {name!r} and {action} "
                "would break its arms; stop the experiment first"
            )

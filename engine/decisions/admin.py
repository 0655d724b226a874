"""Changing definitions: check, store, and make this worker see the change at once.

Other workers see it within `definitions_refresh_ms` through the version key.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from engine.decisions.registry import DefinitionRegistry
from engine.decisions.segments import compile_segment
from engine.decisions.slots import check_name, compile_slot
from engine.errors import NotFound
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
    """Store a definition once it compiles; True if it is new."""
    COMPILERS[kind](name, definition)  # raises InvalidInput with the reason
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
    if not await repository.delete(kind, name):
        raise NotFound(f"no {SINGULAR[kind]} named {name!r}")
    await registry.refresh()

"""Stored definitions (slots, segments): JSON documents in Redis with a version counter.

Every change bumps the version in the same transaction, so workers notice changes by
reading one small key.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import orjson
from redis.exceptions import WatchError

from engine.store.client import Store

DefinitionKind = Literal["slots", "segments", "experiments"]
KINDS: tuple[DefinitionKind, ...] = ("slots", "segments", "experiments")


class DefinitionRepository:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._keys = store.keys

    async def put(self, kind: DefinitionKind, name: str, definition: dict[str, Any]) -> bool:
        """Store a definition; True if it is new."""
        async with self._store.guard("definitions_put"):
            pipe = self._store.redis.pipeline(transaction=True)
            pipe.hset(self._keys.definitions(kind), name, orjson.dumps(definition))
            pipe.incr(self._keys.definitions_version)
            created, _ = await pipe.execute()
        return bool(created)

    async def get(self, kind: DefinitionKind, name: str) -> dict[str, Any] | None:
        async with self._store.guard("definitions_get"):
            raw = await self._store.redis.hget(self._keys.definitions(kind), name)
        return None if raw is None else orjson.loads(raw)

    async def delete(self, kind: DefinitionKind, name: str) -> bool:
        """Remove a definition; True if it existed. A slot's bandit counters go with it:
        a new slot of the same name starts learning afresh."""
        async with self._store.guard("definitions_delete"):
            pipe = self._store.redis.pipeline(transaction=True)
            pipe.hdel(self._keys.definitions(kind), name)
            pipe.incr(self._keys.definitions_version)
            if kind == "slots":
                pipe.delete(self._keys.bandit(name))
            deleted, *_ = await pipe.execute()
        return bool(deleted)

    async def replace_all(
        self, kind: DefinitionKind, change: Callable[[dict[str, bytes]], dict[str, Any]]
    ) -> None:
        """Read every definition of `kind`, let `change` return the ones to write (given
        the stored JSON by name; it may raise), and write them, atomically against any
        concurrent change of that kind (optimistic: retried on conflict)."""
        key = self._keys.definitions(kind)
        guard = self._store.guard("definitions_update")
        async with guard, self._store.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(key)
                    raw: Any = await pipe.hgetall(key)
                    writes = change({k.decode(): v for k, v in raw.items()})
                    pipe.multi()  # type: ignore[no-untyped-call]
                    for name, definition in writes.items():
                        pipe.hset(key, name, orjson.dumps(definition))
                    pipe.incr(self._keys.definitions_version)
                    await pipe.execute()
                    return
                except WatchError:
                    continue

    async def version(self) -> int:
        async with self._store.guard("definitions_version"):
            raw = await self._store.redis.get(self._keys.definitions_version)
        return int(raw or 0)

    async def load_all(self) -> tuple[int, dict[DefinitionKind, dict[str, dict[str, Any]]]]:
        """Every definition with the version they belong to, read in one transaction."""
        async with self._store.guard("definitions_load"):
            pipe = self._store.redis.pipeline(transaction=True)
            pipe.get(self._keys.definitions_version)
            for kind in KINDS:
                pipe.hgetall(self._keys.definitions(kind))
            version, *tables = await pipe.execute()
        loaded = {
            kind: {name.decode(): orjson.loads(raw) for name, raw in table.items()}
            for kind, table in zip(KINDS, tables, strict=True)
        }
        return int(version or 0), loaded

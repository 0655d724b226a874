"""The item catalogue: id, category, price, tags, availability, kept as JSON per item.

Every change bumps `items:version` in the same transaction, so workers notice a new
catalogue (availability, categories) with one GET and rebuild their filters.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from engine.store.client import Store


class CatalogRepository:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def upsert(self, items: Sequence[dict[str, Any]]) -> int:
        """Insert or replace items by `item_id`; the number that were new."""
        mapping = {item["item_id"]: orjson.dumps(item) for item in items}
        keys = self._store.keys
        async with self._store.guard("catalog_upsert"):
            pipe = self._store.redis.pipeline(transaction=True)
            pipe.hset(keys.items, mapping=mapping)
            pipe.incr(keys.items_version)
            created, _ = await pipe.execute()
        return int(created)

    async def get(self, item_id: str) -> dict[str, Any] | None:
        async with self._store.guard("catalog_get"):
            raw = await self._store.redis.hget(self._store.keys.items, item_id)
        return None if raw is None else orjson.loads(raw)

    async def count(self) -> int:
        async with self._store.guard("catalog_count"):
            n: int = await self._store.redis.hlen(self._store.keys.items)
        return n

    async def version(self) -> int:
        async with self._store.guard("catalog_version"):
            raw = await self._store.redis.get(self._store.keys.items_version)
        return int(raw or 0)

    async def load_all(self) -> tuple[int, dict[bytes, bytes]]:
        """Every item's JSON with the version it belongs to, read in one transaction."""
        keys = self._store.keys
        async with self._store.guard("catalog_load"):
            pipe = self._store.redis.pipeline(transaction=True)
            pipe.get(keys.items_version)
            pipe.hgetall(keys.items)
            version, items = await pipe.execute()
        return int(version or 0), items

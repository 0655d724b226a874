"""The item catalogue: id, category, price, tags, availability, kept as JSON per item."""

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
        async with self._store.guard("catalog_upsert"):
            created: int = await self._store.redis.hset(self._store.keys.items, mapping=mapping)
        return created

    async def get(self, item_id: str) -> dict[str, Any] | None:
        async with self._store.guard("catalog_get"):
            raw = await self._store.redis.hget(self._store.keys.items, item_id)
        return None if raw is None else orjson.loads(raw)

    async def count(self) -> int:
        async with self._store.guard("catalog_count"):
            n: int = await self._store.redis.hlen(self._store.keys.items)
        return n

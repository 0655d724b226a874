"""Reading every visitor profile, in pages: for reports and offline jobs, never per request."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from engine.store.client import Store
from models.features import decode_features

PAGE = 500


async def scan_profiles(store: Store, *, limit: int | None = None) -> AsyncIterator[dict[str, Any]]:
    """Decoded features of every profile (merged-away visitors have none), `limit` at most.

    SCAN walks the keyspace without blocking Redis; each page of keys is read with one
    pipeline. A profile written during the scan may be missed or seen twice (SCAN's
    guarantee), which a report can live with.
    """
    pattern = store.keys.visitor_features_pattern
    seen = 0
    cursor = 0
    now = time.time()
    while True:
        async with store.guard("scan_profiles"):
            cursor, keys = await store.redis.scan(cursor=cursor, match=pattern, count=PAGE)
            if keys:
                pipe = store.redis.pipeline(transaction=False)
                for key in keys:
                    pipe.hgetall(key)
                hashes = await pipe.execute()
            else:
                hashes = []
        for raw in hashes:
            if not raw:
                continue
            yield decode_features(raw, now)
            seen += 1
            if limit is not None and seen >= limit:
                return
        if not cursor:
            return

"""Features computed offline (RFM scores, segment names) written into visitors' profiles.

Offline jobs must keep the engine's privacy promises as the event path does, so a
profile is skipped when it refused personalization (or, on an opt-in site, never
agreed), when it was erased, or when it was merged into another profile (its own hash
is never read again). Each chunk costs two round trips: one read to check, one write.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from redis.typing import EncodableT

from engine.store.client import Store

FieldValue = int | float | str


async def write_offline_features(
    store: Store,
    rows: Mapping[str, Mapping[str, FieldValue]],
    *,
    ttl_s: int,
    personalization_default: bool,
    chunk: int = 1000,
) -> int:
    """Set `rows[pid]`'s fields in each profile's features hash; the number written.

    Fields not named are left alone, so real-time features and other jobs' fields
    survive. Every written hash gets the visitor TTL again, like an event would give it.
    """
    if chunk < 1:
        raise ValueError("chunk must be at least 1")
    empty = [pid for pid, fields in rows.items() if not fields]
    if empty:
        raise ValueError(f"{len(empty)} rows without fields, e.g. {empty[0]!r}")
    pids = list(rows)
    written = 0
    for start in range(0, len(pids), chunk):
        part = pids[start : start + chunk]
        allowed = await _writable(store, part, personalization_default)
        async with store.guard("write_offline_features"):
            pipe = store.redis.pipeline(transaction=False)
            for pid in allowed:
                key = store.keys.visitor_features(pid)
                mapping: dict[EncodableT, EncodableT] = dict(rows[pid].items())
                pipe.hset(key, mapping=mapping)
                pipe.expire(key, ttl_s)
            if allowed:
                await pipe.execute()
        written += len(allowed)
    return written


async def _writable(store: Store, pids: Sequence[str], personalization_default: bool) -> list[str]:
    """The pids that may receive features, as `read.lua` and `erase.lua` see them."""
    keys = store.keys
    async with store.guard("write_offline_features"):
        pipe = store.redis.pipeline(transaction=False)
        for pid in pids:
            pipe.hget(keys.visitor(pid, "consent"), "personalization")
            pipe.exists(keys.visitor(pid, "alias"))
        pipe.zmscore(keys.erasures, list(pids))
        replies = await pipe.execute()
    erased = replies[-1]
    default = b"1" if personalization_default else b"0"
    return [
        pid
        for i, pid in enumerate(pids)
        if (replies[2 * i] or default) == b"1" and not replies[2 * i + 1] and erased[i] is None
    ]

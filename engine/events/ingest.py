"""Writing a batch of accepted events: log entries and feature updates, one round trip."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import orjson

from engine.store.client import Store
from engine.store.visitors import queue_feature_ops
from models.events import Event
from models.features import FeatureOp, ops_for_event


async def write_events(
    store: Store, events: Sequence[Event], *, ttl_s: int, log_maxlen: int
) -> None:
    """Append `events` to the event log and apply their feature updates.

    All of it goes in one pipeline; each visitor's updates run as one atomic script.
    """
    ops_by_visitor: dict[str, list[FeatureOp]] = defaultdict(list)
    for event in events:
        ops_by_visitor[event.pid] += ops_for_event(event)
    async with store.guard("write_events"):
        pipe = store.redis.pipeline(transaction=False)
        for event in events:
            pipe.xadd(
                store.keys.event_log,
                {"e": orjson.dumps(event.to_record())},
                maxlen=log_maxlen,
                approximate=True,
            )
        for pid, ops in ops_by_visitor.items():
            queue_feature_ops(pipe, store, pid, ops, ttl_s)
        await pipe.execute()

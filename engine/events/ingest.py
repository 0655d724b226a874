"""Writing a batch of accepted events: log entries, features, history and identity merges,
in one round trip (`engine/store/profiles.py` holds the script)."""

from __future__ import annotations

import time
from collections.abc import Collection, Sequence

from engine.settings import Settings
from engine.store.client import Store
from engine.store.profiles import IngestCounts, IngestPolicy, Outcome, ingest_events
from models.events import Event

# Per profile, how many event-log ids (and seen event ids) are kept for export and erasure.
LOG_INDEX_CAP = 10_000


def ingest_policy(settings: Settings) -> IngestPolicy:
    return IngestPolicy(
        ttl_s=settings.visitor_ttl_s,
        dedup_window_s=settings.dedup_window_days * 86_400,
        history_size=settings.history_size,
        log_maxlen=settings.event_stream_maxlen,
        log_cap=LOG_INDEX_CAP,
        analytics_default=settings.consent_default == "opt_out",
    )


async def write_events(
    store: Store,
    events: Sequence[Event],
    policy: IngestPolicy,
    now: float | None = None,
    outcomes: Sequence[Sequence[Outcome]] | None = None,
    max_metrics: Collection[str] = (),
) -> IngestCounts:
    """Apply a batch; events already seen (same event id) or without consent are skipped."""
    now = time.time() if now is None else now
    return await ingest_events(store, events, policy, now, outcomes, max_metrics)

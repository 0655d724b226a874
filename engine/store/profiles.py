"""Visitor profiles in Redis: ingest, read, consent, export and erasure.

The multi-key work runs as Lua scripts (in `lua/`) so each request is one round trip
and each batch is atomic: a batch cut off by a Redis failure ran entirely or not at
all, and its replay is filtered by event id. The scripts follow a visitor's alias to
its profile inside Redis, so they build keys from `Keys.visitor_key_base`; they need
one Redis (or one shard), not a cluster.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from redis.typing import EncodableT

from engine.store.client import Store
from engine.store.keys import VISITOR_SUFFIXES
from engine.store.scripts import packaged, run_script, with_script
from models.events import Event, history_items
from models.features import FeatureOp, FeatureValue, merge_rules, ops_for_event
from models.interactions import parse_history_entry

Consent = dict[str, bool]
CONSENT_PURPOSES = ("personalization", "analytics")


INGEST = packaged("ingest")
READ = packaged("read")
ERASE = packaged("erase")
EXPORT = packaged("export")
MERGE_SPEC = ";".join(f"{name}={rule}" for name, rule in merge_rules().items())


@dataclass(frozen=True, slots=True)
class IngestPolicy:
    """What the ingest script needs from the settings."""

    ttl_s: int
    dedup_window_s: int
    history_size: int
    log_maxlen: int
    log_cap: int
    analytics_default: bool


@dataclass(frozen=True, slots=True)
class OutcomeCount:
    """Add one to `field` of hash `key` for an accepted event, unless `marker` is among
    the profile's seen ids (it is added then): counts once per decision, not per event."""

    marker: str
    key: str
    field: str

    def wire(self) -> tuple[str, ...]:
        return ("c", self.marker, self.key, self.field)


@dataclass(frozen=True, slots=True)
class MetricOutcome:
    """An accepted event's effect on an experiment metric of its visitor, if they were
    exposed to the experiment no longer than `window_s` before (or the event carries
    the experiment's token: its exposure may not be written yet): the value becomes 1
    (conversion), grows by one (count) or by `value` (sum)."""

    experiment: str
    metric: str
    aggregation: str
    value: float
    window_s: int
    decided_at: float | None = None  # the event carries this experiment's token

    def wire(self) -> tuple[str | float | int, ...]:
        out = ("x", self.experiment, self.metric, self.aggregation, self.value, self.window_s)
        return out if self.decided_at is None else (*out, self.decided_at)


@dataclass(frozen=True, slots=True)
class ExposureConfirmation:
    """The visitor's impression with an experiment's token: for an experiment counting
    exposure at the impression, the waiting exposure is counted in now."""

    experiment: str

    def wire(self) -> tuple[str, ...]:
        return ("i", self.experiment)


Outcome = OutcomeCount | MetricOutcome | ExposureConfirmation


@dataclass(frozen=True, slots=True)
class IngestCounts:
    accepted: int
    duplicates: int
    without_consent: int


@dataclass(frozen=True, slots=True)
class Profile:
    """What decide and recommendations read: features, and the recent interactions as
    `(type, item_id)` newest first (an item viewed and bought appears twice)."""

    features: dict[bytes, bytes]
    history: list[tuple[str, str]]
    pid: str  # the profile's: the customer's once an identify merged this visitor in
    analytics: bool = True  # the visitor allows logging (their decisions may be logged)


async def ingest_events(
    store: Store,
    events: Sequence[Event],
    policy: IngestPolicy,
    now: float,
    outcomes: Sequence[Sequence[Outcome]] | None = None,
    max_metrics: Collection[str] = (),
) -> IngestCounts:
    """Log `events` and apply their feature, history and identity updates atomically,
    and each accepted event's `outcomes` (engine.events.outcomes). `max_metrics`
    (`<experiment>|<metric>`) are the conversions, whose values an identity merge
    combines by max instead of adding."""
    args = _ingest_args(store, events, policy, now, outcomes, max_metrics)
    redis = store.redis
    async with store.guard("write_events"):
        reply = await with_script(redis, INGEST, lambda: redis.evalsha(INGEST.sha, 0, *args))
    accepted, duplicates, dropped = (int(x) for x in reply)
    return IngestCounts(accepted, duplicates, dropped)


def _ingest_args(
    store: Store,
    events: Sequence[Event],
    policy: IngestPolicy,
    now: float,
    outcomes: Sequence[Sequence[Outcome]] | None,
    max_metrics: Collection[str] = (),
) -> list[str | bytes]:
    keys = store.keys
    identifies = any(event.type == "identify" for event in events)
    batch: list[list[Any]] = [
        [
            event.properties.get("customer_pid", "") if event.type == "identify" else "",
            event.ts,
            history_items(event),
            [_wire(op) for op in ops_for_event(event)],
        ]
        for event in events
    ]
    for entry, event_outcomes in zip(batch, outcomes or (), strict=False):
        if event_outcomes:
            entry.append([outcome.wire() for outcome in event_outcomes])
    args: list[str | bytes] = [
        keys.visitor_key_base,
        repr(now),
        str(policy.ttl_s),
        str(policy.dedup_window_s),
        str(policy.history_size),
        keys.event_log,
        str(policy.log_maxlen),
        "1" if policy.analytics_default else "0",
        str(policy.log_cap),
        MERGE_SPEC if identifies else "",
        # structure in one JSON argument (redis-py packs each argument in Python), ids and
        # log records as plain arguments (Redis would spend time unescaping them in JSON)
        orjson.dumps(batch),
        keys.experiment_key_base,
        ";".join(max_metrics) if identifies else "",
    ]
    for event in events:
        args += (event.pid, event.event_id or "", orjson.dumps(event.to_record()))
    return args


# Op kinds on the wire: the batch's JSON is decoded in Redis, where bytes cost time.
_KIND_CODES = {"incr": "i", "max": ">", "min": "<", "newest": "n", "bucket": "b", "session": "s"}


def _wire(op: FeatureOp) -> tuple[str, str, FeatureValue] | tuple[str, str, FeatureValue, int]:
    """`[kind, field, value]`, plus `keep_days` for windowed ops; the event's time is
    the op's time (ops_for_event never gives another)."""
    code = _KIND_CODES[op.kind]
    if op.keep_days:
        return (code, op.field, op.value, op.keep_days)
    return (code, op.field, op.value)


async def read_profile(
    store: Store,
    pid: str,
    *,
    personalization_default: bool,
    history_n: int = 0,
    analytics_default: bool | None = None,
) -> Profile | None:
    """The visitor's profile in one round trip; None if they refused personalization."""
    keys = store.keys
    args = (
        keys.visitor_key_base,
        pid,
        "1" if personalization_default else "0",
        history_n,
        "1"
        if (personalization_default if analytics_default is None else analytics_default)
        else "0",
    )
    with store.guard("read_features"):
        reply = await run_script(store, READ, (keys.visitor_features(pid),), args)
    if not reply[0]:
        return None
    flat, history, profile_pid, analytics = reply[1], reply[2], reply[3], reply[4]
    pairs = iter(flat)
    entries = [parse_history_entry(entry.decode()) for entry in history]
    return Profile(
        dict(zip(pairs, pairs, strict=True)), entries, profile_pid.decode(), bool(analytics)
    )


async def set_consent(store: Store, pid: str, consent: Consent, ttl_s: int) -> None:
    """Record the visitor's choices; the next event or decision honours them."""
    key = store.keys.visitor(pid, "consent")
    mapping: dict[EncodableT, EncodableT] = {
        purpose: "1" if allowed else "0" for purpose, allowed in consent.items()
    }
    async with store.guard("set_consent"):
        pipe = store.redis.pipeline(transaction=True)
        pipe.hset(key, mapping=mapping)
        pipe.expire(key, ttl_s)
        await pipe.execute()


async def read_consent(store: Store, pid: str, defaults: Consent) -> tuple[Consent, bool]:
    """The visitor's effective consent, and whether they ever chose (False: defaults)."""
    async with store.guard("read_consent"):
        # bytes in, bytes out: the client is created with decode_responses=False
        stored: dict[bytes, bytes] = await store.redis.hgetall(  # type: ignore[assignment]
            store.keys.visitor(pid, "consent")
        )
    consent = dict(defaults)
    for purpose in CONSENT_PURPOSES:
        value = stored.get(purpose.encode())
        if value is not None:
            consent[purpose] = value == b"1"
    return consent, bool(stored)


@dataclass(frozen=True, slots=True)
class Erasure:
    profile: str
    ids: int
    keys_deleted: int
    log_entries_deleted: int


async def erase_visitor(store: Store, pid: str, now: float) -> Erasure:
    """Delete everything kept about the person behind `pid` (idempotent)."""
    keys = store.keys
    args = (
        keys.visitor_key_base,
        pid,
        keys.event_log,
        keys.erasures,
        repr(now),
        keys.experiment_key_base,
    )
    redis = store.redis
    async with store.guard("erase_visitor"):
        reply = await with_script(
            redis, ERASE, lambda: redis.evalsha(ERASE.sha, 0, *args, *VISITOR_SUFFIXES)
        )
    return Erasure(reply[0].decode(), int(reply[1]), int(reply[2]), int(reply[3]))


async def export_visitor(store: Store, pid: str) -> dict[str, Any]:
    """The raw stored data of the person behind `pid`, decoded to plain JSON types."""
    keys = store.keys
    args = (keys.visitor_key_base, pid, keys.event_log)
    redis = store.redis
    async with store.guard("export_visitor"):
        reply = await with_script(redis, EXPORT, lambda: redis.evalsha(EXPORT.sha, 0, *args))
    profile, consent, features, history, aliases, seen, entries, experiments = reply
    log = []
    for stream_id, fields in entries:
        record = dict(zip(fields[::2], fields[1::2], strict=True))
        log.append({"id": stream_id.decode(), "event": orjson.loads(record[b"e"])})
    return {
        "profile": profile.decode(),
        "consent": {k.decode(): v == b"1" for k, v in _pairs(consent)},
        "features": {k.decode(): v.decode() for k, v in _pairs(features)},
        "history": [_history_row(k.decode(), float(v)) for k, v in _pairs(history)],
        "merged_ids": sorted(alias.decode() for alias in aliases),
        "event_ids_seen": [{"event_id": k.decode(), "at": float(v)} for k, v in _pairs(seen)],
        "events": log,
        "experiments": _experiments(experiments),
    }


def _experiments(flat: Sequence[bytes]) -> dict[str, dict[str, Any]]:
    """The `exp` hash (engine/store/lua/experiment_sums.lua) as experiment -> exposure."""
    out: dict[str, dict[str, Any]] = {}
    values: list[tuple[str, str, float]] = []
    for field, raw in _pairs(flat):
        name, _, metric = field.decode().partition("|")
        if metric:
            values.append((name, metric, float(raw)))
            continue
        if name.startswith("!"):
            continue  # an impression waiting for its exposure: nothing about the person
        waiting = name.startswith("?")  # an exposure waiting for its impression
        arm, at, covariate, segments = raw.decode().split("\t")
        out[name.lstrip("?")] = {
            "arm": arm,
            "first_exposure": float(at),
            "covariate": float(covariate) if covariate else None,
            "segments": [s for s in segments.split(",") if s],
            "confirmed": not waiting,
            "metrics": {},
        }
    for name, metric, value in values:
        out.setdefault(name, {"metrics": {}})["metrics"][metric] = value
    return out


def _pairs(flat: Sequence[bytes]) -> Iterable[tuple[bytes, bytes]]:
    pairs = iter(flat)
    return zip(pairs, pairs, strict=True)


def _history_row(entry: str, ts: float) -> dict[str, Any]:
    kind, item_id = parse_history_entry(entry)
    return {"item_id": item_id, "type": kind, "ts": ts}

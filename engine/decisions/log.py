"""The decision log: what was shown to whom, with what probability and on what features.

Every decision and recommendation list is appended to the event log (type `decision`)
so that models can be trained on what visitors saw and policies judged off-policy.
Writing it must not cost the hot path a second Redis round trip, so records are
buffered in the worker and written in batches (one script call per batch) by a
background task; the script also indexes them per profile, so erasure deletes them
with the visitor's events. While Redis is away the buffer holds up to `capacity`
records, then the oldest are dropped and counted: decisions are analytics, not the
visitor's own events, and a worker must not grow without bound.

Experiment exposures travel the same way (`expose`): the first one per visitor and
experiment is counted into its arm by `lua/expose.lua`, in the same flush.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson

from engine.background import pause
from engine.errors import StoreUnavailable
from engine.experiments.definitions import Experiment
from engine.store.client import Store
from engine.store.scripts import packaged, run_script

log = logging.getLogger(__name__)

T = TypeVar("T")
LOG_DECISIONS = packaged("log_decisions")
EXPOSE = packaged("expose")
BATCH = 500
FLUSH_INTERVAL_S = 0.05
CAPACITY = 100_000


@dataclass(frozen=True, slots=True)
class Exposure:
    """A visitor shown an experiment's arm: counted once, with the pre-period covariate
    (for CUPED) and the breakdown segments they were in at that moment."""

    experiment: str
    arm: str
    ts: float
    covariate: float | None
    segments: tuple[str, ...]
    confirm: bool = False  # counted only once the visitor's impression confirms it


def exposure_of(
    experiment: Experiment,
    arm: str,
    now: float,
    features: Mapping[str, Any],
    member_of: frozenset[str],
) -> Exposure:
    """The visitor's exposure: the arm, the covariate CUPED adjusts with (the feature's
    value before this exposure; 0 when the visitor has none yet, a newcomer), and the
    breakdown segments they are in."""
    covariate = None
    if experiment.covariate is not None:
        value = features.get(experiment.covariate, 0.0)
        covariate = float(value) if isinstance(value, int | float) else None
    segments = tuple(s for s in experiment.segments if s in member_of)
    confirm = experiment.exposure == "impression"
    return Exposure(experiment.id, arm, now, covariate, segments, confirm)


@dataclass(frozen=True, slots=True)
class LogTarget:
    """Where and how long: from the settings."""

    maxlen: int
    ttl_s: int
    log_cap: int


def decision_record(
    *,
    decision_id: str,
    pid: str,
    slot: str,
    ts: float,
    token: str,
    chosen: str,
    eligible: list[str],
    propensity: float,
    policy: str,
    model_version: str | None,
    features: dict[str, Any],
    context: dict[str, Any],
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The record as the event log and the archive keep it: the common event fields,
    and what a learner needs in `properties`. `features` and `context` are kept as
    given, not copied (this runs per decision): callers pass dicts they no longer
    change."""
    properties: dict[str, Any] = {
        "slot": slot,
        "chosen": chosen,
        "eligible": eligible,
        "propensity": propensity,
        "policy": policy,
        "model_version": model_version,
        "features": features,
        "context": context,
    }
    if extra:
        properties.update(extra)
    return {
        "type": "decision",
        "pid": pid,
        "ts": ts,
        "channel": str(context.get("channel", "server")),
        "event_id": f"{decision_id}.{slot}",
        "token": token,
        "properties": properties,
    }


async def _drain(buffer: collections.deque[T], write: Callable[[list[T]], Awaitable[int]]) -> int:
    """Write `buffer` out a batch per call; a batch that fails goes back to its front."""
    written = 0
    while buffer:
        batch = [buffer.popleft() for _ in range(min(BATCH, len(buffer)))]
        try:
            written += await write(batch)
        except BaseException:
            buffer.extendleft(reversed(batch))
            raise
    return written


class DecisionLog:
    """A per-worker buffer of decision records, flushed in batches."""

    def __init__(
        self,
        store: Store,
        target: LogTarget,
        capacity: int = CAPACITY,
        on_drop: Callable[[int], None] = lambda n: None,
    ) -> None:
        self._store = store
        self._target = target
        self._buffer: collections.deque[tuple[str, bytes]] = collections.deque()
        self._exposures: collections.deque[tuple[str, Exposure]] = collections.deque()
        self._flushing = asyncio.Lock()
        self._capacity = capacity
        self._on_drop = on_drop

    def record(self, profile_pid: str, record: Mapping[str, Any]) -> None:
        """Queue one record for the log (no I/O here: the request goes on at once)."""
        try:
            raw = orjson.dumps(record)
        except TypeError:  # an integer past 64 bits in the context: JSON allows it
            raw = json.dumps(record, default=str).encode()
        self._push(self._buffer, (profile_pid, raw))

    def expose(self, profile_pid: str, exposure: Exposure) -> None:
        """Queue an experiment exposure (counted once per visitor by the script)."""
        self._push(self._exposures, (profile_pid, exposure))

    def _push(self, buffer: collections.deque[T], item: T) -> None:
        """Append, dropping (and counting) the oldest when the buffer is full."""
        if len(buffer) >= self._capacity:
            buffer.popleft()
            self._on_drop(1)
        buffer.append(item)

    @property
    def pending(self) -> int:
        return len(self._buffer) + len(self._exposures)

    async def flush(self) -> int:
        """Write everything buffered now, a batch per script call; the number of records
        written. A batch that fails goes back to the front of its buffer. Returns once
        a batch the background task was writing is written too."""
        async with self._flushing:
            return await self._flush()

    async def _flush(self) -> int:
        written = await _drain(self._buffer, self._write)
        await _drain(self._exposures, self._write_exposures)
        return written

    async def run(self) -> None:
        """Flush every FLUSH_INTERVAL_S for the app's life; its lifespan flushes last."""
        while True:
            await pause(FLUSH_INTERVAL_S)
            if not self.pending or self._store.circuit_open:
                continue
            try:
                await self.flush()
            except StoreUnavailable:
                pass  # kept in the buffer; the store logged it
            except Exception:  # a dead writer would silently drop every later decision
                log.exception("decision log flush failed; retrying")

    async def _write(self, batch: list[tuple[str, bytes]]) -> int:
        keys, target = self._store.keys, self._target
        args: list[str | bytes] = [
            keys.visitor_key_base,
            keys.event_log,
            str(target.maxlen),
            str(target.ttl_s),
            str(target.log_cap),
        ]
        for profile_pid, raw in batch:
            args += (profile_pid, raw)
        async with self._store.guard("log_decisions"):
            reply = await run_script(self._store, LOG_DECISIONS, (), args)
        return int(reply)

    async def _write_exposures(self, batch: list[tuple[str, Exposure]]) -> int:
        keys = self._store.keys
        args: list[str] = [
            keys.visitor_key_base,
            keys.experiment_key_base,
            str(self._target.ttl_s),
            keys.erasures,
        ]
        for profile_pid, e in batch:
            covariate = "" if e.covariate is None else repr(e.covariate)
            segments, confirm = ",".join(e.segments), "1" if e.confirm else "0"
            args += (profile_pid, e.experiment, e.arm, repr(e.ts), covariate, segments, confirm)
        async with self._store.guard("expose"):
            reply = await run_script(self._store, EXPOSE, (), args)
        return int(reply)

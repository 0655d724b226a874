"""A typed Python client for app backends: decide, recommendations, events, consent,
identity and experiment results, over httpx.

Retries: connection errors, timeouts and 502/503/504 are retried with exponential
backoff and jitter (`retries` times). That is safe for every call here: decide and
recommendations only read (a retried decide issues a new token, nothing is written
twice), consent is a PUT of the final state, and every event gets its `event_id` when
it is tracked, not when it is sent, so the engine drops a batch's second delivery as
duplicates. Errors the engine answers (4xx) are raised at once as `EngineError`.

Events are batched: `track` queues, a batch goes out when `batch_size` events are
waiting or on `flush()` (and `aclose()` / leaving `async with` flushes what is left).

    async with OmotenashiClient("http://127.0.0.1:8000", site_key="...") as engine:
        result = await engine.decide("visitor-1", ["home_hero"], context={"device": "mobile"})
        await engine.track("click", "visitor-1", token=result.decisions[0].token)
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import httpx

RETRY_STATUS = frozenset({502, 503, 504})


class EngineError(Exception):
    """The engine refused a request: its status and JSON error body."""

    def __init__(self, status: int, body: Any) -> None:
        error = body.get("error", {}) if isinstance(body, dict) else {}
        message = error.get("message", str(body)) if isinstance(error, dict) else str(body)
        super().__init__(f"{status}: {message}")
        self.status = status
        self.body = body


@dataclass(frozen=True, slots=True)
class Decision:
    slot: str
    variant: str
    content: dict[str, Any]
    token: str
    policy: str
    experiment: str | None = None
    arm: str | None = None


@dataclass(frozen=True, slots=True)
class DecideResult:
    decision_id: str
    decisions: list[Decision]
    segments: list[str]

    def for_slot(self, slot: str) -> Decision:
        return next(d for d in self.decisions if d.slot == slot)


@dataclass(frozen=True, slots=True)
class ScoredItem:
    item_id: str
    score: float


@dataclass(frozen=True, slots=True)
class RecommendationList:
    items: list[ScoredItem]
    model_version: str
    token: str | None = None
    source: str | None = None
    policy: str | None = None
    experiment: str | None = None
    arm: str | None = None


@dataclass(frozen=True, slots=True)
class SendReport:
    """What the engine said about the batches a flush sent."""

    accepted: int = 0
    duplicates: int = 0
    without_consent: int = 0
    spooled: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)


class EventIds:
    """Event ids made at `track` time: a retried batch carries the same ids."""

    def __init__(self) -> None:
        self._rng = random.Random(os.urandom(16))

    def __call__(self) -> str:
        return f"cli-{self._rng.getrandbits(96):024x}"


class OmotenashiClient:
    def __init__(
        self,
        base_url: str,
        *,
        site_key: str | None = None,
        admin_key: str | None = None,
        timeout_s: float = 2.0,
        retries: int = 2,
        backoff_s: float = 0.05,
        batch_size: int = 100,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._http = httpx.AsyncClient(base_url=base_url, timeout=timeout_s, transport=transport)
        self._site = {"X-Api-Key": site_key} if site_key else {}
        self._admin = {"X-Admin-Key": admin_key} if admin_key else {}
        self._retries = retries
        self._backoff_s = backoff_s
        self._batch_size = batch_size
        self._queue: list[dict[str, Any]] = []
        self._new_id = EventIds()
        self._sending = asyncio.Lock()
        self._jitter = random.Random(os.urandom(8))

    async def __aenter__(self) -> OmotenashiClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Send what is queued, then close the connections."""
        try:
            await self.flush()
        finally:
            await self._http.aclose()

    # --- reads -----------------------------------------------------------------------

    async def decide(
        self, visitor_id: str, slots: Sequence[str], context: Mapping[str, Any] | None = None
    ) -> DecideResult:
        body = {"visitor_id": visitor_id, "slots": list(slots), "context": dict(context or {})}
        data = await self._call("POST", "/v1/decide", self._site, json=body)
        return DecideResult(
            decision_id=data["decision_id"],
            decisions=[_decision(d) for d in data["decisions"]],
            segments=list(data["segments"]),
        )

    async def recommendations(
        self,
        visitor_id: str,
        n: int = 10,
        *,
        category: str | None = None,
        exclude: Sequence[str] = (),
    ) -> RecommendationList:
        params: dict[str, Any] = {"visitor_id": visitor_id, "n": n}
        if category is not None:
            params["category"] = category
        if exclude:
            params["exclude"] = ",".join(exclude)
        data = await self._call("GET", "/v1/recommendations", self._site, params=params)
        return _recommendations(data)

    async def similar_items(self, item_id: str, n: int = 10) -> RecommendationList:
        path = f"/v1/items/{item_id}/similar"
        data = await self._call("GET", path, self._site, params={"n": n})
        return _recommendations(data)

    async def experiment_results(self, experiment_id: str) -> dict[str, Any]:
        """The results JSON (`GET /v1/experiments/{id}/results`); needs the admin key."""
        path = f"/v1/experiments/{experiment_id}/results"
        data: dict[str, Any] = await self._call("GET", path, self._admin)
        return data

    # --- writes ----------------------------------------------------------------------

    async def consent(
        self, visitor_id: str, *, personalization: bool | None = None, analytics: bool | None = None
    ) -> dict[str, Any]:
        """Record the visitor's choice; the engine honours it from the next request."""
        choices = {
            k: v
            for k, v in (("personalization", personalization), ("analytics", analytics))
            if v is not None
        }
        data: dict[str, Any] = await self._call(
            "PUT", f"/v1/visitors/{visitor_id}/consent", self._site, json=choices
        )
        return data

    async def track(
        self,
        type: str,
        visitor_id: str,
        *,
        token: str | None = None,
        item_id: str | None = None,
        value: float | None = None,
        properties: Mapping[str, Any] | None = None,
        channel: str = "server",
        ts: float | None = None,
    ) -> str:
        """Queue an event; its id (sent with it, so retries never double-count). When the
        queue fills a batch this sends it; if that fails the error propagates but the
        event stays queued with its id: flush later, do not track it again."""
        event: dict[str, Any] = {
            "type": type,
            "visitor_id": visitor_id,
            "channel": channel,
            "event_id": self._new_id(),
            "ts": time.time() if ts is None else ts,
        }
        for name, given in (("token", token), ("item_id", item_id), ("value", value)):
            if given is not None:
                event[name] = given
        if properties:
            event["properties"] = dict(properties)
        self._queue.append(event)
        if len(self._queue) >= self._batch_size:
            await self.flush()
        return str(event["event_id"])

    async def identify(
        self, visitor_id: str, customer_id: str, traits: Mapping[str, str] | None = None
    ) -> str:
        """Say this visitor is that customer: their histories merge into one person."""
        properties: dict[str, Any] = {"customer_id": customer_id}
        if traits:
            properties["traits"] = dict(traits)
        return await self.track("identify", visitor_id, properties=properties)

    async def flush(self) -> SendReport:
        """Send everything queued, in batches. A batch that cannot be delivered after
        the retries stays queued (the error is raised): the next flush sends it again,
        with the same event ids."""
        async with self._sending:
            report = SendReport()
            while self._queue:
                batch = self._queue[: self._batch_size]
                data = await self._call("POST", "/v1/events", self._site, json={"events": batch})
                del self._queue[: len(batch)]
                report = SendReport(
                    accepted=report.accepted + int(data.get("accepted", 0)),
                    duplicates=report.duplicates + int(data.get("duplicates") or 0),
                    without_consent=report.without_consent + int(data.get("without_consent") or 0),
                    spooled=report.spooled + int(data.get("spooled") or 0),
                    rejected=report.rejected + list(data.get("rejected", [])),
                )
            return report

    @property
    def queued(self) -> int:
        return len(self._queue)

    # --- transport -------------------------------------------------------------------

    async def _call(self, method: str, path: str, headers: Mapping[str, str], **kw: Any) -> Any:
        attempt = 0
        while True:
            try:
                response = await self._http.request(method, path, headers=headers, **kw)
            except (httpx.TransportError, httpx.TimeoutException):
                if attempt >= self._retries:
                    raise
            else:
                if response.status_code not in RETRY_STATUS or attempt >= self._retries:
                    return _body(response)
            attempt += 1
            await asyncio.sleep(
                self._backoff_s * 2 ** (attempt - 1) * (0.5 + self._jitter.random())
            )


def _body(response: httpx.Response) -> Any:
    try:
        data = response.json()
    except ValueError:
        data = response.text
    if response.status_code >= 400:
        raise EngineError(response.status_code, data)
    return data


def _decision(d: Mapping[str, Any]) -> Decision:
    return Decision(
        slot=d["slot"],
        variant=d["variant"],
        content=dict(d.get("content") or {}),
        token=d["token"],
        policy=d["policy"],
        experiment=d.get("experiment"),
        arm=d.get("arm"),
    )


def _recommendations(data: Mapping[str, Any]) -> RecommendationList:
    return RecommendationList(
        items=[ScoredItem(i["item_id"], float(i["score"])) for i in data["items"]],
        model_version=data["model_version"],
        token=data.get("token"),
        source=data.get("source"),
        policy=data.get("policy"),
        experiment=data.get("experiment"),
        arm=data.get("arm"),
    )

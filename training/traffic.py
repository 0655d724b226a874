"""Simulated shoppers driven through the real HTTP API (the demo, and end-to-end tests).

A visit is what a site does: decide on landing, report impressions, then page views,
then clicks and purchases carrying the decision tokens.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np

from training.simulator import Simulator, SimVisitor


@dataclass
class TrafficTally:
    """What happened, by (persona, slot, variant) and in total."""

    visits: int = 0
    decisions: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    clicks: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    segments: Counter[str] = field(default_factory=Counter)
    policies: Counter[str] = field(default_factory=Counter)
    events_accepted: int = 0
    events_rejected: int = 0
    revenue: float = 0.0
    errors: Counter[str] = field(default_factory=Counter)


async def drive(
    client: httpx.AsyncClient,
    simulator: Simulator,
    visitors: Sequence[SimVisitor],
    slots: Sequence[str],
    *,
    site_key: str,
    visits_per_visitor: int = 2,
    seconds: float = 5.0,
    concurrency: int = 16,
    before_events: Callable[[], Awaitable[object]] | None = None,
) -> TrafficTally:
    """Run visits (round-robin over visitors) until every visitor has made
    `visits_per_visitor` visits or `seconds` have passed.

    `before_events`, if given, is awaited between each visit's decide and its events.
    A real shopper clicks seconds after the page is decided; a simulated one posts the
    click microseconds later, before the engine's decision log has written the
    experiment exposure in its next background flush, and an outcome of a visitor not
    yet exposed does not count. Experiment tests pass the decision log's `flush` here.
    """
    tally = TrafficTally()
    headers = {"X-Api-Key": site_key}
    deadline = time.monotonic() + seconds
    queue: asyncio.Queue[tuple[SimVisitor, int]] = asyncio.Queue()
    for visit in range(visits_per_visitor):
        for visitor in visitors:
            queue.put_nowait((visitor, visit))

    async def worker() -> None:
        while time.monotonic() < deadline:
            try:
                visitor, visit = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            rng = simulator.visit_rng(visitor, visit)
            try:
                await _visit(client, simulator, rng, visitor, slots, headers, tally, before_events)
            except httpx.HTTPError as exc:
                tally.errors[type(exc).__name__] += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return tally


async def _visit(
    client: httpx.AsyncClient,
    simulator: Simulator,
    rng: np.random.Generator,
    visitor: SimVisitor,
    slots: Sequence[str],
    headers: dict[str, str],
    tally: TrafficTally,
    before_events: Callable[[], Awaitable[object]] | None = None,
) -> None:
    tally.visits += 1
    response = await client.post(
        "/v1/decide",
        headers=headers,
        json={
            "visitor_id": visitor.visitor_id,
            "slots": list(slots),
            "context": {"device": visitor.device, "channel": "web", "page": "/"},
        },
    )
    if response.status_code != 200:
        tally.errors[f"decide {response.status_code}"] += 1
        return
    body = response.json()
    tally.segments.update(body["segments"])
    base = {"visitor_id": visitor.visitor_id, "channel": "web"}
    events: list[dict[str, Any]] = []
    outcomes = []
    for decision in body["decisions"]:
        key = (visitor.persona, decision["slot"], decision["variant"])
        tally.decisions[key] += 1
        tally.policies[decision["policy"]] += 1
        events.append({**base, "type": "impression", "token": decision["token"]})
        outcomes.append((key, decision["token"], simulator.outcome(visitor, key[1], key[2], rng)))
    for view in simulator.browse(visitor, rng):
        events.append(
            {
                **base,
                "type": "page_view",
                "item_id": view.item_id,
                "properties": {"category": view.category, "url": f"/p/{view.item_id}"},
            }
        )
    for key, token, outcome in outcomes:
        if outcome.clicked:
            tally.clicks[key] += 1
            events.append({**base, "type": "click", "token": token})
        if outcome.converted:
            tally.revenue += outcome.value
            events.append(
                {
                    **base,
                    "type": "conversion",
                    "token": token,
                    "value": outcome.value,
                    "properties": {"goal": "purchase"},
                }
            )
    if before_events is not None:
        await before_events()
    response = await client.post("/v1/events", headers=headers, json={"events": events})
    if response.status_code == 202:
        result = response.json()
        tally.events_accepted += result["accepted"]
        tally.events_rejected += len(result["rejected"])
    else:
        tally.errors[f"events {response.status_code}"] += 1

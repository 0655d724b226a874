"""Simulated shoppers driven through the real HTTP API (the demo, and end-to-end tests),
with the Python client an app backend would use.

A visit is what a site does: decide on landing, report impressions, then page views,
then clicks and purchases carrying the decision tokens.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import httpx
import numpy as np

from engine.client import EngineError, OmotenashiClient
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
    engine: OmotenashiClient,
    simulator: Simulator,
    visitors: Sequence[SimVisitor],
    slots: Sequence[str],
    *,
    visits_per_visitor: int = 2,
    seconds: float = 5.0,
    concurrency: int = 16,
    before_events: Callable[[], Awaitable[object]] | None = None,
) -> TrafficTally:
    """Run visits (round-robin over visitors) through the Python client until every
    visitor has made `visits_per_visitor` visits or `seconds` have passed.

    `before_events`, if given, is awaited between each visit's decide and its events.
    A real shopper clicks seconds after the page is decided; a simulated one posts
    microseconds later, before the engine's decision log has written the experiment
    exposure in its next background flush. Outcomes that carry the experiment's token
    count anyway, but token-less ones (page views, purchases) of a visitor not yet
    exposed do not: experiment tests pass the decision log's `flush` here.
    """
    tally = TrafficTally()
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
                await _visit(engine, simulator, rng, visitor, slots, tally, before_events)
            except EngineError as exc:
                tally.errors[f"HTTP {exc.status}"] += 1
            except httpx.HTTPError as exc:
                tally.errors[type(exc).__name__] += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return tally


async def _visit(
    engine: OmotenashiClient,
    simulator: Simulator,
    rng: np.random.Generator,
    visitor: SimVisitor,
    slots: Sequence[str],
    tally: TrafficTally,
    before_events: Callable[[], Awaitable[object]] | None = None,
) -> None:
    tally.visits += 1
    context = {"device": visitor.device, "channel": "web", "page": "/"}
    result = await engine.decide(visitor.visitor_id, slots, context)
    tally.segments.update(result.segments)
    who = visitor.visitor_id
    outcomes = []
    for decision in result.decisions:
        key = (visitor.persona, decision.slot, decision.variant)
        tally.decisions[key] += 1
        tally.policies[decision.policy] += 1
        outcomes.append((key, decision.token, simulator.outcome(visitor, key[1], key[2], rng)))
    if before_events is not None:
        await before_events()
    for _, token, _ in outcomes:
        await engine.track("impression", who, token=token, channel="web")
    for view in simulator.browse(visitor, rng):
        properties = {"category": view.category, "url": f"/p/{view.item_id}"}
        await engine.track(
            "page_view", who, item_id=view.item_id, properties=properties, channel="web"
        )
    for key, token, outcome in outcomes:
        if outcome.clicked:
            tally.clicks[key] += 1
            await engine.track("click", who, token=token, channel="web")
        if outcome.converted:
            tally.revenue += outcome.value
            goal = {"goal": "purchase"}
            await engine.track(
                "conversion", who, token=token, value=outcome.value, properties=goal, channel="web"
            )
    report = await engine.flush()
    tally.events_accepted += report.accepted
    tally.events_rejected += len(report.rejected)

"""A visitor simulator with known ground truth, for the demo, tests and model checks.

Each persona (a hidden segment) has its own device mix, category interests, visit
depth, and true click and conversion probabilities for every variant of every slot.
Policies and statistics can then be checked against the truth they should find.
Deterministic for a given seed: every visit draws from its own generator seeded by
(seed, visitor, visit), so results do not depend on the order concurrent visits run in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True, slots=True)
class Persona:
    name: str
    share: float
    devices: Mapping[str, float]  # device -> probability
    interests: Mapping[str, float]  # category -> probability of a page view in it
    views_per_visit: float  # mean page views per visit (Poisson, at least one)
    click_rates: Mapping[str, Mapping[str, float]]  # slot -> variant -> P(click | shown)
    conversion_given_click: float
    order_value: float  # mean order value of a conversion


@dataclass(frozen=True, slots=True)
class World:
    personas: Sequence[Persona]
    items_by_category: Mapping[str, Sequence[str]]
    baseline_click_rate: float = 0.02  # for variants a persona has no stated rate for

    def click_rate(self, persona: str, slot: str, variant: str) -> float:
        """The true probability that `persona` clicks `variant` in `slot`."""
        rates = self.persona(persona).click_rates.get(slot, {})
        return rates.get(variant, self.baseline_click_rate)

    def persona(self, name: str) -> Persona:
        for p in self.personas:
            if p.name == name:
                return p
        raise KeyError(name)


@dataclass(frozen=True, slots=True)
class SimVisitor:
    index: int
    visitor_id: str
    persona: str
    device: str


@dataclass(frozen=True, slots=True)
class PageView:
    category: str
    item_id: str


@dataclass(frozen=True, slots=True)
class Outcome:
    clicked: bool
    converted: bool
    value: float


@dataclass
class Simulator:
    world: World
    seed: int = 0
    rng: np.random.Generator = field(init=False)

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.seed)

    def visitors(self, n: int, id_prefix: str = "sim") -> list[SimVisitor]:
        """`n` visitors with personas drawn by share and a device drawn per persona."""
        personas = self.world.personas
        shares = np.array([p.share for p in personas], dtype=float)
        picks = self.rng.choice(len(personas), size=n, p=shares / shares.sum())
        out = []
        for i, k in enumerate(picks):
            persona = personas[int(k)]
            devices = list(persona.devices)
            probs = np.array([persona.devices[d] for d in devices], dtype=float)
            device = devices[int(self.rng.choice(len(devices), p=probs / probs.sum()))]
            out.append(SimVisitor(i, f"{id_prefix}-{i:06d}", persona.name, device))
        return out

    def visit_rng(self, visitor: SimVisitor, visit: int) -> np.random.Generator:
        """The generator for one visit of one visitor."""
        return np.random.default_rng([self.seed, visitor.index, visit])

    def browse(self, visitor: SimVisitor, rng: np.random.Generator) -> list[PageView]:
        """One visit's page views, in order."""
        persona = self.world.persona(visitor.persona)
        n = max(1, int(rng.poisson(persona.views_per_visit)))
        categories = list(persona.interests)
        probs = np.array([persona.interests[c] for c in categories], dtype=float)
        picks = rng.choice(len(categories), size=n, p=probs / probs.sum())
        views = []
        for k in picks:
            category = categories[int(k)]
            items = self.world.items_by_category[category]
            views.append(PageView(category, items[int(rng.integers(len(items)))]))
        return views

    def outcome(
        self, visitor: SimVisitor, slot: str, variant: str, rng: np.random.Generator
    ) -> Outcome:
        """What this visitor does after seeing `variant` in `slot`, drawn from the truth."""
        persona = self.world.persona(visitor.persona)
        clicked = bool(rng.random() < self.world.click_rate(visitor.persona, slot, variant))
        converted = clicked and bool(rng.random() < persona.conversion_given_click)
        value = float(np.round(rng.gamma(4.0, persona.order_value / 4.0), 2)) if converted else 0.0
        return Outcome(clicked, converted, value)

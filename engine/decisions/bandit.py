"""Bandit slots: Thompson sampling over Beta-Bernoulli posteriors per (segment, variant).

A bandit slot learns which variant each segment clicks most while serving: trials
(impressions) and successes (the slot's reward event) are counted in one Redis hash
per slot by the ingest script, through the decision token, once per decision. Each
worker reads the counters every `bandit_refresh_ms` (one pipelined read for all
bandit slots, off the request path) and decides from them:

- the choice is a true Thompson draw: one Beta sample per variant, the largest wins;
- the propensity a Thompson draw has, P(variant's sample is the largest), has no
  closed form for K > 2, so it is estimated by Monte Carlo (`DRAWS` joint draws) when
  the counters change, and marked as estimated in the decision log.

Visitors in none of the configured segments share the posterior `OTHERS`.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from engine.background import pause
from engine.errors import StoreUnavailable
from engine.store.client import Store

if TYPE_CHECKING:
    from collections.abc import Callable

    from engine.decisions.slots import Slot

log = logging.getLogger(__name__)

RewardType = Literal["click", "conversion"]
OTHERS = "_"  # cannot collide: segment names start with a letter or digit
DRAWS = 8192
MAX_WINDOW_S = 86_400  # within the shortest dedup window, so a count is never made twice
MAX_SEGMENTS = 50


@dataclass(frozen=True, slots=True)
class BanditConfig:
    """A slot's `"bandit"` section: which segments learn apart, what counts as a reward,
    how long after the decision it still counts, and the Beta prior."""

    segments: tuple[str, ...] = ()
    reward: RewardType = "click"
    window_s: int = 3600
    prior: tuple[float, float] = (1.0, 1.0)

    def segment_of(self, member_of: frozenset[str]) -> str:
        """The posterior a visitor decides with: their first configured segment."""
        for name in self.segments:
            if name in member_of:
                return name
        return OTHERS

    @property
    def posteriors(self) -> tuple[str, ...]:
        return (*self.segments, OTHERS)


def parse_bandit(raw: object) -> BanditConfig:
    """`{"segments": [...], "reward": "click", "window_s": 3600, "prior": [1, 1]}`, all
    optional; ValueError saying what is wrong."""
    if raw is None:
        return BanditConfig()
    if not isinstance(raw, dict):
        raise ValueError("bandit: an object")
    extra = set(raw) - {"segments", "reward", "window_s", "prior"}
    if extra:
        raise ValueError(f"bandit: unknown fields {sorted(extra)}")
    segments = raw.get("segments", [])
    if (
        not isinstance(segments, list)
        or len(segments) > MAX_SEGMENTS
        or not all(isinstance(s, str) and s and s != OTHERS for s in segments)
        or len(set(segments)) != len(segments)
    ):
        raise ValueError(f"bandit.segments: up to {MAX_SEGMENTS} distinct segment names")
    reward = raw.get("reward", "click")
    if reward not in ("click", "conversion"):
        raise ValueError("bandit.reward: 'click' or 'conversion'")
    window_s = raw.get("window_s", 3600)
    if isinstance(window_s, bool) or not isinstance(window_s, int):
        raise ValueError("bandit.window_s: an integer number of seconds")
    if not 60 <= window_s <= MAX_WINDOW_S:
        raise ValueError(f"bandit.window_s: within [60, {MAX_WINDOW_S}]")
    prior = raw.get("prior", [1, 1])
    if (
        not isinstance(prior, list)
        or len(prior) != 2
        or not all(isinstance(x, int | float) and not isinstance(x, bool) for x in prior)
        or not all(0 < x <= 1e6 for x in prior)
    ):
        raise ValueError("bandit.prior: [alpha, beta], both positive")
    return BanditConfig(tuple(segments), reward, window_s, (float(prior[0]), float(prior[1])))


def counter_field(kind: Literal["t", "s"], segment: str, variant: str) -> str:
    """A field of the slot's counter hash: trials `t` or successes `s` of one arm."""
    return f"{kind}:{segment}:{variant}"


@dataclass(frozen=True, slots=True)
class Posterior:
    """One segment's Beta posteriors over a slot's variants (in the slot's order)."""

    alpha: np.ndarray
    beta: np.ndarray
    propensities: np.ndarray  # estimated P(each variant wins a Thompson draw)

    def choose(self, rng: np.random.Generator) -> tuple[int, float]:
        """A Thompson draw: the index of the largest Beta sample, and the estimated
        probability of that outcome (floored at half a draw: an arm the estimate never
        saw win can still win, and a zero propensity would break every estimator)."""
        index = int(np.argmax(rng.beta(self.alpha, self.beta)))
        return index, max(float(self.propensities[index]), 0.5 / DRAWS)

    @property
    def means(self) -> np.ndarray:
        out: np.ndarray = self.alpha / (self.alpha + self.beta)
        return out


def posterior(
    trials: np.ndarray,
    successes: np.ndarray,
    prior: tuple[float, float],
    rng: np.random.Generator,
    draws: int = DRAWS,
) -> Posterior:
    """Beta(prior_a + s, prior_b + t - s) per variant; propensities from `draws` joint
    Thompson draws (exactly uniform when the posteriors are identical)."""
    successes = np.minimum(successes, trials)  # a count lost between the two fields
    alpha = prior[0] + successes.astype(np.float64)
    beta = prior[1] + (trials - successes).astype(np.float64)
    k = alpha.size
    if np.all(alpha == alpha[0]) and np.all(beta == beta[0]):
        propensities = np.full(k, 1.0 / k)
    else:
        winners = np.argmax(rng.beta(alpha, beta, size=(draws, k)), axis=1)
        propensities = np.bincount(winners, minlength=k) / draws
    return Posterior(alpha, beta, propensities)


def slot_posteriors(
    config: BanditConfig,
    variants: Sequence[str],
    counters: Mapping[bytes, bytes],
    rng: np.random.Generator,
) -> dict[str, Posterior]:
    """Every posterior of one slot, from its counter hash as Redis returns it."""
    counts = {k.decode(): int(v) for k, v in counters.items()}
    out = {}
    for segment in config.posteriors:
        trials = np.array([counts.get(counter_field("t", segment, v), 0) for v in variants])
        successes = np.array([counts.get(counter_field("s", segment, v), 0) for v in variants])
        out[segment] = posterior(trials, successes, config.prior, rng)
    return out


@dataclass(frozen=True, slots=True)
class SlotBandit:
    """What a worker holds for one bandit slot: the counters it was built from (to skip
    rebuilding when nothing moved) and the posteriors."""

    variants: tuple[str, ...]
    config: BanditConfig
    counters: Mapping[bytes, bytes]
    posteriors: dict[str, Posterior]


class BanditRegistry:
    """The posteriors of every bandit slot, refreshed from Redis in the background."""

    def __init__(self, store: Store, seed: int | None = None) -> None:
        self._store = store
        entropy = int.from_bytes(os.urandom(16)) if seed is None else seed
        self._estimate_rng = np.random.default_rng([entropy, 0])
        self.rng = np.random.default_rng([entropy, 1])  # the Thompson draws on requests
        self.current: dict[str, SlotBandit] = {}

    async def refresh(self, slots: Mapping[str, Slot]) -> bool:
        """Re-read the counters of the bandit slots among `slots` (name -> Slot); True if
        a posterior changed."""
        wanted = {name: slot.bandit for name, slot in slots.items() if slot.bandit is not None}
        variants_of = {name: tuple(slots[name].variants) for name in wanted}
        if not wanted:
            changed = bool(self.current)
            self.current = {}
            return changed
        keys = self._store.keys
        async with self._store.guard("bandit_poll"):
            pipe = self._store.redis.pipeline(transaction=False)
            for name in wanted:
                pipe.hgetall(keys.bandit(name))
            replies: list[Any] = await pipe.execute()
        stale = []
        for (name, config), counters in zip(wanted.items(), replies, strict=True):
            have, variants = self.current.get(name), variants_of[name]
            if (
                have is None
                or have.counters != counters
                or have.variants != variants
                or have.config != config
            ):
                stale.append((name, variants, config, counters))
        if not stale and set(self.current) == set(wanted):
            return False
        rebuilt = await asyncio.to_thread(self._build, stale)
        current = {name: self.current[name] for name in wanted if name in self.current}
        current.update(rebuilt)
        self.current = current  # swapped whole: a request sees one set or the other
        return True

    def _build(
        self, stale: list[tuple[str, tuple[str, ...], BanditConfig, Mapping[bytes, bytes]]]
    ) -> dict[str, SlotBandit]:
        rng = self._estimate_rng
        return {
            name: SlotBandit(
                variants, config, counters, slot_posteriors(config, variants, counters, rng)
            )
            for name, variants, config, counters in stale
        }

    async def run(self, slots_of: Callable[[], Mapping[str, Slot]], interval_s: float) -> None:
        """Poll forever; `slots_of()` gives the current slots (the definitions change)."""
        while True:
            try:
                await self.refresh(slots_of())
            except StoreUnavailable:
                pass  # counted and logged by the store; decide with what we have
            except Exception:  # a dead poller would freeze learning silently
                log.exception("bandit refresh failed; retrying")
            await pause(interval_s)

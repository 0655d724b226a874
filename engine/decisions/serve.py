"""Serving a decide request: read the visitor once, decide every slot, sign the tokens."""

from __future__ import annotations

import base64
import os
import random
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np

from engine.decisions.decide import NO_MODELS, Decision, Models, decide, fallback
from engine.decisions.log import DecisionLog, decision_record, exposure_of
from engine.decisions.registry import CompiledDefinitions
from engine.decisions.rules import Facts
from engine.decisions.tokens import DecisionToken, TokenSigner
from engine.errors import DefinitionsNotLoaded, NotFound, StoreUnavailable
from engine.store.client import Store
from engine.store.profiles import read_profile
from models.features import decode_features


class SignedDecision(NamedTuple):
    decision: Decision
    token: str


class DecideResult(NamedTuple):
    decision_id: str
    decisions: list[SignedDecision]
    segments: frozenset[str]


class DecisionIds:
    """72 random bits, URL-safe: the ids outcome events and logs join on.

    Ids need to be unique, not secret (they travel inside signed tokens), so a
    urandom-seeded PRNG per worker serves instead of a getrandom syscall per request.
    """

    __slots__ = ("_rng",)

    def __init__(self) -> None:
        self._rng = random.Random(os.urandom(32))

    def __call__(self) -> str:
        return base64.urlsafe_b64encode(self._rng.getrandbits(72).to_bytes(9, "big")).decode()


async def decide_for_visitor(
    *,
    store: Store,
    definitions: CompiledDefinitions | None,
    signer: TokenSigner,
    new_id: Callable[[], str],
    pid: str,
    slot_names: Sequence[str],
    context: dict[str, Any],
    personalization_default: bool = True,
    decision_log: DecisionLog | None = None,
    models: Models = NO_MODELS,
    on_model_missing: Callable[[str], None] = lambda slot: None,
    bandit_rng: np.random.Generator | None = None,
) -> DecideResult:
    """Decisions for one visitor; defaults with policy "fallback" if Redis is away and
    "no_consent" if the visitor refused personalization (then nothing else is read)."""
    if definitions is None:
        raise DefinitionsNotLoaded("slot definitions not loaded yet (is Redis reachable?)")
    unknown = [name for name in slot_names if name not in definitions.slots]
    if unknown:
        raise NotFound(f"unknown slots: {', '.join(unknown)}")
    slots = [definitions.slots[name] for name in slot_names]
    now = time.time()
    profile = None
    features: dict[str, Any] = {}
    try:
        profile = await read_profile(store, pid, personalization_default=personalization_default)
    except StoreUnavailable:
        decisions, segments = fallback(slots), frozenset[str]()
    else:
        if profile is None:
            decisions, segments = fallback(slots, "no_consent"), frozenset[str]()
        else:
            features = decode_features(profile.features, now)
            facts = Facts(context=context, features=features)
            decisions, segments = decide(
                slots,
                definitions.segments,
                facts,
                models,
                pid=profile.pid,  # the person's arm, on every device merged into them
                experiments=definitions.running,
                bandit_rng=bandit_rng,
                on_model_missing=on_model_missing,
            )
    decision_id = new_id()
    issued_at = int(now)
    signed = [
        SignedDecision(
            d,
            signer.sign(
                DecisionToken(
                    decision_id=decision_id,
                    pid=pid,
                    slot=d.slot,
                    variant=d.variant.id,
                    policy=d.policy,
                    propensity=d.propensity,
                    issued_at=issued_at,
                    model_version=d.model_version,
                    segment=d.segment,
                    experiment=d.experiment,
                    arm=d.arm,
                )
            ),
        )
        for d in decisions
    ]
    if decision_log is not None and profile is not None and profile.analytics:
        for slot, entry in zip(slots, signed, strict=True):
            d = entry.decision
            decision_log.record(
                profile.pid,
                decision_record(
                    decision_id=decision_id,
                    pid=pid,
                    slot=d.slot,
                    ts=now,
                    token=entry.token,
                    chosen=d.variant.id,
                    eligible=list(slot.variants),
                    propensity=d.propensity,
                    policy=d.policy,
                    model_version=d.model_version,
                    features=features,
                    context=context,
                    extra=_extra(d),
                ),
            )
            if d.experiment is not None:
                experiment = definitions.experiments[d.experiment]
                decision_log.expose(
                    profile.pid, exposure_of(experiment, d.arm or "", now, features, segments)
                )
    return DecideResult(decision_id, signed, segments)


def _extra(d: Decision) -> dict[str, Any] | None:
    """What a decision adds to its log record beyond the common fields."""
    extra: dict[str, Any] = {}
    if d.propensity_estimated:
        extra.update(propensity_estimated=True, bandit_segment=d.segment)
    if d.experiment is not None:
        extra.update(experiment=d.experiment, arm=d.arm)
    return extra or None

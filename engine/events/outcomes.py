"""Outcome counts: what an event adds to the aggregates its decision token points at.

An impression carrying a bandit decision's token is a trial of (slot, segment,
variant); the slot's reward event (a click, or a conversion) within the bandit's
window is a success, and implies the impression (a client that lost it must not make
the arm look better than it is). The ingest script applies a count only for an
accepted event (consent given, not a replay) and only once per decision: each count
carries a marker id, `<decision>.<slot>.<t|s>`, that the script adds to the profile's
seen-ids set like an event id, so a second impression or click of the same decision
adds nothing. Tokens issued to another visitor do not count.
"""

from __future__ import annotations

from collections.abc import Mapping

from engine.decisions.bandit import counter_field
from engine.decisions.slots import Slot
from engine.decisions.tokens import TokenSigner
from engine.errors import InvalidToken
from engine.store.keys import Keys
from engine.store.profiles import OutcomeCount
from models.events import Event

MAX_CLOCK_SKEW_S = 300.0


def outcome_counts(
    event: Event, slots: Mapping[str, Slot], signer: TokenSigner, keys: Keys
) -> list[OutcomeCount]:
    """The counts this event makes, if it is accepted."""
    if event.token is None or event.type not in ("impression", "click", "conversion"):
        return []
    try:
        token = signer.verify(event.token)
    except InvalidToken:  # checked on the way in; a rotated key must not fail a replay
        return []
    slot = slots.get(token.slot)
    if (
        token.policy != "bandit"
        or token.segment is None
        or token.pid != event.pid
        or slot is None
        or slot.bandit is None
        or token.variant not in slot.variants
    ):
        return []
    age = event.ts - token.issued_at
    if not -MAX_CLOCK_SKEW_S <= age <= slot.bandit.window_s:
        return []
    key = keys.bandit(slot.name)
    marker = f"{token.decision_id}.{slot.name}"
    trial = OutcomeCount(f"{marker}.t", key, counter_field("t", token.segment, token.variant))
    if event.type == "impression":
        return [trial]
    if event.type != slot.bandit.reward:
        return []
    return [
        trial,
        OutcomeCount(f"{marker}.s", key, counter_field("s", token.segment, token.variant)),
    ]

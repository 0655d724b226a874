"""Outcomes: what an accepted event adds to aggregates: bandit counters through its
decision token, and the metrics of running experiments its visitor was exposed to.

Experiments: every running experiment with a metric on this event type gets a
`MetricOutcome`; the ingest script applies it only if the visitor's profile was
exposed to the experiment within the metric's window (no token needed: a purchase
counts for an experiment on the home page's hero), or if the event carries the
experiment's own token (its exposure may still wait in a worker's buffer: a click
sent with the impression, right after decide). A metric with `"scope": "token"`
counts only events carrying the experiment's token. An experiment counting exposure at
the impression (`"exposure": "impression"`) gets an `ExposureConfirmation` from the
visitor's impression that carries its token.

Bandits:

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
from engine.decisions.registry import CompiledDefinitions
from engine.decisions.slots import Slot
from engine.decisions.tokens import DecisionToken, TokenSigner
from engine.errors import InvalidToken
from engine.store.keys import Keys
from engine.store.profiles import ExposureConfirmation, MetricOutcome, Outcome, OutcomeCount
from models.events import Event

MAX_CLOCK_SKEW_S = 300.0


def outcomes_of(
    event: Event,
    definitions: CompiledDefinitions,
    signer: TokenSigner,
    keys: Keys,
    now: float,
) -> list[Outcome]:
    """What this event does to aggregates, if it is accepted (`now`: its arrival)."""
    token = visitors_token(event, signer)
    outcomes: list[Outcome] = []
    for experiment, m in definitions.metrics_by_event.get(event.type, ()):
        ours = token is not None and token.experiment == experiment
        if m.scope == "token" and not ours:
            continue
        decided_at = float(token.issued_at) if ours and token is not None else None
        value = event.value or 0.0
        outcomes.append(
            MetricOutcome(experiment, m.name, m.aggregation, value, m.window_s, decided_at)
        )
    if token is not None and token.experiment is not None and event.type == "impression":
        shown = definitions.experiments.get(token.experiment)
        if shown is not None and shown.exposure == "impression":
            outcomes.append(ExposureConfirmation(token.experiment))
    if token is not None:
        outcomes += bandit_counts(event, token, definitions.slots, keys, now)
    return outcomes


def visitors_token(event: Event, signer: TokenSigner) -> DecisionToken | None:
    """The event's decision token, if it has one issued to this same visitor."""
    if event.token is None:
        return None
    try:
        token = signer.verify(event.token)
    except InvalidToken:  # checked on the way in; a rotated key must not fail a replay
        return None
    return token if token.pid == event.pid else None


def bandit_counts(
    event: Event, token: DecisionToken, slots: Mapping[str, Slot], keys: Keys, now: float
) -> list[OutcomeCount]:
    """The bandit counts this event makes, if it is accepted. Its age is checked on the
    event's clock and on its arrival: a replay weeks later, its markers trimmed from the
    seen ids, must not count again."""
    if event.type not in ("impression", "click", "conversion"):
        return []
    slot = slots.get(token.slot)
    if (
        token.policy != "bandit"
        or token.segment is None
        or slot is None
        or slot.bandit is None
        or token.variant not in slot.variants
    ):
        return []
    window = slot.bandit.window_s
    age = event.ts - token.issued_at
    if not -MAX_CLOCK_SKEW_S <= age <= window or now - token.issued_at > window + MAX_CLOCK_SKEW_S:
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

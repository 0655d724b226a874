"""From a validated client event to the pseudonymized `Event` the engine keeps."""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from engine.api.body import describe_error
from engine.api.schemas.events import EVENT_ADAPTER, EventIn, Feedback, Identify, Purchase
from engine.decisions.tokens import TokenSigner
from engine.errors import InvalidInput, OmotenashiError
from models.events import Event

MAX_CLOCK_SKEW_S = 300.0


class EventIds:
    """Ids for events that came without one: 96 random bits from a per-process PRNG.

    They must be unique, not secret; `uuid4` costs a getrandom syscall per event, which
    on these machines was a tenth of the ingest path's time.
    """

    __slots__ = ("_rng",)

    def __init__(self) -> None:
        self._rng = random.Random(os.urandom(32))

    def __call__(self) -> str:
        return f"srv-{self._rng.getrandbits(96):024x}"

    def reseed(self) -> None:
        self._rng.seed(os.urandom(32))


_new_event_id = EventIds()
# a forked worker must not repeat its parent's sequence
os.register_at_fork(after_in_child=_new_event_id.reseed)


def to_event(
    raw: EventIn,
    *,
    pseudonymize: Callable[[str], str],
    signer: TokenSigner,
    now: float,
    new_id: Callable[[], str] = _new_event_id,
    retain_text: bool = False,
) -> Event:
    """The event as stored: raw ids replaced by pseudonyms, free text reduced to counts
    (unless the site retains it), purchase value filled in, an event id given to events
    without one (so replays are recognised), and its token (if any) checked.
    `InvalidInput` if not acceptable.
    """
    ts = _timestamp(raw.ts, now)
    if raw.token is not None:
        signer.verify(raw.token)
    props = raw.properties
    properties: dict[str, Any] = (
        dict(props) if isinstance(props, dict) else props.model_dump(exclude_none=True)
    )
    value = raw.value
    if isinstance(raw, Purchase) and value is None:
        value = round(sum(line.price * line.qty for line in raw.properties.items), 2)
    if isinstance(raw, Feedback) and "text" in properties:
        text = properties["text"] if retain_text else properties.pop("text")
        properties["text_length"] = len(text)
        properties["text_words"] = len(text.split())
    if isinstance(raw, Identify):
        properties["customer_pid"] = pseudonymize(properties.pop("customer_id"))
    return Event(
        type=raw.type,
        pid=pseudonymize(raw.visitor_id),
        ts=ts,
        channel=raw.channel,
        event_id=raw.event_id or new_id(),
        token=raw.token,
        item_id=raw.item_id,
        value=value,
        properties=properties,
    )


def _timestamp(ts: datetime | float | None, now: float) -> float:
    if ts is None:
        return now
    if isinstance(ts, datetime):
        ts = (ts if ts.tzinfo else ts.replace(tzinfo=UTC)).timestamp()
    if ts > now + MAX_CLOCK_SKEW_S:
        raise InvalidInput("ts: more than 5 minutes in the future")
    if ts < 0:
        raise InvalidInput("ts: before 1970")
    return float(ts)


def validate_batch(
    items: Sequence[object],
    *,
    pseudonymize: Callable[[str], str],
    signer: TokenSigner,
    now: float,
    retain_text: bool = False,
) -> tuple[list[Event], list[tuple[int, str]]]:
    """Check every event on its own: the valid ones, and (index, reason) for the others."""
    accepted: list[Event] = []
    rejected: list[tuple[int, str]] = []
    for index, item in enumerate(items):
        try:
            raw = EVENT_ADAPTER.validate_python(item)
            accepted.append(
                to_event(
                    raw, pseudonymize=pseudonymize, signer=signer, now=now, retain_text=retain_text
                )
            )
        except ValidationError as exc:
            rejected.append((index, describe_error(exc)))
        except OmotenashiError as exc:
            rejected.append((index, exc.message))
    return accepted, rejected

"""Rule segments: named visitor groups ("sports_fans", "mobile_newcomers") computed at
decide time from features and context, with the same condition language as slots.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from engine.decisions.rules import Facts, Predicate, compile_condition
from engine.decisions.slots import check_description, check_name
from engine.errors import InvalidInput

RESERVED = frozenset({"report"})


@dataclass(frozen=True, slots=True)
class Segment:
    name: str
    when: Predicate


def compile_segment(name: str, definition: dict[str, Any]) -> Segment:
    """A segment from `{"when": COND, "description"?: str}`."""
    check_name("segment", name)
    if name in RESERVED:
        raise InvalidInput(f"{name!r} is reserved (GET /v1/segments/report is the report)")
    extra = set(definition) - {"when", "description"}
    if extra:
        raise InvalidInput(f"unknown fields {sorted(extra)}")
    check_description(definition)
    if "when" not in definition:
        raise InvalidInput("when: required")
    return Segment(name=name, when=compile_condition(definition["when"], allow_segments=False))


def segments_of(segments: Iterable[Segment], facts: Facts) -> frozenset[str]:
    """The names of the segments this visitor is in now."""
    return frozenset(s.name for s in segments if s.when(facts))

"""Rule segments: definitions, validation, and membership at decide time."""

from __future__ import annotations

import re
from typing import Any

import pytest

from engine.decisions.rules import Facts
from engine.decisions.segments import compile_segment, segments_of
from engine.errors import InvalidInput

MOBILE = {"attr": "context.device", "op": "eq", "value": "mobile"}
NEWCOMER = {"attr": "features.page_views", "op": "lt", "value": 3}


def refused(message: str, name: str, definition: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput, match="^" + re.escape(message)):
        compile_segment(name, definition)


def test_segments_of_names_every_segment_the_visitor_is_in() -> None:
    segments = [
        compile_segment("mobile", {"when": MOBILE}),
        compile_segment("newcomers", {"when": NEWCOMER, "description": "fewer than 3 views"}),
        compile_segment("mobile_newcomers", {"when": {"all": [MOBILE, NEWCOMER]}}),
    ]
    regular_on_phone = Facts(context={"device": "mobile"}, features={"page_views": 10})
    new_on_desktop = Facts(context={"device": "desktop"}, features={})
    new_on_phone = Facts(context={"device": "mobile"}, features={"page_views": 1})
    assert segments_of(segments, regular_on_phone) == {"mobile"}
    assert segments_of(segments, new_on_desktop) == {"newcomers"}
    assert segments_of(segments, new_on_phone) == {"mobile", "newcomers", "mobile_newcomers"}


def test_segments_of_no_segments_is_empty() -> None:
    assert segments_of([], Facts(context={}, features={})) == frozenset()


def test_segment_without_when_is_refused() -> None:
    refused("when: required", "mobile", {"description": "phones"})


def test_segment_with_unknown_fields_is_refused() -> None:
    refused("unknown fields ['priority']", "mobile", {"when": MOBILE, "priority": 1})


@pytest.mark.parametrize("name", ["Mobile", "", "mobile users"])
def test_segment_name_outside_the_pattern_is_refused(name: str) -> None:
    refused("segment name", name, {"when": MOBILE})


def test_segment_cannot_be_defined_by_other_segments() -> None:
    refused(
        "when.all[1].attr: a segment cannot be defined by other segments",
        "mobile_vips",
        {"when": {"all": [MOBILE, {"attr": "segments", "op": "contains", "value": "vip"}]}},
    )


def test_invalid_segment_condition_names_its_path() -> None:
    refused(
        "when.op: 'about' is not one of", "mobile", {"when": {"attr": "context.x", "op": "about"}}
    )

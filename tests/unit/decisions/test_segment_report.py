"""The segment report's arithmetic, on hand-made profiles."""

from __future__ import annotations

import pytest

from engine.decisions.segment_report import format_table, segment_report
from engine.decisions.segments import compile_segment

BIG_SPENDERS = compile_segment(
    "big_spenders", {"when": {"attr": "features.revenue", "op": "gte", "value": 100}}
)
MOBILE = compile_segment("mobile", {"when": {"attr": "context.device", "op": "eq", "value": "m"}})
PROFILES = [
    {"orders": 2, "revenue": 150.0, "views.shoes": 3, "rfm_segment": "champions"},
    {"orders": 1, "revenue": 100.0, "views.bags": 5, "views.shoes": 1},
    {"conversions": 1, "views.hats": 1},
    {"views.shoes": 2, "rfm_segment": "lost"},
]


def test_all_visitors_row_adds_up() -> None:
    everyone = segment_report(PROFILES, [])[0]
    assert everyone.segment == "all"
    assert everyone.visitors == 4
    assert everyone.share == 1.0
    assert everyone.conversion_rate == 0.75  # orders or goal conversions
    assert everyone.revenue_per_visitor == pytest.approx(62.5)
    assert everyone.average_order_value == pytest.approx(250 / 3)
    assert everyone.top_categories == ("shoes", "bags", "hats")


def test_rule_and_rfm_segments_get_their_own_rows() -> None:
    rows = {r.segment: r for r in segment_report(PROFILES, [BIG_SPENDERS, MOBILE])}
    big = rows["big_spenders"]
    assert (big.kind, big.visitors, big.share) == ("rule", 2, 0.5)
    assert big.average_order_value == pytest.approx(250 / 3)
    assert big.top_categories == ("bags", "shoes")
    # context segments never match without a request
    assert rows["mobile"].visitors == 0
    assert rows["mobile"].conversion_rate == 0.0
    assert rows["champions"].kind == "rfm"
    assert rows["lost"].conversion_rate == 0.0


def test_an_empty_store_reports_zeros_not_errors() -> None:
    (everyone,) = segment_report([], [])
    assert everyone.visitors == 0
    assert everyone.share == 0.0


def test_the_table_has_a_line_per_segment() -> None:
    table = format_table(segment_report(PROFILES, [BIG_SPENDERS]))
    assert len(table.splitlines()) == 2 + 1 + 1 + 2
    assert "big_spenders" in table

"""The segment report: per segment, who is in it and what they are worth.

This is the persona view a marketer slices by: size and share of visitors,
conversion rate, revenue per visitor, average order value and favourite categories,
for every rule segment, every RFM segment and all visitors together. Pure: profiles
in (decoded features), rows out; `engine/store/profile_scan.py` feeds it from Redis.
Segments that test the request context (device, page) never match here: a report has
no request.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.decisions.rules import Facts
from engine.decisions.segments import Segment, segments_of

ALL_VISITORS = "all"
TOP_CATEGORIES = 3


@dataclass(slots=True)
class _Totals:
    visitors: int = 0
    converted: int = 0
    orders: int = 0
    revenue: float = 0.0
    views: Counter[str] = field(default_factory=Counter)

    def add(self, features: Mapping[str, Any]) -> None:
        self.visitors += 1
        orders = int(features.get("orders", 0))
        if orders > 0 or int(features.get("conversions", 0)) > 0:
            self.converted += 1
        self.orders += orders
        self.revenue += float(features.get("revenue", 0.0))
        for name, count in features.items():
            if name.startswith("views."):
                self.views[name[len("views.") :]] += int(count)


@dataclass(frozen=True, slots=True)
class SegmentRow:
    segment: str
    kind: str  # "all", "rule" or "rfm"
    visitors: int
    share: float
    conversion_rate: float
    revenue_per_visitor: float
    average_order_value: float
    top_categories: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "segment": self.segment,
            "kind": self.kind,
            "visitors": self.visitors,
            "share": self.share,
            "conversion_rate": self.conversion_rate,
            "revenue_per_visitor": self.revenue_per_visitor,
            "average_order_value": self.average_order_value,
            "top_categories": list(self.top_categories),
        }


def segment_report(
    profiles: Iterable[Mapping[str, Any]], segments: Sequence[Segment]
) -> list[SegmentRow]:
    """One row for all visitors, then rule segments (definition order), then RFM ones."""
    everyone = _Totals()
    by_rule = {s.name: _Totals() for s in segments}
    by_rfm: dict[str, _Totals] = {}
    for features in profiles:
        everyone.add(features)
        for name in segments_of(segments, Facts(context={}, features=features)):
            by_rule[name].add(features)
        rfm = features.get("rfm_segment")
        if isinstance(rfm, str) and rfm:
            by_rfm.setdefault(rfm, _Totals()).add(features)
    total = everyone.visitors
    rows = [_row(ALL_VISITORS, "all", everyone, total)]
    rows += [_row(name, "rule", t, total) for name, t in by_rule.items()]
    rows += [_row(name, "rfm", by_rfm[name], total) for name in sorted(by_rfm)]
    return rows


def _row(name: str, kind: str, t: _Totals, total: int) -> SegmentRow:
    n = t.visitors
    return SegmentRow(
        segment=name,
        kind=kind,
        visitors=n,
        share=n / total if total else 0.0,
        conversion_rate=t.converted / n if n else 0.0,
        revenue_per_visitor=t.revenue / n if n else 0.0,
        average_order_value=t.revenue / t.orders if t.orders else 0.0,
        top_categories=tuple(
            c for c, _ in sorted(t.views.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_CATEGORIES]
        ),
    )


def format_table(rows: Sequence[SegmentRow]) -> str:
    """The report as a fixed-width table for the terminal."""
    head = ("segment", "kind", "visitors", "share", "conv", "rev/vis", "aov", "top categories")
    template = "{:<22}{:<6}{:>10}{:>8}{:>8}{:>10}{:>10}  {}"
    header = template.format(*head)
    lines = [header, "-" * len(header)]
    for r in rows:
        cells = (
            r.segment[:21],
            r.kind,
            r.visitors,
            f"{r.share:.1%}",
            f"{r.conversion_rate:.1%}",
            f"{r.revenue_per_visitor:.2f}",
            f"{r.average_order_value:.2f}",
            ", ".join(r.top_categories),
        )
        lines.append(template.format(*cells))
    return "\n".join(lines)

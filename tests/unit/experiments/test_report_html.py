"""The HTML report page: what a reader sees, that it is safe, and that it stands alone."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from typing import Any

import pytest

from engine.experiments.report_html import render_report
from tests.support.experiment_results import arm_row

EVIL = "<script>alert(1)</script>"
DAY = 86_400
START = 1_714_550_400.0  # 2024-05-01 08:00 UTC


def _exposure(arms: list[str], days: int) -> list[dict[str, Any]]:
    return [
        {"day": f"2024-05-{d + 1:02d}", "arm": arm, "cumulative": 500 * (d + 1) + 7 * i}
        for d in range(days)
        for i, arm in enumerate(arms)
    ]


def ab_results(*, srm_flag: bool = False) -> dict[str, Any]:
    """A/B/n: one winning arm, one with a user-chosen hostile name, a zero-mean metric."""
    arms = ["control", "bold", EVIL]
    purchase = {
        "name": "purchase",
        "primary": True,
        "aggregation": "conversion",
        "arms": [
            arm_row("control", 10_000, 0.05),
            arm_row(
                "bold", 10_050, 0.0575, lift=0.15, lift_ci=[0.0523, 0.2477], p_value=0.00042,
                p_value_adjusted=0.00084, chance_to_beat_control=0.9991, significant=True,
                cuped={"lift": 0.148, "lift_ci": [0.071, 0.225], "p_value": 0.0002,
                       "variance_reduction": 0.312},
                sequential={"p_value": 0.018, "lift_ci": [0.012, 0.288], "significant": True},
            ),
            arm_row(
                EVIL, 9_950, 0.0482, lift=-0.036, lift_ci=[-0.121, 0.049], p_value=0.4123,
                p_value_adjusted=0.8246, chance_to_beat_control=0.206, significant=False,
                sequential={"p_value": 0.9, "lift_ci": [-0.2, 0.13], "significant": False},
            ),
        ],
        "mde": 0.082,
        "sample_size_needed": 12_345,
        "segments": [
            {"segment": "mobile & <tablet>", "arms": [
                {"arm": "control", "n": 4_000, "mean": 0.04, "lift": None, "lift_ci": None,
                 "p_value": None},
                {"arm": "bold", "n": 4_020, "mean": 0.047, "lift": 0.175,
                 "lift_ci": [0.02, 0.33], "p_value": 0.027},
            ]},
        ],
        "effects": None,
        "cells": None,
    }  # fmt: skip
    revenue = {
        "name": "revenue",
        "primary": False,
        "aggregation": "sum",
        "arms": [
            arm_row("control", 10_000, 0.0),
            arm_row("bold", 10_050, 1.25, lift=None, significant=False),
            arm_row(EVIL, 9_950, 0.0, lift=None, significant=False),
        ],
        "mde": None,
        "sample_size_needed": None,
        "segments": [],
        "effects": None,
        "cells": None,
    }
    return {
        "experiment": {
            "id": "hero&spring",
            "target": "slot:home_hero",
            "type": "ab",
            "status": "running",
            "started_at": START,
            "stopped_at": None,
            "traffic": 0.5,
            "layer": None,
            "arms": [{"name": a, "weight": 1.0} for a in arms],
            "factors": None,
            "metrics": [],
            "control": "control",
        },
        "srm": {
            "p_value": 0.0004 if srm_flag else 0.62,
            "flag": srm_flag,
            "counts": {"control": 10_000, "bold": 10_050, EVIL: 9_950},
            "expected": dict.fromkeys(arms, 10000.0),
        },
        "exposure": _exposure(arms, 7),
        "alpha": 0.05,
        # the primary metric comes second on purpose: the page must put it first
        "metrics": [revenue, purchase],
    }


def mvt_results() -> dict[str, Any]:
    """A 2x2 MVT on the home hero: colour x layout, with main effects and an interaction."""
    cells = ["red|L", "red|R", "blue|L", "blue|R"]
    click = {
        "name": "click",
        "primary": True,
        "aggregation": "conversion",
        "arms": [
            arm_row("red|L", 5_000, 0.1),
            arm_row("red|R", 5_010, 0.104, lift=0.04, lift_ci=[-0.05, 0.13], p_value=0.38,
                 p_value_adjusted=0.76, chance_to_beat_control=0.81, significant=False),
            arm_row("blue|L", 4_990, 0.121, lift=0.21, lift_ci=[0.11, 0.31], p_value=0.00001,
                 p_value_adjusted=0.00003, chance_to_beat_control=0.9999, significant=True,
                 cuped={"lift": 0.2, "lift_ci": [0.12, 0.28], "p_value": 0.00001,
                        "variance_reduction": 0.18}),
            arm_row("blue|R", 5_000, 0.088, lift=-0.12, lift_ci=[-0.21, -0.03], p_value=0.009,
                 p_value_adjusted=0.027, chance_to_beat_control=0.004, significant=True),
        ],
        "mde": 0.095,
        "sample_size_needed": None,
        "segments": [],
        "effects": [
            {"term": "colour=blue", "estimate": 0.0025, "standard_error": 0.0031,
             "ci": [-0.0036, 0.0086], "p_value": 0.42},
            {"term": "layout=R", "estimate": -0.0085, "standard_error": 0.0031,
             "ci": [-0.0146, -0.0024], "p_value": 0.006},
            {"term": "colour=blue:layout=R", "estimate": 0.0125, "standard_error": 0.0044,
             "ci": [0.0039, 0.0211], "p_value": 0.0045},
        ],
        "cells": [{"cell": c, "n": n, "mean": m} for c, n, m in
                  zip(cells, [5_000, 5_010, 4_990, 5_000], [0.1, 0.104, 0.121, 0.088],
                      strict=True)],
    }  # fmt: skip
    return {
        "experiment": {
            "id": "hero-mvt",
            "target": "slot:home_hero",
            "type": "mvt",
            "status": "stopped",
            "started_at": START,
            "stopped_at": START + 14 * DAY,
            "traffic": 1.0,
            "layer": "hero",
            "arms": [{"name": c, "weight": 0.25} for c in cells],
            "factors": [
                {"name": "colour", "levels": ["red", "blue"]},
                {"name": "layout", "levels": ["L", "R"]},
            ],
            "metrics": [],
            "control": "red|L",
        },
        "srm": {
            "p_value": 0.97,
            "flag": False,
            "counts": dict(zip(cells, [5_000, 5_010, 4_990, 5_000], strict=True)),
            "expected": dict.fromkeys(cells, 5000.0),
        },
        "exposure": _exposure(cells, 14),
        "alpha": 0.05,
        "metrics": [click],
    }


class _Structure(HTMLParser):
    """Checks that every opened element is closed in order (void elements aside)."""

    VOID = frozenset({"meta", "br", "img", "link", "input", "hr", "source", "wbr"})

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
        else:
            self.stack.pop()


def _parse(page: str) -> _Structure:
    parser = _Structure()
    parser.feed(page)
    parser.close()
    return parser


def _svgs(page: str) -> list[ET.Element]:
    return [ET.fromstring(s) for s in re.findall(r"<svg\b.*?</svg>", page, flags=re.S)]


@pytest.fixture(params=["ab", "mvt"])
def page(request: pytest.FixtureRequest) -> str:
    return render_report(ab_results() if request.param == "ab" else mvt_results())


def test_the_page_is_balanced_html(page: str) -> None:
    parser = _parse(page)
    assert parser.errors == []
    assert parser.stack == []
    assert page.startswith("<!DOCTYPE html>")


def test_every_chart_is_well_formed_svg(page: str) -> None:
    svgs = _svgs(page)
    assert svgs
    for svg in svgs:
        assert svg.get("viewBox", "").startswith("0 0 ")
        assert svg.get("width") is None  # sized by CSS, so it never overflows a phone


def test_the_page_loads_nothing_from_anywhere(page: str) -> None:
    lowered = page.lower()
    assert "http://" not in lowered
    assert "https://" not in lowered
    assert "<script" not in lowered
    assert "<link" not in lowered
    assert "url(" not in lowered
    assert "@import" not in lowered
    for _tag, attrs in _parse(page).tags:
        assert "src" not in attrs
        assert not (attrs.get("href") or "#").lstrip().startswith(("//", "http"))


def test_a_hostile_arm_name_is_escaped_everywhere() -> None:
    page = render_report(ab_results())
    assert EVIL not in page
    assert "<script" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "hero&amp;spring" in page
    assert "mobile &amp; &lt;tablet&gt;" in page


def test_title_and_header_name_the_experiment() -> None:
    page = render_report(ab_results())
    assert "<title>Experiment hero&amp;spring — Omotenashi</title>" in page
    for fact in ("slot:home_hero", "A/B/n", "running", "2024-05-01 08:00 UTC", "50%", "33%"):
        assert fact in page


def test_metrics_have_a_forest_plot_and_an_arms_table_primary_first() -> None:
    page = render_report(ab_results())
    forests = re.findall(r'<figure class="forest" data-metric="([^"]*)">\s*<svg', page)
    assert forests == ["purchase", "revenue"]
    tables = re.findall(r'<table class="arms" data-metric="([^"]*)"', page)
    assert tables == ["purchase", "revenue"]


def test_numbers_are_formatted_for_people() -> None:
    page = render_report(ab_results())
    for text in (
        "10,050",  # n grouped
        "5.75%",  # a conversion mean as a rate
        "+15.0%",  # lift with sign
        "[+5.2%, +24.8%]",  # its CI
        "&lt;0.001",  # tiny p-values (escaped)
        "0.412",  # 3 significant digits
        "0.825",
        "99.9%",  # chance to beat control
        "+14.8%",  # CUPED lift
        "31.2%",  # variance reduction
        "significant (p 0.0180)",
        "8.2% relative lift",  # MDE
        "12,345 more visitors per arm",
    ):
        assert text in page, text


def test_undefined_numbers_read_as_a_dash() -> None:
    """Control mean 0 leaves lift undefined and there is no CUPED: a dash, not 0 or None."""
    page = render_report(ab_results())
    revenue = page[page.index('data-metric="revenue"') :]
    assert "None" not in page
    assert "nan" not in page.lower()
    assert '<td class="num key">—</td>' in revenue
    assert "no estimate" in revenue


def test_significant_arms_are_coloured_and_others_grey() -> None:
    page = render_report(mvt_results())
    forest = page[page.index('class="forest"') : page.index("</figure>")]
    assert "#0072B2" in forest  # blue|L: significantly better
    assert "#C85200" in forest  # blue|R: significantly worse
    assert "#8C8C8C" in forest  # red|R: not significant
    assert '<tr class="positive"><th scope="row">blue|L</th>' in page


def test_the_srm_banner_shows_only_when_flagged() -> None:
    assert 'id="srm"' not in render_report(ab_results(srm_flag=False))
    flagged = render_report(ab_results(srm_flag=True))
    assert '<div id="srm" class="banner" role="alert">' in flagged
    assert "Sample ratio mismatch" in flagged


def test_exposure_chart_has_a_line_per_arm_and_dates() -> None:
    page = render_report(ab_results())
    (exposure,) = re.findall(r'<figure id="exposure">(<svg.*?</svg>)', page, flags=re.S)
    svg = ET.fromstring(exposure)
    assert len(svg.findall(".//polyline")) == 3
    assert "2024-05-01" in exposure


def test_mvt_has_an_effects_chart_and_ab_does_not() -> None:
    mvt = render_report(mvt_results())
    assert 'id="effects"' not in render_report(ab_results())
    effects = mvt[mvt.index('id="effects"') :]
    assert '<figure class="effects-chart" data-metric="click">' in effects
    for term in ("colour=blue", "layout=R", "colour=blue:layout=R"):
        assert f'<th scope="row">{term}</th>' in effects
    assert "[-0.0146, -0.0024]" in effects
    assert "colour: red, blue" in mvt


def test_an_experiment_without_data_still_renders() -> None:
    empty = mvt_results()
    empty["metrics"], empty["exposure"] = [], []
    empty["srm"] = {"p_value": None, "flag": False, "counts": {}, "expected": {}}
    empty["experiment"].update(status="draft", started_at=None, stopped_at=None)
    page = render_report(empty)
    assert _parse(page).errors == []
    assert "No exposures recorded yet" in page
    for svg in _svgs(page):
        assert svg.tag == "svg"

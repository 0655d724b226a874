"""The terminal report (`omotenashi report EXP_ID`) and the number formats both reports share."""

from __future__ import annotations

from typing import Any

import pytest

from engine.experiments.report_text import (
    format_ci,
    format_lift,
    format_p,
    mde_sentence,
    render_text,
)
from tests.support.experiment_results import arm_row


def results(arms: list[dict[str, Any]], *, srm_flag: bool = False, **metric: Any) -> dict[str, Any]:
    """A results document with one metric over the given arms."""
    names = [a["arm"] for a in arms]
    return {
        "experiment": {
            "id": "hero-spring",
            "target": "slot:home_hero",
            "type": "mvt" if metric.get("effects") else "ab",
            "status": "running",
            "started_at": 1_714_550_400.0,
            "stopped_at": None,
            "traffic": 1.0,
            "layer": None,
            "arms": [{"name": n, "weight": 2.0} for n in names],
            "factors": None,
            "metrics": [],
            "control": names[0],
        },
        "srm": {"p_value": 0.0002 if srm_flag else 0.51, "flag": srm_flag, "counts": {},
                "expected": {}},
        "exposure": [],
        "alpha": 0.05,
        "metrics": [{"name": "purchase", "primary": True, "aggregation": "conversion",
                     "arms": arms, "mde": None, "sample_size_needed": None, "segments": [],
                     "effects": None, "cells": None, **metric}],
    }  # fmt: skip


AB = results(
    [
        arm_row("control", 10_000, 0.05),
        arm_row("bold", 10_050, 0.0575, lift=0.15, lift_ci=[0.0523, 0.2477], p_value=0.00042,
             p_value_adjusted=0.00084, chance_to_beat_control=0.9991, significant=True,
             sequential={"p_value": 0.018, "lift_ci": [0.01, 0.29], "significant": True}),
        arm_row("<script>alert(1)</script>", 9_950, 0.0482, lift=-0.036, lift_ci=[-0.121, 0.049],
             p_value=0.4123, p_value_adjusted=0.8246, chance_to_beat_control=0.206),
    ],
    mde=0.082,
    sample_size_needed=12_345,
)  # fmt: skip
MVT = results(
    [arm_row("red|L", 5_000, 0.1),
     arm_row("blue|R", 5_000, 0.088, lift=-0.12, lift_ci=[-0.21, -0.03], p_value=0.009,
             significant=True)],
    effects=[{"term": "layout=R", "estimate": -0.0085, "standard_error": 0.0031,
              "ci": [-0.0146, -0.0024], "p_value": 0.006}],
)  # fmt: skip


def _row(text: str, first_cell: str) -> list[str]:
    (line,) = [ln for ln in text.splitlines() if ln.startswith(first_cell)]
    return line.split()


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0.123, "+12.3%"), (-0.036, "-3.6%"), (0.0, "+0.0%"), (None, "—"), (float("nan"), "—")],
)
def test_lifts_are_signed_percentages(value: float | None, expected: str) -> None:
    assert format_lift(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0.4123, "0.412"), (0.5, "0.500"), (0.009, "0.00900"), (0.00099, "<0.001"), (None, "—")],
)
def test_p_values_have_three_significant_digits(value: float | None, expected: str) -> None:
    assert format_p(value) == expected


def test_an_interval_with_a_missing_bound_is_a_dash() -> None:
    assert format_ci([0.0523, 0.2477]) == "[+5.2%, +24.8%]"
    assert format_ci([None, 0.2]) == "—"
    assert format_ci(None) == "—"


def test_the_table_has_one_aligned_row_perarm_row() -> None:
    text = render_text(AB)
    assert _row(text, "bold") == [
        "bold", "10,050", "5.75%", "+15.0%", "[+5.2%,", "+24.8%]", "<0.001", "<0.001",
        ">99.9%", "significant", "(p", "0.0180)",
    ]  # fmt: skip
    assert _row(text, "control") == ["control", "10,000", "5.00%", *["—"] * 6]
    lines = text.splitlines()
    header = next(ln for ln in lines if ln.startswith("arm "))
    rows = [ln for ln in lines if ln.startswith(("control", "bold", "<script>"))]
    # numbers right-aligned: each row's n ends where the header's "n" does
    n_end = header.index(" n ") + 2
    assert all(row[n_end - 1].isdigit() and row[n_end] == " " for row in rows)


def test_header_srm_and_weights() -> None:
    text = render_text(AB)
    assert text.startswith("Experiment hero-spring  (slot:home_hero, ab, running)\n")
    assert "started 2024-05-01 08:00 UTC, stopped —, traffic 100%" in text
    assert "arms: control 33%, bold 33%" in text  # weights 2:2:2 shown as shares
    assert "SRM: ok (p 0.510)" in text
    assert "SRM WARNING" in render_text(results(AB["metrics"][0]["arms"], srm_flag=True))
    assert "Minimum detectable effect at the current sample: 8.2% relative lift; " in text


def test_undefined_values_are_dashes_not_errors() -> None:
    zero = results([arm_row("control", 100, 0.0), arm_row("b", 100, 0.5, lift=None)])
    assert _row(render_text(zero), "b") == ["b", "100", "50.00%", *["—"] * 6]
    assert "None" not in render_text(zero)


def test_names_cannot_drive_the_terminal() -> None:
    sneaky = results([arm_row("control", 1, 0.1), arm_row("x\x1b[2Jy\n", 1, 0.1, lift=0.0)])
    text = render_text(sneaky)
    assert "\x1b" not in text
    assert "x?[2Jy?" in text


def test_wide_characters_keep_columns_aligned() -> None:
    text = render_text(results([arm_row("対照", 1_000, 0.1), arm_row("ab", 1_000, 0.1, lift=0.0)]))
    control, other = (ln for ln in text.splitlines() if ln.startswith(("対照", "ab ")))
    # "対照" takes four terminal columns, so it is padded with two fewer spaces than "ab"
    assert len(control) == len(other) - 2


def test_mvt_effects_get_their_own_table() -> None:
    text = render_text(MVT)
    assert "effects (MVT)" in text
    assert _row(text, "layout=R") == [
        "layout=R", "-0.0085", "0.0031", "[-0.0146,", "-0.0024]", "0.00600",
    ]  # fmt: skip
    assert "red|L (control)" in text
    assert "effects" not in render_text(AB)


def test_mde_sentence_says_what_is_still_needed() -> None:
    metric = {"mde": 0.05, "sample_size_needed": 0}
    assert mde_sentence(metric).endswith("already large enough to detect it.")
    assert mde_sentence({"mde": None, "sample_size_needed": 10}) == ""

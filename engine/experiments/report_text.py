"""An experiment's results as a terminal table, and the way the report writes numbers.

`omotenashi report EXP_ID` prints `render_text`; the HTML page (`report_html`) uses the
same `format_*` functions so the terminal and the browser never disagree on a number.
Input is the results document of `GET /v1/experiments/{id}/results`, where every float
may be null: a missing number is written as an em dash, never as 0 or "None".
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

DASH = "—"
# Rates (conversion) read best as percentages; counts and sums as plain numbers.
RATE_AGGREGATIONS = frozenset({"conversion"})


def finite(x: Any) -> float | None:
    """A JSON number as a float, or None when it is null (or NaN/inf, which JSON cannot carry)."""
    if x is None or isinstance(x, bool):
        return None
    value = float(x)
    return value if math.isfinite(value) else None


def format_lift(x: Any) -> str:
    """A relative lift with its sign: 0.123 -> "+12.3%"."""
    value = finite(x)
    return DASH if value is None else f"{value * 100:+.1f}%"


def format_ci(ci: Any, fmt: Callable[[Any], str] = format_lift) -> str:
    """An interval "[lo, hi]" in the given format; a dash when either bound is missing."""
    if not ci or len(ci) != 2 or finite(ci[0]) is None or finite(ci[1]) is None:
        return DASH
    return f"[{fmt(ci[0])}, {fmt(ci[1])}]"


def format_p(x: Any) -> str:
    """A p-value with 3 significant digits, "<0.001" below that: tiny p-values are noise."""
    value = finite(x)
    if value is None:
        return DASH
    if value < 0.001:
        return "<0.001"
    return f"{value:#.3g}"


def format_share(x: Any, digits: int = 1) -> str:
    """A probability or share as a percentage without sign: 0.973 -> "97.3%"."""
    value = finite(x)
    return DASH if value is None else f"{value * 100:.{digits}f}%"


def format_chance(x: Any) -> str:
    """A probability as a percentage that never rounds to a certainty it is not: ">99.9%"."""
    value = finite(x)
    if value is not None and value > 0.999:
        return ">99.9%"
    if value is not None and value < 0.001:
        return "<0.1%"
    return format_share(value)


def format_number(x: Any) -> str:
    """A metric value in its own unit: 4 significant digits, thousands grouped."""
    value = finite(x)
    if value is None:
        return DASH
    if abs(value) >= 999.5:
        return f"{value:,.0f}"
    return f"{value:.4g}"


def format_mean(x: Any, aggregation: str) -> str:
    """A metric mean: a rate as a percentage, a count or sum per visitor as a number."""
    if aggregation in RATE_AGGREGATIONS:
        return format_share(x, digits=2)
    return format_number(x)


def format_count(n: Any) -> str:
    """A visitor count with thousands grouped."""
    return DASH if n is None else f"{int(n):,}"


def format_time(ts: Any) -> str:
    """A unix timestamp as a UTC date and minute: reports are read across time zones."""
    value = finite(ts)
    if value is None:
        return DASH
    return datetime.fromtimestamp(value, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


def sequential_status(seq: Mapping[str, Any] | None) -> str:
    """The always-valid test's verdict: it may be acted on at any look, unlike the fixed p."""
    if not seq:
        return DASH
    verdict = "significant" if seq.get("significant") else "not yet"
    p = seq.get("p_value")
    return verdict if finite(p) is None else f"{verdict} (p {format_p(p)})"


def alpha_of(results: Mapping[str, Any]) -> float:
    """The significance level the results were computed at (0.05 unless they say)."""
    alpha = finite(results.get("alpha"))
    return 0.05 if alpha is None else alpha


def confidence_label(results: Mapping[str, Any]) -> str:
    """ "95% CI" for alpha 0.05: intervals are labelled with the level they were computed at."""
    return f"{(1 - alpha_of(results)) * 100:g}% CI"


def arm_label(arm: Mapping[str, Any]) -> str:
    """An arm's name, marked when it is the control (unless its name already says so)."""
    name = str(arm.get("arm", ""))
    return f"{name} (control)" if arm.get("control") and name != "control" else name


def arm_shares(experiment: Mapping[str, Any]) -> list[tuple[str, float | None]]:
    """Each arm's share of the experiment's traffic: weights may be given in any scale."""
    arms = experiment.get("arms") or []
    weights = [finite(a.get("weight")) or 0.0 for a in arms]
    total = sum(weights)
    return [
        (str(a.get("name", "")), w / total if total > 0 else None)
        for a, w in zip(arms, weights, strict=True)
    ]


def mde_sentence(metric: Mapping[str, Any]) -> str:
    """What the experiment can detect now, and how much longer it needs ("" when unknown)."""
    mde = finite(metric.get("mde"))
    if mde is None:
        return ""
    needed = metric.get("sample_size_needed")
    text = f"Minimum detectable effect at the current sample: {format_share(mde)} relative lift"
    if needed is None:
        return text + "."
    if needed <= 0:
        return text + "; the sample is already large enough to detect it."
    return text + f"; {format_count(needed)} more visitors per arm are needed to detect it."


def metrics_in_order(results: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The metrics with the primary one first: it is the one the decision rests on."""
    metrics: list[Mapping[str, Any]] = list(results.get("metrics") or [])
    return sorted(metrics, key=lambda m: not m.get("primary"))


def _clean(text: Any) -> str:
    """User-given names without control characters, so a name cannot drive the terminal."""
    return "".join("?" if unicodedata.category(c)[0] == "C" else c for c in str(text))


def _width(text: str) -> int:
    """Columns a string takes in a terminal: East Asian wide characters take two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], align: str) -> list[str]:
    """Aligned columns, "<" (names, words) or ">" (numbers) per column, a rule under the head."""
    widths = [max(_width(row[i]) for row in (header, *rows)) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        padded = [
            cell + " " * (w - _width(cell)) if a == "<" else " " * (w - _width(cell)) + cell
            for cell, w, a in zip(cells, widths, align, strict=True)
        ]
        return "  ".join(padded).rstrip()

    head = line(header)
    return [head, "-" * _width(head), *(line(r) for r in rows)]


def _srm_line(results: Mapping[str, Any]) -> str:
    srm = results.get("srm") or {}
    p = format_p(srm.get("p_value"))
    if srm.get("flag"):
        return (
            f"SRM WARNING: the split of visitors differs from the design (p {p}); "
            "check assignment before trusting these results"
        )
    return f"SRM: ok (p {p})"


def arm_cells(arm: Mapping[str, Any], aggregation: str) -> list[str]:
    """The cells both reports show for an arm, formatted once: name, n, mean, lift, its
    CI, p, adjusted p, chance to beat control."""
    return [
        arm_label(arm),
        format_count(arm.get("n")),
        format_mean(arm.get("mean"), aggregation),
        format_lift(arm.get("lift")),
        format_ci(arm.get("lift_ci")),
        format_p(arm.get("p_value")),
        format_p(arm.get("p_value_adjusted")),
        format_chance(arm.get("chance_to_beat_control")),
    ]


def _arm_rows(metric: Mapping[str, Any]) -> list[list[str]]:
    aggregation = str(metric.get("aggregation", ""))
    rows = []
    for arm in metric.get("arms") or []:
        name, *cells = arm_cells(arm, aggregation)
        rows.append([_clean(name), *cells, sequential_status(arm.get("sequential"))])
    return rows


def _effect_rows(metric: Mapping[str, Any]) -> list[list[str]]:
    return [
        [
            _clean(e.get("term", "")),
            format_number(e.get("estimate")),
            format_number(e.get("standard_error")),
            format_ci(e.get("ci"), format_number),
            format_p(e.get("p_value")),
        ]
        for e in metric.get("effects") or []
    ]


def _metric_block(metric: Mapping[str, Any], ci_label: str) -> list[str]:
    title = _clean(metric.get("name", ""))
    tags = [t for t in ("primary" if metric.get("primary") else "", metric.get("aggregation")) if t]
    lines = [f"{title} [{', '.join(_clean(t) for t in tags)}]" if tags else title]
    mde = mde_sentence(metric)
    if mde:
        lines.append(mde)
    header = ["arm", "n", "mean", "lift", ci_label, "p", "adj p", "P(beat)", "seq"]
    lines += _table(header, _arm_rows(metric), "<>>>>>>><")
    effects = _effect_rows(metric)
    if effects:
        lines += ["", "effects (MVT)"]
        lines += _table(["term", "estimate", "std err", ci_label, "p"], effects, "<>>>>")
    return lines


def render_text(results: Mapping[str, Any]) -> str:
    """The report's main table for the terminal: one block per metric, primary first."""
    exp = results.get("experiment") or {}
    head = (
        f"Experiment {_clean(exp.get('id', ''))}  "
        f"({_clean(exp.get('target', ''))}, {_clean(exp.get('type', ''))}, "
        f"{_clean(exp.get('status', ''))})"
    )
    arms = ", ".join(f"{_clean(name)} {format_share(share, 0)}" for name, share in arm_shares(exp))
    factors = "; ".join(
        f"{_clean(f.get('name', ''))} ({', '.join(_clean(v) for v in f.get('levels') or [])})"
        for f in exp.get("factors") or []
    )
    lines = [
        head,
        f"started {format_time(exp.get('started_at'))}, "
        f"stopped {format_time(exp.get('stopped_at'))}, "
        f"traffic {format_share(exp.get('traffic'), 0)}",
        f"arms: {arms or DASH}; control: {_clean(exp.get('control') or DASH)}",
        *([f"factors: {factors}"] if factors else []),
        _srm_line(results),
    ]
    ci_label = confidence_label(results)
    for metric in metrics_in_order(results):
        lines += ["", *_metric_block(metric, ci_label)]
    return "\n".join(lines) + "\n"

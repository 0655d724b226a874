"""An experiment's results as one self-contained HTML page, for people who decide on it.

The page carries its own CSS and SVG charts (`svg_charts`) and references nothing
outside itself, so it opens offline, from a mail attachment or an archive; a
Content-Security-Policy forbids scripts and remote loads besides. Experiment ids, arm,
metric, segment and term names are user input: each is escaped where it enters markup
(`html.escape` here and in `svg_charts`). Numbers are written by `report_text`'s
formatters, so the page and `omotenashi report` say the same thing.

Stable hooks for browser tests: `id="srm"` (only when the sample ratio check flags),
`figure.forest[data-metric]` per metric, `id="exposure"`, `id="effects"` (MVT only),
`table.arms[data-metric]`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from html import escape
from typing import Any

from engine.experiments.report_text import (
    DASH,
    alpha_of,
    arm_cells,
    arm_shares,
    confidence_label,
    finite,
    format_ci,
    format_count,
    format_lift,
    format_mean,
    format_number,
    format_p,
    format_share,
    format_time,
    mde_sentence,
    metrics_in_order,
    sequential_status,
)
from engine.experiments.svg_charts import (
    ForestRow,
    Interval,
    Series,
    Tone,
    forest_svg,
    line_chart_svg,
)

STATUSES = frozenset({"draft", "running", "stopped"})
TYPES = {"ab": "A/B/n", "mvt": "Multivariate"}
CSP = "default-src 'none'; style-src 'unsafe-inline'"
CSS = """
:root{--fg:#1d1d1f;--muted:#5f6368;--line:#e3e3e3;--blue:#0072B2;--orange:#C85200}
*{box-sizing:border-box}main{max-width:1200px;margin:0 auto;padding:24px 16px 48px}
body{margin:0;color:var(--fg);background:#fff;
font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
h1,h2,h3,dd,li,tbody th{overflow-wrap:anywhere}h1{font-size:1.6rem;margin:.2rem 0 1rem}
h2{font-size:1.25rem;margin:2rem 0 .5rem;padding-top:1rem;border-top:1px solid var(--line)}
h3{font-size:1rem;margin:1.4rem 0 .4rem}
.eyebrow{margin:0;color:var(--muted);font-size:.8rem;text-transform:uppercase;letter-spacing:.06em}
.facts{display:grid;grid-template-columns:repeat(auto-fill,minmax(180px,1fr));gap:8px 24px;margin:0}
.facts div{min-width:0}.facts dt{color:var(--muted);font-size:.8rem}.facts dd{margin:0}
.tag{display:inline-block;font-size:.75rem;font-weight:600;padding:1px 8px;border-radius:10px;
vertical-align:middle;background:#eee;color:#444}.tag.primary{background:#1d1d1f;color:#fff}
.tag.running{background:#e3f0f8;color:#00507d}.tag.draft{background:#fff1dc;color:#7a4300}
.chips{list-style:none;padding:0;margin:.8rem 0 0;display:flex;flex-wrap:wrap;gap:6px}
.chips li{border:1px solid var(--line);border-radius:14px;padding:2px 10px}
.banner{border:2px solid var(--orange);background:#fff3ea;padding:12px 16px;border-radius:6px;
margin:18px 0}
figure{margin:12px 0}svg.chart{display:block;width:100%;height:auto}svg.compact{display:none}
figcaption,.note{color:var(--muted);font-size:.85rem;margin:.3rem 0}
.table-wrap{overflow-x:auto;margin:8px 0}
table{border-collapse:collapse;width:100%;font-size:.84rem;font-variant-numeric:tabular-nums}
.cells,.exposure{width:auto;min-width:min(100%,520px)}
th,td{padding:6px;border-bottom:1px solid var(--line);text-align:left;white-space:nowrap}
thead th{color:var(--muted);font-weight:600;font-size:.78rem;border-bottom:2px solid #ccc;
white-space:normal;vertical-align:bottom}tbody th{font-weight:600;white-space:normal;min-width:7em}
.num{text-align:right}.wrap{white-space:normal;min-width:8em}tr.control th{font-weight:400}
tr.positive .key{color:var(--blue);font-weight:700}
tr.negative .key{color:var(--orange);font-weight:700}
footer{margin-top:2.5rem;color:var(--muted);font-size:.8rem}
@media (max-width:600px){body{font-size:14px}main{padding:14px 10px}th,td{padding:5px 6px}
.facts{grid-template-columns:repeat(auto-fill,minmax(140px,1fr))}
svg.wide{display:none}svg.compact{display:block}}
"""
Row = tuple[str, Sequence[str]]  # (row class, cells): the first cell names the row


def _bounds(ci: Any) -> tuple[float | None, float | None]:
    return (finite(ci[0]), finite(ci[1])) if ci and len(ci) == 2 else (None, None)


def _tone(significant: bool, estimate: float | None) -> Tone:
    """Blue for a significant gain, orange for a significant loss, grey otherwise."""
    if not significant or not estimate:
        return "neutral"
    return "positive" if estimate > 0 else "negative"


def _table(
    cls: str, header: Sequence[str], rows: Sequence[Row], classes: Sequence[str], metric: str = ""
) -> str:
    """A table whose first column names the row; every cell is escaped here."""
    data = f' data-metric="{escape(metric)}"' if metric else ""
    head = "".join(
        f'<th scope="col" class="{c}">{escape(h)}</th>'
        for h, c in zip(header, ("", *classes), strict=True)
    )
    body = "".join(
        f'<tr class="{row_class}"><th scope="row">{escape(cells[0])}</th>'
        + "".join(
            f'<td class="{c}">{escape(v)}</td>' for v, c in zip(cells[1:], classes, strict=True)
        )
        + "</tr>"
        for row_class, cells in rows
    )
    return (
        f'<div class="table-wrap"><table class="{cls}"{data}><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table></div>"
    )


def _figure(attrs: str, wide: str, compact: str, caption: str) -> str:
    """A chart in both layouts; CSS shows the one that fits the screen."""
    return f"<figure {attrs}>{wide}{compact}<figcaption>{escape(caption)}</figcaption></figure>"


def _interval(
    label: str, estimate: Any, ci: Any, significant: bool, thickness: float, note: str
) -> Interval:
    low, high = _bounds(ci)
    point = finite(estimate)
    # Without a point estimate (the sequential interval) the interval's middle gives the sign.
    direction = point if point is not None or low is None or high is None else (low + high) / 2
    return Interval(
        label=label,
        estimate=point,
        low=low,
        high=high,
        tone=_tone(significant, direction),
        thickness=thickness,
        value=format_lift(point) if point is not None else "",
        note=note,
        whiskers=thickness < 3,
    )


def _forest_rows(metric: Mapping[str, Any], ci_label: str, alpha: float) -> list[ForestRow]:
    """Per treatment arm: the lift CI, then CUPED's, then the always-valid one if present."""
    rows = []
    for arm in metric.get("arms") or []:
        if arm.get("control"):
            continue
        lift, ci = arm.get("lift"), arm.get("lift_ci")
        note = f"lift {format_lift(lift)}, {format_ci(ci)}, p {format_p(arm.get('p_value'))}"
        bars = [_interval(ci_label, lift, ci, bool(arm.get("significant")), 10, note)]
        cuped, seq = arm.get("cuped") or {}, arm.get("sequential") or {}
        if cuped.get("lift_ci"):
            p = finite(cuped.get("p_value"))
            note = (
                f"lift {format_lift(cuped.get('lift'))}, {format_ci(cuped['lift_ci'])}, "
                f"p {format_p(p)}, variance {format_share(cuped.get('variance_reduction'))} lower"
            )
            significant = p is not None and p < alpha
            bars.append(
                _interval("CUPED", cuped.get("lift"), cuped["lift_ci"], significant, 5, note)
            )
        if seq.get("lift_ci"):
            note = f"{format_ci(seq['lift_ci'])}, {sequential_status(seq)}"
            significant = bool(seq.get("significant"))
            bars.append(_interval("always-valid", None, seq["lift_ci"], significant, 2, note))
        rows.append(ForestRow(label=str(arm.get("arm", "")), intervals=tuple(bars)))
    return rows


def _forest(metric: Mapping[str, Any], ci_label: str, alpha: float, control: str) -> str:
    name = str(metric.get("name", ""))
    rows = _forest_rows(metric, ci_label, alpha)
    kinds = {iv.label for row in rows for iv in row.intervals}
    caption = (
        f"Bars are {ci_label}s of the relative lift over control ({control}); an arm whose bar "
        "does not cross 0 differs from control. Blue: significantly better, orange: "
        "significantly worse, grey: not significant."
    )
    if "CUPED" in kinds:
        caption += " The thinner bar is the CUPED interval (pre-experiment variance removed)."
    if "always-valid" in kinds:
        caption += " The whiskered line is the sequential interval, valid at any look."
    title = f"Lift by arm: {name}"
    wide = forest_svg(rows, unit="percent", title=title)
    compact = forest_svg(rows, unit="percent", title=title, compact=True)
    return _figure(f'class="forest" data-metric="{escape(name)}"', wide, compact, caption)


def _arm_cells(arm: Mapping[str, Any], aggregation: str) -> tuple[str, ...]:
    cuped, seq = arm.get("cuped") or {}, arm.get("sequential") or {}
    cuped_lift = format_lift(cuped.get("lift"))
    if cuped.get("lift_ci"):
        cuped_lift += f" {format_ci(cuped['lift_ci'])}"
    return (
        *arm_cells(arm, aggregation),
        cuped_lift,
        format_share(cuped.get("variance_reduction")),
        sequential_status(arm.get("sequential")),
        format_ci(seq.get("lift_ci")),
    )


def _arms_table(metric: Mapping[str, Any], ci_label: str) -> str:
    header = ("Arm", "n", "Mean", "Lift", ci_label, "p", "p adj.", "P(beat control)",
              f"CUPED lift ({ci_label})", "Variance reduction", "Sequential",
              f"Always-valid {ci_label}")  # fmt: skip
    classes = ("num", "num", "num key", "num", "num", "num key", "num", "num", "num", "wrap", "num")
    aggregation = str(metric.get("aggregation", ""))
    rows: list[Row] = [
        (
            "control"
            if arm.get("control")
            else _tone(bool(arm.get("significant")), finite(arm.get("lift"))),
            _arm_cells(arm, aggregation),
        )
        for arm in metric.get("arms") or []
    ]
    return _table("arms", header, rows, classes, metric=str(metric.get("name", "")))


def _segments_table(metric: Mapping[str, Any], ci_label: str, control: str) -> str:
    aggregation = str(metric.get("aggregation", ""))
    rows: list[Row] = [
        (
            "control" if arm.get("arm") == control else "",
            (
                str(segment.get("segment", "")),
                str(arm.get("arm", "")),
                format_count(arm.get("n")),
                format_mean(arm.get("mean"), aggregation),
                format_lift(arm.get("lift")),
                format_ci(arm.get("lift_ci")),
                format_p(arm.get("p_value")),
            ),
        )
        for segment in metric.get("segments") or []
        for arm in segment.get("arms") or []
    ]
    if not rows:
        return ""
    header = ("Segment", "Arm", "n", "Mean", "Lift", ci_label, "p")
    classes = ("", "num", "num", "num", "num", "num")
    return (
        '<h3>By segment</h3><p class="note">Segment p-values are not adjusted for the number '
        "of segments: read them as leads for a new test, not as results.</p>"
        + _table("segments", header, rows, classes, metric=str(metric.get("name", "")))
    )


def _metric_section(metric: Mapping[str, Any], index: int, results: Mapping[str, Any]) -> str:
    ci_label, control = confidence_label(results), str(results["experiment"].get("control", ""))
    alpha = alpha_of(results)
    name = escape(str(metric.get("name", "")))
    primary = ' <span class="tag primary">primary</span>' if metric.get("primary") else ""
    aggregation = escape(str(metric.get("aggregation", "")))
    mde = mde_sentence(metric)
    return (
        f'<section class="metric" id="metric-{index}"><h2>{name}{primary} '
        f'<span class="tag">{aggregation}</span></h2>'
        f"{_forest(metric, ci_label, alpha, control)}{_arms_table(metric, ci_label)}"
        + (f'<p class="note mde">{escape(mde)}</p>' if mde else "")
        + f"{_segments_table(metric, ci_label, control)}</section>"
    )


def _header(results: Mapping[str, Any]) -> str:
    exp = results["experiment"]
    status = str(exp.get("status", ""))
    srm = results.get("srm") or {}
    srm_text = "mismatch" if srm.get("flag") else "passed"
    facts = (
        ("Target", str(exp.get("target", ""))),
        ("Type", TYPES.get(str(exp.get("type")), str(exp.get("type", "")))),
        ("Started", format_time(exp.get("started_at"))),
        ("Stopped", format_time(exp.get("stopped_at"))),
        ("Traffic", format_share(exp.get("traffic"), 0)),
        ("Layer", str(exp.get("layer") or DASH)),
        ("Control", str(exp.get("control", ""))),
        ("Sample ratio check", f"{srm_text} (p {format_p(srm.get('p_value'))})"),
    )
    chips = "".join(
        f"<li><strong>{escape(name)}</strong> {escape(format_share(share, 0))}</li>"
        for name, share in arm_shares(exp)
    )
    factors = "".join(
        f"<li>{escape(str(f.get('name', '')))}: "
        f"{escape(', '.join(str(level) for level in f.get('levels') or []))}</li>"
        for f in exp.get("factors") or []
    )
    return (
        '<header><p class="eyebrow">Omotenashi experiment report</p>'
        f'<h1>Experiment {escape(str(exp.get("id", "")))} <span class="tag '
        f'{status if status in STATUSES else "unknown"}">{escape(status)}</span></h1>'
        '<dl class="facts">'
        + "".join(f"<div><dt>{escape(k)}</dt><dd>{escape(v)}</dd></div>" for k, v in facts)
        + f'</dl><ul class="chips" aria-label="Arms and weights">{chips}</ul>'
        + (f'<ul class="chips" aria-label="Factors">{factors}</ul>' if factors else "")
        + "</header>"
    )


def _srm_banner(results: Mapping[str, Any]) -> str:
    """A warning before any number: with a broken split, no lift below can be trusted."""
    srm = results.get("srm") or {}
    if not srm.get("flag"):
        return ""
    return (
        '<div id="srm" class="banner" role="alert"><strong>Sample ratio mismatch.</strong> '
        "The split of visitors across arms differs from the designed weights "
        f"(p {escape(format_p(srm.get('p_value')))}). Assignment or logging is likely broken; "
        "check it before trusting any result below.</div>"
    )


def _exposure(results: Mapping[str, Any]) -> str:
    by_arm: dict[str, list[tuple[date, float]]] = {}
    for row in results.get("exposure") or []:
        day = date.fromisoformat(str(row["day"]))
        by_arm.setdefault(str(row["arm"]), []).append((day, float(row["cumulative"])))
    series = [Series(name=arm, points=tuple(points)) for arm, points in by_arm.items()]
    title = "Cumulative exposure by arm"
    wide = line_chart_svg(series, title=title, y_label="visitors")
    compact = line_chart_svg(series, title=title, y_label="visitors", compact=True)
    caption = (
        "Visitors exposed to each arm so far, by day (UTC). Lines should grow in the "
        "proportions of the arms' weights; the sample ratio check compares the totals."
    )
    srm = results.get("srm") or {}
    counts, expected = srm.get("counts") or {}, srm.get("expected") or {}
    total = sum(int(v) for v in counts.values())
    rows: list[Row] = [
        (
            "",
            (
                str(arm),
                format_count(counts.get(arm)),
                format_number(expected.get(arm)),
                format_share(int(counts.get(arm) or 0) / total if total else None),
            ),
        )
        for arm in dict.fromkeys([*counts, *expected])
    ]
    table = _table("exposure", ("Arm", "Visitors", "Expected", "Share"), rows, ("num",) * 3)
    figure = _figure('id="exposure"', wide, compact, caption)
    return f"<section><h2>Exposure</h2>{figure}{table}</section>"


def _effects_block(metric: Mapping[str, Any], ci_label: str, alpha: float) -> str:
    """One metric's MVT terms as a forest plot and a table, then the raw cell means."""
    name = str(metric.get("name", ""))
    bars, rows = [], []
    for e in metric.get("effects") or []:
        term, estimate, p = (
            str(e.get("term", "")),
            finite(e.get("estimate")),
            finite(e.get("p_value")),
        )
        low, high = _bounds(e.get("ci"))
        tone = _tone(p is not None and p < alpha, estimate)
        ci = format_ci(e.get("ci"), format_number)
        note = f"{format_number(estimate)}, {ci_label} {ci}, p {format_p(p)}"
        bar = Interval(ci_label, estimate, low, high, tone, 10, format_number(estimate), note)
        bars.append(ForestRow(label=term, intervals=(bar,)))
        se = format_number(e.get("standard_error"))
        rows.append((tone, (term, format_number(estimate), se, ci, format_p(p))))
    aggregation = str(metric.get("aggregation", ""))
    cells_rows: list[Row] = [
        (
            "",
            (
                str(c.get("cell", "")),
                format_count(c.get("n")),
                format_mean(c.get("mean"), aggregation),
            ),
        )
        for c in metric.get("cells") or []
    ]
    title = f"Effects: {name}"
    caption = (
        f"Each bar is the {ci_label} of one term's effect on {name}, in the metric's own unit; "
        "a bar that does not cross 0 is an effect the data supports."
    )
    figure = _figure(
        f'class="effects-chart" data-metric="{escape(name)}"',
        forest_svg(bars, unit="number", title=title),
        forest_svg(bars, unit="number", title=title, compact=True),
        caption,
    )
    header = ("Term", "Estimate", "Std. error", ci_label, "p")
    return (
        f"<h3>{escape(name)}</h3>{figure}"
        + _table("effects", header, rows, ("num key", "num", "num", "num"), metric=name)
        + _table("cells", ("Cell", "n", "Mean"), cells_rows, ("num", "num"), metric=name)
    )


def render_report(results: Mapping[str, Any]) -> str:
    """The whole report page: header, SRM warning, metrics (primary first), effects, exposure."""
    exp = results["experiment"]
    metrics = metrics_in_order(results)
    sections = "".join(_metric_section(m, i, results) for i, m in enumerate(metrics))
    alpha = alpha_of(results)
    effects = "".join(
        _effects_block(m, confidence_label(results), alpha)
        for m in metrics
        if m.get("effects") or m.get("cells")
    )
    if exp.get("type") == "mvt" and effects:
        sections += f'<section id="effects"><h2>Multivariate effects</h2>{effects}</section>'
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Experiment {escape(str(exp.get('id', '')))} — Omotenashi</title>"
        f"<style>{CSS}</style></head><body><main>{_header(results)}{_srm_banner(results)}"
        f"{sections}{_exposure(results)}<footer>Lifts are relative to the control arm; p adj. "
        "is adjusted for multiple comparisons; P(beat control) is the Bayesian probability "
        "that the arm's mean exceeds control's.</footer></main></body></html>\n"
    )

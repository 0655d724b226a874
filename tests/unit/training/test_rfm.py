"""RFM scores against an independent computation, the segment map, and the features an
RFM run writes."""

from __future__ import annotations

import math
import re
from bisect import bisect_left, bisect_right
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import training.rfm
from models.features import decode_features, feature_spec
from training.rfm import (
    SEGMENT_GRID,
    SEGMENTS,
    feature_rows,
    quintile_scores,
    rfm_scores,
    segment_names,
    summary,
)
from training.transactions import Transactions


def reference_scores(values: list[float]) -> list[int]:
    """ceil(5 * average rank / n), in exact arithmetic, with no numpy or scipy."""
    ordered = sorted(values)
    n = len(values)
    scores = []
    for v in values:
        below, through = bisect_left(ordered, v), bisect_right(ordered, v)
        average_rank = Fraction(below + 1 + through, 2)  # mean of ranks below+1 .. through
        scores.append(math.ceil(5 * average_rank / n))
    return scores


def tx(*rows: tuple[str, str, float]) -> Transactions:
    return Transactions(
        customer=np.array([r[0] for r in rows], dtype=object),
        day=np.array([r[1] for r in rows], dtype="datetime64[D]"),
        value=np.array([r[2] for r in rows], dtype=np.float64),
    )


@given(st.lists(st.integers(min_value=0, max_value=6), min_size=1, max_size=60))
def test_quintile_scores_match_exact_average_ranks_with_many_ties(values: list[int]) -> None:
    assert quintile_scores(values).tolist() == reference_scores([float(v) for v in values])


def test_distinct_values_fall_in_the_quintile_numpy_percentiles_give() -> None:
    values = np.random.default_rng(7).normal(size=1000)
    cuts = np.percentile(values, [20, 40, 60, 80], method="inverted_cdf")
    expected = 1 + np.searchsorted(cuts, values, side="left")
    scores = quintile_scores(values)
    assert scores.tolist() == expected.tolist()
    assert np.bincount(scores).tolist() == [0, 200, 200, 200, 200, 200]


def test_equal_values_share_a_score() -> None:
    assert quintile_scores([4.0] * 7).tolist() == [3] * 7
    # the one-time buyers, half the customers, all get the score of their average rank
    scores = quintile_scores([1] * 50 + list(range(2, 52)))
    assert set(scores[:50].tolist()) == {2}
    assert (scores.min(), scores.max()) == (2, 5)


def test_every_r_f_pair_has_exactly_one_segment_and_every_segment_is_used() -> None:
    assert [len(row) for row in SEGMENT_GRID] == [5] * 5
    r, f = np.meshgrid(np.arange(1, 6), np.arange(1, 6), indexing="ij")
    names = segment_names(r.ravel(), f.ravel())
    assert names.tolist() == [name for row in SEGMENT_GRID for name in row]
    assert set(names.tolist()) == set(SEGMENTS)
    assert len(SEGMENTS) == len(set(SEGMENTS)) == 11


def test_the_docstring_table_is_the_segment_grid() -> None:
    doc = training.rfm.__doc__ or ""
    rows = re.findall(r"^\| ([1-5]) +\|(.*)\|$", doc, flags=re.MULTILINE)
    table = {int(r): tuple(cell.strip() for cell in cells.split("|")) for r, cells in rows}
    assert table == {r: SEGMENT_GRID[r - 1] for r in range(1, 6)}


def test_recency_frequency_and_monetary_per_customer() -> None:
    table = rfm_scores(
        tx(
            ("b", "2024-01-10", 5.0),
            ("a", "2024-01-01", 10.0),
            ("a", "2024-01-05", 2.5),
            ("a", "2024-01-05", 1.0),  # a second order the same day is a second purchase
            ("c", "2024-01-03", 0.0),
        )
    )
    assert table.as_of == np.datetime64("2024-01-11")  # the day after the last purchase
    assert table.customer.tolist() == ["a", "b", "c"]
    assert table.recency_days.tolist() == [6, 1, 8]
    assert table.frequency.tolist() == [3, 1, 1]
    assert table.monetary.tolist() == [13.5, 5.0, 0.0]
    assert table.r.tolist() == quintile_scores([-6, -1, -8]).tolist() == [4, 5, 2]
    assert table.f.tolist() == [5, 3, 3]
    assert table.m.tolist() == [5, 4, 2]
    assert table.segment.tolist() == ["loyal", "potential_loyalist", "at_risk"]


def test_as_of_sets_recency_and_leaves_out_later_purchases() -> None:
    history = tx(
        ("a", "2024-01-01", 10.0),
        ("a", "2024-02-01", 99.0),
        ("b", "2024-01-20", 5.0),
        ("c", "2024-02-01", 1.0),
    )
    table = rfm_scores(history, np.datetime64("2024-02-01"))
    assert table.as_of == np.datetime64("2024-02-01")
    assert table.customer.tolist() == ["a", "b"]
    assert table.recency_days.tolist() == [31, 12]
    assert table.monetary.tolist() == [10.0, 5.0]
    with pytest.raises(ValueError, match="no transactions before 2024-01-01"):
        rfm_scores(history, np.datetime64("2024-01-01"))


def test_no_transactions_is_an_error() -> None:
    with pytest.raises(ValueError, match="no transactions"):
        rfm_scores(tx())


def test_summary_counts_every_customer_once_with_the_segment_means() -> None:
    rng = np.random.default_rng(11)
    n = 500
    history = Transactions(
        customer=np.array([f"c{i}" for i in rng.integers(0, 120, size=n)], dtype=object),
        day=np.datetime64("2024-01-01") + rng.integers(0, 365, size=n).astype("timedelta64[D]"),
        value=rng.gamma(2.0, 20.0, size=n),
    )
    table = rfm_scores(history)
    rows = summary(table)
    assert [s.segment for s in rows] == list(SEGMENTS)
    assert sum(s.customers for s in rows) == len(table) == len(set(history.customer.tolist()))
    assert sum(s.share for s in rows) == pytest.approx(1.0)
    for s in rows:
        members = table.segment == s.segment
        assert s.customers == members.sum()
        if s.customers:
            assert s.mean_recency_days == pytest.approx(table.recency_days[members].mean())
            assert s.mean_frequency == pytest.approx(table.frequency[members].mean())
            assert s.mean_monetary == pytest.approx(table.monetary[members].mean())
        else:
            assert math.isnan(s.mean_monetary)


def test_feature_rows_are_schema_features_that_decode_to_the_scores() -> None:
    table = rfm_scores(tx(("a", "2024-01-01", 10.25), ("b", "2024-01-03", 5.0)))
    rows = feature_rows(table, ["pid-a", "pid-b"])
    assert list(rows) == ["pid-a", "pid-b"]
    stored = {k.encode(): str(v).encode() for k, v in rows["pid-a"].items()}
    decoded = decode_features(stored, now=0.0)
    assert decoded == {
        "rfm_r": 3,
        "rfm_f": 4,  # a tie of two: average rank 1.5, ceil(5 * 1.5 / 2)
        "rfm_m": 5,
        "rfm_segment": "loyal",
        "rfm_recency_days": 3.0,
        "rfm_frequency": 1,
        "rfm_monetary": 10.25,
        "rfm_as_of": 1_704_326_400.0,  # 2024-01-04T00:00:00Z
    }
    for name, value in rows["pid-a"].items():
        spec = feature_spec(name)
        assert spec is not None, name
        assert spec.source == "offline", name
        assert type(value).__name__ == spec.type, name
    with pytest.raises(ValueError, match="1 pids for 2 customers"):
        feature_rows(table, ["pid-a"])

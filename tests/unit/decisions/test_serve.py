from __future__ import annotations

import re

from engine.decisions.serve import DecisionIds


def test_decision_ids_are_short_url_safe_and_do_not_repeat() -> None:
    ids = DecisionIds()
    drawn = [ids() for _ in range(20_000)]
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{12}", i) for i in drawn)
    assert len(set(drawn)) == len(drawn)


def test_each_worker_draws_its_own_sequence() -> None:
    assert [DecisionIds()() for _ in range(2)] != [DecisionIds()() for _ in range(2)]

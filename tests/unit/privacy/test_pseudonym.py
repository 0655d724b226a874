"""Pseudonyms: the stable, non-reversible id the engine stores instead of the client's."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.privacy.pseudonym import Pseudonymizer

DETERMINISTIC = settings(deadline=None, derandomize=True, database=None)
URL_SAFE_22 = re.compile(r"^[A-Za-z0-9_-]{22}$")


def test_same_visitor_and_key_give_the_same_pid() -> None:
    assert Pseudonymizer(b"key")("visitor-1") == Pseudonymizer(b"key")("visitor-1")


def test_pid_is_22_url_safe_characters() -> None:
    assert URL_SAFE_22.match(Pseudonymizer(b"key")("visitor-1"))


def test_pid_does_not_contain_the_visitor_id() -> None:
    assert "visitor" not in Pseudonymizer(b"key")("visitor-visitor-visitor")


def test_different_keys_give_different_pids() -> None:
    assert Pseudonymizer(b"key-a")("visitor-1") != Pseudonymizer(b"key-b")("visitor-1")


def test_different_visitors_give_different_pids() -> None:
    pseudonymize = Pseudonymizer(b"key")
    assert pseudonymize("visitor-1") != pseudonymize("visitor-2")


@DETERMINISTIC
@given(visitor_id=st.text(max_size=300))
def test_any_visitor_id_gives_a_22_char_url_safe_pid(visitor_id: str) -> None:
    assert URL_SAFE_22.match(Pseudonymizer(b"key")(visitor_id))

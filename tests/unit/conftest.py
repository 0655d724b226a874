"""Fixtures for unit tests: the engine core with fixed keys, no Redis, no HTTP."""

from __future__ import annotations

import pytest

from engine.decisions.tokens import DecisionToken, TokenSigner
from engine.keyring import Keyring
from engine.privacy.pseudonym import Pseudonymizer

SECRET = "unit-test-secret-" + "s" * 32


@pytest.fixture
def keyring() -> Keyring:
    return Keyring.from_secret(SECRET)


@pytest.fixture
def signer(keyring: Keyring) -> TokenSigner:
    return TokenSigner(keyring.tokens)


@pytest.fixture
def pseudonymize(keyring: Keyring) -> Pseudonymizer:
    return Pseudonymizer(keyring.pseudonyms)


@pytest.fixture
def decision_token() -> DecisionToken:
    return DecisionToken(
        decision_id="d-1",
        pid="G4CaMkXzApzeYF5D3Q9uqA",
        slot="home_hero",
        variant="spring",
        policy="rules",
        propensity=1.0,
        issued_at=1_700_000_000,
    )

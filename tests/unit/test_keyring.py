"""The keyring: one subkey per purpose, derived from the configured secret."""

from __future__ import annotations

from engine.keyring import Keyring, derive_key


def test_keyring_is_deterministic_for_a_secret() -> None:
    assert Keyring.from_secret("s3cret") == Keyring.from_secret("s3cret")


def test_token_and_pseudonym_keys_differ() -> None:
    keyring = Keyring.from_secret("s3cret")
    assert keyring.tokens != keyring.pseudonyms


def test_subkeys_are_not_the_secret_itself() -> None:
    keyring = Keyring.from_secret("s3cret")
    assert b"s3cret" not in (keyring.tokens, keyring.pseudonyms)


def test_different_secrets_give_different_subkeys() -> None:
    a, b = Keyring.from_secret("secret-a"), Keyring.from_secret("secret-b")
    assert a.tokens != b.tokens
    assert a.pseudonyms != b.pseudonyms


def test_derived_keys_are_32_bytes_and_differ_per_purpose() -> None:
    keys = {derive_key(b"secret", purpose) for purpose in ("tokens", "pseudonyms", "other")}
    assert len(keys) == 3
    assert all(len(key) == 32 for key in keys)


def test_keyring_uses_the_documented_derivation() -> None:
    keyring = Keyring.from_secret("s3cret")
    assert keyring.tokens == derive_key(b"s3cret", "tokens")
    assert keyring.pseudonyms == derive_key(b"s3cret", "pseudonyms")

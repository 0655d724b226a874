"""The keyring: one subkey per purpose, derived from the configured secret."""

from __future__ import annotations

import hashlib
import hmac
import threading

from hypothesis import given
from hypothesis import strategies as st

from engine.keyring import HmacSha256, Keyring, derive_key


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


@given(key=st.binary(max_size=200), messages=st.lists(st.binary(max_size=300), max_size=4))
def test_keyed_hash_is_the_standard_hmac_for_any_key_and_message(
    key: bytes, messages: list[bytes]
) -> None:
    mac = HmacSha256(key)  # keys past the 64-byte block are hashed first, as RFC 2104 says
    for message in messages:  # reused: each call starts from fresh copies of the pads
        assert mac(message) == hmac.digest(key, message, hashlib.sha256)


def test_keyed_hash_gives_the_same_answers_from_many_threads() -> None:
    mac = HmacSha256(b"k" * 32)
    wrong: list[bytes] = []

    def work(n: int) -> None:
        for i in range(2000):
            message = f"{n}:{i}".encode()
            if mac(message) != hmac.digest(b"k" * 32, message, hashlib.sha256):
                wrong.append(message)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []

"""Subkeys derived from the one configured secret, one per purpose, and the keyed hash
the hot path signs and pseudonymizes with.

A leaked token key must not reveal pseudonyms, and vice versa, so each purpose gets
its own key: HMAC-SHA256(secret, "omotenashi/<purpose>/v1").
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

_BLOCK = 64  # SHA-256's block size in bytes
_INNER_PAD = bytes(x ^ 0x36 for x in range(256))
_OUTER_PAD = bytes(x ^ 0x5C for x in range(256))


def derive_key(secret: bytes, purpose: str) -> bytes:
    return hmac.digest(secret, f"omotenashi/{purpose}/v1".encode(), hashlib.sha256)


class HmacSha256:
    """HMAC-SHA256 (RFC 2104) under one fixed key, its padded key hashed once.

    `hmac.digest` pads and hashes the key again on every call; starting from copies of
    the two keyed states costs 0.6 us instead of 1.5 here, and decide computes two per
    request (the pseudonym and the token's signature). The output is `hmac.digest`'s.
    """

    __slots__ = ("_inner", "_outer")

    def __init__(self, key: bytes) -> None:
        if len(key) > _BLOCK:
            key = hashlib.sha256(key).digest()
        key = key.ljust(_BLOCK, b"\0")
        self._inner = hashlib.sha256(key.translate(_INNER_PAD))
        self._outer = hashlib.sha256(key.translate(_OUTER_PAD))

    def __call__(self, message: bytes) -> bytes:
        inner = self._inner.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()


@dataclass(frozen=True, slots=True)
class Keyring:
    tokens: bytes
    pseudonyms: bytes

    @classmethod
    def from_secret(cls, secret: str) -> Keyring:
        raw = secret.encode()
        return cls(tokens=derive_key(raw, "tokens"), pseudonyms=derive_key(raw, "pseudonyms"))

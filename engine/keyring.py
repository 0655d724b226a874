"""Subkeys derived from the one configured secret, one per purpose.

A leaked token key must not reveal pseudonyms, and vice versa, so each purpose gets
its own key: HMAC-SHA256(secret, "omotenashi/<purpose>/v1").
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass


def derive_key(secret: bytes, purpose: str) -> bytes:
    return hmac.digest(secret, f"omotenashi/{purpose}/v1".encode(), hashlib.sha256)


@dataclass(frozen=True, slots=True)
class Keyring:
    tokens: bytes
    pseudonyms: bytes

    @classmethod
    def from_secret(cls, secret: str) -> Keyring:
        raw = secret.encode()
        return cls(tokens=derive_key(raw, "tokens"), pseudonyms=derive_key(raw, "pseudonyms"))

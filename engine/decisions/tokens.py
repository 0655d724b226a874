"""Decision tokens: compact, signed records of what was shown, returned by clients.

A token carries everything attribution needs (pid, slot, variant, policy,
propensity, experiment, arm, model version, time, decision id), so outcome events
need no server-side lookup. Format: `1.<payload>.<sig>` where payload is base64url
of an orjson array and sig the first 16 bytes of HMAC-SHA256(tokens key, "1.<payload>").
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
from typing import NamedTuple

import orjson

from engine.errors import InvalidToken
from engine.keyring import HmacSha256

SIG_BYTES = 16
MAX_TOKEN_CHARS = 2048
# Strict shape: base64 decoders forgive junk and padding, so a token is only accepted
# in the exact text we issued, and its signature is compared as that text.
TOKEN_PATTERN = re.compile(r"1\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]{22})")


class DecisionToken(NamedTuple):
    """Immutable; a NamedTuple, not a frozen dataclass, as one is built per decision and
    a frozen dataclass takes twice as long to build. The payload is its fields in order."""

    decision_id: str
    pid: str
    slot: str
    variant: str
    policy: str
    propensity: float
    issued_at: int
    experiment: str | None = None
    arm: str | None = None
    model_version: str | None = None
    segment: str | None = None  # the posterior a bandit decided with


_URLSAFE = bytes.maketrans(b"+/", b"-_")


def _b64(raw: bytes) -> bytes:
    return binascii.b2a_base64(raw, newline=False).translate(_URLSAFE).rstrip(b"=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenSigner:
    __slots__ = ("_mac",)

    def __init__(self, key: bytes) -> None:
        self._mac = HmacSha256(key)

    def sign(self, token: DecisionToken) -> str:
        signed = b"1." + _b64(orjson.dumps(tuple(token)))
        return (signed + b"." + _b64(self._mac(signed)[:SIG_BYTES])).decode()

    def verify(self, text: str) -> DecisionToken:
        """The token's content, if its signature is ours; `InvalidToken` otherwise."""
        if len(text) > MAX_TOKEN_CHARS:
            raise InvalidToken("token too long")
        match = TOKEN_PATTERN.fullmatch(text)
        if match is None:
            raise InvalidToken("malformed token")
        payload, sig = match.groups()
        expected = self._mac(f"1.{payload}".encode())
        if not hmac.compare_digest(sig.encode(), _b64(expected[:SIG_BYTES])):
            raise InvalidToken("token signature does not match")
        try:
            return DecisionToken(*orjson.loads(_unb64(payload)))
        except (binascii.Error, ValueError, TypeError) as exc:
            raise InvalidToken("malformed token") from exc

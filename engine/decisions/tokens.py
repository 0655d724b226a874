"""Decision tokens: compact, signed records of what was shown, returned by clients.

A token carries everything attribution needs (pid, slot, variant, policy,
propensity, experiment, arm, model version, time, decision id), so outcome events
need no server-side lookup. Format: `1.<payload>.<sig>` where payload is base64url
of an orjson array and sig the first 16 bytes of HMAC-SHA256(tokens key, "1.<payload>").
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import astuple, dataclass

import orjson

from engine.errors import InvalidToken

VERSION = "1"
SIG_BYTES = 16
MAX_TOKEN_CHARS = 2048


@dataclass(frozen=True, slots=True)
class DecisionToken:
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


def _b64(raw: bytes) -> bytes:
    return base64.urlsafe_b64encode(raw).rstrip(b"=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenSigner:
    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        self._key = key

    def sign(self, token: DecisionToken) -> str:
        signed = b"1." + _b64(orjson.dumps(astuple(token)))
        sig = hmac.digest(self._key, signed, hashlib.sha256)[:SIG_BYTES]
        return (signed + b"." + _b64(sig)).decode()

    def verify(self, text: str) -> DecisionToken:
        """The token's content, if its signature is ours; `InvalidToken` otherwise."""
        if len(text) > MAX_TOKEN_CHARS:
            raise InvalidToken("token too long")
        version, _, rest = text.partition(".")
        payload, _, sig = rest.partition(".")
        if version != VERSION or not payload or not sig:
            raise InvalidToken("malformed token")
        try:
            given = _unb64(sig)
            expected = hmac.digest(self._key, f"1.{payload}".encode(), hashlib.sha256)
            if not hmac.compare_digest(given, expected[:SIG_BYTES]):
                raise InvalidToken("token signature does not match")
            fields = orjson.loads(_unb64(payload))
            return DecisionToken(*fields)
        except (binascii.Error, ValueError, TypeError) as exc:
            raise InvalidToken("malformed token") from exc

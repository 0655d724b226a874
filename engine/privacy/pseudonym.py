"""Pseudonymous visitor ids: the engine stores `pid`, never the client's id.

pid = base64url(HMAC-SHA256(key, visitor_id))[:22] (128 bits): stable for a key, not
reversible without it, and the same on every worker.
"""

from __future__ import annotations

import base64

from engine.keyring import HmacSha256


class Pseudonymizer:
    __slots__ = ("_mac",)

    def __init__(self, key: bytes) -> None:
        self._mac = HmacSha256(key)

    def __call__(self, visitor_id: str) -> str:
        digest = self._mac(visitor_id.encode())
        return base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()

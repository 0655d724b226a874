"""API keys: site keys for public endpoints, one admin key for admin endpoints.

Keys are compared as SHA-256 digests in a set, so the comparison takes the same time
whatever prefix of a key an attacker guesses.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from engine.errors import Forbidden, Unauthorized


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


class ApiKeys:
    __slots__ = ("_admin", "_sites")

    def __init__(self, site_keys: Iterable[str], admin_key: str) -> None:
        self._sites = frozenset(_digest(k) for k in site_keys)
        self._admin = _digest(admin_key)

    def check_site(self, key: str | None) -> None:
        if not key:
            raise Unauthorized("missing X-Api-Key header")
        if _digest(key) not in self._sites:
            raise Unauthorized("unknown API key")

    def check_admin(self, admin_key: str | None, site_key: str | None) -> None:
        """Admin routes: the admin key passes; a valid site key is refused (403)."""
        if admin_key and _digest(admin_key) == self._admin:
            return
        presented = admin_key or site_key
        if not presented:
            raise Unauthorized("missing X-Admin-Key header")
        if _digest(presented) in self._sites:
            raise Forbidden("a site key cannot use admin endpoints")
        raise Unauthorized("unknown admin key")

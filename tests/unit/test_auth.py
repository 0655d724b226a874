"""API keys: site keys open public endpoints, only the admin key opens admin ones."""

from __future__ import annotations

import pytest

from engine.auth import ApiKeys
from engine.errors import Forbidden, Unauthorized

SITE, OTHER_SITE, ADMIN = "site_key_1", "site_key_2", "admin_key"


@pytest.fixture
def keys() -> ApiKeys:
    return ApiKeys([SITE, OTHER_SITE], ADMIN)


@pytest.mark.parametrize("key", [SITE, OTHER_SITE])
def test_any_configured_site_key_passes_the_site_check(keys: ApiKeys, key: str) -> None:
    keys.check_site(key)


@pytest.mark.parametrize("key", [None, ""])
def test_missing_site_key_is_unauthorized(keys: ApiKeys, key: str | None) -> None:
    with pytest.raises(Unauthorized, match="missing X-Api-Key"):
        keys.check_site(key)


@pytest.mark.parametrize("key", ["site_key_3", "site_key_", ADMIN])
def test_unknown_site_key_is_unauthorized(keys: ApiKeys, key: str) -> None:
    with pytest.raises(Unauthorized, match="unknown API key"):
        keys.check_site(key)


def test_admin_key_passes_the_admin_check(keys: ApiKeys) -> None:
    keys.check_admin(ADMIN, None)


def test_admin_key_passes_even_alongside_a_site_key(keys: ApiKeys) -> None:
    keys.check_admin(ADMIN, SITE)


@pytest.mark.parametrize(
    ("admin_key", "site_key"),
    [(None, SITE), (SITE, None), (SITE, SITE)],
    ids=["site-key-header", "site-key-as-admin-key", "both-headers"],
)
def test_site_key_on_an_admin_endpoint_is_forbidden(
    keys: ApiKeys, admin_key: str | None, site_key: str | None
) -> None:
    with pytest.raises(Forbidden):
        keys.check_admin(admin_key, site_key)


@pytest.mark.parametrize(("admin_key", "site_key"), [(None, None), ("", "")])
def test_missing_admin_key_is_unauthorized(
    keys: ApiKeys, admin_key: str | None, site_key: str | None
) -> None:
    with pytest.raises(Unauthorized, match="missing X-Admin-Key"):
        keys.check_admin(admin_key, site_key)


@pytest.mark.parametrize(("admin_key", "site_key"), [("admin_kez", None), (None, "nope")])
def test_unknown_admin_key_is_unauthorized(
    keys: ApiKeys, admin_key: str | None, site_key: str | None
) -> None:
    with pytest.raises(Unauthorized, match="unknown admin key"):
        keys.check_admin(admin_key, site_key)

"""Settings from the environment, and the secrets check that runs before the engine starts."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path
from typing import Any

import orjson
import pytest
from pydantic import SecretStr, ValidationError

from engine.errors import ConfigError
from engine.settings import SECRETS_FILE, Settings, resolve_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No configuration leaks in from the machine running the tests."""
    for name in list(os.environ):
        if name.startswith("OMOTENASHI_") or name in ("REDIS_URL", "PROMETHEUS_MULTIPROC_DIR"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def complete(**extra: Any) -> Settings:
    return Settings(
        secret="explicit-secret",
        admin_key="explicit-admin",
        site_keys=("explicit-site",),
        **extra,
    )


# --- reading the environment --------------------------------------------------------


def test_site_keys_are_read_comma_separated_and_trimmed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMOTENASHI_SITE_KEYS", " site_a, site_b ,,site_c,")
    assert Settings().site_keys == ("site_a", "site_b", "site_c")


def test_single_site_key_needs_no_comma(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMOTENASHI_SITE_KEYS", "site_a")
    assert Settings().site_keys == ("site_a",)


def test_cors_origins_are_read_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMOTENASHI_CORS_ORIGINS", "https://shop.example, https://m.shop.example")
    assert Settings().cors_origins == ("https://shop.example", "https://m.shop.example")


def test_unset_lists_are_empty() -> None:
    settings = Settings()
    assert settings.site_keys == ()
    assert settings.cors_origins == ()


def test_redis_url_is_read_without_the_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://cache:6379/2")
    assert Settings().redis_url == "redis://cache:6379/2"


def test_redis_url_unset_means_embedded_redis() -> None:
    assert Settings().redis_url is None


def test_prefixed_variables_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMOTENASHI_ENV", "production")
    monkeypatch.setenv("OMOTENASHI_KEY_PREFIX", "shop2")
    monkeypatch.setenv("OMOTENASHI_SECRET", "from-env")
    settings = Settings()
    assert settings.is_production
    assert settings.key_prefix == "shop2"
    assert settings.secret == SecretStr("from-env")


def test_development_is_the_default_environment() -> None:
    assert not Settings().is_production


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("OMOTENASHI_ENV", "staging"),
        ("OMOTENASHI_KEY_PREFIX", "has space"),
        ("OMOTENASHI_KEY_PREFIX", "x" * 33),
        ("OMOTENASHI_VISITOR_TTL_DAYS", "0"),
        ("OMOTENASHI_MAX_EVENTS_PER_BATCH", "10001"),
    ],
)
def test_out_of_range_values_are_refused(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError):
        Settings()


def test_secrets_do_not_show_in_the_settings_repr() -> None:
    assert "explicit-secret" not in repr(complete())
    assert "explicit-admin" not in repr(complete())


# --- production ---------------------------------------------------------------------


def test_production_refuses_to_start_without_secrets_naming_each() -> None:
    with pytest.raises(ConfigError) as info:
        resolve_settings(Settings(env="production"))
    for name in ("OMOTENASHI_SECRET", "OMOTENASHI_ADMIN_KEY", "OMOTENASHI_SITE_KEYS", "REDIS_URL"):
        assert name in info.value.message


def test_production_names_only_what_is_missing() -> None:
    with pytest.raises(ConfigError) as info:
        resolve_settings(
            Settings(env="production", secret="s", site_keys=("k",), REDIS_URL="redis://r")
        )
    assert info.value.message == "production mode needs OMOTENASHI_ADMIN_KEY"


def test_production_refuses_the_embedded_redis() -> None:
    with pytest.raises(ConfigError, match="REDIS_URL"):
        resolve_settings(complete(env="production"))


def test_production_never_writes_generated_secrets(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        resolve_settings(Settings(env="production", data_dir=tmp_path / "data"))
    assert not (tmp_path / "data").exists()


def test_complete_production_settings_are_used_as_given() -> None:
    settings = complete(env="production", REDIS_URL="redis://r")
    assert resolve_settings(settings) is settings


# --- development --------------------------------------------------------------------


def test_development_generates_missing_secrets_into_the_data_dir(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    resolved = resolve_settings(Settings(data_dir=data_dir))
    stored = orjson.loads((data_dir / SECRETS_FILE).read_bytes())
    assert resolved.secret is not None
    assert resolved.admin_key is not None
    assert resolved.secret.get_secret_value() == stored["secret"]
    assert resolved.admin_key.get_secret_value() == stored["admin_key"]
    assert resolved.site_keys == (stored["site_key"],)
    assert len({stored["secret"], stored["admin_key"], stored["site_key"]}) == 3


def test_generated_secrets_file_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    resolve_settings(Settings(data_dir=tmp_path))
    mode = stat.S_IMODE((tmp_path / SECRETS_FILE).stat().st_mode)
    assert mode & 0o077 == 0


def test_development_reuses_the_stored_secrets_on_the_next_start(tmp_path: Path) -> None:
    first = resolve_settings(Settings(data_dir=tmp_path))
    second = resolve_settings(Settings(data_dir=tmp_path))
    assert first.secret == second.secret
    assert first.admin_key == second.admin_key
    assert first.site_keys == second.site_keys


def test_explicit_values_win_over_stored_ones(tmp_path: Path) -> None:
    generated = resolve_settings(Settings(data_dir=tmp_path))
    resolved = resolve_settings(Settings(data_dir=tmp_path, secret="explicit-secret"))
    assert resolved.secret == SecretStr("explicit-secret")
    assert resolved.admin_key == generated.admin_key
    assert resolved.site_keys == generated.site_keys


def test_development_warns_which_secrets_were_generated(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="engine.settings"):
        resolve_settings(Settings(data_dir=tmp_path, secret="explicit-secret"))
    assert "OMOTENASHI_ADMIN_KEY" in caplog.text
    assert "OMOTENASHI_SECRET" not in caplog.text


def test_complete_development_settings_write_no_secrets_file(tmp_path: Path) -> None:
    settings = complete(data_dir=tmp_path / "data")
    assert resolve_settings(settings) is settings
    assert not (tmp_path / "data").exists()

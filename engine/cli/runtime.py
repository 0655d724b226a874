"""What `serve` and `demo` both need before the app starts: settings, secrets, Redis, logs."""

from __future__ import annotations

import contextlib
import logging
import logging.config
from collections.abc import Iterator
from typing import Any

from engine.errors import ConfigError
from engine.settings import Settings, resolve_settings
from engine.store.client import Store, connect
from engine.store.embedded import EmbeddedRedis
from engine.store.keys import Keys


def configure_logging(level: str) -> dict[str, Any]:
    """Log config for the engine and uvicorn alike; returned for uvicorn's `log_config`."""
    config: dict[str, Any] = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        },
        "handlers": {
            "stderr": {"class": "logging.StreamHandler", "formatter": "plain"},
        },
        "loggers": {
            "engine": {"handlers": ["stderr"], "level": level, "propagate": False},
            "uvicorn": {"handlers": ["stderr"], "level": level, "propagate": False},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
        },
    }
    logging.config.dictConfig(config)
    return config


@contextlib.contextmanager
def prepared_settings() -> Iterator[Settings]:
    """Settings with secrets resolved and a Redis to talk to: the configured one, or an
    embedded one started here and stopped (saving its data file) on exit."""
    settings = resolve_settings(Settings())
    if settings.redis_url is not None:
        yield settings
        return
    embedded = EmbeddedRedis(settings.data_dir)
    try:
        yield settings.model_copy(update={"redis_url": embedded.url})
    finally:
        embedded.close()


def cli_store(settings: Settings, timeout_ms: int | None = None) -> Store:
    """The store a CLI job talks to (settings from `prepared_settings`, so a Redis URL is
    there); offline jobs may want a longer timeout than serving's."""
    if settings.redis_url is None:
        raise ConfigError("no Redis to talk to (REDIS_URL unset)")
    timeout = settings.redis_timeout_ms if timeout_ms is None else timeout_ms
    return Store(connect(settings.redis_url, timeout), Keys(settings.key_prefix))

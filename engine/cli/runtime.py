"""What `serve` and `demo` both need before the app starts: settings, secrets, Redis, logs."""

from __future__ import annotations

import contextlib
import logging
import logging.config
from collections.abc import Iterator
from typing import Any

from engine.settings import Settings, resolve_settings
from engine.store.embedded import EmbeddedRedis


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

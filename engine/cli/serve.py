"""`omotenashi serve`: the service under uvicorn, one or more workers."""

from __future__ import annotations

import os
import shutil

import uvicorn

from engine.cli.runtime import configure_logging, prepared_settings


def serve(*, host: str, port: int, workers: int) -> None:
    with prepared_settings() as settings:
        log_config = configure_logging(settings.log_level)
        # Workers are new processes that build their settings from the environment: hand
        # them the Redis chosen here (embedded or not) and a shared metrics directory.
        assert settings.redis_url is not None
        os.environ["REDIS_URL"] = settings.redis_url
        if workers > 1:
            metrics_dir = settings.data_dir / "prometheus"
            shutil.rmtree(metrics_dir, ignore_errors=True)
            metrics_dir.mkdir(parents=True)
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir.resolve())
        uvicorn.run(
            "engine.app:create_served_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            loop="uvloop",
            http="httptools",
            access_log=False,
            log_config=log_config,
            timeout_graceful_shutdown=5,
        )

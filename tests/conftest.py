"""Shared fixtures: a real Redis (the machine's, or one started for the run), a key
prefix per test, and the app driven in process with httpx."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from fastapi import FastAPI

from engine.app import create_app
from engine.client import OmotenashiClient
from engine.settings import Settings
from tests.support.redis_server import RedisProcess, reachable

SITE_KEY = "site_test_key"
ADMIN_KEY = "admin_test_key"
SECRET = "test-secret-" + "x" * 32


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The machine's Redis if it answers, else one started for this run: never a skip."""
    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    if reachable(url):
        yield url
        return
    server = RedisProcess.start(tmp_path_factory.mktemp("redis"))
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def key_prefix(redis_url: str) -> Iterator[str]:
    """A prefix of this test's own; its keys are deleted afterwards."""
    prefix = "test-" + uuid.uuid4().hex[:12]
    yield prefix
    delete_prefix(redis_url, prefix)


def delete_prefix(redis_url: str, prefix: str) -> None:
    """Every key under `prefix`: a test's or a test server's data."""
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture
def redis_sync(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def make_settings(
    redis_url: str | None, key_prefix: str, data_dir: Path, **extra: object
) -> Settings:
    return Settings(
        REDIS_URL=redis_url,
        key_prefix=key_prefix,
        site_keys=(SITE_KEY,),
        admin_key=ADMIN_KEY,
        secret=SECRET,
        data_dir=data_dir,
        **extra,
    )


@pytest.fixture
def artifacts(tmp_path: Path) -> Path:
    """This test's model artifacts folder (never the working directory's)."""
    return tmp_path / "artifacts"


@pytest.fixture
def settings(redis_url: str, key_prefix: str, tmp_path: Path, artifacts: Path) -> Settings:
    # workers look for newly activated models every 100 ms, so tests need not wait 2 s
    return make_settings(
        redis_url, key_prefix, tmp_path / "data", artifacts_dir=artifacts, models_refresh_ms=100
    )


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    """The app with its lifespan running (Redis connected, definitions loaded)."""
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """The app in process, as a site or admin would call it."""
    async with client_for(app) as http:
        yield http


def client_for(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


def engine_client(app: FastAPI, **options: Any) -> OmotenashiClient:
    """The Python client on the app in process, with the test keys."""
    transport = httpx.ASGITransport(app=app)
    return OmotenashiClient(
        "http://test", site_key=SITE_KEY, admin_key=ADMIN_KEY, transport=transport, **options
    )


SITE = {"X-Api-Key": SITE_KEY}
ADMIN = {"X-Admin-Key": ADMIN_KEY}

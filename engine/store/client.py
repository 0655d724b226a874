"""The engine's Redis connection: opened once, failing fast when Redis is away.

Every Redis call goes through `Store.guard`, which turns Redis and socket errors
into `StoreUnavailable`, counts them, and opens a short circuit so that while
Redis is down requests get their fallback at once instead of each waiting for a
connection timeout.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from types import TracebackType

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from engine.errors import StoreUnavailable
from engine.store.hot_reads import PipelinedReader
from engine.store.keys import Keys

log = logging.getLogger(__name__)

CIRCUIT_COOLDOWN_S = 1.0


def connect(url: str, timeout_ms: int) -> aioredis.Redis:
    """A client with short timeouts and one retry, on a fresh connection, for a dropped
    one only: after Redis restarts, every pooled connection is dead, and without it each
    would fail one request and trip the circuit for everyone. Timeouts are not retried
    (the command may have run; callers decide)."""
    timeout = timeout_ms / 1000
    client: aioredis.Redis = aioredis.Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
        decode_responses=False,
        health_check_interval=0,
    )
    return client


class Store:
    """Redis plus the key layout, shared by every request of a worker.

    `redis` is redis-py's client for everything; `hot` (when the URL allows it) is a
    leaner connection for the hot path's script calls (`scripts.run_script`).
    """

    def __init__(
        self,
        redis: aioredis.Redis,
        keys: Keys,
        on_error: Callable[[str], None] = lambda operation: None,
        cooldown_s: float = CIRCUIT_COOLDOWN_S,
        hot: PipelinedReader | None = None,
    ) -> None:
        self.redis = redis
        self.hot = hot
        self.keys = keys
        self._on_error = on_error
        self._cooldown_s = cooldown_s
        self._open_until = 0.0

    def guard(self, operation: str) -> _Guard:
        """Context manager around one Redis round trip named `operation` (for metrics)."""
        return _Guard(self, operation)

    @property
    def circuit_open(self) -> bool:
        return time.monotonic() < self._open_until

    def _failed(self, operation: str, exc: BaseException) -> None:
        if not self.circuit_open:
            log.warning(
                "redis %s failed (%s); failing fast for %.1fs", operation, exc, self._cooldown_s
            )
        self._open_until = time.monotonic() + self._cooldown_s
        self._on_error(operation)

    async def ping(self) -> bool:
        """True if Redis answers now (ignores the circuit: readiness wants the truth)."""
        try:
            return bool(await self.redis.ping())
        except (RedisError, OSError):
            return False

    async def close(self) -> None:
        if self.hot is not None:
            await self.hot.close()
        await self.redis.aclose()


class _Guard:
    __slots__ = ("_operation", "_store")

    def __init__(self, store: Store, operation: str) -> None:
        self._store = store
        self._operation = operation

    # Usable as `with` or `async with`: it never awaits, and the hot path's plain `with`
    # spares two coroutines per request.
    def __enter__(self) -> None:
        if self._store.circuit_open:
            raise StoreUnavailable(f"redis unavailable ({self._operation} not attempted)")

    async def __aenter__(self) -> None:
        self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            return
        if isinstance(exc, RedisConnectionError | RedisTimeoutError | OSError | TimeoutError):
            # Redis is away: fail fast for everyone for a moment
            self._store._failed(self._operation, exc)
            raise StoreUnavailable(f"redis unavailable during {self._operation}") from exc
        if isinstance(exc, RedisError):
            # Redis answered but refused (OOM, READONLY, ...): this operation fails, the
            # circuit stays closed so reads that still work keep working
            self._store._on_error(self._operation)
            raise StoreUnavailable(f"redis refused {self._operation}: {exc}") from exc

from __future__ import annotations

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from engine.errors import StoreUnavailable
from engine.store.client import Store
from engine.store.keys import Keys

pytestmark = pytest.mark.anyio


def store(errors: list[str]) -> Store:
    return Store(aioredis.Redis(), Keys("t"), on_error=errors.append)


async def test_an_unreachable_redis_opens_the_circuit() -> None:
    errors: list[str] = []
    s = store(errors)
    with pytest.raises(StoreUnavailable):
        async with s.guard("read"):
            raise RedisConnectionError("refused")
    assert s.circuit_open
    assert errors == ["read"]
    with pytest.raises(StoreUnavailable, match="not attempted"):
        async with s.guard("read"):
            pass
    await s.close()


async def test_a_refusal_fails_the_operation_but_keeps_the_circuit_closed() -> None:
    errors: list[str] = []
    s = store(errors)
    with pytest.raises(StoreUnavailable, match="refused write"):
        async with s.guard("write"):
            raise ResponseError("OOM command not allowed when used memory > 'maxmemory'")
    assert not s.circuit_open
    assert errors == ["write"]
    await s.close()

"""The decide path's pipelined reader against the real Redis."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest
import redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from engine.store.hot_reads import PipelinedReader, pack, supports
from tests.support.redis_server import RedisProcess

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


def test_commands_are_packed_as_resp() -> None:
    assert pack(b"HGETALL", "k:é") == b"*2\r\n$7\r\nHGETALL\r\n$4\r\nk:\xc3\xa9\r\n"
    assert pack("SELECT", 3) == b"*2\r\n$6\r\nSELECT\r\n$1\r\n3\r\n"


def test_tls_urls_are_left_to_redis_py() -> None:
    assert supports("redis://127.0.0.1:6379/0")
    assert supports("unix:///tmp/redis.sock")
    assert not supports("rediss://cache.example:6380/0")


async def test_concurrent_reads_each_get_their_own_reply(
    redis_url: str, redis_sync: redis.Redis, key_prefix: str
) -> None:
    keys = [f"{key_prefix}:h{i}" for i in range(50)]
    for i, key in enumerate(keys):
        redis_sync.hset(key, mapping={"i": i, "name": f"v{i}"})
    reader = PipelinedReader(redis_url, timeout_s=1.0)
    try:
        replies = await asyncio.gather(*(reader.hgetall(k) for k in keys))
        assert replies == [{b"i": str(i).encode(), b"name": f"v{i}".encode()} for i in range(50)]
        assert await reader.hgetall(f"{key_prefix}:missing") == {}
    finally:
        await reader.close()


async def test_error_replies_raise_without_breaking_the_order(
    redis_url: str, redis_sync: redis.Redis, key_prefix: str
) -> None:
    redis_sync.set(f"{key_prefix}:string", "x")
    redis_sync.hset(f"{key_prefix}:hash", "a", "1")
    reader = PipelinedReader(redis_url, timeout_s=1.0)
    try:
        wrong_type, ok = await asyncio.gather(
            reader.hgetall(f"{key_prefix}:string"),
            reader.hgetall(f"{key_prefix}:hash"),
            return_exceptions=True,
        )
        assert isinstance(wrong_type, ResponseError)
        assert ok == {b"a": b"1"}
    finally:
        await reader.close()


async def test_database_number_and_password_in_the_url_are_used(tmp_path: Path) -> None:
    server = RedisProcess.start(tmp_path)
    try:
        admin = redis.Redis(port=server.port)
        admin.config_set("requirepass", "s3cret")
        admin.close()
        writer = redis.Redis(port=server.port, password="s3cret", db=5)
        writer.hset("k", "in", "db5")
        writer.close()
        url = f"redis://:s3cret@127.0.0.1:{server.port}/5"
        reader = PipelinedReader(url, timeout_s=1.0)
        try:
            assert await reader.hgetall("k") == {b"in": b"db5"}
        finally:
            await reader.close()
        wrong = PipelinedReader(f"redis://:nope@127.0.0.1:{server.port}/5", timeout_s=1.0)
        with pytest.raises(ResponseError):
            await wrong.hgetall("k")
        await wrong.close()
    finally:
        server.stop()


async def test_a_silent_server_times_out_and_a_restarted_one_is_reconnected(
    tmp_path: Path,
) -> None:
    server = RedisProcess.start(tmp_path)
    reader = PipelinedReader(server.url, timeout_s=0.3)
    try:
        assert await reader.hgetall("nothing") == {}
        server.process.send_signal(signal.SIGSTOP)  # connected, but never answers
        try:
            with pytest.raises(RedisTimeoutError):
                await reader.hgetall("nothing")
        finally:
            server.process.send_signal(signal.SIGCONT)
        assert await reader.hgetall("nothing") == {}  # a fresh connection
        server.stop()
        with pytest.raises(RedisConnectionError):
            await reader.hgetall("nothing")
        server = RedisProcess.start(tmp_path, port=server.port)
        assert await reader.hgetall("nothing") == {}
    finally:
        await reader.close()
        server.stop()

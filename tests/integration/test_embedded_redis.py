"""The embedded Redis keeps its data across runs and is shared, not doubled."""

from __future__ import annotations

from pathlib import Path

import redis

from engine.store.embedded import EmbeddedRedis


def test_data_survives_a_restart_and_a_second_process_shares_the_server(tmp_path: Path) -> None:
    first = EmbeddedRedis(tmp_path)
    try:
        client = redis.Redis.from_url(first.url)
        client.set("greeting", "irasshaimase")
        client.close()
        sharing = EmbeddedRedis(tmp_path)  # e.g. `omotenashi demo` while `serve` runs
        assert sharing.url == first.url
        sharing.close()  # does not stop a server it did not start
        assert redis.Redis.from_url(first.url).get("greeting") == b"irasshaimase"
    finally:
        first.close()
    assert (tmp_path / "redis.db").exists()

    second = EmbeddedRedis(tmp_path)
    try:
        assert redis.Redis.from_url(second.url).get("greeting") == b"irasshaimase"
    finally:
        second.close()


def test_long_data_dirs_get_a_short_socket_path(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    server = EmbeddedRedis(deep)
    try:
        assert len(str(server.socket)) <= 100
        assert redis.Redis.from_url(server.url).ping()
    finally:
        server.close()

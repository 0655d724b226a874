"""The browser snippet is served by the engine, small and cacheable."""

from __future__ import annotations

import gzip

import httpx
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


async def test_the_snippet_is_served_as_javascript_under_5_kb_gzipped(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/sdk/omotenashi.js")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/javascript")
    assert "max-age" in response.headers["cache-control"]
    assert "window.Omotenashi" in response.text
    assert len(gzip.compress(response.content, 9)) < 5 * 1024

from __future__ import annotations

from typing import Any

import pytest

from engine.api.middleware import BodyLimitMiddleware

pytestmark = pytest.mark.anyio


async def never_called(scope: Any, receive: Any, send: Any) -> None:
    raise AssertionError("the app must not see this request")


@pytest.mark.parametrize(
    ("length", "status"),
    [(b"9" * 30, 413), (b"2048", 413), (b"12a", 400)],
    ids=["30-digits", "over-limit", "not-a-number"],
)
async def test_unusable_content_lengths_are_refused_before_the_app(
    length: bytes, status: int
) -> None:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    app = BodyLimitMiddleware(never_called, max_bytes=1024)
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/",
        "headers": [(b"content-length", length)],
    }
    await app(scope, receive, send)
    assert sent[0]["status"] == status


async def test_a_length_with_thousands_of_leading_zeros_is_just_a_number() -> None:
    seen: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope)

    scope = {"type": "http", "headers": [(b"content-length", b"0" * 5000 + b"2")]}
    await BodyLimitMiddleware(app, max_bytes=1024)(scope, None, None)  # type: ignore[arg-type]
    assert seen == [scope]

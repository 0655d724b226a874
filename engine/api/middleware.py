"""Pure ASGI middleware (no BaseHTTPMiddleware: it costs a task per request).

`MetricsMiddleware` times every request by route template; `BodyLimitMiddleware`
refuses bodies over the configured size before anyone reads them.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engine.api.errors import error_response
from engine.errors import PayloadTooLarge
from engine.metrics import Metrics


class MetricsMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            route: Any = scope.get("route")
            # Route templates, not raw paths, keep label cardinality bounded.
            template = getattr(route, "path", "unmatched")
            self.metrics.observe_request(
                template, scope["method"], status, time.perf_counter() - start
            )


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = next((v for n, v in scope["headers"] if n == b"content-length"), None)
        if declared is not None:
            digits = declared.lstrip(b"0") or b"0"
            if not declared.isdigit() or len(digits) > 18 or int(digits) > self.max_bytes:
                too_large = declared.isdigit()
                response = error_response(
                    413 if too_large else 400,
                    "payload_too_large" if too_large else "bad_request",
                    f"body larger than {self.max_bytes} bytes"
                    if too_large
                    else "invalid Content-Length",
                )
                await response(scope, receive, send)
                return
            # the server reads exactly the declared length: nothing more to watch
            await self.app(scope, receive, send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise PayloadTooLarge(f"body larger than {self.max_bytes} bytes")
            return message

        await self.app(scope, limited_receive, send)

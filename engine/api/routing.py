"""How routes are declared and mounted, for the least framework work per request.

`DirectRoute`: an endpoint whose only parameter is the request, and which returns a
`Response`, is awaited directly. FastAPI's request handler would otherwise solve an
empty dependency graph, build the query, header and cookie mappings nobody asked for
and set up telemetry contexts: on `GET /v1/recommendations` that was more CPU than
ranking the items (cProfile, in process). The hot routes parse and validate their own
input (`engine.api.body`), so nothing is lost; any other endpoint is handled by FastAPI
as usual. It overrides `APIRoute.get_route_handler`, FastAPI's documented hook.

`mount_flat`: FastAPI 0.142+ keeps an included router as one nested route; every
request walks the included routers in turn, each matching its own routes, and the
chosen one matches again before it handles. For `/v1/recommendations`, seventh of
twelve routers, that walk cost about a fifth of the route's CPU. An `APIRouter`'s
routes already carry its prefix, tags and dependencies (applied as each route is
declared), so the app holds them directly and matches them in one flat pass.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.routing import APIRoute


class DirectRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        if not takes_only_the_request(self.endpoint) or self.dependencies:
            return super().get_route_handler()
        endpoint: Callable[..., Coroutine[Any, Any, Response]] = self.endpoint
        with_request = bool(inspect.signature(endpoint).parameters)

        async def handle(request: Request) -> Response:
            response = await (endpoint(request) if with_request else endpoint())
            if not isinstance(response, Response):  # declared, so a bug: say where
                raise TypeError(f"{endpoint.__qualname__} returned {type(response).__name__}")
            return response

        return handle


def takes_only_the_request(endpoint: Callable[..., Any]) -> bool:
    """An async endpoint taking nothing or one `Request`, declared to return a Response."""
    if not inspect.iscoroutinefunction(endpoint):
        return False
    # extras kept: an Annotated request (a dependency, say) is left to FastAPI
    hints = typing.get_type_hints(endpoint, include_extras=True)
    returns = hints.pop("return", None)
    parameters = list(inspect.signature(endpoint).parameters)
    return (
        isinstance(returns, type)
        and issubclass(returns, Response)
        and len(parameters) <= 1
        and all(hints.get(name) is Request for name in parameters)
    )


def mount_flat(app: FastAPI, router: APIRouter) -> None:
    """Add `router`'s routes to `app` in declaration order (order decides overlaps)."""
    for route in router.routes:
        if not isinstance(route, APIRoute):
            raise TypeError(f"only API routes can be mounted flat, not {route!r}")
        app.router.routes.append(route)

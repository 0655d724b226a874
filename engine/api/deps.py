"""Request dependencies: the worker's services and the two kinds of API key.

The hot public routes (decide, events) call `site_services` directly instead of
going through `Depends`: FastAPI's dependency solving cost more per request than
everything else decide does (measured with loadtests and cProfile; see README).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Header, Request

from engine.errors import Forbidden
from engine.services import Services


async def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]
SITE_KEY_SECURITY: dict[str, Any] = {"security": [{"SiteKey": []}]}


def site_services(request: Request, *, key_in_query: bool = False) -> Services:
    """The worker's services, once the request's site key checks out: the `X-Api-Key`
    header, or where `key_in_query` (events only) a `site_key` query parameter, for
    `navigator.sendBeacon`, which cannot set headers (site keys are public: every page
    that calls the engine carries one). Reads never take it from the query: an `<img>`
    on any page could otherwise make a visitor's browser call them."""
    services: Services = request.app.state.services
    raw_key = raw_origin = None
    for name, value in request.scope["headers"]:  # one pass, no Headers object: hot path
        if name == b"x-api-key" and raw_key is None:
            raw_key = value
        elif name == b"origin" and raw_origin is None:
            raw_origin = value
    key = None if raw_key is None else raw_key.decode("latin-1")
    if key is None and key_in_query:
        key = request.query_params.get("site_key")
    services.api_keys.check_site(key)
    if raw_origin is not None:
        origin = raw_origin.decode("latin-1")
        allowed = services.settings.cors_origins
        if origin not in allowed and "*" not in allowed:
            check_same_origin(request, origin)
    return services


def check_same_origin(request: Request, origin: str) -> None:
    """A browser's request from a page the engine does not allow is refused here too:
    CORS stops what a page can read, not what `navigator.sendBeacon` (or a form) can
    send, so an event from a foreign page would otherwise be stored. Requests without
    an Origin (servers, apps) are not browsers' and pass."""
    host = request.headers.get("host", "")
    if origin not in (f"http://{host}", f"https://{host}"):
        raise Forbidden(f"origin {origin} is not allowed (OMOTENASHI_CORS_ORIGINS)")


async def require_admin_key(
    services: ServicesDep,
    x_admin_key: Annotated[str | None, Header(description="the admin key")] = None,
    x_api_key: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> None:
    services.api_keys.check_admin(x_admin_key, x_api_key)

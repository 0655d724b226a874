"""The browser snippet, served by the engine itself so a site needs no build step or CDN."""

from __future__ import annotations

from functools import cache
from importlib import resources

from fastapi import APIRouter, Response

from engine.api.routing import DirectRoute

router = APIRouter(tags=["web"], route_class=DirectRoute)


@cache
def snippet() -> bytes:
    return resources.files("engine.web").joinpath("sdk/omotenashi.js").read_bytes()


@router.get(
    "/sdk/omotenashi.js",
    summary="The browser snippet: slots, impressions, clicks, consent, recommendations",
    response_class=Response,
)
async def sdk() -> Response:
    return Response(
        snippet(),
        media_type="application/javascript",
        headers={"Cache-Control": "public, max-age=300"},
    )

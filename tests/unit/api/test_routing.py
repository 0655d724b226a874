from __future__ import annotations

import gc
from typing import Annotated, Any

import fastapi.routing
import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.routing import APIRoute
from starlette.routing import Mount

from engine.api.routing import DirectRoute, mount_flat, takes_only_the_request
from engine.app import create_app, create_served_app
from engine.settings import Settings
from tests.conftest import client_for

pytestmark = pytest.mark.anyio


def solver_forbidden(monkeypatch: pytest.MonkeyPatch) -> None:
    async def refuse(**_: Any) -> Any:
        raise AssertionError("FastAPI's dependency solver ran")

    monkeypatch.setattr(fastapi.routing, "solve_dependencies", refuse)


async def get(app: FastAPI, url: str) -> httpx.Response:
    async with client_for(app) as client:
        return await client.get(url)


async def test_an_endpoint_taking_only_the_request_skips_dependency_solving(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    router = APIRouter(route_class=DirectRoute)

    @router.get("/echo")
    async def echo(request: Request) -> Response:
        return Response(request.url.query, media_type="text/plain")

    @router.get("/plain")
    async def plain() -> Response:
        return Response("plain", media_type="text/plain")

    app = FastAPI()
    mount_flat(app, router)
    solver_forbidden(monkeypatch)
    assert (await get(app, "/echo?a=1")).text == "a=1"
    assert (await get(app, "/plain")).text == "plain"


async def test_other_endpoints_keep_fastapis_handling(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    def audit() -> None:
        calls.append("audit")

    router = APIRouter(route_class=DirectRoute)
    guarded = APIRouter(route_class=DirectRoute, dependencies=[Depends(audit)])

    @router.get("/count")
    async def count(n: int) -> Response:
        return Response(str(n + 1), media_type="text/plain")

    @guarded.get("/guarded")
    async def guarded_route(request: Request) -> Response:
        return Response("ok", media_type="text/plain")

    app = FastAPI()
    mount_flat(app, router)
    mount_flat(app, guarded)
    assert (await get(app, "/count?n=2")).text == "3"
    assert (await get(app, "/count?n=two")).status_code == 422
    assert (await get(app, "/guarded")).text == "ok"
    assert calls == ["audit"]  # the router's dependency ran: not a direct route
    solver_forbidden(monkeypatch)
    with pytest.raises(AssertionError, match="solver ran"):
        await get(app, "/count?n=2")


def test_only_async_request_only_endpoints_returning_responses_qualify() -> None:
    async def request_only(request: Request) -> Response:
        return Response()

    async def nothing() -> Response:
        return Response()

    async def returns_dict(request: Request) -> dict[str, int]:
        return {}

    async def with_query(request: Request, n: int) -> Response:
        return Response()

    def synchronous(request: Request) -> Response:
        return Response()

    async def annotated(request: Annotated[Request, "doc"]) -> Response:
        return Response()

    assert takes_only_the_request(request_only)
    assert takes_only_the_request(nothing)
    for endpoint in (returns_dict, with_query, synchronous, annotated):
        assert not takes_only_the_request(endpoint), endpoint.__name__


async def test_flat_routes_keep_declaration_order() -> None:
    router = APIRouter()

    @router.get("/v1/things/report")
    async def report() -> Response:
        return Response("report", media_type="text/plain")

    @router.get("/v1/things/{name}")
    async def thing(name: str) -> Response:
        return Response(f"thing {name}", media_type="text/plain")

    app = FastAPI()
    mount_flat(app, router)
    assert (await get(app, "/v1/things/report")).text == "report"
    assert (await get(app, "/v1/things/lamp")).text == "thing lamp"


def test_a_router_holding_a_mount_is_refused() -> None:
    router = APIRouter()
    router.routes.append(Mount("/static", app=FastAPI()))
    with pytest.raises(TypeError, match="only API routes"):
        mount_flat(FastAPI(), router)


def test_the_service_matches_its_routes_flat_with_the_hot_ones_direct(
    settings: Settings,
) -> None:
    app = create_app(settings)
    api_routes = [route for route in app.router.routes if isinstance(route, APIRoute)]
    # FastAPI's own docs routes aside, every route is a plain route: no nested router
    assert all(hasattr(route, "path") for route in app.router.routes)
    paths = [route.path for route in api_routes]
    assert paths.index("/healthz") < paths.index("/v1/decide") < paths.index("/v1/items/{item_id}")
    direct = {route.path for route in api_routes if takes_only_the_request(route.endpoint)}
    assert {"/healthz", "/v1/decide", "/v1/recommendations", "/v1/events"} <= direct
    for route in api_routes:
        if route.path in direct:
            assert isinstance(route, DirectRoute), route.path


def test_a_served_worker_freezes_what_it_imported_out_of_the_collector(
    settings: Settings,
) -> None:
    gc.unfreeze()
    try:
        create_served_app(settings)
        assert gc.get_freeze_count() > 10_000  # the libraries' objects, at least
    finally:
        gc.unfreeze()  # this test process keeps collecting as before

"""Admin routes for definitions: `/v1/slots/{name}` and `/v1/segments/{name}`.

Both kinds behave the same (PUT checks then stores, GET, DELETE, list), so one
factory builds both routers.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel

from engine.api.body import json_body, read_json_object
from engine.api.deps import ServicesDep, require_admin_key
from engine.api.responses import json_response
from engine.api.schemas.definitions import SegmentIn, SlotIn
from engine.decisions.admin import SINGULAR, delete_definition, get_definition, put_definition
from engine.store.definitions import DefinitionKind


def definitions_router(kind: DefinitionKind, model: type[BaseModel]) -> APIRouter:
    one = SINGULAR[kind]
    router = APIRouter(prefix=f"/v1/{kind}", tags=[kind], dependencies=[Depends(require_admin_key)])

    @router.put(
        "/{name}",
        openapi_extra=json_body(model),
        summary=f"Create or replace a {one} (201 if new, 200 if replaced)",
        name=f"put_{one}",
    )
    async def put(name: str, request: Request, services: ServicesDep) -> Response:
        definition = await read_json_object(request, f"a {one} definition is a JSON object")
        created = await put_definition(
            services.definitions, services.registry, kind, name, definition
        )
        return json_response({"name": name, **definition}, 201 if created else 200)

    @router.get("/{name}", summary=f"Read a {one}", name=f"get_{one}")
    async def get(name: str, services: ServicesDep) -> Response:
        definition = await get_definition(services.definitions, kind, name)
        return json_response({"name": name, **definition})

    @router.delete("/{name}", status_code=204, summary=f"Delete a {one}", name=f"delete_{one}")
    async def delete(name: str, services: ServicesDep) -> Response:
        await delete_definition(services.definitions, services.registry, kind, name)
        return Response(status_code=204)

    @router.get("", summary=f"List {kind} this worker serves", name=f"list_{kind}")
    async def list_all(services: ServicesDep) -> Response:
        current = services.registry.current
        names = (
            []
            if current is None
            else sorted(current.slots if kind == "slots" else (s.name for s in current.segments))
        )
        return json_response({kind: names})

    return router


slots_router = definitions_router("slots", SlotIn)
segments_router = definitions_router("segments", SegmentIn)

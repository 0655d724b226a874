from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response

from engine.api.body import json_body, parse_body
from engine.api.deps import ServicesDep, require_admin_key
from engine.api.responses import json_response
from engine.api.schemas.items import ItemBatch
from engine.errors import NotFound

router = APIRouter(
    prefix="/v1/items", tags=["catalogue"], dependencies=[Depends(require_admin_key)]
)


@router.put("", openapi_extra=json_body(ItemBatch), summary="Insert or replace catalogue items")
async def put_items(request: Request, services: ServicesDep) -> Response:
    batch = await parse_body(request, ItemBatch)
    created = await services.catalog.upsert([item.model_dump() for item in batch.items])
    return json_response({"upserted": len(batch.items), "created": created})


@router.get("/{item_id}", summary="Read a catalogue item")
async def get_item(item_id: str, services: ServicesDep) -> Response:
    item = await services.catalog.get(item_id)
    if item is None:
        raise NotFound(f"no item {item_id!r}")
    return json_response(item)

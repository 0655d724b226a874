"""Privacy endpoints: consent (site key), export and erasure (admin key)."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response

from engine.api.body import json_body, parse_body
from engine.api.deps import SITE_KEY_SECURITY, ServicesDep, require_admin_key, site_services
from engine.api.responses import json_response
from engine.api.schemas.visitors import ConsentIn, ConsentOut, ErasureOut, VisitorExport
from engine.store.profiles import erase_visitor, export_visitor, read_consent, set_consent
from models.features import decode_features

router = APIRouter(prefix="/v1/visitors", tags=["privacy"])
VisitorId = Annotated[str, Path(min_length=1, max_length=256)]


@router.put(
    "/{visitor_id}/consent",
    response_model=ConsentOut,
    openapi_extra={**json_body(ConsentIn), **SITE_KEY_SECURITY},
    summary="Record the visitor's consent; honoured from the next request on",
)
async def put_consent(visitor_id: VisitorId, request: Request) -> Response:
    services = site_services(request)
    body = await parse_body(request, ConsentIn)
    pid = services.pseudonymize(visitor_id)
    choices = body.model_dump(exclude_none=True)
    await set_consent(services.store, pid, choices, services.settings.visitor_ttl_s)
    consent, chosen = await read_consent(services.store, pid, services.consent_defaults)
    return json_response({**consent, "chosen": chosen})


@router.get(
    "/{visitor_id}/consent",
    response_model=ConsentOut,
    openapi_extra=SITE_KEY_SECURITY,
    summary="The visitor's consent (the site's defaults if they never chose)",
)
async def get_consent(visitor_id: VisitorId, request: Request) -> Response:
    services = site_services(request)
    pid = services.pseudonymize(visitor_id)
    consent, chosen = await read_consent(services.store, pid, services.consent_defaults)
    return json_response({**consent, "chosen": chosen})


@router.get(
    "/{visitor_id}",
    response_model=VisitorExport,
    dependencies=[Depends(require_admin_key)],
    summary="Export everything stored about a visitor (and ids merged with them)",
)
async def export(visitor_id: VisitorId, services: ServicesDep) -> Response:
    pid = services.pseudonymize(visitor_id)
    data = await export_visitor(services.store, pid)
    raw = {k.encode(): v.encode() for k, v in data["features"].items()}
    return json_response(
        {
            "visitor_pid": pid,
            "profile": data["profile"],
            "consent": data["consent"],
            "features": decode_features(raw, time.time()),
            "stored_fields": data["features"],
            "history": data["history"],
            "merged_ids": data["merged_ids"],
            "event_ids_seen": data["event_ids_seen"],
            "events": data["events"],
            "experiments": data["experiments"],
        }
    )


@router.delete(
    "/{visitor_id}",
    response_model=ErasureOut,
    dependencies=[Depends(require_admin_key)],
    summary="Erase a visitor: profile, history, merged ids, consent, event-log entries",
)
async def erase(visitor_id: VisitorId, services: ServicesDep) -> Response:
    pid = services.pseudonymize(visitor_id)
    erased = await erase_visitor(services.store, pid, time.time())
    return json_response(
        {
            "profile": erased.profile,
            "ids_erased": erased.ids,
            "keys_deleted": erased.keys_deleted,
            "log_entries_deleted": erased.log_entries_deleted,
        }
    )

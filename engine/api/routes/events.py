from __future__ import annotations

import time

from fastapi import APIRouter, Request, Response

from engine.api.body import json_body, read_json_object
from engine.api.deps import SITE_KEY_SECURITY, site_services
from engine.api.responses import json_response
from engine.api.routing import DirectRoute
from engine.api.schemas.events import EventBatch, EventsAccepted
from engine.errors import InvalidInput, MalformedRequest, PayloadTooLarge, StoreUnavailable
from engine.events.normalize import validate_batch

router = APIRouter(tags=["events"], route_class=DirectRoute)


@router.post(
    "/v1/events",
    status_code=202,
    response_model=EventsAccepted,
    openapi_extra={**json_body(EventBatch), **SITE_KEY_SECURITY},
    summary="Report a batch of events (valid ones are kept, invalid ones listed by index)",
)
async def events_route(request: Request) -> Response:
    services = site_services(request, key_in_query=True)
    shape = 'body must be {"events": [...]}'
    body = await read_json_object(request, shape)
    if not isinstance(body.get("events"), list) or len(body) != 1:
        raise MalformedRequest(shape)
    items = body["events"]
    limit = services.settings.max_events_per_batch
    if len(items) > limit:
        raise PayloadTooLarge(f"at most {limit} events per batch")
    accepted, rejected = validate_batch(
        items,
        pseudonymize=services.pseudonymize,
        signer=services.signer,
        now=time.time(),
        retain_text=services.settings.retain_feedback_text,
    )
    rejected_out = [{"index": i, "error": reason} for i, reason in rejected]
    services.metrics.events_rejected.inc(len(rejected))
    if not accepted:
        error = InvalidInput("no valid event in the batch")
        error.details = rejected_out
        raise error
    out: dict[str, object] = {"accepted": len(accepted), "rejected": rejected_out}
    try:
        counts = await services.write_events(accepted)
    except StoreUnavailable:
        await services.spool.append(accepted)  # replayed when Redis is back
        out["spooled"] = len(accepted)
        services.metrics.events_spooled.inc(len(accepted))
    else:
        out["duplicates"] = counts.duplicates
        out["without_consent"] = counts.without_consent
    for event in accepted:
        services.metrics.count_event(event.type)
    return json_response(out, 202)

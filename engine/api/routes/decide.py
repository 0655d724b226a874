from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response

from engine.api.body import json_body, parse_body
from engine.api.deps import ServicesDep, require_site_key
from engine.api.responses import json_response
from engine.api.schemas.decide import DecideRequest, DecideResponse
from engine.decisions.serve import decide_for_visitor

router = APIRouter(tags=["decide"], dependencies=[Depends(require_site_key)])


@router.post(
    "/v1/decide",
    response_model=DecideResponse,
    openapi_extra=json_body(DecideRequest),
    summary="Choose a variant for each slot, for this visitor",
)
async def decide_route(request: Request, services: ServicesDep) -> Response:
    body = await parse_body(request, DecideRequest)
    result = await decide_for_visitor(
        store=services.store,
        definitions=services.registry.current,
        signer=services.signer,
        pid=services.pseudonymize(body.visitor_id),
        slot_names=body.slots,
        context=body.context,
    )
    counters = services.metrics.decisions
    decisions = []
    for signed in result.decisions:
        d = signed.decision
        counters.labels(d.policy).inc()
        decisions.append(
            {
                "slot": d.slot,
                "variant": d.variant.id,
                "content": d.variant.content,
                "token": signed.token,
                "policy": d.policy,
            }
        )
    return json_response(
        {
            "decision_id": result.decision_id,
            "decisions": decisions,
            "segments": sorted(result.segments),
        }
    )

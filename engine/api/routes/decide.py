from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from engine.api.body import json_body, parse_body
from engine.api.deps import SITE_KEY_SECURITY, site_services
from engine.api.responses import json_response
from engine.api.routing import DirectRoute
from engine.api.schemas.decide import DecideRequest, DecideResponse
from engine.decisions.decide import Models
from engine.decisions.serve import decide_for_visitor

router = APIRouter(tags=["decide"], route_class=DirectRoute)


@router.post(
    "/v1/decide",
    response_model=DecideResponse,
    openapi_extra={**json_body(DecideRequest), **SITE_KEY_SECURITY},
    summary="Choose a variant for each slot, for this visitor",
)
async def decide_route(request: Request) -> Response:
    services = site_services(request)
    body = await parse_body(request, DecideRequest)
    result = await decide_for_visitor(
        store=services.store,
        definitions=services.registry.current,
        signer=services.signer,
        new_id=services.decision_ids,
        pid=services.pseudonymize(body.visitor_id),
        slot_names=body.slots,
        context=body.context,
        personalization_default=services.personalization_default,
        decision_log=services.decision_log,
        models=Models(
            services.scorers.current, services.scorers.versions, services.bandits.current
        ),
        on_model_missing=lambda slot: services.metrics.model_missing.labels(slot).inc(),
        bandit_rng=services.bandits.rng,
    )
    decisions = []
    for signed in result.decisions:
        d = signed.decision
        services.metrics.count_decision(d.policy)
        decision: dict[str, Any] = {
            "slot": d.slot,
            "variant": d.variant.id,
            "content": d.variant.content,
            "token": signed.token,
            "policy": d.policy,
        }
        if d.experiment is not None:
            decision["experiment"] = d.experiment
            decision["arm"] = d.arm
        decisions.append(decision)
    return json_response(
        {
            "decision_id": result.decision_id,
            "decisions": decisions,
            "segments": sorted(result.segments),
        }
    )

"""`GET /v1/segments/report`: the persona view over every stored profile (admin)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from engine.api.deps import ServicesDep, require_admin_key
from engine.api.responses import json_response
from engine.decisions.segment_report import segment_report
from engine.errors import DefinitionsNotLoaded
from engine.store.profile_scan import scan_profiles

router = APIRouter(tags=["segments"], dependencies=[Depends(require_admin_key)])


@router.get(
    "/v1/segments/report",
    summary="Per segment: size, share, conversion, revenue per visitor, AOV, top categories",
)
async def report(
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=10_000_000, description="profiles read at most")] = (
        1_000_000
    ),
) -> Response:
    current = services.registry.current
    if current is None:
        raise DefinitionsNotLoaded("segment definitions not loaded yet")
    profiles = [p async for p in scan_profiles(services.store, limit=limit)]
    rows = segment_report(profiles, current.segments)
    return json_response(
        {
            "profiles": len(profiles),
            "truncated": len(profiles) >= limit,
            "segments": [row.to_json() for row in rows],
        }
    )

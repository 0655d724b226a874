"""Model versions: list them, switch the active one (admin key)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Response

from engine.api.deps import ServicesDep, require_admin_key
from engine.api.responses import json_response
from engine.api.schemas.recs import ModelsOut
from engine.model_versions import activate_version, overview
from engine.services import Services

router = APIRouter(prefix="/v1/models", tags=["models"], dependencies=[Depends(require_admin_key)])


@router.get("", response_model=ModelsOut, summary="Versions per kind; which is active")
async def list_models(services: ServicesDep) -> Response:
    return json_response(await _overview(services))


@router.post(
    "/{kind}/{version}/activate",
    response_model=ModelsOut,
    summary="Make a version live; every worker switches within a few seconds",
)
async def activate_model(
    kind: Annotated[str, Path(max_length=32)],
    version: Annotated[str, Path(max_length=64)],
    services: ServicesDep,
) -> Response:
    await activate_version(services.store, services.settings.artifacts_dir, kind, version)
    return json_response(await _overview(services))


async def _overview(services: Services) -> dict[str, Any]:
    found = await overview(services.store, services.settings.artifacts_dir)
    loaded: dict[str, str | None] = {"recs": services.recs.version}
    loaded |= {f"scorer:{slot}": s.version for slot, s in services.scorers.current.items()}
    return {**found, "loaded": loaded}

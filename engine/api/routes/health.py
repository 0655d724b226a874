from __future__ import annotations

from fastapi import APIRouter, Response

from engine.api.deps import ServicesDep
from engine.api.responses import json_response

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="The process is up")
async def healthz() -> Response:
    return json_response({"status": "ok"})


@router.get("/readyz", summary="Redis is reachable and definitions are loaded")
async def readyz(services: ServicesDep) -> Response:
    redis_ok = await services.store.ping()
    current = services.registry.current
    checks = {
        "redis": redis_ok,
        "definitions": current is not None,
        "definitions_version": None if current is None else current.version,
        "spooled_files": await services.spool.pending_files(),
        "spooled_events": await services.spool.pending_events(),
    }
    ready = redis_ok and current is not None
    return json_response(
        {"status": "ready" if ready else "not_ready", "checks": checks}, 200 if ready else 503
    )


@router.get("/metrics", summary="Prometheus metrics")
async def metrics(services: ServicesDep) -> Response:
    services.metrics.spool_depth.set(await services.spool.pending_events())
    return Response(services.metrics.exposition(), media_type="text/plain; version=0.0.4")

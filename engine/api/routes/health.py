from __future__ import annotations

from fastapi import APIRouter, Response

from engine.api.deps import ServicesDep
from engine.api.responses import json_response
from engine.api.routing import DirectRoute

router = APIRouter(tags=["operations"], route_class=DirectRoute)


@router.get("/healthz", summary="The process is up")
async def healthz() -> Response:
    return json_response({"status": "ok"})


@router.get("/readyz", summary="Redis is reachable, definitions and the active model loaded")
async def readyz(services: ServicesDep) -> Response:
    redis_ok = await services.store.ping()
    current = services.registry.current
    checks = {
        "redis": redis_ok,
        "definitions": current is not None,
        "definitions_version": None if current is None else current.version,
        "spooled_files": await services.spool.pending_files(),
        "spooled_events": await services.spool.pending_events(),
        "recs_active": services.recs.active,
        "recs_loaded": services.recs.version,
    }
    # a worker still loading the first active model is not ready; one that failed to load
    # a newer version keeps serving the older one and stays ready (the error is logged)
    recs_ok = services.recs.active is None or services.recs.version is not None
    ready = redis_ok and current is not None and recs_ok
    return json_response(
        {"status": "ready" if ready else "not_ready", "checks": checks}, 200 if ready else 503
    )


@router.get("/metrics", summary="Prometheus metrics")
async def metrics(services: ServicesDep) -> Response:
    services.metrics.spool_depth.set(await services.spool.pending_events())
    return Response(services.metrics.exposition(), media_type="text/plain; version=0.0.4")

"""Admin routes for experiments: define, start, stop, and read results and the report."""

from __future__ import annotations

import time

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import HTMLResponse

from engine.api.body import json_body, read_json_object
from engine.api.deps import ServicesDep, require_admin_key
from engine.api.responses import json_response
from engine.api.schemas.experiments import ExperimentIn
from engine.decisions.slots import check_name
from engine.experiments.lifecycle import (
    get_experiment,
    put_experiment,
    start_experiment,
    stop_experiment,
)
from engine.experiments.report_html import render_report
from engine.experiments.results import load_results

router = APIRouter(
    prefix="/v1/experiments", tags=["experiments"], dependencies=[Depends(require_admin_key)]
)


@router.put(
    "/{experiment_id}",
    openapi_extra=json_body(ExperimentIn),
    summary="Create or replace a draft experiment (201 if new, 200 if replaced)",
)
async def put(experiment_id: str, request: Request, services: ServicesDep) -> Response:
    definition = await read_json_object(request, "an experiment definition is a JSON object")
    created, document = await put_experiment(
        services.definitions, services.registry, experiment_id, definition
    )
    return json_response({"id": experiment_id, **document}, 201 if created else 200)


@router.get("/{experiment_id}", summary="Read an experiment and its status")
async def get(experiment_id: str, services: ServicesDep) -> Response:
    check_name("experiment", experiment_id)
    document = await get_experiment(services.definitions, experiment_id)
    return json_response({"id": experiment_id, "status": "draft", **document})


@router.get("", summary="List experiments with their status")
async def list_all(services: ServicesDep) -> Response:
    current = services.registry.current
    experiments = (
        [] if current is None else sorted(current.experiments.values(), key=lambda e: e.id)
    )
    return json_response(
        {"experiments": [{"id": e.id, "target": e.target, "status": e.status} for e in experiments]}
    )


@router.post("/{experiment_id}/start", summary="Start assigning visitors")
async def start(experiment_id: str, services: ServicesDep) -> Response:
    check_name("experiment", experiment_id)
    document = await start_experiment(
        services.definitions, services.registry, experiment_id, time.time()
    )
    return json_response({"id": experiment_id, **document})


@router.post("/{experiment_id}/stop", summary="Stop; results stay readable")
async def stop(experiment_id: str, services: ServicesDep) -> Response:
    check_name("experiment", experiment_id)
    document = await stop_experiment(
        services.definitions, services.registry, experiment_id, time.time()
    )
    return json_response({"id": experiment_id, **document})


@router.get("/{experiment_id}/results", summary="Per metric and arm: lift, CI, p-values, SRM")
async def get_results(experiment_id: str, services: ServicesDep) -> Response:
    return json_response(await load_results(services.store, services.definitions, experiment_id))


@router.get(
    "/{experiment_id}/report",
    response_class=HTMLResponse,
    summary="The results as an HTML page with charts (self-contained, works offline)",
)
async def get_report(experiment_id: str, services: ServicesDep) -> Response:
    results = await load_results(services.store, services.definitions, experiment_id)
    page = render_report(results)
    return HTMLResponse(page)

"""The app factory: `create_app(settings)` builds the service; its lifespan owns Redis."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel
from starlette.middleware.cors import CORSMiddleware

import engine
from engine.api.errors import install_error_handlers
from engine.api.middleware import BodyLimitMiddleware, MetricsMiddleware
from engine.api.routes import (
    decide,
    events,
    experiments,
    health,
    items,
    models,
    recommendations,
    segment_report,
    visitors,
    web,
)
from engine.api.routes.definitions import segments_router, slots_router
from engine.api.routing import mount_flat
from engine.api.schemas.decide import DecideRequest
from engine.api.schemas.definitions import SegmentIn, SlotIn
from engine.api.schemas.events import EventBatch
from engine.api.schemas.experiments import ExperimentIn
from engine.api.schemas.items import ItemBatch
from engine.api.schemas.visitors import ConsentIn
from engine.auth import ApiKeys
from engine.background import pause
from engine.decisions.bandit import BanditRegistry
from engine.decisions.log import DecisionLog, LogTarget
from engine.decisions.registry import DefinitionRegistry, arm_model_versions, recs_arm_versions
from engine.decisions.scorers import ScorerRegistry
from engine.decisions.serve import DecisionIds
from engine.decisions.tokens import TokenSigner
from engine.errors import ConfigError, StoreUnavailable
from engine.events.archive import archive_forever
from engine.events.ingest import LOG_INDEX_CAP
from engine.events.spool import EventSpool
from engine.keyring import Keyring
from engine.metrics import Metrics
from engine.privacy.pseudonym import Pseudonymizer
from engine.recs.registry import RecsRegistry
from engine.services import Services
from engine.settings import Settings, resolve_settings
from engine.store.catalog import CatalogRepository
from engine.store.client import Store, connect
from engine.store.definitions import DefinitionRepository
from engine.store.embedded import EmbeddedRedis
from engine.store.hot_reads import PipelinedReader, supports
from engine.store.keys import Keys

log = logging.getLogger(__name__)

SNAPSHOT_FILE = "definitions.snapshot.json"
RECS_SNAPSHOT_FILE = "recs.snapshot.json"
SPOOL_DIR = "spool"
SPOOL_REPLAY_INTERVAL_S = 1.0
BODY_MODELS: tuple[type[BaseModel], ...] = (
    DecideRequest,
    EventBatch,
    SlotIn,
    SegmentIn,
    ItemBatch,
    ConsentIn,
    ExperimentIn,
)


def create_app(settings: Settings | None = None) -> FastAPI:
    """The Omotenashi service. Without settings, they are read from the environment."""
    settings = resolve_settings(settings or Settings())
    if settings.secret is None or settings.admin_key is None:
        raise ConfigError("secrets missing after resolution")
    admin_key = settings.admin_key.get_secret_value()
    keyring = Keyring.from_secret(settings.secret.get_secret_value())
    metrics = Metrics(settings.prometheus_multiproc_dir)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        embedded = EmbeddedRedis(settings.data_dir) if settings.redis_url is None else None
        url = embedded.url if embedded else settings.redis_url
        assert url is not None
        store = Store(
            connect(url, settings.redis_timeout_ms),
            Keys(settings.key_prefix),
            on_error=lambda operation: metrics.redis_errors.labels(operation).inc(),
            hot=PipelinedReader(url, settings.redis_timeout_ms / 1000) if supports(url) else None,
        )
        repository = DefinitionRepository(store)
        registry = DefinitionRegistry(repository, settings.data_dir / SNAPSHOT_FILE)
        await registry.start()
        refresher = asyncio.create_task(registry.run(settings.definitions_refresh_ms / 1000))
        catalog = CatalogRepository(store)
        recs = RecsRegistry(
            store,
            catalog,
            settings.artifacts_dir,
            with_index=settings.recs_index == "hnsw",
            index_ef=settings.recs_index_ef,
            on_load_error=lambda kind: metrics.model_load_errors.labels(kind).inc(),
            experiment_versions=lambda: recs_arm_versions(registry.current),
            snapshot_path=settings.data_dir / RECS_SNAPSHOT_FILE,
        )
        recs_poller = asyncio.create_task(recs.run(settings.models_refresh_ms / 1000))
        scorers = ScorerRegistry(
            store,
            settings.artifacts_dir,
            on_load_error=lambda kind: metrics.model_load_errors.labels(kind).inc(),
            experiment_versions=lambda: arm_model_versions(registry.current),
        )
        scorer_poller = asyncio.create_task(scorers.run(settings.models_refresh_ms / 1000))
        bandits = BanditRegistry(store)
        bandit_poller = asyncio.create_task(
            bandits.run(
                lambda: registry.current.slots if registry.current else {},
                settings.bandit_refresh_ms / 1000,
            )
        )
        app.state.services = Services(
            settings=settings,
            store=store,
            definitions=repository,
            registry=registry,
            catalog=catalog,
            pseudonymize=Pseudonymizer(keyring.pseudonyms),
            signer=TokenSigner(keyring.tokens),
            metrics=metrics,
            api_keys=ApiKeys(settings.site_keys, admin_key),
            decision_ids=DecisionIds(),
            spool=EventSpool(settings.data_dir / SPOOL_DIR),
            recs=recs,
            decision_log=DecisionLog(
                store,
                LogTarget(settings.event_stream_maxlen, settings.visitor_ttl_s, LOG_INDEX_CAP),
                on_drop=metrics.decisions_unlogged.inc,
            ),
            scorers=scorers,
            bandits=bandits,
        )
        services = app.state.services
        background = [
            refresher,
            recs_poller,
            scorer_poller,
            bandit_poller,
            asyncio.create_task(_replay_spool(services)),
            asyncio.create_task(services.decision_log.run()),
        ]
        stop_archiving = asyncio.Event()
        if settings.archive_interval_s > 0:
            background.append(
                asyncio.create_task(
                    archive_forever(
                        store, settings.archive_path, settings.archive_interval_s, stop_archiving
                    )
                )
            )
        try:
            yield
        finally:
            stop_archiving.set()
            for task in background:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await services.spool.aclose()
            with contextlib.suppress(StoreUnavailable):
                await services.decision_log.flush()  # what the last requests decided
            await store.close()
            if embedded:
                embedded.close()

    app = FastAPI(
        title="Omotenashi",
        version=engine.__version__,
        summary="A different welcome for every visitor: real-time personalization.",
        lifespan=lifespan,
        # FastAPI's OpenTelemetry hooks ask for providers on every request (10 of the 98
        # us a /healthz took in process); the service reports through Prometheus instead
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    for router in (  # matched in this order: the hot public routes first
        health.router,
        decide.router,
        recommendations.router,  # before /v1/items/{item_id}, which is admin-only
        events.router,
        slots_router,
        segment_report.router,  # before /v1/segments/{name}, which would take "report"
        segments_router,
        items.router,
        visitors.router,
        models.router,
        experiments.router,
        web.router,
    ):
        mount_flat(app, router)
    if settings.demo:
        from engine.api.routes import demo  # the shop's data is in training/: demo only

        mount_flat(app, demo.router)
    install_error_handlers(app)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "PUT"],
            allow_headers=["Content-Type", "X-Api-Key"],
            max_age=600,
        )
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    _document_bodies(app, BODY_MODELS)
    return app


def create_served_app(settings: Settings | None = None) -> FastAPI:
    """`create_app` for a server worker, with everything imported so far frozen out of
    the cyclic garbage collector: some 180,000 long-lived objects (libraries' functions,
    types and tables) that every full collection would otherwise walk, a 40 ms pause
    every few thousand requests (measured in process on the recommendations route)."""
    app = create_app(settings)
    gc.collect()
    gc.freeze()
    return app


async def _replay_spool(services: Services) -> None:
    """Send spooled events on whenever Redis answers again (runs for the app's life)."""
    while True:
        await pause(SPOOL_REPLAY_INTERVAL_S)
        try:
            if services.store.circuit_open or not await services.spool.has_pending():
                continue
            sent = await services.spool.replay(services.write_events)
        except Exception:  # keep replaying later; a dead replayer would strand events
            log.exception("spool replay failed; retrying")
            continue
        if sent:
            services.metrics.events_replayed.inc(sent)
            log.info("replayed %d spooled events", sent)


def _document_bodies(app: FastAPI, models: tuple[type[BaseModel], ...]) -> None:
    """Add the raw-parsed request bodies (see engine.api.body) to the OpenAPI schema."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title, version=app.version, summary=app.summary, routes=app.routes
        )
        schema.setdefault("components", {})["securitySchemes"] = {
            "SiteKey": {"type": "apiKey", "in": "header", "name": "X-Api-Key"},
        }
        components = schema["components"].setdefault("schemas", {})
        for model in models:
            body = model.model_json_schema(ref_template="#/components/schemas/{model}")
            components.update(body.pop("$defs", {}))
            components[model.__name__] = body
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]

"""Recommendations for a visitor, and items similar to an item (site key).

Under a running recommender experiment the visitor's arm names the model version
(`engine.recs.serve.choose_model`); the list, its token and its decision record carry
the experiment and arm, and the visitor's exposure is queued with the record.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Path, Request, Response

from engine.api.body import parse_query, query_params
from engine.api.deps import SITE_KEY_SECURITY, site_services
from engine.api.responses import json_response
from engine.api.routing import DirectRoute
from engine.api.schemas.recs import (
    RecommendationsOut,
    RecommendationsQuery,
    SimilarOut,
    SimilarQuery,
)
from engine.decisions.log import decision_record
from engine.decisions.tokens import DecisionToken
from engine.errors import ModelNotLoaded, NotFound, StoreUnavailable
from engine.experiments.definitions import RECOMMENDATIONS
from engine.recs.registry import RecsState
from engine.recs.serve import (
    ArmChoice,
    Recommendations,
    VisitorHistory,
    choose_model,
    recommend,
    recommendation_exposure,
    similar_items,
)
from engine.services import Services
from engine.store.profiles import Profile, read_profile
from models.features import decode_features

router = APIRouter(tags=["recommendations"], route_class=DirectRoute)
SLOT = "recommendations"  # what the token's slot says, so outcomes attribute to recs


@router.get(
    "/v1/recommendations",
    response_model=RecommendationsOut,
    openapi_extra={**query_params(RecommendationsQuery), **SITE_KEY_SECURITY},
    summary="Top-n items for this visitor, filtered, with a token",
)
async def recommendations_route(request: Request) -> Response:
    services = site_services(request)
    query = parse_query(request, RecommendationsQuery)
    # read together, before any await: the arm's version and the active one of one set
    current, versions = _state(services), services.recs.versions
    definitions = services.registry.current
    pid = services.pseudonymize(query.visitor_id)
    choice = ArmChoice(current, "model")
    profile: Profile | None = None
    try:
        profile = await read_profile(
            services.store,
            pid,
            personalization_default=services.personalization_default,
            history_n=services.settings.recs_history,
        )
    except StoreUnavailable:
        choice, visitor = ArmChoice(current, "fallback"), VisitorHistory("", ())
    else:
        if profile is None:
            choice, visitor = ArmChoice(current, "no_consent"), VisitorHistory("", ())
        else:
            running = () if definitions is None else definitions.running.get(RECOMMENDATIONS, ())
            choice = choose_model(current, versions, running, profile.pid)
            visitor = VisitorHistory("", ())  # the holdout: the unpersonalized list
            if choice.personalized:
                visitor = VisitorHistory(profile.pid, profile.history, _favourite(profile))
    if choice.policy == "fallback" and choice.experiment is not None:
        services.metrics.model_missing.labels(SLOT).inc()
    result = recommend(
        choice.state,
        visitor,
        n=query.n,
        category=query.category,
        exclude=query.excluded(),
        exclude_types=services.settings.recs_exclude,
    )
    services.metrics.count_recommendation(result.source)
    experiment = None if choice.experiment is None else choice.experiment.id
    decision_id, now = services.decision_ids(), time.time()
    token = services.signer.sign(
        DecisionToken(
            decision_id=decision_id,
            pid=pid,
            slot=SLOT,
            variant=result.source,
            policy=choice.policy,
            propensity=1.0,
            issued_at=int(now),
            model_version=result.model_version,
            experiment=experiment,
            arm=choice.arm,
        )
    )
    if profile is not None and profile.analytics:
        extra: dict[str, object] = {
            "items": result.item_ids,
            "scores": result.scores,
            "source": result.source,
        }
        if choice.experiment is not None and choice.arm is not None:
            extra.update(experiment=experiment, arm=choice.arm)
            services.decision_log.expose(
                profile.pid,
                recommendation_exposure(
                    choice.experiment,
                    choice.arm,
                    now,
                    profile.features,
                    definitions.segments if definitions is not None else (),
                ),
            )
        services.decision_log.record(
            profile.pid,
            decision_record(
                decision_id=decision_id,
                pid=pid,
                slot=SLOT,
                ts=now,
                token=token,
                chosen=result.item_ids[0] if result.item_ids else "",
                eligible=[],  # the whole catalogue
                propensity=1.0,
                policy=choice.policy,
                model_version=result.model_version,
                features={},
                context={},
                extra=extra,
            ),
        )
    body: dict[str, object] = {
        "items": _items(result),
        "model_version": result.model_version,
        "source": result.source,
        "policy": choice.policy,
        "token": token,
    }
    if experiment is not None:
        body.update(experiment=experiment, arm=choice.arm)
    return json_response(body)


@router.get(
    "/v1/items/{item_id}/similar",
    response_model=SimilarOut,
    openapi_extra={**query_params(SimilarQuery), **SITE_KEY_SECURITY},
    summary="Items similar to this one (cosine of the recommender's item factors)",
)
async def similar_route(
    request: Request, item_id: Annotated[str, Path(min_length=1, max_length=128)]
) -> Response:
    services = site_services(request)
    query = parse_query(request, SimilarQuery)
    result = similar_items(_state(services), item_id, n=query.n, category=query.category)
    if result is None:
        raise NotFound(f"the recommender does not know item {item_id!r}")
    return json_response({"items": _items(result), "model_version": result.model_version})


def _favourite(profile: Profile) -> Callable[[], str | None]:
    """Decoding features costs as much as scoring: only cold starts need it."""

    def favourite() -> str | None:
        value = decode_features(profile.features, time.time()).get("favourite_category")
        return str(value) if value else None

    return favourite


def _state(services: Services) -> RecsState:
    state = services.recs.current
    if state is None and not services.recs.polled:
        # the active version and the catalogue are in Redis: nothing to serve from yet
        raise ModelNotLoaded("recommender not loaded: Redis unreachable since the worker started")
    if state is None:
        raise ModelNotLoaded("no recommender model is active (omotenashi models activate recs V)")
    return state


def _items(result: Recommendations) -> list[dict[str, object]]:
    return [
        {"item_id": item_id, "score": score}
        for item_id, score in zip(result.item_ids, result.scores, strict=True)
    ]

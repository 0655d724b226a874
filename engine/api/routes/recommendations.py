"""Recommendations for a visitor, and items similar to an item (site key)."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from engine.api.deps import SITE_KEY_SECURITY, site_services
from engine.api.responses import json_response
from engine.api.schemas.recs import RecommendationsOut, SimilarOut
from engine.decisions.tokens import DecisionToken
from engine.errors import InvalidInput, ModelNotLoaded, NotFound, StoreUnavailable
from engine.recs.registry import RecsState
from engine.recs.serve import Recommendations, VisitorHistory, recommend, similar_items
from engine.services import Services
from engine.store.profiles import read_profile
from models.features import decode_features

router = APIRouter(tags=["recommendations"])
CATEGORY = r"^[a-z0-9][a-z0-9_-]{0,63}$"
MAX_EXCLUDE = 100
SLOT = "recommendations"  # what the token's slot says, so outcomes attribute to recs


@router.get(
    "/v1/recommendations",
    response_model=RecommendationsOut,
    openapi_extra=SITE_KEY_SECURITY,
    summary="Top-n items for this visitor, filtered, with a token",
)
async def recommendations_route(
    request: Request,
    visitor_id: Annotated[str, Query(min_length=1, max_length=256)],
    n: Annotated[int, Query(ge=1, le=100)] = 10,
    category: Annotated[str | None, Query(pattern=CATEGORY)] = None,
    exclude: Annotated[
        str | None, Query(max_length=MAX_EXCLUDE * 129, description="comma-separated item ids")
    ] = None,
) -> Response:
    services = site_services(request)
    excluded = _exclude_list(exclude)
    state = _state(services)
    pid = services.pseudonymize(visitor_id)
    policy = "model"
    try:
        profile = await read_profile(
            services.store,
            pid,
            personalization_default=services.personalization_default,
            history_n=services.settings.recs_history if services.settings.recs_exclude else 0,
        )
    except StoreUnavailable:
        policy, visitor = "fallback", VisitorHistory("", ())
    else:
        if profile is None:
            policy, visitor = "no_consent", VisitorHistory("", ())
        else:
            features = decode_features(profile.features, time.time())
            favourite = features.get("favourite_category")
            visitor = VisitorHistory(profile.pid, profile.history, str(favourite) or None)
    result = recommend(
        state,
        visitor,
        n=n,
        category=category,
        exclude=excluded,
        exclude_types=services.settings.recs_exclude,
    )
    services.metrics.count_recommendation(result.source)
    token = services.signer.sign(
        DecisionToken(
            decision_id=services.decision_ids(),
            pid=pid,
            slot=SLOT,
            variant=result.source,
            policy=policy,
            propensity=1.0,
            issued_at=int(time.time()),
            model_version=result.model_version,
        )
    )
    return json_response(
        {
            "items": _items(result),
            "model_version": result.model_version,
            "source": result.source,
            "policy": policy,
            "token": token,
        }
    )


@router.get(
    "/v1/items/{item_id}/similar",
    response_model=SimilarOut,
    openapi_extra=SITE_KEY_SECURITY,
    summary="Items similar to this one (cosine of the recommender's item factors)",
)
async def similar_route(
    request: Request,
    item_id: Annotated[str, Path(min_length=1, max_length=128)],
    n: Annotated[int, Query(ge=1, le=100)] = 10,
    category: Annotated[str | None, Query(pattern=CATEGORY)] = None,
) -> Response:
    services = site_services(request)
    result = similar_items(_state(services), item_id, n=n, category=category)
    if result is None:
        raise NotFound(f"the recommender does not know item {item_id!r}")
    return json_response({"items": _items(result), "model_version": result.model_version})


def _state(services: Services) -> RecsState:
    state = services.recs.current
    if state is None:
        raise ModelNotLoaded("no recommender model is active (omotenashi models activate recs V)")
    return state


def _exclude_list(text: str | None) -> list[str]:
    if not text:
        return []
    ids = [part for part in (p.strip() for p in text.split(",")) if part]
    if len(ids) > MAX_EXCLUDE or any(len(i) > 128 for i in ids):
        raise InvalidInput(f"exclude takes at most {MAX_EXCLUDE} ids of up to 128 characters")
    return ids


def _items(result: Recommendations) -> list[dict[str, object]]:
    return [
        {"item_id": item_id, "score": score}
        for item_id, score in zip(result.item_ids, result.scores, strict=True)
    ]

"""Serving recommendations: known visitors by their trained factors, new ones by fold-in
from their live history, visitors without history by popularity.

One read (features and history, in `read_profile`), then numpy: one matrix-vector
product over the candidate rows, exclusions as index arrays, `argpartition`.

Under a running recommender experiment the visitor's arm picks the model version
(`choose_model`): assignment is a pure function of the pseudonym and every version an
arm names is already loaded by the registry, so an experiment costs no I/O here.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Literal, NamedTuple

import numpy as np

from engine.decisions.log import Exposure, exposure_of
from engine.decisions.rules import Facts
from engine.decisions.segments import Segment, segments_of
from engine.experiments.assignment import assign
from engine.experiments.definitions import Experiment
from engine.recs.catalog_view import CatalogView
from engine.recs.registry import RecsState
from models.ann import CANDIDATES, search_rows
from models.features import decode_features
from models.fold_in import FoldIn
from models.fold_in_lists import exact_top
from models.interactions import item_weights
from models.recommender import RecsModel, top_n

Source = Literal["trained", "fold_in", "popular", "popular_in_category"]
# model: the visitor's list from the model their arm (or no experiment) names;
# holdout: an experiment's holdout, who get the unpersonalized list (popular items);
# fallback: Redis unreachable (popular items), or an arm's version not loaded here
# (the active model answered); no_consent: the visitor refused personalization
Policy = Literal["model", "holdout", "fallback", "no_consent"]


NO_ROWS = np.zeros(0, dtype=np.int64)
NO_ROWS.flags.writeable = False


class Recommendations(NamedTuple):
    item_ids: list[str]
    scores: list[float | None]  # None: a catalogue item newer than the model (a filler)
    source: Source
    model_version: str


class VisitorHistory(NamedTuple):
    """What the read gave: the profile's pid (after identity merges), its recent
    `(type, item_id)` interactions, and how to find its favourite category (asked
    only for a cold start)."""

    profile_pid: str
    interactions: Sequence[tuple[str, str]]
    favourite_category: Callable[[], str | None] = lambda: None


class ArmChoice(NamedTuple):
    """The model a visitor's list comes from and how the list is labelled: their arm
    of a running recommender experiment, if they are in one."""

    state: RecsState
    policy: Policy
    experiment: Experiment | None = None
    arm: str | None = None

    @property
    def personalized(self) -> bool:
        return self.policy != "holdout"


def choose_model(
    current: RecsState,
    versions: Mapping[str, RecsState],
    experiments: Sequence[Experiment],
    pid: str,
) -> ArmChoice:
    """The state that serves this visitor: the first running experiment that assigns
    them decides (as on slots). An arm without a model version gets the active model;
    an arm whose version this worker has not loaded (still loading, or failed: logged
    and counted by the registry) gets the active model too, labelled "fallback", and
    stays in its arm: the analysis is by assignment, so a version that fails dilutes
    its arm's effect (the flag says by how much) instead of skewing who is counted."""
    for experiment in experiments:
        assignment = assign(experiment, pid)
        if assignment is None:
            continue
        arm = assignment.definition
        if arm is None:
            return ArmChoice(current, "holdout", experiment, assignment.arm)
        if arm.model_version is None:
            return ArmChoice(current, "model", experiment, arm.name)
        state = versions.get(arm.model_version)
        if state is None:
            return ArmChoice(current, "fallback", experiment, arm.name)
        return ArmChoice(state, "model", experiment, arm.name)
    return ArmChoice(current, "model")


def recommendation_exposure(
    experiment: Experiment,
    arm: str,
    now: float,
    features: Mapping[bytes, bytes],
    segments: Sequence[Segment],
) -> Exposure:
    """The visitor's exposure to a recommender experiment, as on slots: the covariate
    CUPED adjusts with (its value before this exposure, 0 for a newcomer) and the
    breakdown segments they are in. Decoding features costs as much as ranking, so it
    happens only for an experiment that asks for either; a recommendation request has
    no page context, so only segments on features can match."""
    if experiment.covariate is None and not experiment.segments:
        return Exposure(experiment.id, arm, now, None, ())
    decoded = decode_features(features, now)
    wanted = [s for s in segments if s.name in experiment.segments]
    member_of = segments_of(wanted, Facts(context={}, features=decoded))
    return exposure_of(experiment, arm, now, decoded, member_of)


def recommend(
    state: RecsState,
    visitor: VisitorHistory,
    *,
    n: int,
    category: str | None = None,
    exclude: Collection[str] = (),
    exclude_types: Collection[str] = (),
) -> Recommendations:
    """Top `n` items for the visitor, filtered; fewer only if the catalogue has fewer."""
    model, view = state.model, state.catalog
    seen = [item for kind, item in visitor.interactions if kind in exclude_types]
    banned_ids = {*exclude, *seen}
    # most visitors ban nothing live: then no array is built for it
    live_banned = model.rows_of(list(banned_ids)) if banned_ids else NO_ROWS
    user_row = model.user_row(visitor.profile_pid)
    ranked: tuple[np.ndarray, np.ndarray] | None = None
    source: Source
    if user_row is not None:
        vector, source = model.user_factors[user_row], "trained"
        if model.user_top is not None and exclude_types:
            ranked = _rank_known(model, view, user_row, vector, category, live_banned, n)
        if ranked is None:
            banned = live_banned
            if exclude_types:
                banned = np.concatenate([live_banned, model.seen_rows(user_row)])
            ranked = _rank(model, view, vector, category, banned, n)
    else:
        vector = None
        weights = item_weights(visitor.interactions, model.event_weights)
        index = model.item_index
        known = [(index[item], weight) for item, weight in weights.items() if item in index]
        if known:
            rows = np.array([row for row, _ in known], dtype=np.int64)
            values = np.array([weight for _, weight in known], dtype=np.float64)
            folded = model.fold_in_terms(rows, values)
            vector, source = folded.vector, "fold_in"
            ranked = _rank_listed(model, view, folded, category, live_banned, n)
        else:
            source = "popular"
            favourite = visitor.favourite_category() if category is None else None
            if favourite in view.members:
                category, source = favourite, "popular_in_category"
        if ranked is None:
            ranked = _rank(model, view, vector, category, live_banned, n)
    rows, scores = ranked
    item_ids = [str(i) for i in model.item_ids[rows].tolist()]
    score_list: list[float | None] = [float(s) for s in scores.tolist()]
    if len(item_ids) < n:
        for item_id in view.fill(category):
            if item_id not in banned_ids:
                item_ids.append(item_id)
                score_list.append(None)
                if len(item_ids) == n:
                    break
    return Recommendations(item_ids, score_list, source, model.version)


def similar_items(
    state: RecsState, item_id: str, *, n: int, category: str | None = None
) -> Recommendations | None:
    """Items whose factors point the same way (cosine); None if the model lacks `item_id`."""
    model, view = state.model, state.catalog
    row = model.item_index.get(item_id)
    if row is None:
        return None
    banned = np.array([row], dtype=np.int64)
    candidates = view.candidates(category)
    if candidates is None:
        scores = model.similar_scores(row)
        rows, best = top_n(scores, n, np.concatenate([banned, view.unavailable]))
    else:
        scores = model.similar_scores(row)[candidates]
        positions, best = top_n(scores, n, np.flatnonzero(candidates == row))
        rows = candidates[positions]
    ids = [str(i) for i in model.item_ids[rows].tolist()]
    return Recommendations(ids, [float(s) for s in best.tolist()], "trained", model.version)


def _rank(
    model: RecsModel,
    view: CatalogView,
    vector: np.ndarray | None,
    category: str | None,
    banned: np.ndarray,
    n: int,
) -> tuple[np.ndarray, np.ndarray]:
    if vector is None:
        order = view.popular if category is None else view.popular_in.get(category)
        if order is None:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        rows = _first_allowed(order, banned, n)
        return rows, np.asarray(model.popularity[rows], dtype=np.float32)
    candidates = view.candidates(category)
    if candidates is None:
        if model.ann is not None:
            found = _rank_approximately(model, view, vector, banned, n)
            if found is not None:
                return found
        return top_n(model.scores(vector), n, np.concatenate([banned, view.unavailable]))
    scores = model.item_factors[candidates] @ vector
    positions, best = top_n(scores, n, np.flatnonzero(np.isin(candidates, banned)))
    return candidates[positions], best


def _rank_known(
    model: RecsModel,
    view: CatalogView,
    user_row: int,
    vector: np.ndarray,
    category: str | None,
    banned: np.ndarray,
    n: int,
) -> tuple[np.ndarray, np.ndarray] | None:
    """A trained visitor's precomputed best items (training interactions already out),
    filtered and rescored; None when filters left fewer than n of a full list (the
    catalogue may hold more: the general path answers)."""
    assert model.user_top is not None
    listed = model.user_top[user_row]
    complete = bool(listed[-1] < 0)  # padded: every unseen item is in the list
    candidates = listed[listed >= 0] if complete else listed
    keep = ~view.blocked[candidates]
    if category is not None:
        code = view.categories.get(category)
        if code is None:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        keep &= view.category_of[candidates] == code
    if banned.size:
        keep &= not_in(candidates, banned)
    candidates = candidates[keep]
    if candidates.size < n and not complete:
        return None
    best = candidates[:n]
    return best, np.asarray(model.item_factors[best] @ vector, dtype=np.float32)


def _rank_listed(
    model: RecsModel,
    view: CatalogView,
    folded: FoldIn,
    category: str | None,
    banned: np.ndarray,
    n: int,
) -> tuple[np.ndarray, np.ndarray] | None:
    """A fold-in visitor's exact top n from their items' lists (`models.fold_in_lists`);
    None when the model has no lists, the solve gave no coefficients, the lists cannot
    vouch for the answer or filters left fewer than n candidates (the caller ranks the
    catalogue)."""
    lists = model.fold_in_lists
    if lists is None or folded.coefficients is None:
        return None
    found = lists.candidates(folded.rows, folded.coefficients)
    keep = ~view.blocked[found.rows]
    if category is not None:
        code = view.categories.get(category)
        if code is None:
            return None
        keep &= view.category_of[found.rows] == code
    if banned.size:
        keep &= not_in(found.rows, banned)
    return exact_top(found.subset(keep), model.item_factors, folded.vector, n)


def _first_allowed(order: np.ndarray, banned: np.ndarray, n: int) -> np.ndarray:
    """The first `n` rows of `order` not in `banned`: reads n + len(banned) rows at most."""
    head = order[: n + banned.size]
    if banned.size:
        head = head[not_in(head, banned)]
    return head[:n]


def not_in(rows: np.ndarray, banned: np.ndarray) -> np.ndarray:
    """The mask of `rows` not in `banned`. A visitor's few seen items are compared all
    at once (np.isin sorts both arrays: ten times the cost at these sizes)."""
    if banned.size <= 64 and rows.size * banned.size <= 1 << 20:
        mask: np.ndarray = (rows[:, None] != banned[None, :]).all(axis=1)
        return mask
    return ~np.isin(rows, banned, kind="sort")


def _rank_approximately(
    model: RecsModel, view: CatalogView, vector: np.ndarray, banned: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray] | None:
    """Top-n from the HNSW index, rescored exactly; None when filters removed so many
    of its candidates that fewer than n are left (the exact path then answers)."""
    wanted = min(model.n_items, max(CANDIDATES, 2 * n) + banned.size)
    rows = search_rows(model.ann, vector, wanted)
    rows = rows[~view.blocked[rows]]
    if banned.size:
        rows = rows[not_in(rows, banned)]
    if rows.size < n:
        return None
    scores = model.item_factors[rows] @ vector
    best, best_scores = top_n(scores, n)
    return rows[best], best_scores

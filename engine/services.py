"""What a worker holds for its lifetime: built in the app's lifespan, injected per request."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from engine.auth import ApiKeys
from engine.decisions.bandit import BanditRegistry
from engine.decisions.log import DecisionLog
from engine.decisions.registry import DefinitionRegistry
from engine.decisions.scorers import ScorerRegistry
from engine.decisions.serve import DecisionIds
from engine.decisions.tokens import TokenSigner
from engine.events.ingest import ingest_policy, write_events
from engine.events.outcomes import outcomes_of
from engine.events.spool import EventSpool
from engine.metrics import Metrics
from engine.privacy.pseudonym import Pseudonymizer
from engine.recs.registry import RecsRegistry
from engine.settings import Settings
from engine.store.catalog import CatalogRepository
from engine.store.client import Store
from engine.store.definitions import DefinitionRepository
from engine.store.profiles import IngestCounts
from models.events import Event


@dataclass(slots=True)
class Services:
    settings: Settings
    store: Store
    definitions: DefinitionRepository
    registry: DefinitionRegistry
    catalog: CatalogRepository
    pseudonymize: Pseudonymizer
    signer: TokenSigner
    metrics: Metrics
    api_keys: ApiKeys
    decision_ids: DecisionIds
    spool: EventSpool
    recs: RecsRegistry
    decision_log: DecisionLog
    scorers: ScorerRegistry
    bandits: BanditRegistry

    async def write_events(self, events: Sequence[Event]) -> IngestCounts:
        """The one write path for accepted events (fresh ones and spool replays)."""
        definitions = self.registry.current
        outcomes, max_metrics = None, frozenset[str]()
        if definitions is not None:
            signer, keys, now = self.signer, self.store.keys, time.time()
            outcomes = [outcomes_of(event, definitions, signer, keys, now) for event in events]
            max_metrics = definitions.conversion_metrics
        counts = await write_events(
            self.store,
            events,
            ingest_policy(self.settings),
            outcomes=outcomes,
            max_metrics=max_metrics,
        )
        if counts.without_consent:
            self.metrics.events_dropped.labels("no_consent").inc(counts.without_consent)
        if counts.duplicates:
            self.metrics.events_dropped.labels("duplicate").inc(counts.duplicates)
        return counts

    @property
    def personalization_default(self) -> bool:
        return self.settings.consent_default == "opt_out"

    @property
    def consent_defaults(self) -> dict[str, bool]:
        """What a visitor who never chose has agreed to: everything under opt-out."""
        granted = self.settings.consent_default == "opt_out"
        return {"personalization": granted, "analytics": granted}

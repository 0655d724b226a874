"""What a worker holds for its lifetime: built in the app's lifespan, injected per request."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from engine.auth import ApiKeys
from engine.decisions.registry import DefinitionRegistry
from engine.decisions.serve import DecisionIds
from engine.decisions.tokens import TokenSigner
from engine.events.ingest import write_events
from engine.events.spool import EventSpool
from engine.metrics import Metrics
from engine.privacy.pseudonym import Pseudonymizer
from engine.settings import Settings
from engine.store.catalog import CatalogRepository
from engine.store.client import Store
from engine.store.definitions import DefinitionRepository
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

    async def write_events(self, events: Sequence[Event]) -> None:
        """The one write path for accepted events (fresh ones and spool replays)."""
        await write_events(
            self.store,
            events,
            ttl_s=self.settings.visitor_ttl_days * 86_400,
            log_maxlen=self.settings.event_stream_maxlen,
        )

"""What a worker holds for its lifetime: built in the app's lifespan, injected per request."""

from __future__ import annotations

from dataclasses import dataclass

from engine.auth import ApiKeys
from engine.decisions.registry import DefinitionRegistry
from engine.decisions.serve import DecisionIds
from engine.decisions.tokens import TokenSigner
from engine.metrics import Metrics
from engine.privacy.pseudonym import Pseudonymizer
from engine.settings import Settings
from engine.store.catalog import CatalogRepository
from engine.store.client import Store
from engine.store.definitions import DefinitionRepository


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

"""Prometheus metrics of one app: created with the app, never module-level globals.

With several uvicorn workers, `PROMETHEUS_MULTIPROC_DIR` (set by `omotenashi serve`)
makes every worker write its values to shared files, and `/metrics` aggregates them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)


class Metrics:
    def __init__(self, multiproc_dir: Path | None = None) -> None:
        self._multiproc_dir = multiproc_dir
        self._children: dict[tuple[object, ...], Any] = {}
        self.registry = CollectorRegistry(auto_describe=True)
        self.request_seconds = Histogram(
            "omotenashi_http_request_duration_seconds",
            "HTTP request latency by route",
            ("route", "method", "status"),
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.decisions = Counter(
            "omotenashi_decisions_total",
            "slot decisions by policy",
            ("policy",),
            registry=self.registry,
        )
        self.events = Counter(
            "omotenashi_events_total",
            "accepted events by type",
            ("type",),
            registry=self.registry,
        )
        self.events_rejected = Counter(
            "omotenashi_events_rejected_total",
            "events refused at validation",
            registry=self.registry,
        )
        self.events_spooled = Counter(
            "omotenashi_events_spooled_total",
            "events written to the disk spool (Redis away)",
            registry=self.registry,
        )
        self.events_dropped = Counter(
            "omotenashi_events_dropped_total",
            "accepted events not stored: duplicates, or no analytics consent",
            ("reason",),
            registry=self.registry,
        )
        self.spool_depth = Gauge(
            "omotenashi_spool_events",
            "events waiting in the disk spool for Redis (all workers' files)",
            registry=self.registry,
            multiprocess_mode="max",
        )
        self.events_replayed = Counter(
            "omotenashi_events_replayed_total",
            "spooled events sent on to Redis",
            registry=self.registry,
        )
        self.recommendations = Counter(
            "omotenashi_recommendations_total",
            "recommendation lists served, by source (trained, fold_in, popular...)",
            ("source",),
            registry=self.registry,
        )
        self.model_load_errors = Counter(
            "omotenashi_model_load_errors_total",
            "activated model versions a worker could not load (it kept the previous one)",
            ("kind",),
            registry=self.registry,
        )
        self.model_missing = Counter(
            "omotenashi_model_fallbacks_total",
            "decisions of model-policy slots made by their rules: no scorer loaded for the slot",
            ("slot",),
            registry=self.registry,
        )
        self.decisions_unlogged = Counter(
            "omotenashi_decision_log_dropped_total",
            "decision records dropped because the buffer filled while Redis was away",
            registry=self.registry,
        )
        self.redis_errors = Counter(
            "omotenashi_redis_errors_total",
            "failed Redis round trips by operation",
            ("operation",),
            registry=self.registry,
        )

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        self._child(self.request_seconds, route, method, str(status)).observe(seconds)

    def count_decision(self, policy: str) -> None:
        self._child(self.decisions, policy).inc()

    def count_recommendation(self, source: str) -> None:
        self._child(self.recommendations, source).inc()

    def count_event(self, event_type: str) -> None:
        self._child(self.events, event_type).inc()

    def _child(self, metric: Any, *labels: str) -> Any:
        # labels() hashes and locks on every call; label sets here are few and closed
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def exposition(self) -> bytes:
        """The text format for `/metrics`, aggregated across workers when multiprocess."""
        if self._multiproc_dir is not None:
            registry = CollectorRegistry()
            MultiProcessCollector(registry, path=str(self._multiproc_dir))  # type: ignore[no-untyped-call]
            return generate_latest(registry)
        return generate_latest(self.registry)

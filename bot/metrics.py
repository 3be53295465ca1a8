"""Prometheus metrics of one server: inbox depth and latency, retries, set-aside deliveries,
outbox backlog and platform API errors.

Each server builds its own `Metrics` (its own CollectorRegistry, never the global one), so
tests can run several servers in one process. Gauges that describe the database (inbox
depth, outbox backlog) are read from it when scraped, so every worker process reports the
same figures for the shared queue."""
from __future__ import annotations

import logging
from typing import Callable

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)
_API_ERROR_LISTENERS: list[Callable[[str, str], None]] = []
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class _QueueGauges(Collector):
    """Reads the queues' figures from the database at scrape time."""

    def __init__(self, read: Callable[[], dict[str, float]]) -> None:
        self._read = read

    def collect(self):  # noqa: ANN201 - prometheus_client's protocol
        try:
            figures = self._read()
        except Exception:  # noqa: BLE001 - a scrape must not fail because the database is down
            log.warning("metrics: queue figures unavailable (database unreachable?)")
            figures = {}
        for name, help_text in (
            ("causette_inbox_depth", "Deliveries written to the inbox and not yet processed."),
            ("causette_inbox_oldest_pending_seconds", "Age of the oldest unprocessed delivery."),
            ("causette_inbox_poison", "Deliveries set aside after failing every attempt."),
            ("causette_outbox_backlog", "Messages decided and not yet sent to a platform."),
        ):
            if name in figures:
                yield GaugeMetricFamily(name, help_text, value=figures[name])


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.processed = Counter("causette_inbox_processed", "Deliveries processed, by platform.", ["platform"],
                                 registry=self.registry)
        self.retries = Counter("causette_inbox_retries", "Failed attempts that will be retried, by platform.",
                               ["platform"], registry=self.registry)
        self.poisoned = Counter("causette_inbox_poisoned", "Deliveries this process set aside.", ["platform"],
                                registry=self.registry)
        self.processing = Histogram("causette_inbox_processing_seconds", "Time to process one delivery.", ["platform"],
                                    buckets=LATENCY_BUCKETS, registry=self.registry)
        self.ack_to_done = Histogram("causette_inbox_ack_to_done_seconds",
                                     "From the delivery written (acknowledged) to its work committed.", ["platform"],
                                     buckets=LATENCY_BUCKETS, registry=self.registry)
        self.api_errors = Counter("causette_platform_api_errors", "Errors answered by a platform's API.",
                                  ["platform", "method"], registry=self.registry)
        self._queues: _QueueGauges | None = None

    def read_queues_with(self, read: Callable[[], dict[str, float]]) -> None:
        """Set how the queue gauges are read (once per server)."""
        if self._queues is not None:
            self.registry.unregister(self._queues)
        self._queues = _QueueGauges(read)
        self.registry.register(self._queues)

    def api_error(self, platform: str, method: str) -> None:
        self.api_errors.labels(platform, method).inc()

    def count_api_errors(self) -> Callable[[], None]:
        """Count every platform API error this process reports (`report_api_error`) until the
        returned function is called (a server's life)."""
        _API_ERROR_LISTENERS.append(self.api_error)

        def stop() -> None:
            if self.api_error in _API_ERROR_LISTENERS:
                _API_ERROR_LISTENERS.remove(self.api_error)

        return stop

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def report_api_error(platform: str, method: str) -> None:
    """An adapter's API call failed (after its own retries, or one retried attempt): counted by
    every running server's metrics. Adapters call it where they log the failure."""
    for listener in list(_API_ERROR_LISTENERS):
        listener(platform, method)

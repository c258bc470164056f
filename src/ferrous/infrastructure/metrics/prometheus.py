"""The ``Metrics`` port on prometheus-client, and the text exposition of ``/metrics``.

Each server (each ``PrometheusMetrics``) has its own ``CollectorRegistry``, never the
library's global one: tests start many servers in one process, and a registry holds one
metric per name. Histograms and counters count this server's observations; the gauges are
the database's counts (``SnapshotCollector``), read when scraped and kept ``cache_seconds``
so that a burst of scrapes, or several Prometheus replicas, cost one batch of queries.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import structlog
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)

from ferrous.application.metrics import MetricsReads
from ferrous.application.ports import Clock
from ferrous.domain.errors import FerrousError
from ferrous.infrastructure.metrics.snapshot import SnapshotCollector

log = structlog.get_logger(__name__)

#: seconds; builds and jobs run from seconds to hours
DURATION_BUCKETS = (1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0)
QUEUE_WAIT_BUCKETS = (0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
#: any other method is counted as "other": a client must not mint label values
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class PrometheusMetrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(
        self,
        reads: MetricsReads,
        clock: Clock,
        online_within: timedelta,
        cache_seconds: float = 2.0,
    ) -> None:
        """``online_within``: an agent seen this recently counts as online (the lease
        timeout)."""
        self.reads = reads
        self._clock = clock
        self._online_within = online_within
        self._cache_seconds = cache_seconds
        self._snapshot_at: float | None = None  # time.monotonic() of the last snapshot
        self._refreshing = asyncio.Lock()
        self.registry = CollectorRegistry(auto_describe=False)
        registry = self.registry
        self._builds = Histogram(
            "ferrous_build_duration_seconds",
            "Finished builds' durations (start to end), by status, on this server.",
            ["status"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self._jobs = Histogram(
            "ferrous_job_duration_seconds",
            "Finished job attempts' durations, by status, on this server.",
            ["status"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self._queue_wait = Histogram(
            "ferrous_queue_wait_seconds",
            "Seconds from queued to claimed, by the job's label set, on this server.",
            ["labels"],
            buckets=QUEUE_WAIT_BUCKETS,
            registry=registry,
        )
        self._log_bytes = Counter(
            "ferrous_log_bytes", "Job log bytes accepted by this server.", registry=registry
        )
        self._requests = Counter(
            "ferrous_http_requests",
            "HTTP requests answered, by method, route template and status.",
            ["method", "route", "status"],
            registry=registry,
        )
        self._latency = Histogram(
            "ferrous_http_request_duration_seconds",
            "HTTP request latency (streams: to their first byte), by method and route.",
            ["method", "route"],
            buckets=HTTP_BUCKETS,
            registry=registry,
        )
        self._counts = SnapshotCollector()
        registry.register(self._counts)

    # the application's observations (``application.metrics.Metrics``)

    def job_claimed(self, labels: str, queue_wait: float) -> None:
        self._queue_wait.labels(labels).observe(queue_wait)

    def job_finished(self, status: str, duration: float) -> None:
        self._jobs.labels(status).observe(duration)

    def build_finished(self, status: str, duration: float) -> None:
        self._builds.labels(status).observe(duration)

    def log_bytes(self, n: int) -> None:
        self._log_bytes.inc(n)

    # the API's (``api.metrics.MetricsExporter``)

    def http_request(self, method: str, route: str, status: int, seconds: float) -> None:
        if method not in METHODS:
            method = "other"
        self._requests.labels(method, route, str(status)).inc()
        self._latency.labels(method, route).observe(seconds)

    async def exposition(self) -> bytes:
        """The text format, with the database's counts at most ``cache_seconds`` old."""
        await self._refresh()
        return generate_latest(self.registry)

    async def _refresh(self) -> None:
        async with self._refreshing:  # a burst waits for one batch, then all find it fresh
            taken = self._snapshot_at
            if taken is not None and time.monotonic() - taken < self._cache_seconds:
                return
            now = self._clock.now()
            try:
                snapshot = await self.reads.snapshot(now, now - self._online_within)
            except FerrousError:
                # the database is away: its counts are left out, not reported stale
                log.warning("metrics_snapshot_failed", exc_info=True)
                self._counts.snapshot = None
                self._snapshot_at = None
                return
            self._counts.snapshot = snapshot
            self._snapshot_at = time.monotonic()

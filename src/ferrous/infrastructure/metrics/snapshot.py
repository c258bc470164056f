"""The gauges read from the database at scrape time, as a custom collector.

It yields its families from the last snapshot it was given, so a scrape renders exactly the
counts of one batch of queries; every known status is reported (0 included), so a series
never vanishes when its count drops to nothing.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from ferrous.application.metrics import SystemSnapshot
from ferrous.domain.statuses import BuildStatus, JobStatus

BUILD_STATUSES = tuple(status.value for status in BuildStatus)
JOB_STATUSES = tuple(status.value for status in JobStatus)


def _by_status(
    name: str, documentation: str, counts: Mapping[str, int], known: tuple[str, ...]
) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=["status"])
    for status in sorted({*known, *counts}):
        family.add_metric([status], counts.get(status, 0))
    return family


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


class SnapshotCollector(Collector):
    def __init__(self) -> None:
        #: None: no snapshot (the database did not answer): these families are left out
        self.snapshot: SystemSnapshot | None = None

    def describe(self) -> list[GaugeMetricFamily]:
        return []  # registering must not collect (there may be no snapshot yet)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        snapshot = self.snapshot
        if snapshot is None:
            return
        yield _by_status("ferrous_builds", "Builds by status.", snapshot.builds, BUILD_STATUSES)
        yield _by_status("ferrous_jobs", "Jobs by status.", snapshot.jobs, JOB_STATUSES)
        pending = GaugeMetricFamily(
            "ferrous_jobs_pending",
            'Pending jobs by label set (sorted tags joined with ","; "" for none).',
            labels=["labels"],
        )
        for labels, count in sorted(snapshot.pending.items()):
            pending.add_metric([labels], count)
        yield pending
        yield _gauge("ferrous_jobs_running", "Jobs running.", snapshot.running)
        yield _gauge(
            "ferrous_agents_online",
            "Agents seen within the lease timeout.",
            snapshot.agents_online,
        )
        yield _gauge(
            "ferrous_agent_capacity_slots",
            "Job slots of the agents online.",
            snapshot.capacity_slots,
        )
        yield _gauge(
            "ferrous_agent_used_slots",
            "Jobs running on the agents online.",
            snapshot.used_slots,
        )
        yield _gauge("ferrous_outbox_backlog", "Events not yet published.", snapshot.outbox_backlog)
        yield _gauge(
            "ferrous_outbox_oldest_age_seconds",
            "Age of the oldest unpublished event (0 without a backlog).",
            snapshot.outbox_oldest_age,
        )

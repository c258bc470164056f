"""Prometheus metrics: in-process histograms and counters, and the database's counts."""

from ferrous.infrastructure.metrics.prometheus import PrometheusMetrics

__all__ = ["PrometheusMetrics"]

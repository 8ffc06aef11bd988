"""Metrics for Prometheus, served at /metrics on the HTTP port.

One registry per running server (tests run several in one process). Calls are counted by
the gRPC interceptor (so HTTP calls, which go through it, count too); the gauges are read
when scraped, from the objects that know them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

# Round calls take milliseconds; a watch stream lives for minutes.
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
            300, 1800)


# A gauge read at each scrape: one value, or (with a label) a value per label value.
_Read = Callable[[], float | None]
_ReadLabelled = Callable[[], dict[str, float]]


class _Gauges(Collector):
    def __init__(self, gauges: dict[str, tuple[str, _Read]],
                 labelled: dict[str, tuple[str, str, _ReadLabelled]]) -> None:
        self._gauges = gauges
        self._labelled = labelled

    def collect(self) -> Iterator[GaugeMetricFamily]:
        for name, (help_text, read) in self._gauges.items():
            try:
                value = read()
            except Exception:  # a scrape never fails for one source; the series is absent
                continue
            if value is not None:
                yield GaugeMetricFamily(name, help_text, value=value)
        for name, (help_text, label, read_all) in self._labelled.items():
            try:
                values = read_all()
            except Exception:
                continue
            family = GaugeMetricFamily(name, help_text, labels=[label])
            for key, value in sorted(values.items()):
                family.add_metric([key], value)
            yield family


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._calls = Counter("medservice_rpc_calls", "Finished API calls (gRPC and HTTP)",
                              ["method", "code"], registry=self.registry)
        self._seconds = Histogram("medservice_rpc_duration_seconds",
                                  "Duration of API calls", ["method"], buckets=_BUCKETS,
                                  registry=self.registry)
        self._audit_failures = Counter(
            "medservice_audit_write_failures",
            "Audit events that could not be written (the call then failed)",
            registry=self.registry)
        self._delivery = Histogram(
            "medservice_alert_delivery_lag_seconds",
            "From an alert's creation to its hand-over to a watch stream (via=watch, gRPC "
            "and SSE alike), to a browser's socket (via=sse) and to a webhook receiver's "
            "2xx (via=webhook)", ["via"],
            buckets=(0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
            registry=self.registry)
        self._gauges: dict[str, tuple[str, _Read]] = {}
        self._labelled: dict[str, tuple[str, str, _ReadLabelled]] = {}
        self.registry.register(_Gauges(self._gauges, self._labelled))

    def observe_call(self, method: str, code: str, seconds: float) -> None:
        self._calls.labels(method, code).inc()
        self._seconds.labels(method).observe(seconds)

    def audit_write_failed(self) -> None:
        self._audit_failures.inc()

    def alert_delivered(self, via: str, seconds: float) -> None:
        self._delivery.labels(via).observe(max(0.0, seconds))

    def gauge(self, name: str, help_text: str, read: Callable[[], float | None]) -> None:
        """A value read at each scrape; None leaves the series out."""
        self._gauges[name] = (help_text, read)

    def labelled_gauge(self, name: str, help_text: str, label: str, read: _ReadLabelled
                       ) -> None:
        """Values read at each scrape, one series per value of `label`."""
        self._labelled[name] = (help_text, label, read)

    def exposition(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def pool_in_use(engine: Any) -> Callable[[], float | None]:
    """Connections checked out of an SQLAlchemy engine's pool (None for a pool that does
    not count them, e.g. SQLite's)."""

    def read() -> float | None:
        checked_out = getattr(engine.pool, "checkedout", None)
        return float(checked_out()) if callable(checked_out) else None

    return read


def sweep_lag(engine: Any, clock: Callable[[], datetime]) -> Callable[[], float | None]:
    """Seconds since the oldest closed dose window not yet swept closed (0 when none is
    waiting): how far the missed-dose sweep is behind."""
    from sqlalchemy import func, select

    from medservice.store import tables

    doses = tables.scheduled_doses

    def read() -> float | None:
        now = clock()
        with engine.connect() as conn:
            oldest = conn.execute(select(func.min(doses.c.closes_at)).where(
                doses.c.swept_at.is_(None), doses.c.closes_at <= now)).scalar()
        if oldest is None:
            return 0.0
        if oldest.tzinfo is None:  # SQLite hands back naive UTC
            oldest = oldest.replace(tzinfo=UTC)
        return max(0.0, (now - oldest).total_seconds())

    return read


class _Watched(Protocol):
    @property
    def open_watchers(self) -> int: ...


def watch_metrics(metrics: Metrics, alerts: _Watched, engine: Any | None,
                  clock: Callable[[], datetime]) -> None:
    """The gauges of one running server."""
    metrics.gauge("medservice_alert_watchers_open", "Open alert watch streams (gRPC and SSE)",
                  lambda: float(alerts.open_watchers))
    if engine is not None:
        metrics.gauge("medservice_db_pool_connections_in_use",
                      "Database connections checked out of the pool", pool_in_use(engine))
        metrics.gauge("medservice_sweep_lag_seconds",
                      "Age of the oldest closed dose window not yet swept",
                      sweep_lag(engine, clock))
        metrics.labelled_gauge(
            "medservice_webhook_delivery_lag_seconds",
            "Per webhook subscription: age of the oldest alert not yet accepted by its "
            "receiver (0: caught up)", "subscription", webhook_lag(engine, clock))


def webhook_lag(engine: Any, clock: Callable[[], datetime]) -> _ReadLabelled:
    """Per webhook subscription (by name): seconds since the oldest alert it has still to
    deliver was raised, 0 when caught up. A receiver that is down shows as a growing lag."""
    from medservice.domain.names import webhook_subscription_name
    from medservice.store.webhooks import WebhookRepository

    def read() -> dict[str, float]:
        now = clock()
        with engine.connect() as conn:
            rows = WebhookRepository(conn).oldest_pending()
        return {webhook_subscription_name(f, s): max(0.0, (now - oldest).total_seconds())
                if oldest is not None else 0.0 for f, s, oldest in rows}

    return read

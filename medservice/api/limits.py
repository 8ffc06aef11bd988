"""Limits at the edge (issue 13): per-caller call rates, per-method request sizes, and log
lines that a flood cannot multiply.

The call interceptor uses them after it has authenticated the caller and before it decodes
the request body, so a caller without a valid token, or over its rate, costs neither a
decode nor a database round trip.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

# Methods whose requests carry documents or whole cards; every other request is a few
# names, times and quantities.
DOCUMENT_METHODS = (
    "/medservice.v1.MedicineCardService/ImportFmkMessage",
    "/medservice.v1.MedicineCardService/ImportFhirMedicationRequests",
    "/medservice.v1.MedicineCardService/SyncMedicineCard",
    # Up to 1000 records documented on paper during an outage: a document too (a batch of
    # 1000 ordinary records is about 250 KB, over the 64 KiB of a single call).
    "/medservice.v1.RoundService/RecordDoses",
)


@dataclass(frozen=True)
class RequestSizes:
    """The largest request body each method accepts, in bytes (settings.py has the
    defaults: documents get the importers' largest document and room for the rest)."""

    default: int
    documents: int
    per_method: Mapping[str, int] | None = None  # overrides (tests)

    def limit(self, method: str) -> int:
        if self.per_method and method in self.per_method:
            return self.per_method[method]
        return self.documents if method in DOCUMENT_METHODS else self.default

    @property
    def largest(self) -> int:
        """What the server lets gRPC receive at all: the largest per-method limit."""
        return max(self.default, self.documents, *(self.per_method or {}).values())


class CallRates:
    """A token bucket per caller (the token's subject): `burst` calls at once, refilled at
    `per_second`. Thread-safe. Buckets that have filled up again are the same as none and
    are dropped when there are many, so memory stays bounded by the active callers."""

    MAX_IDLE_BUCKETS = 10_000

    def __init__(self, per_second: float, burst: float,
                 now: Callable[[], float] = time.monotonic) -> None:
        self.per_second = per_second
        self.burst = max(burst, 1.0)
        self._now = now
        self._buckets: dict[str, tuple[float, float]] = {}  # subject: (tokens, at)
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.per_second > 0

    def take(self, subject: str) -> float:
        """0.0 when `subject` may call now (one token taken); otherwise the seconds until
        it may call again."""
        if not self.enabled:
            return 0.0
        now = self._now()
        with self._lock:
            tokens, at = self._buckets.get(subject, (self.burst, now))
            tokens = min(self.burst, tokens + (now - at) * self.per_second)
            if tokens >= 1.0:
                self._buckets[subject] = (tokens - 1.0, now)
                if len(self._buckets) > self.MAX_IDLE_BUCKETS:
                    self._prune(now)
                return 0.0
            self._buckets[subject] = (tokens, now)
            return (1.0 - tokens) / self.per_second

    def _prune(self, now: float) -> None:
        full = [s for s, (tokens, at) in self._buckets.items()
                if tokens + (now - at) * self.per_second >= self.burst]
        for subject in full:
            del self._buckets[subject]


class QuietLog:
    """At most one line per kind of event every `interval` seconds; the next line says how
    many were left out meanwhile (`suppressed`). For refusals at the edge, which a flood
    would otherwise turn into a flood of log lines."""

    def __init__(self, logger: Any, interval: float = 10.0,
                 now: Callable[[], float] = time.monotonic) -> None:
        self._log = logger
        self._interval = interval
        self._now = now
        self._last: dict[tuple[str, ...], tuple[float, int]] = {}  # key: (at, suppressed)
        self._lock = threading.Lock()

    def warning(self, event: str, *, code: str, reason: str, **fields: Any) -> None:
        key = (event, code, reason)  # a fixed vocabulary: bounded
        now = self._now()
        with self._lock:
            at, suppressed = self._last.get(key, (-math.inf, 0))
            if now - at < self._interval:
                self._last[key] = (at, suppressed + 1)
                return
            self._last[key] = (now, 0)
        self._log.warning(event, code=code, reason=reason, suppressed=suppressed, **fields)

"""Short garbage-collector pauses in a server that keeps a large heap.

CPython's full collection walks every tracked object and holds the GIL meanwhile, so each
one stalls every call in flight. A serving process keeps more and more objects between
calls (the round context's order versions and expanded doses, `store.caches`: some
140,000 objects for 940 residents), and a full collection ran whenever a quarter of them
was new: measured under the round bench, 50 full collections of 70-110 ms each, and one
landing in a 5 s phase at half of peak took RecordDose's p99 from 19 to 86 ms.

So every ten seconds the heap is settled: collected, then everything alive frozen
(`gc.freeze`), the calls in flight and open streams included; collections, full ones
included, then walk only what came since. Frozen objects are still freed when their last
reference goes (the caches' entries are acyclic: an evicted one goes at once). What waits
is a reference cycle that was alive when frozen and became garbage later (an exception
and its frames, say), and what only it reaches, with its finalizers: until the next
thorough pass, which unfreezes, collects everything and freezes again, and whose findings
the serving loop logs. Each process starts its schedule at a random point, so the
workers of `serve --workers N` do not pause together.
"""

from __future__ import annotations

import gc
import random
import time
from collections.abc import Callable

SETTLE_EVERY_SECONDS = 10.0  # freeze what survived since: later collections stay short
THOROUGH_EVERY_SECONDS = 1800.0  # reclaim cycles among frozen objects (one long pause)


def settle_heap() -> None:
    """Collect, then exempt what exists from future collections."""
    gc.collect()
    gc.freeze()


def thorough_collection() -> int:
    """Collect everything, frozen objects included, then freeze what is left. Returns how
    many unreachable objects were found."""
    gc.unfreeze()
    found = gc.collect()
    gc.freeze()
    return found


class HeapKeeper:
    """Settles the heap now and again: call `tick` often (the serving loop does, twice a
    second); it settles every `settle_every` seconds and collects thoroughly every
    `thorough_every`."""

    def __init__(self, settle_every: float = SETTLE_EVERY_SECONDS,
                 thorough_every: float = THOROUGH_EVERY_SECONDS,
                 monotonic: Callable[[], float] = time.monotonic,
                 phase: Callable[[], float] = random.random) -> None:
        self._settle_every = settle_every
        self._thorough_every = thorough_every
        self._monotonic = monotonic
        self._phase = phase  # in [0, 1): where in each interval this process starts
        self._settled_at = self._thorough_at = monotonic()
        self.last_found = 0  # by the last thorough pass

    def start(self) -> None:
        """Once the server is built (most of what it holds lives as long as it does)."""
        settle_heap()
        now = self._monotonic()
        self._settled_at = now - self._phase() * self._settle_every
        self._thorough_at = now - self._phase() * self._thorough_every

    def tick(self) -> str | None:
        """Settle or collect thoroughly if it is time; says which ("settled",
        "thorough"), or None."""
        now = self._monotonic()
        if now - self._thorough_at >= self._thorough_every:
            self.last_found = thorough_collection()
            self._settled_at = self._thorough_at = now
            return "thorough"
        if now - self._settled_at >= self._settle_every:
            settle_heap()
            self._settled_at = now
            return "settled"
        return None

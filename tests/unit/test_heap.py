"""The heap keeper: what lived a while is frozen out of collections, and a cycle among
frozen objects is still reclaimed by the thorough pass."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from medservice.heap import HeapKeeper


class Node:
    """Weak-referenceable, and able to form a cycle."""

    def __init__(self) -> None:
        self.other: Node | None = None


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def keeper_on(clock: FakeMonotonic, phase: float = 0.0) -> HeapKeeper:
    """Settles every 10 s and collects thoroughly every 100 s of `clock`."""
    return HeapKeeper(settle_every=10, thorough_every=100, monotonic=clock,
                      phase=lambda: phase)


@pytest.fixture
def unfrozen() -> Iterator[None]:
    """The test process's heap as it was: nothing frozen afterwards."""
    yield
    gc.unfreeze()
    gc.collect()


def cycle() -> weakref.ref[Node]:
    """A reference cycle nobody else holds (garbage for the cycle collector only)."""
    a, b = Node(), Node()
    a.other, b.other = b, a
    return weakref.ref(a)


def test_ticks_settle_then_collect_thoroughly_on_schedule(unfrozen: None) -> None:
    clock = FakeMonotonic()
    keeper = keeper_on(clock)
    keeper.start()
    assert gc.get_freeze_count() > 0
    clock.now += 9.9
    assert keeper.tick() is None
    clock.now += 0.1
    assert keeper.tick() == "settled"
    assert keeper.tick() is None  # the interval starts again
    clock.now += 90
    assert keeper.tick() == "thorough"
    clock.now += 9.9
    assert keeper.tick() is None  # the thorough pass settled too


def test_a_cycle_alive_when_frozen_waits_for_the_thorough_pass(unfrozen: None) -> None:
    clock = FakeMonotonic()
    keeper = keeper_on(clock)
    a, b = Node(), Node()
    a.other, b.other = b, a
    dead = weakref.ref(a)
    keeper.start()  # the cycle is alive (held here) and frozen
    del a, b  # now garbage, but frozen: ordinary collections do not see it
    gc.collect()
    assert dead() is not None
    clock.now += 10
    assert keeper.tick() == "settled"
    assert dead() is not None
    clock.now += 90
    assert keeper.tick() == "thorough"
    assert dead() is None


def test_garbage_made_after_settling_is_collected_as_ever(unfrozen: None) -> None:
    clock = FakeMonotonic()
    keeper = keeper_on(clock)
    keeper.start()
    dead = cycle()  # born after the freeze: ordinary collections see it
    gc.collect()
    assert dead() is None
    # And acyclic objects go with their last reference, frozen or not.
    kept = Node()
    gone = weakref.ref(kept)
    frozen = gc.get_freeze_count()
    clock.now += 10
    assert keeper.tick() == "settled"
    assert gc.get_freeze_count() > frozen  # `kept` among them
    del kept
    assert gone() is None


def test_each_process_starts_its_schedule_at_its_own_point(unfrozen: None) -> None:
    clock = FakeMonotonic()
    keeper = keeper_on(clock, phase=0.5)
    keeper.start()
    clock.now += 4.9
    assert keeper.tick() is None
    clock.now += 0.1
    assert keeper.tick() == "settled"
    clock.now += 45
    assert keeper.tick() == "thorough"


def test_the_thorough_pass_says_what_it_found(unfrozen: None) -> None:
    clock = FakeMonotonic()
    keeper = keeper_on(clock)
    a, b = Node(), Node()
    a.other, b.other = b, a
    keeper.start()
    del a, b
    clock.now += 100
    assert keeper.tick() == "thorough"
    assert keeper.last_found >= 2

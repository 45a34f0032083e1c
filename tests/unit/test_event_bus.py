"""The event bus: observers get every event in order, on their own thread; one that raises
or is slow never reaches the emitter."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

from oncely.runtime.events import EventBus, LeasesGained, LeasesLost, StoreCall

AT = datetime(2026, 1, 1, tzinfo=UTC)


def test_observers_get_events_in_order_filtered_by_kind() -> None:
    bus = EventBus()
    everything: list[object] = []
    losses: list[LeasesLost] = []
    bus.subscribe(everything.append)
    bus.subscribe(losses.append, LeasesLost)
    events = [
        LeasesGained("n1", ("shard:1",), (7,), AT),
        LeasesLost("n1", ("shard:1",), "taken over", AT),
        StoreCall("run_claim", 0.01, None),
    ]
    for event in events:
        bus.emit(event)
    assert bus.flush()
    assert everything == events
    assert losses == [events[1]]
    bus.close()


def test_an_observer_that_raises_is_skipped_and_counted() -> None:
    bus = EventBus()
    got: list[object] = []

    def broken(event: object) -> None:
        raise RuntimeError("observer bug")

    bus.subscribe(broken)
    bus.subscribe(got.append)
    for _ in range(3):
        bus.emit(StoreCall("x", 0.0, None))
    assert bus.flush()
    assert len(got) == 3
    assert bus.observer_errors == 3
    bus.close()


def test_a_slow_observer_never_stalls_the_emitter_and_overflow_drops_oldest() -> None:
    bus = EventBus(capacity=100)
    release = threading.Event()
    got: list[int] = []

    def slow(event: StoreCall) -> None:
        release.wait(10)
        got.append(int(event.seconds))

    bus.subscribe(slow)
    started = time.perf_counter()
    for i in range(10_000):
        bus.emit(StoreCall("x", float(i), None))
    emitting = time.perf_counter() - started
    release.set()
    assert bus.flush()
    # The emitter went on while the observer was stuck: 10,000 emits, nothing waited.
    assert emitting < 5.0
    assert bus.dropped >= 10_000 - 101
    assert got[-1] == 9_999, "the newest events are kept"
    assert got == sorted(got)
    bus.close()


def test_emitting_without_observers_keeps_nothing() -> None:
    bus = EventBus()
    for _ in range(1000):
        bus.emit(StoreCall("x", 0.0, None))
    assert not bus.active and bus.dropped == 0
    assert bus.flush()


def test_unsubscribe_stops_delivery() -> None:
    bus = EventBus()
    got: list[object] = []
    stop = bus.subscribe(got.append)
    bus.emit(StoreCall("a", 0.0, None))
    assert bus.flush()
    stop()
    bus.emit(StoreCall("b", 0.0, None))
    assert bus.flush()
    assert [e.operation for e in got] == ["a"]  # type: ignore[attr-defined]
    bus.close()

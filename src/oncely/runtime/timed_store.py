"""A ``Store`` that reports every call it forwards as a ``StoreCall`` event.

The composition root wraps the opened store in it, so store latency and errors are measured
in one place for every caller (loops, reaper, service, API) without a line in the loops.
A failed call is reported with the exception's type name and re-raised unchanged; the
domain's own refusals (``NotFound``, ``Conflict``, ``InvalidInput``) are answers, not store
errors. ``listen`` (blocks for the process's life) and ``close`` are forwarded unmeasured.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any, cast

from oncely.domain.errors import OncelyError
from oncely.ports.store import Store
from oncely.runtime.events import EventBus, StoreCall

_UNMEASURED = frozenset({"listen", "close"})


class TimedStore:
    """Forwards everything to ``inner``; methods are timed (see the module's notes)."""

    def __init__(self, inner: Store, events: EventBus) -> None:
        self.inner = inner
        self._events = events
        self._wrapped: dict[str, Callable[..., Any]] = {}

    def __getattr__(self, name: str) -> Any:
        value = getattr(self.inner, name)
        if name.startswith("_") or name in _UNMEASURED or not callable(value):
            return value
        wrapped = self._wrapped.get(name)
        if wrapped is None:
            wrapped = self._wrapped[name] = _timed(name, value, self._events)
        return wrapped


def _timed(name: str, fn: Callable[..., Any], events: EventBus) -> Callable[..., Any]:
    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            result = fn(*args, **kwargs)
        except OncelyError:
            events.emit(StoreCall(name, time.perf_counter() - started, None))
            raise
        except BaseException as exc:
            events.emit(StoreCall(name, time.perf_counter() - started, type(exc).__name__))
            raise
        events.emit(StoreCall(name, time.perf_counter() - started, None))
        return result

    return call


def timed(store: Store, events: EventBus) -> Store:
    """``store``, measured (or as it is when it already is)."""
    if isinstance(store, TimedStore):
        return cast(Store, store)
    return cast(Store, TimedStore(store, events))

"""Prometheus metrics of one oncely process, served at ``/metrics`` by every role.

Where each number comes from:

- **Events** (``oncely.runtime.events``): this module subscribes to the process's bus and
  turns batches into counters and histograms on the bus thread. A batch of a thousand
  outcomes costs one pass over it and one counter update per (queue, outcome) seen, not a
  thousand metric calls: the lag and duration histograms are kept here (``_Histograms``)
  and bucketed with one ``bisect`` per value.
- **The process at scrape time**: shard leases held, worker slots busy and total (read from
  the engine's loops through ``Probe``).
- **The store at scrape time, at most every ``store_interval`` seconds**: waiting runs per
  queue, how many are due and the age of the oldest due one, runs by live state and dead,
  shards without a live lease. Index-backed reads only (the waiting-runs, running-leases
  and dead-runs partial indexes; the 64 lease rows); a scrape never scans finished runs.

Labels never take unbounded values: ``queue`` (queues are configured names), ``outcome`` and
``state`` (enums), ``operation`` (store method names), ``error`` (exception type names),
``node`` (this process's id: one series per process). Per-job series exist only for the job
names listed in ``metrics_jobs`` (a bounded, configured list).
"""

from __future__ import annotations

import bisect
import logging
import math
import threading
import time
from collections import Counter as Tally
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from oncely.domain.jobs import SHARD_COUNT
from oncely.domain.runs import AttemptOutcome, RunState
from oncely.ports.store import Store
from oncely.runtime import events as ev

log = logging.getLogger("oncely.metrics")

LAG_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
DURATION_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0,
    3600.0,
)  # fmt: skip
STORE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

_FINISHED = frozenset({RunState.SUCCEEDED, RunState.DEAD, RunState.CANCELLED})


@dataclass(frozen=True)
class ProcessView:
    """What the loops of this process hold right now (read at scrape time)."""

    node: str
    roles: tuple[str, ...]
    shards_held: int | None = None
    """Shard leases this process's scheduler holds (None: no scheduler here)."""
    slots: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    """Per queue this process's worker serves: (busy, total)."""


Probe = Callable[[], ProcessView]


class _Histograms:
    """Cumulative histograms per label value, filled in batches (see the module's notes)."""

    def __init__(self, name: str, doc: str, label: str, buckets: Sequence[float]) -> None:
        self.name, self.doc, self.label = name, doc, label
        self.bounds = list(buckets)
        self._data: dict[str, tuple[list[int], list[float]]] = {}
        self._lock = threading.Lock()

    def observe_many(self, key: str, values: Iterable[float]) -> None:
        ordered = sorted(values)
        if not ordered:
            return
        # Sorted once (C), then one bisect per bucket bound: a batch of thousands costs
        # O(buckets * log n) Python steps, not one per value.
        edges = [bisect.bisect_right(ordered, bound) for bound in self.bounds]
        total = math.fsum(ordered)
        with self._lock:
            entry = self._data.get(key)
            if entry is None:
                entry = self._data[key] = ([0] * (len(self.bounds) + 1), [0.0])
            counts, running = entry
            below = 0
            for i, edge in enumerate(edges):
                counts[i] += edge - below
                below = edge
            counts[-1] += len(ordered) - below
            running[0] += total

    def family(self) -> HistogramMetricFamily:
        family = HistogramMetricFamily(self.name, self.doc, labels=[self.label])
        with self._lock:
            snapshot = {k: (list(c), t[0]) for k, (c, t) in self._data.items()}
        for key, (counts, total) in sorted(snapshot.items()):
            running = 0
            buckets: list[tuple[str, float]] = []
            for bound, count in zip(self.bounds, counts, strict=False):
                running += count
                buckets.append((_le(bound), running))
            running += counts[-1]
            buckets.append(("+Inf", running))
            family.add_metric([key], buckets, total)
        return family


def _le(bound: float) -> str:
    return repr(float(bound))


class RuntimeMetrics(Collector):
    """The metrics of one process; ``subscribe`` it to the process's event bus."""

    def __init__(
        self,
        *,
        probe: Probe | None = None,
        store: Callable[[], Store] | None = None,
        now: Callable[[], datetime] | None = None,
        jobs: Collection[str] = (),
        store_interval: float = 5.0,
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._probe = probe
        self._store = store
        self._now = now
        self._jobs = frozenset(jobs)
        self._store_interval = store_interval
        self._store_cache: tuple[float, list[Metric]] | None = None
        self._store_lock = threading.Lock()
        self._unsubscribe: Callable[[], None] | None = None
        r = self.registry
        self.fires = Counter(
            "oncely_fires_materialized",
            "Runs created ahead of their fire by schedulers.",
            registry=r,
        )
        self.missed = Counter(
            "oncely_fires_missed", "Fires recorded as missed (misfire policy).", registry=r
        )
        self.started = Counter(
            "oncely_attempts_started", "Attempts claimed by workers.", ["queue"], registry=r
        )
        self.attempts = Counter(
            "oncely_attempts",
            "Attempts that ended and were recorded, by outcome (lost: the reaper's).",
            ["queue", "outcome"],
            registry=r,
        )
        self.refused = Counter(
            "oncely_attempts_refused",
            "Attempt outcomes refused by the store (stale fencing token).",
            ["queue"],
            registry=r,
        )
        self.finished = Counter(
            "oncely_runs_finished",
            "Runs that reached an end state through an attempt.",
            ["queue", "state"],
            registry=r,
        )
        self.retries = Counter(
            "oncely_run_retries", "Runs scheduled for another attempt.", ["queue"], registry=r
        )
        self.overlap = Counter(
            "oncely_runs_overlap",
            "Runs a claim's overlap policy settled: skipped (never started) or cancelled "
            "(a live run replaced by a newer one).",
            ["queue", "state"],
            registry=r,
        )
        self.lease_lost_attempts = Counter(
            "oncely_attempt_leases_lost",
            "Attempts a worker stopped because its run lease was gone.",
            registry=r,
        )
        self.lease_changes = Counter(
            "oncely_lease_changes",
            "Leases (shards, maintenance) gained or lost by this process.",
            ["change"],
            registry=r,
        )
        self.takeovers = Counter(
            "oncely_takeovers",
            "Leases this process took after their holder let them expire.",
            registry=r,
        )
        self.retention = Counter(
            "oncely_retention_deleted",
            "Rows the retention service deleted: finished runs, their attempts, purged jobs.",
            ["kind"],
            registry=r,
        )
        self.store_seconds = Histogram(
            "oncely_store_call_seconds",
            "Store call latency, by store method.",
            ["operation"],
            buckets=STORE_BUCKETS,
            registry=r,
        )
        self.store_errors = Counter(
            "oncely_store_errors",
            "Store calls that failed, by store method and exception type.",
            ["operation", "error"],
            registry=r,
        )
        self.job_attempts = Counter(
            "oncely_job_attempts",
            "Attempts that ended, per job (only the jobs listed in metrics_jobs).",
            ["job", "outcome"],
            registry=r,
        )
        self.job_last_success = Gauge(
            "oncely_job_last_success_timestamp_seconds",
            "When the job's last successful attempt ended (only jobs listed in metrics_jobs).",
            ["job"],
            registry=r,
        )
        self.lag = _Histograms(
            "oncely_fire_lag_seconds",
            "From a run's fire time to the start of its first attempt.",
            "queue",
            LAG_BUCKETS,
        )
        self.duration = _Histograms(
            "oncely_run_duration_seconds",
            "How long attempts ran, by queue (released attempts excluded).",
            "queue",
            DURATION_BUCKETS,
        )
        r.register(self)

    # -- events ---------------------------------------------------------------------------

    def subscribe(self, bus: ev.EventBus) -> None:
        self.close()
        self._unsubscribe = bus.subscribe(self.observe)

    def close(self) -> None:
        """Stop observing the bus."""
        unsubscribe, self._unsubscribe = self._unsubscribe, None
        if unsubscribe is not None:
            unsubscribe()

    def observe(self, event: Any) -> None:
        if isinstance(event, ev.StoreCall):
            self.store_seconds.labels(event.operation).observe(event.seconds)
            if event.error is not None:
                self.store_errors.labels(event.operation, event.error).inc()
        elif isinstance(event, ev.AttemptsFinished):
            self._finished(event)
        elif isinstance(event, ev.AttemptsStarted):
            self._started(event)
        elif isinstance(event, ev.FiresMaterialized):
            self.fires.inc(event.runs_created)
        elif isinstance(event, ev.RunsMissed):
            self.missed.inc(event.fires)
        elif isinstance(event, ev.RunsSkipped):
            if event.skipped:
                self.overlap.labels(event.queue, "skipped").inc(len(event.skipped))
            if event.cancelled:
                self.overlap.labels(event.queue, "cancelled").inc(len(event.cancelled))
        elif isinstance(event, ev.AttemptLeaseLost):
            self.lease_lost_attempts.inc()
        elif isinstance(event, ev.LeasesGained):
            self.lease_changes.labels("gained").inc(len(event.names))
        elif isinstance(event, ev.LeasesLost):
            self.lease_changes.labels("lost").inc(len(event.names))
        elif isinstance(event, ev.Takeover):
            self.takeovers.inc()
        elif isinstance(event, ev.RetentionPruned):
            self.retention.labels("runs").inc(event.runs)
            self.retention.labels("attempts").inc(event.attempts)
            self.retention.labels("jobs").inc(event.jobs)

    def _started(self, event: ev.AttemptsStarted) -> None:
        runs = event.runs
        for queue, n in Tally(r.queue for r in runs).items():
            self.started.labels(queue).inc(n)
        firsts = [r for r in runs if r.attempt == 1]
        for queue, group in _by_queue(firsts, lambda r: r.queue):
            self.lag.observe_many(
                queue, [(r.started_at - r.scheduled_for).total_seconds() for r in group]
            )

    def _finished(self, event: ev.AttemptsFinished) -> None:
        # Written for batches of thousands: C-level counting and comprehensions, one metric
        # update per (queue, label) seen.
        results, accepted = event.results, event.accepted
        if all(accepted):
            ok = results
        else:
            ok = [r for r, a in zip(results, accepted, strict=True) if a]
            refused = Tally(
                r.queue or "unknown" for r, a in zip(results, accepted, strict=True) if not a
            )
            for queue, n in refused.items():
                self.refused.labels(queue).inc(n)
        for (name, outcome), n in Tally((r.queue, r.outcome) for r in ok).items():
            self.attempts.labels(name or "unknown", outcome.value).inc(n)
            if outcome is AttemptOutcome.SUCCEEDED:
                self.finished.labels(name or "unknown", "succeeded").inc(n)
        unusual = [r for r in ok if r.outcome is not AttemptOutcome.SUCCEEDED]
        for (name, state), n in Tally((r.queue, r.decision.state) for r in unusual).items():
            if state is RunState.RETRYING:
                self.retries.labels(name or "unknown").inc(n)
            elif state in _FINISHED:
                self.finished.labels(name or "unknown", state.value).inc(n)
        released = AttemptOutcome.RELEASED
        timed = [r for r in ok if r.outcome is not released] if unusual else ok
        for queue, group in _by_queue(timed, lambda r: r.queue or "unknown"):
            self.duration.observe_many(
                queue, [(r.finished_at - r.started_at).total_seconds() for r in group]
            )
        if self._jobs:
            for result in ok:
                if result.job_name in self._jobs:
                    self.job_attempts.labels(result.job_name, result.outcome.value).inc()
                    if result.outcome is AttemptOutcome.SUCCEEDED:
                        self.job_last_success.labels(result.job_name).set(
                            result.finished_at.timestamp()
                        )

    # -- scrape-time collection -----------------------------------------------------------

    def describe(self) -> Iterable[Metric]:
        return ()

    def collect(self) -> Iterator[Metric]:
        yield self.lag.family()
        yield self.duration.family()
        if self._probe is not None:
            yield from self._process_metrics(self._probe())
        yield from self._store_metrics()

    def _process_metrics(self, view: ProcessView) -> Iterator[Metric]:
        roles = GaugeMetricFamily(
            "oncely_role", "1 for each role this process runs.", labels=["role", "node"]
        )
        for role in view.roles:
            roles.add_metric([role, view.node], 1)
        yield roles
        if view.shards_held is not None:
            held = GaugeMetricFamily(
                "oncely_shard_leases_held",
                "Shard leases this process's scheduler holds.",
                labels=["node"],
            )
            held.add_metric([view.node], view.shards_held)
            yield held
        if view.slots:
            busy = GaugeMetricFamily(
                "oncely_worker_slots_busy", "Worker slots holding a run.", labels=["queue"]
            )
            total = GaugeMetricFamily(
                "oncely_worker_slots", "Worker slots (concurrency) per queue.", labels=["queue"]
            )
            for queue, (n_busy, n_total) in sorted(view.slots.items()):
                busy.add_metric([queue], n_busy)
                total.add_metric([queue], n_total)
            yield busy
            yield total

    def _store_metrics(self) -> list[Metric]:
        if self._store is None or self._now is None:
            return []
        with self._store_lock:
            mono = time.monotonic()
            cached = self._store_cache
            if cached is not None and mono - cached[0] < self._store_interval:
                return cached[1]
            try:
                metrics = self._read_store(self._store(), self._now())
            except Exception as exc:
                log.warning("metrics: could not read the store (%s)", type(exc).__name__)
                metrics = cached[1] if cached is not None else []
            self._store_cache = (mono, metrics)
            return metrics

    def _read_store(self, store: Store, now: datetime) -> list[Metric]:
        out: list[Metric] = []
        depths = store.queue_depths(now=now)  # the waiting-runs index only
        waiting = GaugeMetricFamily(
            "oncely_queue_waiting", "Runs waiting (pending, queued, retrying).", labels=["queue"]
        )
        due = GaugeMetricFamily(
            "oncely_queue_depth", "Waiting runs that are due now.", labels=["queue"]
        )
        oldest = GaugeMetricFamily(
            "oncely_queue_oldest_due_age_seconds",
            "How long the oldest due waiting run has been due (0: none due).",
            labels=["queue"],
        )
        for depth in depths:
            waiting.add_metric([depth.queue], depth.waiting)
            due.add_metric([depth.queue], depth.due)
            age = 0.0
            if depth.oldest_due_at is not None:
                age = max((now - depth.oldest_due_at).total_seconds(), 0.0)
            oldest.add_metric([depth.queue], age)
        out += [waiting, due, oldest]
        counts = store.run_counts(None)
        states = GaugeMetricFamily(
            "oncely_runs",
            "Runs by live state, and dead runs (kept until handled).",
            labels=["state"],
        )
        for state in ("pending", "retrying", "running", "dead"):
            states.add_metric([state], counts.get(state, 0))
        out.append(states)
        leases = store.lease_list("shard:")
        live = {x.name for x in leases if x.expires_at > now}
        unheld = GaugeMetricFamily(
            "oncely_shards_unheld", "Shards no scheduler holds a live lease on."
        )
        unheld.add_metric([], SHARD_COUNT - len(live))
        out.append(unheld)
        return out

    # -- exposition -----------------------------------------------------------------------

    def exposition(self) -> bytes:
        """The text format Prometheus scrapes (blocking: may read the store)."""
        return generate_latest(self.registry)


def _by_queue(
    items: Sequence[Any], queue_of: Callable[[Any], str]
) -> list[tuple[str, Sequence[Any]]]:
    """Items grouped by queue; one group without copying when all share one (the usual)."""
    if not items:
        return []
    first = queue_of(items[0])
    if all(queue_of(x) == first for x in items):
        return [(first, items)]
    groups: dict[str, list[Any]] = {}
    for item in items:
        groups.setdefault(queue_of(item), []).append(item)
    return list(groups.items())

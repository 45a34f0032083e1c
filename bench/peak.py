"""W6 — peak load: N one-second cron jobs (10,000: 10,000 fires per second) on PostgreSQL.

oncely runs as one scheduler and ``workers`` worker processes (``--w6-workers``: the scale-out
run adds processes). Besides fires run, missed and duplicated and the lag percentiles, W6
reports what the load costs:

- **lag over time:** p50 / p99 / max per 5-second bucket of scheduled time (a system that
  falls behind shows a rising line; one that keeps up, a flat one);
- **CPU split:** CPU seconds of oncely's processes, of the PostgreSQL server's (its
  postmaster and children; every ``postgres`` process on the machine too, as
  ``cpu_postgres_all_cores``), and of the whole machine, over the measured window
  (``/proc``), as cores used on average;
- **rows and WAL per fire:** the deltas of ``pg_stat_user_tables`` (rows inserted, updated,
  HOT-updated, deleted, per table of oncely's schema) and of ``pg_current_wal_lsn()`` over
  the window, divided by the fires that ran in it;
- **RSS:** the largest resident size of the scheduler and of a worker.

The records are analysed without a set of key strings: ``w6-<i>@<t>`` becomes an index into
a byte array of jobs x seconds, so a 10-minute run (6,000,000 fires) analyses in seconds.
The best peers (Celery beat, RQ cron) run the same N jobs beside it, through the peers'
``steady`` harness labelled W6 (bench/peers/__init__.py: ``peak``) with this module's
analysis and ``PeerWatch``: their processes' and ``redis-server``'s CPU, RSS, and Redis
commands per fire.
"""

from __future__ import annotations

import contextlib
import glob
import math
import os
import threading
import time
from array import array
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import psycopg

import oncely
from bench import oncely_bench as ob
from bench.common import REDIS_HOST, REDIS_PORT, Result, Stack, fresh_sink, log
from bench.pg_instance import PgInstance, PgUnavailable

SERVER = {
    # Durable, as in production (the server of its own otherwise runs with fsync off).
    "fsync": "on",
    "full_page_writes": "on",
    # Sized for the load instead of initdb's 128 MB: every one-second job keeps a hot leaf
    # page in each index keyed by job (10,000 jobs: ~80 MB per index), and at 128 MB the
    # server started evicting them within two minutes (W6's lag then grew without bound).
    "shared_buffers": "2GB",
    # 10,000 fires/s write ~30 MB of WAL a second: the default 1 GB forces a checkpoint (and
    # full-page images after it) every ~35 s.
    "max_wal_size": "8GB",
    "checkpoint_timeout": "15min",
}
"""W6's PostgreSQL server: initdb's defaults but these (docs/postgresql.md, the peak)."""
BUCKET = 5.0
"""Seconds of scheduled time per point of the lag-over-time series."""
_HZ = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")
WARMUP = 8.0
"""Seconds from starting the processes to the window (the first lookahead is made at once)."""
TAIL = 15.0
"""Seconds after the window that a fire may still run and count (later: missed)."""


# -- CPU and the database's counters --------------------------------------------------------


class _Stat(NamedTuple):
    """One process, from ``/proc/<pid>/stat``."""

    comm: str
    ppid: int
    pgrp: int
    start: int
    """Start time in clock ticks since boot: with the pid, the process's identity."""
    cpu: float
    """utime + stime in seconds (all its threads; not its children)."""
    rss: int


def _stat(pid: int) -> _Stat | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as fh:
            text = fh.read()
    except OSError:
        return None
    head, _, tail = text.rpartition(")")
    f = tail.split()  # f[0] is field 3 (state) of proc(5)
    return _Stat(
        comm=head.partition("(")[2],
        ppid=int(f[1]),
        pgrp=int(f[2]),
        start=int(f[19]),
        cpu=(int(f[11]) + int(f[12])) / _HZ,
        rss=int(f[21]) * _PAGE,
    )


def _processes() -> dict[int, _Stat]:
    """Every process on the machine (one pass over ``/proc``: a few milliseconds)."""
    out: dict[int, _Stat] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _stat(int(entry))
            if stat is not None:
                out[int(entry)] = stat
    return out


def _machine_busy() -> float:
    with open("/proc/stat", encoding="ascii") as fh:
        values = [int(v) for v in fh.readline().split()[1:]]
    return (sum(values) - values[3] - values[4]) / _HZ  # all but idle and iowait


def _postmaster(url: str) -> int | None:
    """The pid of the server's postmaster when it runs on this machine (our backend's
    parent), so that only its processes count as PostgreSQL's CPU: the shared server and
    any other one on the machine are left out. None when it cannot be seen."""
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            row = conn.execute("SELECT pg_backend_pid()").fetchone()
            stat = _stat(int(row[0])) if row else None
    except psycopg.Error:
        return None
    return stat.ppid if stat is not None and stat.comm == "postgres" else None


def _pg_counters(url: str, schema: str) -> dict[str, Any]:
    with psycopg.connect(url, autocommit=True) as conn:
        tables = {
            row[0]: {"ins": row[1], "upd": row[2], "hot": row[3], "del": row[4]}
            for row in conn.execute(
                "SELECT relname, n_tup_ins, n_tup_upd, n_tup_hot_upd, n_tup_del "
                "FROM pg_stat_user_tables WHERE schemaname = %s",
                (schema,),
            ).fetchall()
        }
        row = conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()
        lsn = row[0] if row else "0/0"
    high, low = lsn.split("/")
    return {"tables": tables, "wal": (int(high, 16) << 32) + int(low, 16)}


class _Sampler:
    """CPU snapshots at the window's edges, RSS every second, in a thread of its own.

    A process the harness starts counts with its process group (each leads one: a Celery
    worker's pool processes count with it). The store is every process named ``store``
    (``postgres``, ``redis-server``) or, given its ``postmaster``, that server's processes
    (the postmaster and its children). A process that appears during the window counts from
    0; one that exits before its end is left out.
    """

    def __init__(
        self, stack: Stack, start: float, end: float, store: str, postmaster: int | None = None
    ) -> None:
        self.stack, self.start, self.end = stack, start, end
        self.store, self.postmaster = store, postmaster
        self.rss: dict[str, int] = {}
        self.edges: list[tuple[float, dict[int, _Stat], float]] = []
        self._leaders = {proc.pid: proc.name for proc in stack.procs}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _snapshot(self) -> dict[int, _Stat]:
        procs = _processes()
        self.edges.append((time.time(), procs, _machine_busy()))
        return procs

    def _run(self) -> None:
        marks = [self.start, self.end]
        next_rss = 0.0
        while not self._stop.is_set():
            now = time.time()
            procs = None
            if marks and now >= marks[0]:
                marks.pop(0)
                procs = self._snapshot()
            if procs is not None or now >= next_rss:
                next_rss = now + 1.0
                groups: dict[str, int] = {}
                for stat in (procs or _processes()).values():
                    name = self._leaders.get(stat.pgrp)
                    if name is not None:
                        groups[name] = groups.get(name, 0) + stat.rss
                for name, value in groups.items():
                    self.rss[name] = max(self.rss.get(name, 0), value)
            self._stop.wait(0.25)

    def __enter__(self) -> _Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def cpu(self, system: str) -> dict[str, Any]:
        """Cores used on average over the window: ``cpu_<system>_cores`` (the processes the
        harness started), ``cpu_<store>_cores``, the machine's busy cores."""
        if len(self.edges) < 2:
            return {}
        (t0, procs0, busy0), (t1, procs1, busy1) = self.edges[:2]
        span = t1 - t0

        def used(pids: list[int]) -> float:
            total = 0.0
            for pid in pids:
                now, was = procs1[pid], procs0.get(pid)
                total += now.cpu - (was.cpu if was is not None and was.start == now.start else 0)
            return total / span

        by_proc = {
            name: used([pid for pid, s in procs1.items() if s.pgrp == leader])
            for leader, name in self._leaders.items()
        }
        store = [pid for pid, s in procs1.items() if s.comm == self.store]
        key = self.store.removesuffix("-server")
        out: dict[str, Any] = {
            f"cpu_{system}_cores": round(sum(by_proc.values()), 2),
            "cpu_by_process": {n: round(v, 2) for n, v in by_proc.items()},
            f"cpu_{key}_cores": round(used(store), 2),
            "cpu_machine_busy_cores": round((busy1 - busy0) / span, 2),
            "cpu_window_s": round(span, 1),
            "cores": os.cpu_count(),
            "cpu_store": self.store,
        }
        if self.postmaster is not None:
            mine = [p for p in store if p == self.postmaster or procs1[p].ppid == self.postmaster]
            out[f"cpu_{key}_cores"] = round(used(mine), 2)
            # Every process of that name on the machine (other servers too), for comparison.
            out[f"cpu_{key}_all_cores"] = round(used(store), 2)
        return out

    def report(self, result: Result, system: str) -> None:
        """CPU and RSS into ``result.extra``."""
        result.extra.update(self.cpu(system))
        result.extra["rss_mb"] = {n: round(v / 2**20, 1) for n, v in self.rss.items()}


class PeerWatch(_Sampler):
    """W6's figures for a peer on Redis (bench/peers/__init__.py: ``steady(watch=...)``):
    its processes' and ``redis-server``'s CPU, RSS, and Redis commands per fire."""

    def __init__(self, stack: Stack, start: float, end: float) -> None:
        super().__init__(stack, start, end, "redis-server")
        self.commands: list[int] = []

    def _snapshot(self) -> dict[int, _Stat]:
        procs = super()._snapshot()
        with contextlib.suppress(Exception):
            import redis

            info = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, socket_timeout=2).info("stats")
            self.commands.append(int(info["total_commands_processed"]))
        return procs

    def report(self, result: Result, system: str = "peer") -> None:
        super().report(result, system)
        if len(self.commands) >= 2 and len(self.edges) >= 2 and result.ran and result.duration:
            # Fires in the CPU window at the rate that ran (as for oncely's rows per fire).
            fires = result.ran / result.duration * (self.edges[1][0] - self.edges[0][0])
            delta = self.commands[1] - self.commands[0]
            result.extra["redis_commands_per_fire"] = round(delta / max(fires, 1), 2)


# -- the records ----------------------------------------------------------------------------


def analyse_w6(
    result: Result, sink: Path, prefix: str, jobs: int, start: int, seconds: int
) -> None:
    """Counts, lag percentiles and the lag-over-time series from the sink's files.

    A fire is the key ``<prefix><i>@<scheduled>``: job i's fire in second
    ``floor(scheduled) - start`` of the window (oncely's keys hold whole seconds, the peers'
    milliseconds; a job fires at most once a second). One byte per job and second counts its
    runs, so 6,000,000 fires take 6 MB, plus the lags (8 bytes each) for the percentiles. A
    fire's lag is that of the first record of it read.
    """
    counts = bytearray(jobs * seconds)
    lags = array("d")
    buckets: list[array[float]] = [array("d") for _ in range(math.ceil(seconds / BUCKET))]
    stray = early = late = 0
    for path in glob.glob(str(sink / "*.rec")):
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                key, _, rest = line.partition("\t")
                name, _, at = key.partition("@")
                if not name.startswith(prefix):
                    stray += 1
                    continue
                try:
                    i = int(name[len(prefix) :])
                    t = math.floor(float(at)) - start
                    scheduled, started = (float(x) for x in rest.split("\t"))
                except ValueError:
                    stray += 1
                    continue
                if not (0 <= t < seconds and 0 <= i < jobs):
                    # outside the window (warm-up, tail)
                    early += t < 0
                    late += t >= seconds
                    continue
                slot = i * seconds + t
                counts[slot] = min(counts[slot] + 1, 255)
                if counts[slot] == 1:
                    lag = started - scheduled
                    lags.append(lag)
                    buckets[int(t // BUCKET)].append(lag)
    result.ran = len(counts) - counts.count(0)
    result.lost = len(counts) - result.ran
    result.duplicates = sum((c - 1) * counts.count(c) for c in range(2, 256))
    if stray:
        result.notes.append(f"{stray} records were not W6 fires")
    # Fires of the warm-up and of after the window that ran: a system that ran none of the
    # window's tells here whether it started late or never fired at all.
    result.extra["outside_window"] = {"before": early, "after": late}
    if not result.ran:
        result.notes.append(
            f"no fire of the window ran; {early:,} of the warm-up and {late:,} of after the "
            "window did"
        )
    if lags:
        ordered = sorted(lags)
        result.lag_p50, result.lag_p95, result.lag_p99 = (
            _pct(ordered, q) for q in (0.50, 0.95, 0.99)
        )
        result.lag_max = ordered[-1]
        step = max(1, len(ordered) // 5000)
        result.lags = list(ordered[::step])
        del ordered
    del lags
    timeline = []
    for k, bucket in enumerate(buckets):
        point: dict[str, Any] = {"t": round(k * BUCKET, 1), "ran": len(bucket)}
        by_lag = sorted(bucket)
        for q, field in ((0.5, "p50"), (0.99, "p99"), (1.0, "max")):
            point[field] = round(_pct(by_lag, q), 4) if by_lag else None
        timeline.append(point)
        buckets[k] = array("d")  # freed as it goes
    result.extra["timeline"] = timeline


def _pct(ordered: Any, q: float) -> float:
    return float(ordered[min(len(ordered) - 1, int(q * len(ordered)))])


def analyser(prefix: str, jobs: int, seconds: int) -> Callable[[Result, Path, int], None]:
    """``analyse_w6`` for a peer's ``steady(analyser=...)``: (result, sink, window start)."""

    def run(result: Result, sink: Path, start: int) -> None:
        analyse_w6(result, sink, prefix, jobs, start, seconds)

    return run


# -- oncely ---------------------------------------------------------------------------------


def w6(jobs: int, seconds: int, tmp: Path, workers: int = ob.WORKERS) -> Result:
    """W6 on a PostgreSQL server of its own (bench/pg_instance.py, settings in ``SERVER``), so
    that the shared server's settings (this machine's has autovacuum off, under which no queue
    table survives ten minutes at this rate) are not what is measured; the shared one when
    no server of its own can run here."""
    try:
        pg: PgInstance | None = PgInstance.create(SERVER)
    except PgUnavailable as exc:
        log(f"  W6: no PostgreSQL server of its own ({exc}); using the shared one")
        pg = None
    try:
        url = pg.url if pg is not None else ob.PG_DSN
        result = _w6(jobs, seconds, tmp, workers, url)
        result.extra["server"] = (
            "its own: " + ", ".join(f"{k}={v}" for k, v in SERVER.items()) if pg else "shared"
        )
        return result
    finally:
        if pg is not None:
            pg.destroy()


def _w6(jobs: int, seconds: int, tmp: Path, workers: int, url: str) -> Result:
    label = f"scheduler + {workers} workers"
    result = Result("W6", "oncely", "PostgreSQL", expected=jobs * seconds)
    result.extra["config"] = f"{label} x {ob.WORKER_CONCURRENCY} slots"
    sink = fresh_sink(tmp, f"W6-oncely-{workers}")
    stack = Stack(tmp / "logs" / f"W6-oncely-{workers}", sink)
    store = f"{url}?schema={ob.SCHEMA}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{ob.SCHEMA}" CASCADE')
    app = oncely.App(store)
    names = [f"w6-{i}" for i in range(jobs)]
    try:
        app.store  # noqa: B018 - migrate before the processes race to do it
        result.setup_seconds = ob.bulk_create(
            app, ({"name": n, "cron": "* * * * * *", "task": "noop"} for n in names)
        )
        ob.start_pg_cluster(stack, store, workers)
        # A few seconds of warm-up: the first lookahead is materialized in one go.
        start = math.ceil(time.time() + WARMUP)
        end = start + seconds
        sampler = _Sampler(stack, start, end, "postgres", _postmaster(url))
        with sampler:
            while time.time() < start + 2:
                time.sleep(0.2)
            before = _pg_counters(url, ob.SCHEMA)
            before_at = time.time()
            while time.time() < end:
                stack.check()
                time.sleep(0.5)
            # A backend reports its pg_stat counters when its transaction ends, at most
            # once a second (PG 15 has no pg_stat_force_next_flush): 2 s after the window
            # they are in. Both snapshots are 2 s late, so their span is the window's.
            time.sleep(2.0)
            after = _pg_counters(url, ob.SCHEMA)
            after_at = time.time()
            # Fires of the window may run until TAIL after it (later ones are missed); every
            # worker past it, nothing of it is left to run.
            while time.time() < end + TAIL and not _past(sink, end + 1):
                time.sleep(0.5)
            stack.check()
        sampler.report(result, "oncely")
    except Exception as exc:
        result.error = f"{type(exc).__name__}: {exc}"
        return result
    finally:
        stack.stop()
        app.close()
    analyse_w6(result, sink, "w6-", jobs, start, seconds)
    result.throughput = result.ran / seconds
    result.duration = seconds
    # Rows and WAL between the two snapshots, per fire: at a steady state the scheduler
    # writes (and the workers finish) as many runs a second as fires are due, the rate ran.
    fires = result.ran / max(seconds, 1) * (after_at - before_at)
    rows: dict[str, dict[str, float]] = {}
    for table, now in after["tables"].items():
        was = before["tables"].get(table, dict.fromkeys(now, 0))
        delta = {k: now[k] - was[k] for k in now}
        if any(delta.values()):
            rows[table] = {k: round(v / max(fires, 1), 3) for k, v in delta.items()}
    result.extra["rows_by_table"] = rows
    result.extra["rows_per_fire"] = round(
        sum(v["ins"] + v["upd"] + v["del"] for v in rows.values()), 2
    )
    result.extra["wal_bytes_per_fire"] = round((after["wal"] - before["wal"]) / max(fires, 1))
    return result


def _past(sink: Path, when: float) -> bool:
    """Whether every process's latest record is of a fire scheduled at ``when`` or later
    (workers claim the earliest due runs first). Reads the end of each file only."""
    paths = glob.glob(str(sink / "*.rec"))
    for path in paths:
        try:
            with open(path, "rb") as fh:
                fh.seek(max(fh.seek(0, os.SEEK_END) - 512, 0))
                last = fh.read().rstrip(b"\n").rsplit(b"\n", 1)[-1].split(b"\t")
            if len(last) != 3 or float(last[1]) < when:
                return False
        except (OSError, ValueError):
            return False
    return bool(paths)

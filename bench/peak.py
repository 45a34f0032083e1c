"""W6 — peak load: N one-second cron jobs (10,000: 10,000 fires per second) on PostgreSQL.

oncely runs as one scheduler and ``workers`` worker processes (``--w6-workers``: the scale-out
run adds processes). Besides fires run, missed and duplicated and the lag percentiles, W6
reports what the load costs:

- **lag over time:** p50 / p99 / max per 5-second bucket of scheduled time (a system that
  falls behind shows a rising line; one that keeps up, a flat one);
- **CPU split:** CPU seconds of oncely's processes, of every ``postgres`` process, and of the
  whole machine, over the measured window (``/proc``), as cores used on average;
- **rows and WAL per fire:** the deltas of ``pg_stat_user_tables`` (rows inserted, updated,
  HOT-updated, deleted, per table of oncely's schema) and of ``pg_current_wal_lsn()`` over
  the window, divided by the fires that ran in it;
- **RSS:** the largest resident size of the scheduler and of a worker.

The records are analysed without a set of key strings: ``w6-<i>@<t>`` becomes an index into
a byte array of jobs x seconds, so a 10-minute run (6,000,000 fires) analyses in seconds.
The best peer (Celery beat; RQ cron) runs its W2 harness with the same N jobs and window.
"""

from __future__ import annotations

import contextlib
import glob
import math
import os
import statistics
import threading
import time
from array import array
from pathlib import Path
from typing import Any

import psycopg

import oncely
from bench import oncely_bench as ob
from bench.common import Result, Stack, fresh_sink, log, rss_bytes
from bench.pg_instance import PgInstance, PgUnavailable

BUCKET = 5.0
"""Seconds of scheduled time per point of the lag-over-time series."""
_HZ = os.sysconf("SC_CLK_TCK")


# -- CPU and the database's counters --------------------------------------------------------


def _cpu_seconds(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / _HZ


def _postgres_cpu() -> dict[int, float]:
    out: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/comm", encoding="ascii") as fh:
                if fh.read().strip() != "postgres":
                    continue
        except OSError:
            continue
        value = _cpu_seconds(int(entry))
        if value is not None:
            out[int(entry)] = value
    return out


def _machine_busy() -> float:
    with open("/proc/stat", encoding="ascii") as fh:
        values = [int(v) for v in fh.readline().split()[1:]]
    return (sum(values) - values[3] - values[4]) / _HZ  # all but idle and iowait


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
    """CPU snapshots at the window's edges, RSS every second, in a thread of its own."""

    def __init__(self, stack: Stack, start: float, end: float) -> None:
        self.stack, self.start, self.end = stack, start, end
        self.rss: dict[str, int] = {}
        self.edges: list[tuple[float, dict[str, float], dict[int, float], float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _procs(self) -> dict[str, float]:
        out = {}
        for proc in self.stack.procs:
            value = _cpu_seconds(proc.pid)
            if value is not None:
                out[proc.name] = value
        return out

    def _snapshot(self) -> None:
        self.edges.append((time.time(), self._procs(), _postgres_cpu(), _machine_busy()))

    def _run(self) -> None:
        marks = [self.start, self.end]
        while not self._stop.is_set():
            now = time.time()
            if marks and now >= marks[0]:
                marks.pop(0)
                self._snapshot()
            for proc in self.stack.procs:
                value = rss_bytes(proc.pid)
                if value:
                    self.rss[proc.name] = max(self.rss.get(proc.name, 0), value)
            self._stop.wait(0.25 if marks else 1.0)

    def __enter__(self) -> _Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def cpu(self) -> dict[str, Any]:
        if len(self.edges) < 2:
            return {}
        (t0, procs0, pg0, busy0), (t1, procs1, pg1, busy1) = self.edges[:2]
        span = t1 - t0
        by_proc = {n: (v - procs0.get(n, v)) / span for n, v in procs1.items() if n in procs0}
        postgres = sum(v - pg0.get(pid, 0.0) for pid, v in pg1.items()) / span
        return {
            "cpu_oncely_cores": round(sum(by_proc.values()), 2),
            "cpu_by_process": {n: round(v, 2) for n, v in by_proc.items()},
            "cpu_postgres_cores": round(postgres, 2),
            "cpu_machine_busy_cores": round((busy1 - busy0) / span, 2),
            "cpu_window_s": round(span, 1),
            "cores": os.cpu_count(),
        }


# -- the records ----------------------------------------------------------------------------


def analyse_w6(
    result: Result, sink: Path, prefix: str, jobs: int, start: int, seconds: int
) -> None:
    """Counts, lag percentiles and the lag-over-time series from the sink's files."""
    counts = bytearray(jobs * seconds)
    lags = array("d")
    buckets: list[array[float]] = [array("d") for _ in range(math.ceil(seconds / BUCKET))]
    stray = 0
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
                    t = int(at) - start
                    scheduled, started = (float(x) for x in rest.split("\t"))
                except ValueError:
                    stray += 1
                    continue
                if not (0 <= t < seconds and 0 <= i < jobs):
                    continue  # outside the window (warm-up, tail)
                slot = i * seconds + t
                counts[slot] = min(counts[slot] + 1, 255)
                if counts[slot] == 1:
                    lag = started - scheduled
                    lags.append(lag)
                    buckets[int(t // BUCKET)].append(lag)
    result.ran = sum(1 for c in counts if c)
    result.lost = len(counts) - result.ran
    result.duplicates = sum(c - 1 for c in counts if c > 1)
    if stray:
        result.notes.append(f"{stray} records were not W6 fires")
    if lags:
        ordered = sorted(lags)
        result.lag_p50, result.lag_p95, result.lag_p99 = (
            _pct(ordered, q) for q in (0.50, 0.95, 0.99)
        )
        result.lag_max = ordered[-1]
        step = max(1, len(ordered) // 5000)
        result.lags = list(ordered[::step])
    result.extra["timeline"] = [
        {
            "t": round(k * BUCKET, 1),
            "ran": len(b),
            "p50": round(statistics.median(b), 4) if b else None,
            "p99": round(_pct(sorted(b), 0.99), 4) if b else None,
            "max": round(max(b), 4) if b else None,
        }
        for k, b in enumerate(buckets)
    ]


def _pct(ordered: Any, q: float) -> float:
    return float(ordered[min(len(ordered) - 1, int(q * len(ordered)))])


# -- oncely ---------------------------------------------------------------------------------


def w6(jobs: int, seconds: int, tmp: Path, workers: int = ob.WORKERS) -> Result:
    """W6 on a PostgreSQL server of its own (initdb's defaults; bench/pg_instance.py), so that
    the shared server's settings (this machine's has autovacuum off, under which no queue
    table survives ten minutes at this rate) are not what is measured; the shared one when
    no server of its own can run here."""
    try:
        pg: PgInstance | None = PgInstance.create()
    except PgUnavailable as exc:
        log(f"  W6: no PostgreSQL server of its own ({exc}); using the shared one")
        pg = None
    try:
        url = pg.url if pg is not None else ob.PG_DSN
        result = _w6(jobs, seconds, tmp, workers, url)
        result.extra["server"] = "its own (initdb defaults)" if pg else "the shared one"
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
        start = math.ceil(time.time() + 8.0)
        end = start + seconds
        with _Sampler(stack, start + 2, end) as sampler:
            while time.time() < start + 2:
                time.sleep(0.2)
            before = _pg_counters(url, ob.SCHEMA)
            before_at = time.time()
            while time.time() < end:
                stack.check()
                time.sleep(0.5)
            # pg_stat counters reach the shared view within a second of a commit.
            time.sleep(2.0)
            after = _pg_counters(url, ob.SCHEMA)
            after_at = time.time()
            deadline = time.time() + 15
            want = jobs * seconds
            while time.time() < deadline and _lines(sink) < want:
                time.sleep(0.5)
            stack.check()
        result.extra.update(sampler.cpu())
        result.extra["rss_mb"] = {n: round(v / 2**20, 1) for n, v in sampler.rss.items()}
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


def _lines(sink: Path) -> int:
    total = 0
    for path in glob.glob(str(sink / "*.rec")):
        with contextlib.suppress(OSError), open(path, "rb") as fh:
            total += fh.read().count(b"\n")
    return total


# -- a peer ---------------------------------------------------------------------------------


def w6_peer(module: Any, jobs: int, seconds: int, tmp: Path) -> Result:
    """The peer's own W2 harness with W6's size; relabelled, with its lag-over-time series."""
    result: Result = module.w2(jobs, seconds, tmp)
    result.workload = "W6"
    sink = tmp / f"W2-{result.system}"
    origin = result.extra.get("window_start")
    if origin is None:
        # The peers' harness opens its window 5 s after its processes start; the sink's
        # earliest scheduled time in the window is the best estimate of its start.
        firsts = []
        for path in glob.glob(str(sink / "*.rec")):
            with open(path, encoding="utf-8") as fh:
                for line in fh:
                    parts = line.split("\t")
                    if len(parts) == 3:
                        with contextlib.suppress(ValueError):
                            firsts.append(float(parts[1]))
        origin = min(firsts) if firsts else None
    if origin is not None:
        timed = Result("W6", result.system, result.store, expected=result.expected)
        analyse_w6(timed, sink, "w2-", jobs, math.floor(origin), seconds)
        result.extra["timeline"] = timed.extra["timeline"]
    return result

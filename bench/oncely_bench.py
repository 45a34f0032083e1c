"""oncely's workloads: W1 burst and W2 steady (PostgreSQL), W3 scale, W4 failover, W5 embedded.

Processes are the real CLI: ``python -m oncely.cli.main --store URL scheduler|worker|up``.
Jobs are created through the public API (``App.add_job``) from a small thread pool of the
benchmark process; the time that takes is reported as ``setup``.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import signal
import statistics
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import oncely
from bench.common import (
    PG_DSN,
    Proc,
    Result,
    Stack,
    analyse,
    fresh_sink,
    log,
    pg_connect,
    pg_drop_schema,
    python_argv,
    read_records,
    rss_bytes,
    wait_for_records,
)
from bench.oncely_app import fire_key

# Its own schema per run on a shared machine: BENCH_ONCELY_SCHEMA.
SCHEMA = os.environ.get("BENCH_ONCELY_SCHEMA", "bench_oncely")
APP_SPEC = "bench.oncely_app:app"
CREATE_THREADS = 4
BULK_CHUNK = 50_000
# The no-op is async: oncely runs coroutine tasks on the worker's event loop, where a slot
# costs a coroutine, so one process takes 1,000 at once (the shape for I/O-bound tasks).
WORKER_CONCURRENCY = int(os.environ.get("BENCH_ONCELY_CONCURRENCY", "1000"))
# One worker process per core, as the peers run theirs (Celery -c 2, two Dramatiq, RQ,
# procrastinate and APScheduler processes); plus the scheduler process.
WORKERS = int(os.environ.get("BENCH_ONCELY_WORKERS", "2"))
PROFILE_DIR: Path | None = None
"""When set (``--profile``), py-spy samples every oncely process of W1, W2 and W5."""


def pg_url(schema: str = SCHEMA) -> str:
    return f"{PG_DSN}?schema={schema}"


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def cli(store: str, *args: str) -> list[str]:
    return python_argv("-m", "oncely.cli.main", "--store", store, "--log-level", "WARNING", *args)


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def create_jobs(
    app: oncely.App, specs: list[dict[str, Any]], threads: int = CREATE_THREADS
) -> float:
    """``app.add_job(**spec)`` for each spec from a few threads; returns the seconds it took."""
    started = time.perf_counter()
    chunks = [specs[i::threads] for i in range(threads)]

    def work(chunk: list[dict[str, Any]]) -> None:
        for spec in chunk:
            app.add_job(**spec)

    with ThreadPoolExecutor(threads) as pool:
        for future in [pool.submit(work, c) for c in chunks]:
            future.result()
    return time.perf_counter() - started


def bulk_create(app: oncely.App, specs: Iterable[dict[str, Any]], chunk: int = BULK_CHUNK) -> float:
    """``app.add_jobs`` (one transaction per chunk); returns the seconds it took. ``specs``
    may be a generator: 10M specs are never all in memory."""
    started = time.perf_counter()
    it = iter(specs)
    while batch := list(itertools.islice(it, chunk)):
        app.add_jobs(batch)
    return time.perf_counter() - started


def creation_rate(app: oncely.App, n: int = 400) -> float:
    """Jobs per second add_job sustains here (paused far-future jobs: they never fire)."""
    far = _utc(time.time() + 10 * 365 * 86400)
    tag = f"cal{int(time.time() * 1000)}"
    specs = [{"name": f"{tag}-{i}", "at": far, "task": "noop", "paused": True} for i in range(n)]
    return n / create_jobs(app, specs)


def start_pg_cluster(stack: Stack, store: str, workers: int = WORKERS) -> None:
    stack.start("scheduler", cli(store, "scheduler"))
    for i in range(workers):
        stack.start(
            f"worker{i}",
            cli(store, "worker", "--app", APP_SPEC, "--concurrency", str(WORKER_CONCURRENCY)),
        )


def start_embedded(stack: Stack, store: str, port: int) -> None:
    stack.start(
        "up",
        cli(
            store,
            "up",
            "--app",
            APP_SPEC,
            "--concurrency",
            str(WORKER_CONCURRENCY),
            "--port",
            str(port),
        ),
    )


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_ready(stack: Stack, seconds: float = 2.5) -> None:
    """Let the processes import, migrate and take their leases."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        stack.check()
        time.sleep(0.1)


def _profile(stack: Stack, label: str) -> Any:
    if PROFILE_DIR is None:
        return None
    from bench.profile import Profiler

    profiler = Profiler(PROFILE_DIR)
    for proc in stack.procs:
        profiler.attach(f"{label}-{proc.name}", proc.pid)
    return profiler


def _unprofile(profiler: Any) -> None:
    if profiler is not None:
        profiler.stop()


# -- W1 / W5a: burst -----------------------------------------------------------------------


def burst(
    *,
    workload: str,
    store: str,
    label: str,
    n: int,
    tmp: Path,
    timeout: float,
    reset: Callable[[], None],
    embedded: bool,
) -> Result:
    result = Result(workload, "oncely", label, expected=n)
    sink = fresh_sink(tmp, f"{workload}-oncely")
    reset()
    stack = Stack(tmp / "logs" / f"{workload}-oncely", sink)
    app = oncely.App(store)
    profiler = None
    try:
        app.store  # noqa: B018 - migrate now, before the processes race to do it
        if embedded:
            start_embedded(stack, store, _free_port())
        else:
            start_pg_cluster(stack, store)
        _wait_ready(stack)
        profiler = _profile(stack, f"{workload}-burst")
        result.extra["add_job_per_s"] = round(creation_rate(app))
        result.extra["add_job_threads"] = CREATE_THREADS
        probe = [
            {"name": f"probe-{i}", "at": _utc(time.time() + 86400), "task": "noop", "paused": True}
            for i in range(1000)
        ]
        bulk_rate = len(probe) / bulk_create(app, probe)
        due = math.ceil(time.time() + n / bulk_rate * 1.5 + 3.0)
        names = [f"w1-{i}" for i in range(n)]
        specs = [{"name": name, "at": _utc(due), "task": "noop"} for name in names]
        result.setup_seconds = bulk_create(app, specs)
        stored = time.time()
        result.extra["add_jobs_per_s"] = round(n / result.setup_seconds)
        if stored > due - 0.5:
            result.notes.append(
                f"jobs were still being stored {stored - due:+.1f} s from the due instant"
            )
        log(f"  {n} jobs stored in {result.setup_seconds:.1f} s; due in {due - stored:.1f} s")
        wait_for_records(sink, n, timeout=max(due - time.time(), 0) + timeout, settle=2)
        stack.check()
    except Exception as exc:
        result.error = f"{type(exc).__name__}: {exc}"
        return result
    finally:
        _unprofile(profiler)
        stack.stop()
        app.close()
    records = read_records(sink)
    analyse(result, records, expected_keys={fire_key(k, due) for k in names}, origin=due)
    if result.ran:
        last = max(started for _, _, started in records)
        result.throughput = result.ran / max(last - due, 1e-3)
        result.duration = last - due
    return result


# -- W2 / W3 / W5b: steady -----------------------------------------------------------------


def steady(
    *,
    workload: str,
    store: str,
    label: str,
    jobs: int,
    seconds: int,
    tmp: Path,
    reset: Callable[[], None],
    embedded: bool,
    background: int = 0,
    schema: str | None = None,
) -> Result:
    result = Result(workload, "oncely", label, expected=jobs * seconds)
    sink = fresh_sink(tmp, f"{workload}-oncely-{background}")
    reset()
    stack = Stack(tmp / "logs" / f"{workload}-oncely-{background}", sink)
    app = oncely.App(store)
    profiler = None
    try:
        app.store  # noqa: B018
        if background:
            log(f"  storing {background} yearly jobs ...")
            took = bulk_create(
                app,
                (
                    {"name": f"bg-{i}", "cron": "0 0 1 1 *", "task": "noop"}
                    for i in range(background)
                ),
            )
            result.extra["background_jobs"] = background
            result.extra["background_store_s"] = round(took, 1)
            result.extra["add_jobs_per_s"] = round(background / took)
            if schema is not None:
                size = schema_bytes(schema)
                result.extra["schema_bytes"] = size
                result.extra["bytes_per_job"] = round(size / background)
        if embedded:
            start_embedded(stack, store, _free_port())
        else:
            start_pg_cluster(stack, store)
        _wait_ready(stack)
        if not background:
            profiler = _profile(stack, f"{workload}-steady")
        names = [f"w2-{i}" for i in range(jobs)]
        specs = [{"name": name, "cron": "* * * * * *", "task": "noop"} for name in names]
        result.setup_seconds = bulk_create(app, specs)
        # Fires counted: those scheduled in [start, start + seconds).
        start = math.ceil(time.time() + 2.0)
        end = start + seconds
        sched_pid = stack.procs[0].pid
        rss: list[int] = []
        while time.time() < end + 3.0:
            value = rss_bytes(sched_pid)
            if value:
                rss.append(value)
            stack.check()
            time.sleep(0.5)
        result.extra["scheduler_rss_mb"] = round(max(rss) / 2**20, 1) if rss else None
        # Late fires and duplicates get a few more seconds to show up.
        deadline = time.time() + 10
        expected_keys = {fire_key(n, t) for n in names for t in range(start, end)}
        while time.time() < deadline:
            recs = [r for r in read_records(sink) if start <= r[1] < end]
            if len({r[0] for r in recs}) >= len(expected_keys):
                break
            time.sleep(0.5)
        time.sleep(1.0)
        stack.check()
    except Exception as exc:
        result.error = f"{type(exc).__name__}: {exc}"
        return result
    finally:
        _unprofile(profiler)
        stack.stop()
        app.close()
    analyse(
        result,
        read_records(sink),
        expected_keys=expected_keys,
        origin=start,
        window=(start, end),
    )
    result.throughput = result.ran / seconds
    result.duration = seconds
    return result


def schema_bytes(schema: str) -> int:
    with pg_connect() as conn:
        row = conn.execute(
            "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relkind IN ('r', 'p', 'm')",
            (schema,),
        ).fetchone()
        conn.execute("CHECKPOINT")
    return int(row[0]) if row else 0


# -- W4: failover --------------------------------------------------------------------------


def _shards_by_holder(schema: str) -> dict[str, set[int]]:
    """Live shard leases per holder (a holder is a member id: host:pid:random)."""
    with pg_connect() as conn:
        rows = conn.execute(
            f'SELECT holder, name FROM "{schema}".leases '
            "WHERE starts_with(name, 'shard:') AND expires_at > clock_timestamp()"
        ).fetchall()
    held: dict[str, set[int]] = {}
    for holder, name in rows:
        held.setdefault(str(holder), set()).add(int(str(name).split(":")[1]))
    return held


def _pid_of(holder: str) -> int:
    return int(holder.split(":")[1])


def _after_kill(schema: str, shards: set[int], killed_at: float) -> tuple[float | None, ...]:
    """For the runs of the dead scheduler's shards created after the kill (by a survivor: the
    dead one wrote nothing more): when the first was created, when the first of them
    started, and that one's start lag behind its scheduled time."""
    with pg_connect() as conn:
        created = conn.execute(
            f'SELECT min(r.created_at) FROM "{schema}".runs r JOIN "{schema}".jobs j '
            "ON j.id = r.job_id WHERE j.shard = ANY(%s) AND r.created_at > %s",
            (sorted(shards), _utc(killed_at)),
        ).fetchone()
        started = conn.execute(
            f'SELECT r.started_at, r.scheduled_for FROM "{schema}".runs r JOIN "{schema}".jobs j '
            "ON j.id = r.job_id WHERE j.shard = ANY(%s) AND r.created_at > %s "
            "AND r.started_at IS NOT NULL ORDER BY r.started_at LIMIT 1",
            (sorted(shards), _utc(killed_at)),
        ).fetchone()
    first_created = created[0].timestamp() if created and created[0] else None
    if not started:
        return first_created, None, None
    return (
        first_created,
        started[0].timestamp(),
        (started[0] - started[1]).total_seconds(),
    )


def failover(*, tmp: Path, trials: int, lease_ttl: float | None, label: str) -> Result:
    """Two schedulers share the 64 shards (32 each); SIGKILL one of them. Measured from the
    kill: ``takeover`` (the survivor holds every shard of the dead one), ``materialized``
    (the first run of those shards the survivor creates) and ``first started`` (the first
    of those runs a worker starts, and how late behind its scheduled time)."""
    schema = SCHEMA + "_w4"
    store = pg_url(schema)
    result = Result("W4", "oncely", label)
    sink = fresh_sink(tmp, f"W4-oncely-{label}")
    pg_drop_schema(schema)
    env = {} if lease_ttl is None else {"ONCELY_SCHEDULER_LEASE_TTL": str(lease_ttl)}
    stack = Stack(tmp / "logs" / f"W4-oncely-{label}", sink, env)
    app = oncely.App(store)
    takeovers: list[float] = []
    first_fires: list[float] = []
    first_started: list[float] = []
    started_lags: list[float] = []
    max_lags: list[float] = []
    kills: list[float] = []
    try:
        app.store  # noqa: B018
        jobs = 20
        names = [f"w4-{i}" for i in range(jobs)]
        create_jobs(app, [{"name": n, "cron": "* * * * * *", "task": "noop"} for n in names])
        stack.start("worker", cli(store, "worker", "--app", APP_SPEC, "--concurrency", "50"))
        schedulers: dict[int, Proc] = {}

        def start_scheduler(i: int) -> None:
            proc = stack.start(f"scheduler{i}", cli(store, "scheduler"))
            schedulers[proc.pid] = proc

        def wait_split(what: str) -> None:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                held = _shards_by_holder(schema)
                if sorted(len(v) for v in held.values()) == [32, 32]:
                    return
                time.sleep(0.1)
            raise RuntimeError(f"{what}: no 32/32 split within 30 s: {held}")  # noqa: TRY301

        start_scheduler(0)
        start_scheduler(1)
        wait_split("start")
        time.sleep(2)
        first_start = time.time()
        for trial in range(trials):
            held = _shards_by_holder(schema)
            victim = min(held)
            dead_shards = held[victim]
            proc = schedulers.pop(_pid_of(victim))
            killed_at = time.time()
            os.kill(proc.pid, signal.SIGKILL)
            proc.popen.wait()
            kills.append(killed_at)
            taken = None
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                now_held = _shards_by_holder(schema)
                others = set().union(*(v for h, v in now_held.items() if h != victim))
                if victim not in now_held and dead_shards <= others:
                    taken = time.time() - killed_at
                    break
                time.sleep(0.05)
            if taken is None:
                raise RuntimeError("the survivor did not take the shards within 60 s")  # noqa: TRY301
            takeovers.append(taken)
            # Wait until a worker has started a run the survivor created for those shards.
            deadline = time.monotonic() + 30
            created = started = lag = None
            while time.monotonic() < deadline and started is None:
                created, started, lag = _after_kill(schema, dead_shards, killed_at)
                time.sleep(0.2)
            if created is not None:
                first_fires.append(created - killed_at)
            if started is not None and lag is not None:
                first_started.append(started - killed_at)
                started_lags.append(lag)
            # A new scheduler for the next trial (as a supervisor would restart the dead one).
            start_scheduler(trial + 2)
            wait_split(f"trial {trial}")
            time.sleep(2)
        end_time = time.time()
        time.sleep(2)
    except Exception as exc:
        result.error = f"{type(exc).__name__}: {exc}"
        return result
    finally:
        stack.stop()
        app.close()
    start_s, end_s = math.ceil(first_start), math.floor(end_time) - 1
    keys = {fire_key(n, t) for n in names for t in range(start_s, end_s)}
    analyse(result, read_records(sink), expected_keys=keys, origin=start_s, window=(start_s, end_s))
    result.expected = len(keys)
    for k in kills:
        lags = [s - sch for _, sch, s in read_records(sink) if k <= sch < k + 30]
        if lags:
            max_lags.append(max(lags))
    result.extra.update(
        trials=len(takeovers),
        takeover_s=[round(t, 2) for t in takeovers],
        materialized_s=[round(t, 2) for t in first_fires],
        first_started_s=[round(t, 2) for t in first_started],
        first_started_lag_s=[round(t, 3) for t in started_lags],
        max_lag_after_kill_s=[round(t, 2) for t in max_lags],
        lease_ttl=lease_ttl or 2.5,
    )
    if first_fires:
        # The survivor's first run for the dead scheduler's shards: failover as W4 defines it.
        result.extra["failover_median_s"] = round(statistics.median(first_fires), 2)
    if first_started:
        result.extra["first_started_median_s"] = round(statistics.median(first_started), 2)
        result.extra["first_started_lag_median_s"] = round(statistics.median(started_lags), 3)
    if takeovers:
        result.extra["takeover_median_s"] = round(statistics.median(takeovers), 2)
    if max_lags:
        result.extra["max_lag_median_s"] = round(statistics.median(max_lags), 2)
    pg_drop_schema(schema)
    return result


# -- entry points --------------------------------------------------------------------------


def reset_pg(schema: str = SCHEMA) -> Callable[[], None]:
    return lambda: pg_drop_schema(schema)


def reset_sqlite(path: Path) -> Callable[[], None]:
    def reset() -> None:
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.remove(f"{path}{suffix}")

    return reset


def w1(n: int, tmp: Path, timeout: float) -> Result:
    return burst(
        workload="W1",
        store=pg_url(),
        label="PostgreSQL",
        n=n,
        tmp=tmp,
        timeout=timeout,
        reset=reset_pg(),
        embedded=False,
    )


def w2(jobs: int, seconds: int, tmp: Path) -> Result:
    return steady(
        workload="W2",
        store=pg_url(),
        label="PostgreSQL",
        jobs=jobs,
        seconds=seconds,
        tmp=tmp,
        reset=reset_pg(),
        embedded=False,
    )


def w3(sizes: list[int], jobs: int, seconds: int, tmp: Path) -> list[Result]:
    out = []
    for size in sizes:
        log(f"W3 oncely with {size} stored jobs")
        r = steady(
            workload="W3",
            store=pg_url(),
            label=f"PostgreSQL, {size:,} stored",
            jobs=jobs,
            seconds=seconds,
            tmp=tmp,
            reset=reset_pg(),
            embedded=False,
            background=size,
            schema=SCHEMA,
        )
        r.extra["size"] = size
        log("  " + r.line())
        out.append(r)
    pg_drop_schema(SCHEMA)
    return out


def w5(n: int, jobs: int, seconds: int, tmp: Path, timeout: float) -> list[Result]:
    path = tmp / "w5.db"
    a = burst(
        workload="W5",
        store=sqlite_url(path),
        label="SQLite burst",
        n=n,
        tmp=tmp,
        timeout=timeout,
        reset=reset_sqlite(path),
        embedded=True,
    )
    log("  " + a.line())
    b = steady(
        workload="W5",
        store=sqlite_url(path),
        label="SQLite steady",
        jobs=jobs,
        seconds=seconds,
        tmp=tmp,
        reset=reset_sqlite(path),
        embedded=True,
    )
    log("  " + b.line())
    reset_sqlite(path)()
    return [a, b]


__all__ = ["failover", "w1", "w2", "w3", "w5"]

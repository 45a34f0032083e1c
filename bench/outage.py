"""W7: recovery after a database outage (manual: ~3 minutes with the default sizes).

oncely runs as in W2 (one ``oncely scheduler`` and two ``oncely worker`` processes, the CLI)
with per-second cron jobs, on a PostgreSQL server of its own (bench/pg_instance.py: initdb and
pg_ctl on a free port; the shared server on 5432 is never restarted). Each trial stops that
server with ``pg_ctl -m fast`` or ``-m immediate`` (a crash), keeps it down for a fixed time,
starts it again and measures from the instant it accepts connections again (``ready``):

- ``shards``: until every one of the 64 shard leases is live again (held by the scheduler);
- ``first_started``: until a worker starts the first run (``runs.started_at`` after ready);
- ``on_time``: until per-second fires are back on time: the first scheduled second at or after
  ready from which three seconds in a row have every job's fire started less than 100 ms late
  (per-second fires: 1 s resolution).

Over the whole run (every fire scheduled from the first trial's start to the end): fires that
never ran as their own run (``lost`` in the result: with the default ``misfire_grace`` of 60 s
a 10 s outage should leave none, every missed fire runs late; those the misfire policy folded
are counted from the store: ``runs.fires`` above 1 and ``missed`` runs), duplicates (must be
0), runs started before they were due, and attempts the store recorded as ``lost``.
"""

from __future__ import annotations

import math
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

import oncely
from bench.common import Result, Stack, analyse, fresh_sink, log, read_records
from bench.oncely_app import fire_key
from bench.oncely_bench import create_jobs, start_pg_cluster
from bench.pg_instance import PgInstance

SCHEMA = "bench_oncely_w7"
JOBS = 20
SHARDS = 64
ON_TIME = 0.100
STEADY_RUN = 3


def _query(url: str, sql: str, params: tuple[Any, ...] = ()) -> Any:
    """One row of one query, or None while the server does not answer."""
    try:
        with psycopg.connect(url, connect_timeout=2, autocommit=True) as conn:
            return conn.execute(sql, params).fetchone()
    except psycopg.OperationalError:
        return None


def _held(url: str, schema: str) -> int:
    """Live shard leases (0 while the server does not answer)."""
    row = _query(
        url,
        f'SELECT count(*) FROM "{schema}".leases '
        "WHERE starts_with(name, 'shard:') AND expires_at > clock_timestamp()",
    )
    return int(row[0]) if row is not None else 0


def _on_time_from(
    records: list[tuple[str, float, float]], names: list[str], ready: float, until: float
) -> float | None:
    """The first whole second >= ready from which STEADY_RUN seconds in a row have every
    job's fire started, each under ON_TIME late; None if none before ``until``."""
    by_second: dict[int, list[float]] = {}
    for _, scheduled, started in records:
        by_second.setdefault(round(scheduled), []).append(started - scheduled)
    good = []
    for t in range(math.ceil(ready), math.floor(until)):
        lags = by_second.get(t, [])
        good.append((t, len(lags) >= len(names) and max(lags, default=1.0) < ON_TIME))
    for i in range(len(good) - STEADY_RUN + 1):
        if all(ok for _, ok in good[i : i + STEADY_RUN]):
            return float(good[i][0])
    return None


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 2) if values else None


def outage(
    pg: PgInstance, *, tmp: Path, mode: str, trials: int, down: float, settle: float = 12.0
) -> Result:
    """``trials`` outages of ``down`` seconds, stopping the server with ``pg_ctl -m mode``."""
    label = f"pg_ctl stop -m {mode}, {down:g} s down"
    result = Result("W7", "oncely", label)
    schema = f"{SCHEMA}_{mode}"
    store = f"{pg.url}?schema={schema}"
    sink = fresh_sink(tmp, f"W7-oncely-{mode}")
    stack = Stack(tmp / "logs" / f"W7-oncely-{mode}", sink)
    app = oncely.App(store)
    names = [f"w7-{i}" for i in range(JOBS)]
    readies: list[float] = []
    stops: list[float] = []
    shards: list[float] = []
    first_started: list[float] = []
    try:
        app.store  # noqa: B018  (creates the schema)
        create_jobs(app, [{"name": n, "cron": "* * * * * *", "task": "noop"} for n in names])
        start_pg_cluster(stack, store)
        deadline = time.monotonic() + 30
        while _held(pg.url, schema) < SHARDS:
            stack.check()
            if time.monotonic() > deadline:
                raise RuntimeError("the scheduler did not take the 64 shards within 30 s")  # noqa: TRY301
            time.sleep(0.1)
        time.sleep(3)
        first_start = time.time()
        for _ in range(trials):
            stops.append(time.time())
            pg.stop(mode)
            time.sleep(down)
            mono = pg.start()
            ready = time.time() - (time.monotonic() - mono)
            readies.append(ready)
            held_at = started_at = None
            deadline = time.monotonic() + 60
            while (held_at is None or started_at is None) and time.monotonic() < deadline:
                if held_at is None and _held(pg.url, schema) >= SHARDS:
                    held_at = time.time()
                if started_at is None:
                    row = _query(
                        pg.url,
                        f'SELECT min(started_at) FROM "{schema}".runs WHERE started_at >= %s',
                        (datetime.fromtimestamp(ready, UTC),),
                    )
                    if row is not None and row[0] is not None:
                        started_at = row[0].timestamp()
                time.sleep(0.05)
            if held_at is not None:
                shards.append(held_at - ready)
            if started_at is not None:
                first_started.append(started_at - ready)
            log(
                f"  {mode}: shards {held_at and round(held_at - ready, 2)} s, first run started "
                f"{started_at and round(started_at - ready, 2)} s after ready"
            )
            # Let it run on time again before the next outage (and before the end).
            time.sleep(max(0.0, ready + settle - time.time()))
        end = time.time()
        time.sleep(2)
        stack.check()
        lost_attempts, folded, missed_runs, missed_fires = _from_store(pg.url, schema)
    except Exception as exc:
        result.error = f"{type(exc).__name__}: {exc}"
        return result
    finally:
        stack.stop()
        app.close()
    records = read_records(sink)
    start_s, end_s = math.ceil(first_start), math.floor(end) - 1
    keys = {fire_key(n, t) for n in names for t in range(start_s, end_s)}
    analyse(result, records, expected_keys=keys, origin=start_s, window=(start_s, end_s))
    result.expected = len(keys)
    on_time = []
    for i, ready in enumerate(readies):
        until = readies[i + 1] if i + 1 < len(readies) else end
        at = _on_time_from(records, names, ready, until)
        if at is not None:
            on_time.append(at - ready)
    outage_fires = [
        (s - sch)
        for stop, ready in zip(stops, readies, strict=True)
        for _, sch, s in records
        if stop <= sch < ready
    ]
    early = sum(1 for _, sch, s in records if s < sch)
    result.extra.update(
        mode=mode,
        down_s=down,
        trials=len(readies),
        jobs=JOBS,
        shards_s=[round(v, 2) for v in shards],
        first_started_s=[round(v, 2) for v in first_started],
        on_time_s=[round(v, 2) for v in on_time],
        shards_median_s=_median(shards),
        first_started_median_s=_median(first_started),
        on_time_median_s=_median(on_time),
        outage_fires_ran_late=len(outage_fires),
        outage_fire_max_lag_s=round(max(outage_fires), 2) if outage_fires else None,
        folded_fires=folded,
        missed_runs=missed_runs,
        missed_fires=missed_fires,
        started_early=early,
        lost_attempts=lost_attempts,
    )
    return result


def _from_store(url: str, schema: str) -> tuple[int, int, int, int]:
    """Attempts recorded as lost; fires folded into another run by the misfire policy
    (``fires - 1`` summed); ``missed`` runs and the fires they stand for."""
    with psycopg.connect(url, autocommit=True) as conn:
        lost = conn.execute(
            f"SELECT count(*) FROM \"{schema}\".attempts WHERE outcome = 'lost'"
        ).fetchone()
        folded = conn.execute(
            f'SELECT coalesce(sum(fires - 1), 0) FROM "{schema}".runs '
            "WHERE fires > 1 AND state <> 'missed'"
        ).fetchone()
        missed = conn.execute(
            f'SELECT count(*), coalesce(sum(fires), 0) FROM "{schema}".runs '
            "WHERE state = 'missed'"
        ).fetchone()
    assert lost is not None
    assert folded is not None
    assert missed is not None
    return int(lost[0]), int(folded[0]), int(missed[0]), int(missed[1])


def w7(*, tmp: Path, trials: int, down: float, modes: list[str]) -> list[Result]:
    """One PostgreSQL server of the benchmark's own for all modes (a fresh schema each)."""
    log("  initdb of a PostgreSQL server of W7's own ...")
    pg = PgInstance.create()
    try:
        return [outage(pg, tmp=tmp, mode=m, trials=trials, down=down) for m in modes]
    finally:
        pg.destroy()

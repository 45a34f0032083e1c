"""The report: a headline table of targets, a table per workload, and PNG plots."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.common import Result, ms

# The figures, for orientation (a 2-core machine; not measured here).
REFERENCE_W1 = {
    "celery": 1650,
    "dramatiq": 1900,
    "procrastinate": 580,
    "rq": 320,
    "apscheduler": 40,
}
REFERENCE_W2 = {"celery": 0.50, "rq": 0.30, "procrastinate": 0.18, "apscheduler": 0.014}
REFERENCE_RAW = {1: 1600, 10: 15000, 1000: 85000}


def _find(results: list[Result], workload: str, system: str | None = None) -> list[Result]:
    return [
        r
        for r in results
        if r.workload == workload and (system is None or r.system == system) and not r.error
    ]


def _fmt_rate(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}/s"


def _met(ok: bool | None) -> str:
    return "n/a" if ok is None else ("**met**" if ok else "**not met**")


def headline(results: list[Result]) -> list[tuple[str, str, str, str]]:
    rows: list[tuple[str, str, str, str]] = []
    w1 = _find(results, "W1", "oncely")
    peers_w1 = [r for r in _find(results, "W1") if r.system != "oncely" and r.throughput]
    if w1:
        o = w1[0]
        rows.append(
            (
                "W1 burst throughput (PostgreSQL)",
                "≥ 10,000 runs/s",
                _fmt_rate(o.throughput),
                _met(o.throughput is not None and o.throughput >= 10_000),
            )
        )
        if peers_w1:
            best = max(peers_w1, key=lambda r: r.throughput or 0)
            ratio = (o.throughput or 0) / (best.throughput or 1)
            rows.append(
                (
                    "W1 vs the fastest peer",
                    "≥ 5x",
                    f"{ratio:.1f}x ({best.system} {_fmt_rate(best.throughput)})",
                    _met(ratio >= 5),
                )
            )
        rows.append(
            (
                "W1 duplicates / lost",
                "0 / 0",
                f"{o.duplicates} / {o.lost}",
                _met(o.duplicates == 0 and o.lost == 0),
            )
        )
    w2 = _find(results, "W2", "oncely")
    if w2:
        o = w2[0]
        rows.append(
            (
                "W2 steady p99 lag",
                "≤ 50 ms",
                ms(o.lag_p99),
                _met(o.lag_p99 is not None and o.lag_p99 <= 0.050),
            )
        )
        rows.append(
            (
                "W2 missed / duplicate fires",
                "0 / 0",
                f"{o.lost} / {o.duplicates} (of {o.expected:,})",
                _met(o.lost == 0 and o.duplicates == 0),
            )
        )
    w3 = sorted(_find(results, "W3", "oncely"), key=lambda r: r.extra.get("size", 0))
    if w3:
        small, large = w3[0], w3[-1]
        if len(w3) > 1 and small.lag_p99 and large.lag_p99:
            ratio = large.lag_p99 / small.lag_p99
            rows.append(
                (
                    f"W3 p99 lag at {large.extra.get('size', 0):,} vs "
                    f"{small.extra.get('size', 0):,} stored jobs",
                    "within 2x (target names 10M: run --w3-sizes for it)",
                    f"{ms(large.lag_p99)} vs {ms(small.lag_p99)} ({ratio:.1f}x)",
                    _met(ratio <= 2.0),
                )
            )
        rss = max((r.extra.get("scheduler_rss_mb") or 0) for r in w3)
        rows.append(("W3 scheduler RSS", "≤ 256 MB", f"{rss:.0f} MB", _met(rss <= 256)))
        bpj = large.extra.get("bytes_per_job")
        if bpj:
            rows.append(
                (
                    f"W3 bytes per stored job ({large.extra.get('size', 0):,} jobs)",
                    "≤ 500 B",
                    f"{bpj:,} B",
                    _met(bpj <= 500),
                )
            )
    w4 = [r for r in _find(results, "W4", "oncely") if r.store == "default lease TTL"] or _find(
        results, "W4", "oncely"
    )
    if w4 and w4[0].extra.get("failover_median_s") is not None:
        value = w4[0].extra["failover_median_s"]
        rows.append(
            (
                f"W4 failover, median of {w4[0].extra.get('trials')} ({w4[0].store})",
                "≤ 3 s",
                f"{value:.1f} s",
                _met(value <= 3.0),
            )
        )
    for w6 in _find(results, "W6", "oncely"):
        per_s = w6.expected // max(int(w6.duration or 1), 1)
        rows.append(
            (
                f"W6 peak: {per_s:,} fires/s for {w6.duration or 0:.0f} s "
                f"({w6.extra.get('config', '').split(' x ')[0]})",
                "p99 lag < 1 s, 0 missed, 0 dups",
                f"p99 {ms(w6.lag_p99)}, {w6.lost:,} missed, {w6.duplicates} dups",
                _met(
                    w6.lag_p99 is not None
                    and w6.lag_p99 < 1.0
                    and w6.lost == 0
                    and w6.duplicates == 0
                ),
            )
        )
    w5 = [r for r in _find(results, "W5", "oncely") if "burst" in r.store]
    if w5:
        rows.append(
            (
                "W5 embedded burst (SQLite, one process)",
                "≥ 3,000 runs/s",
                _fmt_rate(w5[0].throughput),
                _met(w5[0].throughput is not None and w5[0].throughput >= 3000),
            )
        )
    return rows


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _lag_cells(r: Result) -> list[str]:
    return [ms(r.lag_p50), ms(r.lag_p95), ms(r.lag_p99), ms(r.lag_max)]


def markdown(meta: dict[str, Any], results: list[Result], plots: list[str]) -> str:
    m = meta["machine"]
    out: list[str] = []
    out.append(f"# oncely benchmarks — {meta['date'][:10]}")
    out.append("")
    out.append(
        f"Run `{meta['command']}` ({meta['mode']} sizes) on {meta['date']} "
        f"in {meta['elapsed_s']} s."
    )
    out.append("")
    out.append(
        f"**Machine:** {m.get('cores')} cores ({m.get('cpu', '?')}), {m.get('ram', '?')} RAM, "
        f"{m.get('os')}; PostgreSQL {m.get('postgresql')}, Redis {m.get('redis')}, "
        f"Python {m.get('python')}. Load average before the run: {m.get('load_before', '?')}. "
        "Everything (database, broker, scheduler, workers, the benchmark itself) shares these "
        "cores, and the machine is noisy: expect ±20% between runs."
    )
    out.append("")
    out.append("**Versions:** " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()) + ".")
    out.append("")
    out.append("## Targets")
    out.append("")
    rows = headline(results)
    if rows:
        out.append(_table(["target", "goal", "measured", ""], [list(r) for r in rows]))
    else:
        out.append("No oncely result to compare with the targets.")
    out.append("")
    out.append(
        "Lag is *actual start - scheduled time*, measured inside the no-op task (the same "
        "sink for every system: one `os.write` of a line per run to a per-process file). "
        "Duplicates are extra runs of one fire; lost are fires that never ran (W1: within "
        "the time-out; W2: fires whose scheduled time fell in the window but never ran, "
        "i.e. missed)."
    )

    w1 = _find(results, "W1")
    if w1:
        out.append("")
        out.append("## W1 — burst: one-shot no-op jobs all due at one instant")
        out.append("")
        rows_w1 = []
        for r in sorted(w1, key=lambda r: -(r.throughput or 0)):
            ref = REFERENCE_W1.get(r.system)
            rows_w1.append(
                [
                    f"**{r.system}**" if r.system == "oncely" else r.system,
                    r.store,
                    f"{r.ran:,}/{r.expected:,}",
                    _fmt_rate(r.throughput),
                    *_lag_cells(r),
                    str(r.duplicates),
                    str(r.lost),
                    f"{r.setup_seconds:.1f} s" if r.setup_seconds is not None else "—",
                    f"{ref:,}/s" if ref else "—",
                    str(
                        r.extra.get(
                            "config",
                            f"scheduler + {meta['sizes'].get('oncely_workers', 1)} worker "
                            f"processes x {meta['sizes']['oncely_worker_concurrency']} slots",
                        )
                    ),
                ]
            )
        out.append(
            _table(
                [
                    "system",
                    "store",
                    "ran",
                    "runs/s",
                    "lag p50",
                    "p95",
                    "p99",
                    "max",
                    "dups",
                    "lost",
                    "enqueue/store time",
                    "issue's figure",
                    "configuration",
                ],
                rows_w1,
            )
        )
        out.append("")
        out.append(
            "runs/s counts from the due instant to the last start. The jobs are stored before "
            "the instant (oncely: `App.add_jobs`, one transaction; see *enqueue/store time*)."
        )
        for r in w1:
            for note in r.notes:
                out.append(f"- {r.system}: {note}")
    errors = [r for r in results if r.error]
    w2 = _find(results, "W2")
    if w2:
        out.append("")
        out.append(
            f"## W2 — steady: {meta['sizes']['w2_jobs']:,} schedules firing every second for "
            f"{meta['sizes']['w2_seconds']} s"
        )
        out.append("")
        rows_w2 = []
        for r in sorted(w2, key=lambda r: -(r.ran / r.expected if r.expected else 0)):
            ref = REFERENCE_W2.get(r.system)
            share = r.ran / r.expected if r.expected else 0
            rows_w2.append(
                [
                    f"**{r.system}**" if r.system == "oncely" else r.system,
                    r.store,
                    f"{r.ran:,}/{r.expected:,} ({share:.1%})",
                    *_lag_cells(r),
                    str(r.duplicates),
                    f"{ref:.1%}" if ref is not None else "—",
                    str(
                        r.extra.get(
                            "config",
                            f"scheduler + {meta['sizes'].get('oncely_workers', 1)} worker "
                            f"processes x {meta['sizes']['oncely_worker_concurrency']} slots",
                        )
                    ),
                ]
            )
        out.append(
            _table(
                [
                    "system",
                    "store",
                    "fires executed",
                    "lag p50",
                    "p95",
                    "p99",
                    "max",
                    "dups",
                    "issue's figure",
                    "configuration",
                ],
                rows_w2,
            )
        )
        out.append("")
        out.append(
            "oncely's and procrastinate's schedules are whole-second crons, so a fire's "
            "scheduled time is exact. Celery beat and RQ cron are handed the time the entry "
            "was due by their own bookkeeping (beat: last run + interval; RQ: "
            "`next_enqueue_time`); APScheduler reports `scheduled_fire_time`. A schedule that "
            "falls behind and skips or coalesces fires shows as fewer fires executed."
        )
        for r in w2:
            for note in r.notes:
                out.append(f"- {r.system}: {note}")
    w3 = _find(results, "W3")
    if w3:
        out.append("")
        out.append(
            f"## W3 — scale: {meta['sizes']['w3_jobs']} per-second jobs among many stored "
            "yearly jobs (oncely, PostgreSQL)"
        )
        out.append("")
        rows_w3 = []
        for r in sorted(w3, key=lambda r: r.extra.get("size", 0)):
            rows_w3.append(
                [
                    f"{r.extra.get('size', 0):,}",
                    f"{r.ran:,}/{r.expected:,}",
                    *_lag_cells(r),
                    str(r.duplicates),
                    f"{r.extra.get('scheduler_rss_mb', '—')} MB",
                    f"{r.extra.get('bytes_per_job', '—'):,} B"
                    if r.extra.get("bytes_per_job")
                    else "—",
                    f"{r.extra.get('background_store_s', '—')} s "
                    f"({r.extra.get('add_jobs_per_s', '—')}/s)",
                ]
            )
        out.append(
            _table(
                [
                    "stored jobs",
                    "fires executed",
                    "lag p50",
                    "p95",
                    "p99",
                    "max",
                    "dups",
                    "scheduler RSS (max)",
                    "bytes/job",
                    "time to store them (add_jobs)",
                ],
                rows_w3,
            )
        )
        out.append("")
        out.append(
            "bytes/job = `pg_total_relation_size` of every table of the oncely schema (heap, "
            "indexes, TOAST) after storing them, divided by their count. The "
            "jobs are stored with `App.add_jobs` in chunks of 50,000. The 10M point is a "
            "manual run: `python -m bench --only W3 --peers oncely --w3-sizes 10000,10000000`."
        )
    w4 = _find(results, "W4")
    if w4:
        out.append("")
        out.append("## W4 — failover: SIGKILL of one of two schedulers")
        out.append("")
        rows_w4 = []
        for r in w4:
            e = r.extra
            lag = e.get("first_started_lag_median_s")
            rows_w4.append(
                [
                    r.store,
                    str(e.get("trials")),
                    f"{e.get('takeover_median_s', '—')} s",
                    f"{e.get('failover_median_s', '—')} s",
                    ", ".join(f"{v:g}" for v in e.get("materialized_s", [])),
                    f"{e.get('first_started_median_s', '—')} s"
                    + ("" if lag is None else f" (lag {lag * 1000:.0f} ms)"),
                    f"{e.get('max_lag_median_s', '—')} s",
                    f"{r.lost} / {r.duplicates}",
                ]
            )
        out.append(
            _table(
                [
                    "configuration",
                    "trials",
                    "kill → survivor holds the dead one's shards (median)",
                    "kill → survivor's first run of them created (median)",
                    "each trial (s)",
                    "kill → first of those runs started (median)",
                    "worst fire lag after the kill (median)",
                    "missed / dup fires",
                ],
                rows_w4,
            )
        )
        out.append("")
        out.append(
            "Two `oncely scheduler` processes share the 64 shards (32 each) and one worker runs "
            "on PostgreSQL, 20 jobs firing every second. One scheduler is killed with SIGKILL; "
            "a new one is started after each trial and the split is back to 32/32 before the "
            "next. *Takeover* is when every shard of the dead scheduler is held by the survivor; "
            "*first run created* is the first run of those shards the survivor materialized; "
            "*first run started* is when a worker started the first of those runs, with its lag "
            "behind its scheduled time. The dead scheduler had already materialized its shards' "
            "fires up to the lookahead (5 s), so the runs due meanwhile start on time and the "
            "first run the survivor creates is due about a lookahead after the kill."
        )
    w7 = _find(results, "W7")
    if w7:
        out.append("")
        out.append("## W7 — recovery after a database outage")
        out.append("")
        rows_w7 = []

        def each(values: list[float]) -> str:
            return ", ".join(f"{v:g}" for v in values)

        for r in w7:
            e = r.extra
            if r.error:
                rows_w7.append([r.store, "error: " + r.error, *[""] * 7])
                continue
            rows_w7.append(
                [
                    r.store,
                    str(e.get("trials")),
                    f"{e.get('shards_median_s', '—')} s ({each(e.get('shards_s', []))})",
                    f"{e.get('first_started_median_s', '—')} s "
                    f"({each(e.get('first_started_s', []))})",
                    f"{e.get('on_time_median_s', '—')} s ({each(e.get('on_time_s', []))})",
                    f"{e.get('outage_fires_ran_late', 0):,} (worst "
                    f"{e.get('outage_fire_max_lag_s', '—')} s late)",
                    f"{r.lost} / {e.get('folded_fires', 0)} / {e.get('missed_fires', 0)}",
                    str(r.duplicates),
                    f"{e.get('lost_attempts', 0)} / {e.get('started_early', 0)}",
                ]
            )
        out.append(
            _table(
                [
                    "outage",
                    "trials",
                    "ready → every shard held (median; each)",
                    "ready → first run started",
                    "ready → per-second fires on time (< 100 ms)",
                    "fires due while down: ran late",
                    "fires with no run of their own / folded / missed",
                    "duplicates",
                    "attempts lost / runs started early",
                ],
                rows_w7,
            )
        )
        out.append("")
        out.append(
            "oncely (one `oncely scheduler`, two `oncely worker` processes) on a PostgreSQL "
            "server of the benchmark's own (initdb + pg_ctl on a free port), 20 jobs firing "
            "every second. Each trial stops the server with `pg_ctl stop -m fast` or "
            "`-m immediate` (a crash), keeps it down, starts it, and measures from the instant "
            "it accepts connections again (*ready*): until all 64 shard leases are live, until "
            "a worker starts the first run, and until per-second fires are on time again (the "
            "first second from which three seconds in a row have every fire started under "
            "100 ms late; 1 s resolution). Fires due during the outage are handled by the "
            "misfire policy: within `misfire_grace` (60 s) each runs late as its own run; "
            "*folded* counts fires an older-than-grace run stood for (`runs.fires` - 1) and "
            "*missed* those recorded in `missed` runs; *no run of their own* is the fires the "
            "no-op never ran for. Manual: `python -m bench --only W7 --peers oncely --out "
            "bench/results/w7-manual --no-plots` (~3 minutes)."
        )
    w6 = _find(results, "W6")
    if w6:
        out += w6_section(w6, plots)
    w5 = _find(results, "W5")
    if w5:
        out.append("")
        out.append("## W5 — embedded: `oncely up` on SQLite, one process")
        out.append("")
        rows_w5 = []
        for r in w5:
            rows_w5.append(
                [
                    r.store,
                    f"{r.ran:,}/{r.expected:,}",
                    _fmt_rate(r.throughput) if "burst" in r.store else "—",
                    *_lag_cells(r),
                    str(r.duplicates),
                    str(r.lost),
                ]
            )
        out.append(
            _table(
                ["workload", "ran", "runs/s", "lag p50", "p95", "p99", "max", "dups", "lost"],
                rows_w5,
            )
        )
    raw = _find(results, "RAW")
    if raw:
        out.append("")
        out.append("## The raw limit: a queue in bare SQL on PostgreSQL")
        out.append("")
        o = _find(results, "W1", "oncely")
        best = max(raw, key=lambda r: r.throughput or 0)
        rows_raw = []
        for r in raw:
            b = r.extra.get("batch")
            ref = REFERENCE_RAW.get(b) if r.extra.get("clients") == 1 else None
            rows_raw.append(
                [
                    str(b),
                    str(r.extra.get("clients")),
                    _fmt_rate(r.throughput),
                    f"{ref:,}/s" if ref else "",
                ]
            )
        out.append(
            _table(["batch", "clients", "claimed + completed rows/s", "issue's figure"], rows_raw)
        )
        out.append("")
        out.append(
            "Rows are inserted with COPY; a client claims a batch (`UPDATE … WHERE id IN "
            "(SELECT … FOR UPDATE SKIP LOCKED LIMIT n) RETURNING id`) and completes it (one "
            "`UPDATE … WHERE id = ANY(…)`), each an autocommit round trip."
        )
        if o and o[0].throughput and best.throughput:
            out.append(
                f"oncely's W1 rate is **{o[0].throughput / best.throughput:.0%}** of the best "
                f"bare-SQL rate ({_fmt_rate(best.throughput)}, {best.store})."
            )
    if plots:
        out.append("")
        out.append("## Plots")
        out.append("")
        for name in plots:
            out.append(f"![{name}]({name})")
            out.append("")
    skipped = meta.get("skipped") or {}
    if skipped or errors:
        out.append("")
        out.append("## Skipped or failed")
        out.append("")
        for k, v in skipped.items():
            out.append(f"- {k}: {v}")
        for r in errors:
            out.append(f"- {r.workload} {r.system} ({r.store}): {r.error}")
    out.append("")
    return "\n".join(out)


def w6_section(w6: list[Result], plots: list[str]) -> list[str]:
    out = ["", "## W6 — peak: one-second cron jobs at the specified peak (PostgreSQL)", ""]
    rows = []
    for r in w6:
        x = r.extra
        mine = x.get("cpu_oncely_cores", x.get("cpu_peer_cores"))
        store = x.get("cpu_postgres_cores", x.get("cpu_redis_cores"))
        cpu = (
            f"{mine} / {store} ({r.store}) / {x['cpu_machine_busy_cores']} of {x['cores']}"
            if mine is not None
            else "—"
        )
        rss = x.get("rss_mb") or {}
        # The scheduler: oncely's, Celery beat, rq cron; the largest worker (its group).
        scheduler = next((rss[n] for n in ("scheduler", "beat", "cron") if n in rss), None)
        workers = [v for n, v in rss.items() if n.startswith("worker")]
        rows.append(
            [
                f"**{r.system}**" if r.system == "oncely" else f"{r.system} ({r.store})",
                x.get("config", ""),
                f"{r.ran:,}/{r.expected:,}",
                f"{r.lost:,}",
                str(r.duplicates),
                *_lag_cells(r),
                cpu,
                str(x.get("rows_per_fire", "—")),
                f"{x['wal_bytes_per_fire']:,}" if "wal_bytes_per_fire" in x else "—",
                f"{scheduler or 0:.0f} / {max(workers, default=0):.0f}" if rss else "—",
            ]
        )
    out.append(
        _table(
            [
                "system",
                "configuration",
                "fires run",
                "missed",
                "dups",
                "lag p50",
                "p95",
                "p99",
                "max",
                "CPU cores: system / store / machine busy",
                "rows per fire",
                "WAL bytes per fire",
                "RSS MB: scheduler / worker",
            ],
            rows,
        )
    )
    for r in w6:
        by_table = r.extra.get("rows_by_table")
        if by_table:
            parts = [
                f"{t}: {v['ins']:g} ins, {v['upd']:g} upd ({v['hot']:g} HOT), {v['del']:g} del"
                for t, v in sorted(by_table.items())
            ]
            out += ["", f"{r.system}, rows per fire by table: " + "; ".join(parts) + "."]
        if r.extra.get("redis_commands_per_fire") is not None:
            per_fire = r.extra["redis_commands_per_fire"]
            out += ["", f"{r.system}: {per_fire} Redis commands per fire."]
        if r.extra.get("cpu_by_process"):
            procs = ", ".join(f"{n} {v}" for n, v in r.extra["cpu_by_process"].items())
            out += ["", f"{r.system}, cores per process: {procs}."]
        for note in r.notes:
            out += ["", f"- {r.system}: {note}"]
    out += [
        "",
        "N jobs with the cron `* * * * * *` (every second) and the no-op task (the peers: "
        "Celery beat entries, `rq cron` jobs with the same schedule); fires counted by "
        "scheduled time in the window. Missed are fires that had not run 15 s after the "
        "window closed. CPU is measured from `/proc` over the window as cores used on "
        "average: the system's processes (with their children), the store (oncely: the W6 "
        "PostgreSQL server's processes; the peers: `redis-server`), and the machine's busy "
        "time (which includes the harness and anything else running). Rows per fire are "
        "`pg_stat_user_tables` deltas (inserted + updated + deleted rows; the counters are "
        "read 2 s after each edge of the window, as backends report them when a transaction "
        "ends); WAL bytes per fire the `pg_current_wal_lsn()` delta. The 10-minute run is "
        "manual: `python -m bench --only W6 --peers oncely,celery --w6-seconds 600` "
        "(scale-out: `--w6-workers 3`).",
    ]
    if "w6_peak.png" in plots:
        out += ["", "![W6 lag over time](w6_peak.png)"]
    return out


def plots(results: list[Result], out: Path) -> list[str]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    made: list[str] = []

    w1 = [r for r in _find(results, "W1") if r.starts]
    if w1:
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
        ordered = sorted(w1, key=lambda r: -(r.throughput or 0))
        names = [r.system for r in ordered]
        values = [r.throughput or 0 for r in ordered]
        colors = ["tab:green" if n == "oncely" else "tab:gray" for n in names]
        ax1.bar(names, values, color=colors)
        ax1.set_yscale("log")
        ax1.set_ylabel("runs/s (log)")
        ax1.set_title("W1 burst throughput")
        ax1.tick_params(axis="x", labelrotation=20)
        for i, v in enumerate(values):
            ax1.text(i, v, f"{v:,.0f}", ha="center", va="bottom", fontsize=8)
        for r in ordered:
            n = len(r.starts)
            ax2.plot(r.starts, [(i + 1) / n for i in range(n)], label=r.system)
        ax2.set_xscale("symlog", linthresh=1)
        ax2.set_xlabel("seconds after the due instant")
        ax2.set_ylabel("fraction of jobs started")
        ax2.set_title("W1 completion over time")
        ax2.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out / "w1_burst.png", dpi=100)
        plt.close(fig)
        made.append("w1_burst.png")

    w2 = [r for r in _find(results, "W2") if r.lags]
    if w2:
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
        for r in w2:
            n = len(r.lags)
            ax1.plot(
                [max(v, 1e-4) for v in r.lags], [(i + 1) / n for i in range(n)], label=r.system
            )
        ax1.set_xscale("log")
        ax1.set_xlabel("lag (s, log)")
        ax1.set_ylabel("fraction of executed fires")
        ax1.set_title("W2 lag distribution")
        ax1.axvline(0.05, color="tab:red", linestyle=":", linewidth=1)
        ax1.legend(fontsize=8)
        ordered = sorted(w2, key=lambda r: -(r.ran / max(r.expected, 1)))
        ax2.bar(
            [r.system for r in ordered],
            [100 * r.ran / max(r.expected, 1) for r in ordered],
            color=["tab:green" if r.system == "oncely" else "tab:gray" for r in ordered],
        )
        ax2.set_ylabel("% of expected fires executed")
        ax2.set_ylim(0, 105)
        ax2.set_title("W2 fires executed")
        fig.tight_layout()
        fig.savefig(out / "w2_steady.png", dpi=100)
        plt.close(fig)
        made.append("w2_steady.png")

    w3 = sorted(_find(results, "W3"), key=lambda r: r.extra.get("size", 0))
    if w3:
        fig, ax = plt.subplots(figsize=(6, 4))
        sizes = [r.extra.get("size", 0) for r in w3]
        for attr, label in (("lag_p50", "p50"), ("lag_p99", "p99"), ("lag_max", "max")):
            ax.plot(sizes, [1000 * (getattr(r, attr) or 0) for r in w3], marker="o", label=label)
        ax.set_xscale("log")
        ax.set_xlabel("stored jobs")
        ax.set_ylabel("lag (ms)")
        ax.set_title("W3 lag of per-second jobs vs stored jobs")
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / "w3_scale.png", dpi=100)
        plt.close(fig)
        made.append("w3_scale.png")

    raw = _find(results, "RAW")
    o = _find(results, "W1", "oncely")
    w5 = [r for r in _find(results, "W5") if "burst" in r.store]
    if raw:
        fig, ax = plt.subplots(figsize=(7, 4))
        labels = [r.store for r in raw]
        values = [r.throughput or 0 for r in raw]
        colors = ["tab:gray"] * len(raw)
        if o and o[0].throughput:
            labels.append("oncely W1 (PG)")
            values.append(o[0].throughput)
            colors.append("tab:green")
        if w5 and w5[0].throughput:
            labels.append("oncely W5 (SQLite)")
            values.append(w5[0].throughput)
            colors.append("tab:olive")
        ax.barh(labels, values, color=colors)
        ax.set_xscale("log")
        ax.set_xlabel("rows or runs per second (log)")
        ax.set_title("Bare-SQL queue limit vs oncely")
        fig.tight_layout()
        fig.savefig(out / "raw_limit.png", dpi=100)
        plt.close(fig)
        made.append("raw_limit.png")
    w6 = [r for r in _find(results, "W6") if r.extra.get("timeline")]
    if w6:
        fig, (ax, ran_ax) = plt.subplots(
            2, 1, figsize=(12, 6.5), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
        )
        for r in w6:
            color = {"oncely": "tab:green", "celery": "tab:blue", "rq": "tab:purple"}.get(
                r.system, "tab:gray"
            )
            points = [p for p in r.extra["timeline"] if p["p50"] is not None]
            t = [p["t"] for p in points]
            for field, style in (("p50", "-"), ("p99", "--"), ("max", ":")):
                ax.plot(
                    t,
                    [max(p[field], 1e-3) for p in points],
                    color=color,
                    linestyle=style,
                    marker="o",
                    markersize=3,
                    label=f"{r.system} {field}",
                )
            every = [p["t"] for p in r.extra["timeline"]]
            ran = [p["ran"] for p in r.extra["timeline"]]
            ran_ax.plot(every, ran, color=color, marker="o", markersize=3, label=r.system)
        ax.axhline(1.0, color="tab:red", linewidth=1)
        ax.set_yscale("log")
        ax.set_ylabel("lag (s, log)")
        ax.set_title("W6 peak: lag over time")
        ax.legend(fontsize=8, ncol=3)
        ran_ax.set_ylim(bottom=0)
        ran_ax.set_ylabel("fires run per bucket")
        ran_ax.set_xlabel("seconds into the window (scheduled time, 5 s buckets)")
        fig.tight_layout()
        fig.savefig(out / "w6_peak.png", dpi=100)
        plt.close(fig)
        made.append("w6_peak.png")

    return made

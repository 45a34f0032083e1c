"""``python -m bench``: the benchmark suite (oncely against its peers), one command.

    python -m bench                      # the standard set (~19 minutes on 2 cores)
    python -m bench --quick              # a smoke run of seconds per workload
    python -m bench --only W1,W2 --peers oncely,celery
    python -m bench --w3-sizes 10000,100000,1000000

Writes ``report.md``, ``results.json`` and PNG plots to ``--out`` (default bench/results).
Each workload prints throughput, lag percentiles, duplicates and lost as it goes.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shutil
import sys
import time
import traceback
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bench.common import ROOT, Result, log, machine, package_version, pg_available

WORKLOADS = ["W1", "W2", "W3", "W4", "W5", "W6", "W7", "RAW"]
# Manual workloads run only when named in --only (bench/README.md): W7 takes ~3 minutes.
MANUAL = {"W7"}
ALL_SYSTEMS = ["oncely", "celery", "dramatiq", "procrastinate", "rq", "apscheduler"]


@dataclass(frozen=True)
class Sizes:
    w1: int
    w1_peer_caps: dict[str, int]
    w1_timeout: float
    w2_jobs: int
    w2_seconds: int
    w3_sizes: tuple[int, ...]
    w3_jobs: int
    w3_seconds: int
    w4_trials: int
    w4_tuned_ttl: float | None
    w6_jobs: int
    w6_seconds: int
    w6_peers: tuple[str, ...]
    w7_trials: int
    w7_down: float
    w7_modes: tuple[str, ...]
    raw: dict[int, int]


STANDARD = Sizes(
    w1=20_000,
    # Slow peers get fewer jobs so the set fits its time budget; throughput is a rate.
    w1_peer_caps={"procrastinate": 5_000, "rq": 10_000, "apscheduler": 2_000},
    w1_timeout=180,
    w2_jobs=1_000,
    w2_seconds=60,
    # 1M and 10M stored jobs take minutes to store: a manual run (bench/README.md).
    w3_sizes=(10_000, 100_000),
    w3_jobs=1_000,
    w3_seconds=20,
    w4_trials=3,
    # --w4-lease-ttl adds a W4 run with another scheduler lease TTL (default 2.5 s).
    w4_tuned_ttl=None,
    # The 10-minute run the issue names is manual: --w6-seconds 600.
    w6_jobs=10_000,
    w6_seconds=30,
    # Beside oncely: the peers with a scheduler that did best at W2.
    w6_peers=("celery", "rq"),
    w7_trials=3,
    w7_down=10.0,
    w7_modes=("fast", "immediate"),
    raw={1: 3_000, 10: 20_000, 1000: 200_000},
)
QUICK = Sizes(
    w1=500,
    w1_peer_caps={"apscheduler": 200},
    w1_timeout=30,
    w2_jobs=50,
    w2_seconds=5,
    w3_sizes=(1_000,),
    w3_jobs=20,
    w3_seconds=5,
    w4_trials=1,
    w4_tuned_ttl=None,
    w6_jobs=200,
    w6_seconds=5,
    w6_peers=("celery", "rq"),
    w7_trials=1,
    w7_down=3.0,
    w7_modes=("immediate",),
    raw={1: 300, 10: 2_000, 1000: 20_000},
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="smoke run: tiny sizes, seconds each")
    p.add_argument("--only", default="", help="workloads to run, e.g. W1,W2 (default: all)")
    p.add_argument(
        "--peers",
        default="",
        help="systems to run, e.g. oncely,celery (default: oncely and every installed peer)",
    )
    p.add_argument("--out", default=str(ROOT / "bench" / "results"), help="output directory")
    p.add_argument("--w1-jobs", type=int, default=None, help="W1 job count (default 20000)")
    p.add_argument(
        "--w3-sizes", default=None, help="W3 stored-job counts, e.g. 10000,100000,1000000"
    )
    p.add_argument("--w4-trials", type=int, default=None)
    p.add_argument(
        "--w4-lease-ttl",
        type=float,
        default=None,
        help="also run W4 with this scheduler lease TTL in seconds (default TTL: 2.5 s)",
    )
    p.add_argument("--w6-jobs", type=int, default=None, help="W6 one-second jobs (10000)")
    p.add_argument("--w6-seconds", type=int, default=None, help="W6 window in seconds (30)")
    p.add_argument(
        "--w6-workers", type=int, default=None, help="W6 oncely worker processes (default 2)"
    )
    p.add_argument("--w7-trials", type=int, default=None, help="W7 outages per stop mode")
    p.add_argument("--w7-down", type=float, default=None, help="W7 outage length in seconds")
    p.add_argument("--w7-modes", default=None, help="W7 pg_ctl stop modes, e.g. fast,immediate")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    p.add_argument(
        "--profile",
        action="store_true",
        help="sample oncely's processes with py-spy during W1/W2/W5; writes profile.md",
    )
    return p.parse_args(argv)


def _peer_module(name: str):  # type: ignore[no-untyped-def]
    return importlib.import_module(f"bench.peers.{name}_peer")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = QUICK if args.quick else STANDARD
    only = [w.strip().upper() for w in args.only.split(",") if w.strip()] or [
        w for w in WORKLOADS if w not in MANUAL
    ]
    unknown = set(only) - set(WORKLOADS)
    if unknown:
        print(f"unknown workloads: {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    systems = [s.strip().lower() for s in args.peers.split(",") if s.strip()] or ALL_SYSTEMS
    unknown = set(systems) - set(ALL_SYSTEMS)
    if unknown:
        print(f"unknown systems: {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    w1_n = args.w1_jobs or sizes.w1
    w3_sizes = tuple(int(x) for x in args.w3_sizes.split(",")) if args.w3_sizes else sizes.w3_sizes
    w4_trials = args.w4_trials or sizes.w4_trials
    w7_trials = args.w7_trials or sizes.w7_trials
    w7_down = args.w7_down or sizes.w7_down
    w7_modes = args.w7_modes.split(",") if args.w7_modes else list(sizes.w7_modes)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / "tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)

    started = time.time()
    info = machine()
    log(f"oncely benchmark — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    log("  " + ", ".join(f"{k}: {v}" for k, v in info.items()))
    have_pg = pg_available()
    results: list[Result] = []
    skipped: dict[str, str] = {}

    def record(r: Result) -> None:
        results.append(r)
        log("  " + r.line())
        for note in r.notes:
            log(f"      note: {note}")

    def guarded(label: str, fn):  # type: ignore[no-untyped-def]
        try:
            return fn()
        except Exception as exc:  # one workload failing must not lose the others
            log(f"  {label} failed: {exc}")
            traceback.print_exc()
            skipped[label] = f"failed: {type(exc).__name__}: {exc}"
            return None

    peers = [s for s in systems if s != "oncely"]
    available: dict[str, object] = {}
    for name in peers:
        try:
            module = _peer_module(name)
            why = module.missing()
        except Exception as exc:
            why = f"cannot load: {exc}"
        if why:
            skipped[name] = why
            log(f"  peer {name} skipped: {why}")
        else:
            available[name] = module

    from bench import oncely_bench as ob

    if args.profile:
        from bench import profile

        why = profile.available()
        if why:
            print(why, file=sys.stderr)
            return 2
        ob.PROFILE_DIR = tmp / "profile"

    if "RAW" in only and have_pg:
        log("RAW: bare SQL queue on PostgreSQL")
        from bench import raw_sql

        for r in guarded("RAW", lambda: raw_sql.run(sizes.raw)) or []:
            results.append(r)

    if "W1" in only:
        log(f"W1 burst: {w1_n} one-shot jobs due at one instant")
        if "oncely" in systems and have_pg:
            record(ob.w1(w1_n, tmp, sizes.w1_timeout))
        for name, module in available.items():
            n = min(w1_n, sizes.w1_peer_caps.get(name, w1_n))
            log(f" {name} ({n} jobs)")
            r = guarded(f"W1 {name}", lambda m=module, n=n: m.w1(n, tmp, sizes.w1_timeout))
            if r is not None:
                record(r)

    if "W2" in only:
        log(f"W2 steady: {sizes.w2_jobs} schedules every second for {sizes.w2_seconds} s")
        if "oncely" in systems and have_pg:
            record(ob.w2(sizes.w2_jobs, sizes.w2_seconds, tmp))
        for name, module in available.items():
            if getattr(module, "w2", None) is None:
                skipped[f"W2 {name}"] = getattr(module, "W2_MISSING", "no scheduler")
                log(f" {name}: no W2 ({skipped[f'W2 {name}']})")
                continue
            log(f" {name}")
            r = guarded(f"W2 {name}", lambda m=module: m.w2(sizes.w2_jobs, sizes.w2_seconds, tmp))
            if r is not None:
                record(r)

    if "W3" in only and "oncely" in systems and have_pg:
        log(f"W3 scale: {sizes.w3_jobs} per-second jobs among {', '.join(map(str, w3_sizes))}")
        for r in ob.w3(list(w3_sizes), sizes.w3_jobs, sizes.w3_seconds, tmp):
            results.append(r)

    if "W4" in only and "oncely" in systems and have_pg:
        log(f"W4 failover: {w4_trials} trials, SIGKILL of one of two schedulers")
        record(ob.failover(tmp=tmp, trials=w4_trials, lease_ttl=None, label="default lease TTL"))
        tuned = sizes.w4_tuned_ttl if args.w4_lease_ttl is None else args.w4_lease_ttl
        if tuned:
            record(
                ob.failover(
                    tmp=tmp,
                    trials=w4_trials,
                    lease_ttl=tuned,
                    label=f"ONCELY_SCHEDULER_LEASE_TTL={tuned:g}",
                )
            )

    w6_jobs = args.w6_jobs or sizes.w6_jobs
    w6_seconds = args.w6_seconds or sizes.w6_seconds
    w6_workers = args.w6_workers or ob.WORKERS
    if "W6" in only and have_pg:
        from bench import peak

        log(f"W6 peak: {w6_jobs} one-second jobs for {w6_seconds} s ({w6_workers} workers)")
        if "oncely" in systems:
            record(peak.w6(w6_jobs, w6_seconds, tmp, w6_workers))
        for name, module in available.items():
            if name in sizes.w6_peers and getattr(module, "w6", None) is not None:
                log(f" {name}")
                r = guarded(f"W6 {name}", lambda m=module: m.w6(w6_jobs, w6_seconds, tmp))
                if r is not None:
                    record(r)

    if "W7" in only and "oncely" in systems:
        from bench.outage import w7
        from bench.pg_instance import PgUnavailable

        log(f"W7 outage: {w7_trials} trials per mode ({', '.join(w7_modes)}), {w7_down:g} s down")
        try:
            for r in w7(tmp=tmp, trials=w7_trials, down=w7_down, modes=w7_modes):
                record(r)
        except PgUnavailable as exc:
            skipped["W7"] = f"no PostgreSQL server of its own: {exc}"

    if "W5" in only and "oncely" in systems:
        log("W5 embedded: oncely up on SQLite (one process)")
        for r in ob.w5(w1_n, sizes.w2_jobs, sizes.w2_seconds, tmp, sizes.w1_timeout):
            results.append(r)

    if not have_pg:
        skipped["PostgreSQL"] = "not reachable: W1-W4 and RAW for oncely were skipped"

    elapsed = time.time() - started
    versions = {
        name: package_version(pkg) or "-"
        for name, pkg in [
            ("oncely", "oncely"),
            ("celery", "celery"),
            ("dramatiq", "dramatiq"),
            ("procrastinate", "procrastinate"),
            ("rq", "rq"),
            ("apscheduler", "apscheduler"),
            ("psycopg", "psycopg"),
            ("redis-py", "redis"),
        ]
    }
    meta = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": info,
        "versions": versions,
        "mode": "quick" if args.quick else "standard",
        "elapsed_s": round(elapsed),
        "sizes": {
            "w1": w1_n,
            "w1_peer_caps": sizes.w1_peer_caps,
            "w2_jobs": sizes.w2_jobs,
            "w2_seconds": sizes.w2_seconds,
            "w3_sizes": list(w3_sizes),
            "w3_jobs": sizes.w3_jobs,
            "w3_seconds": sizes.w3_seconds,
            "w4_trials": w4_trials,
            "w6_jobs": w6_jobs,
            "w6_seconds": w6_seconds,
            "w6_workers": w6_workers,
            "w6_peers": [p for p in sizes.w6_peers if p in available],
            "w7_trials": w7_trials,
            "w7_down_s": w7_down,
            "oncely_worker_concurrency": ob.WORKER_CONCURRENCY,
            "oncely_workers": ob.WORKERS,
        },
        "skipped": skipped,
        "command": " ".join(["python -m bench", *(argv if argv is not None else sys.argv[1:])]),
    }
    (out / "results.json").write_text(
        json.dumps({"meta": meta, "results": [r.summary() for r in results]}, indent=1),
        encoding="utf-8",
    )
    from bench import report

    plots = [] if args.no_plots else report.plots(results, out)
    (out / "report.md").write_text(report.markdown(meta, results, plots), encoding="utf-8")
    if ob.PROFILE_DIR is not None:
        from bench import profile

        sections = [
            profile.summarize(path)
            for path in sorted(ob.PROFILE_DIR.glob("*.txt"))
            if path.stat().st_size
        ]
        # The raw stacks too (collapsed format: flame graphs, or comparing two runs).
        stacks = out / "profile-stacks"
        stacks.mkdir(exist_ok=True)
        for path in ob.PROFILE_DIR.glob("*.txt"):
            shutil.copy(path, stacks / path.name)
        (out / "profile.md").write_text(
            f"# Where oncely's time goes — {meta['date'][:10]}\n\n"
            f"py-spy samples (200 Hz, all threads) of each oncely process while "
            f"`{meta['command']}` ran. Idle samples (threads waiting in select/poll, on a "
            "lock or a queue) are left out; areas overlap (a sample counts for every area "
            "on its stack).\n\n" + "\n".join(sections),
            encoding="utf-8",
        )
    shutil.rmtree(tmp, ignore_errors=True)
    log(f"done in {elapsed:.0f} s: {out / 'report.md'}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())

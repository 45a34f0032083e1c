"""The chaos checker: what the database and the ledger must hold after a run.

It reads the runs, attempts and effect rows from PostgreSQL, and the deliveries from the HTTP
ledger, after the cluster drained, and proves:

1. every expected fire exists exactly once as a run: for each cron job, every instant of its
   schedule in the judged window (from the first fault's start to 3 s before the jobs were
   paused: fires before it were made during start-up, later ones may be cancelled by the
   pause), and every one-shot job's instant;
2. every run ended (nothing queued, running, retrying or due-and-pending after the drain),
   and every judged run succeeded;
3. each effect happened once: a transactional run has exactly one effect row if it
   succeeded and none otherwise; an HTTP run that succeeded was applied once by the ledger,
   and the ledger applied nothing for a key that is not a run;
4. no two attempts of one run overlapped: the ledger saw no two deliveries of one key with
   different fencing tokens open at the same time;
5. no run started before it was due: effect rows are stamped with the database server's
   clock, ledger deliveries with the machine's (the same clock: the server is on loopback).

Figures: fires, runs, attempts, retries, attempts recorded lost (faults cost attempts, not
runs), redeliveries the ledger absorbed, the worst failover (from a node fault to the next
start of each per-second job, and to the next attempt of a run whose attempt the fault lost)
and the worst recovery after a PostgreSQL restart (server accepting connections to the first
attempt started).
"""

from __future__ import annotations

import itertools
import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg

from tests.support.http_ledger import Delivery, HttpLedger

EDGE = 3.0  # seconds left out of the judged window at its end (see 1. above)
# A lost attempt is blamed on the latest fault that began at most this long before the attempt
# started (a stopped or cut-off worker's attempt may have begun a little before its fault).
BLAME = 15.0


@dataclass
class Fault:
    kind: str
    target: str
    started: float
    ended: float
    note: str
    ready: float | None = None  # PostgreSQL restarts: when the server accepted connections


@dataclass
class Plan:
    ledger_url: str
    cron: dict[str, tuple[str, int]] = field(default_factory=dict)  # job id -> (name, period s)
    oneshots: dict[str, float] = field(default_factory=dict)  # job id -> due (epoch s)
    http_jobs: set[str] = field(default_factory=set)
    window_start: float = 0.0
    faults_end: float = 0.0
    paused_at: float = 0.0
    drained_at: float = 0.0
    seed: int = 0
    load: tuple[float, float, float] = (0.0, 0.0, 0.0)
    load_end: tuple[float, float, float] = (0.0, 0.0, 0.0)
    unexpected_exits: dict[str, int] = field(default_factory=dict)
    worker_pids: dict[int, str] = field(default_factory=dict)


@dataclass
class Report:
    seed: int
    figures: dict[str, object]
    problems: list[str]
    faults: list[Fault]

    @property
    def ok(self) -> bool:
        return not self.problems

    def text(self) -> str:
        lines = ["chaos report"]
        width = max(len(k) for k in self.figures)
        for key, value in self.figures.items():
            lines.append(f"  {key:<{width}}  {value}")
        if self.problems:
            lines.append(f"FAILED: {len(self.problems)} problem(s) (seed {self.seed})")
            lines += [f"  - {p}" for p in self.problems[:50]]
        else:
            lines.append(f"PASSED (seed {self.seed})")
        return "\n".join(lines)


def _last_line(error: object) -> str:
    """A traceback's exception line says why; the rest is the same each time. (An exception's
    message may go on over indented lines: the last unindented line is the exception's.)"""
    lines = [line for line in str(error or "").strip().splitlines() if line[:1] not in " \t"]
    return lines[-1][:90] if lines else "(no error)"


def _epoch(value: object) -> float:
    assert isinstance(value, datetime)
    return value.timestamp()


@dataclass
class Observed:
    """What the run left: rows from PostgreSQL, deliveries from the ledger."""

    runs: list[tuple[Any, ...]]  # id, job id, scheduled_for, state
    # run id, number, started_at, finished_at, outcome, worker id, error
    attempts: list[tuple[Any, ...]]
    effects: list[tuple[Any, ...]]  # run id, scheduled_for, at (the server's clock)
    deliveries: list[Delivery]
    applied: dict[str, int]


def observe(url: str, ledger: HttpLedger) -> Observed:
    with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
        conn.execute("SET search_path TO oncely")
        runs = conn.execute(
            "SELECT id::text, job_id::text, scheduled_for, state FROM runs"
        ).fetchall()
        attempts = conn.execute(
            "SELECT run_id::text, number, started_at, finished_at, outcome, worker_id, error "
            "FROM attempts"
        ).fetchall()
        effects = conn.execute(
            "SELECT run_id::text, scheduled_for, at FROM public.chaos_effects"
        ).fetchall()
    return Observed(runs, attempts, effects, ledger.deliveries(), ledger.applied())


def check(url: str, ledger: HttpLedger, plan: Plan, faults: list[Fault]) -> Report:
    return judge(observe(url, ledger), plan, faults)


def judge(obs: Observed, plan: Plan, faults: list[Fault]) -> Report:
    problems: list[str] = []
    runs, attempts, effects = obs.runs, obs.attempts, obs.effects
    run_job = {r[0]: r[1] for r in runs}
    run_due = {r[0]: _epoch(r[2]) for r in runs}
    run_state = {r[0]: r[3] for r in runs}

    # 1. every expected fire exactly once
    t0, t1 = plan.window_start, plan.paused_at - EDGE
    expected_fires = 0
    judged: set[str] = set()
    duplicates = 0
    missing_fires = 0
    by_job: dict[str, list[tuple[float, str]]] = defaultdict(list)
    for run_id, job_id, due, state in runs:
        if state != "cancelled":
            by_job[job_id].append((round(_epoch(due), 3), run_id))
    for job_id, (name, period) in plan.cron.items():
        expected = {
            float(s) for s in range(math.ceil(t0 / period) * period, math.floor(t1) + 1, period)
        }
        expected_fires += len(expected)
        seen = Counter(due for due, _ in by_job[job_id] if t0 <= due <= t1)
        judged |= {rid for due, rid in by_job[job_id] if t0 <= due <= t1}
        missing = sorted(expected - set(seen))
        extra = sorted(set(seen) - expected)
        twice = sorted(d for d, n in seen.items() if n > 1)
        duplicates += sum(n - 1 for n in seen.values() if n > 1)
        missing_fires += len(missing)
        if missing:
            problems.append(f"{name}: {len(missing)} fires have no run, e.g. {missing[:3]}")
        if extra:
            problems.append(f"{name}: {len(extra)} runs off the schedule, e.g. {extra[:3]}")
        if twice:
            problems.append(f"{name}: {len(twice)} fires made two runs, e.g. {twice[:3]}")
    for job_id, due in plan.oneshots.items():
        expected_fires += 1
        mine = by_job[job_id]
        judged |= {rid for _, rid in mine}
        if not any(abs(d - due) <= 0.001 for d, _ in mine):
            missing_fires += 1
        if len(mine) != 1 or abs(mine[0][0] - due) > 0.001:
            problems.append(f"one-shot {job_id} due {due}: runs {mine}")
        duplicates += max(0, len(mine) - 1)

    # 2. every run ended; every judged run succeeded
    unended = [rid for rid, st in run_state.items() if st in ("queued", "running", "retrying")]
    unended += [
        rid for rid, st in run_state.items() if st == "pending" and run_due[rid] <= plan.paused_at
    ]
    if unended:
        problems.append(f"{len(unended)} runs never ended, e.g. {unended[:3]}")
    not_ok = Counter(run_state[r] for r in judged if run_state[r] != "succeeded")
    if not_ok:
        problems.append(f"judged runs that did not succeed: {dict(not_ok)}")

    # 3. each effect once
    effect_rows = Counter(r[0] for r in effects)
    lost_effects = 0
    double_effects = 0
    applied = obs.applied
    for rid, job_id in run_job.items():
        n = applied.get(rid, 0) if job_id in plan.http_jobs else effect_rows.get(rid, 0)
        if run_state[rid] == "succeeded" and n == 0:
            lost_effects += 1
        if n > 1:
            double_effects += 1
        if run_state[rid] != "succeeded" and n and job_id not in plan.http_jobs:
            problems.append(f"run {rid} ({run_state[rid]}) left an effect row")
    strangers = [k for k in applied if k not in run_job]
    if strangers:
        problems.append(f"the ledger applied {len(strangers)} keys that are no run")
    if lost_effects:
        problems.append(f"{lost_effects} succeeded runs left no effect")
    if double_effects:
        problems.append(f"{double_effects} runs made their effect more than once")

    # 4. no overlapping attempts (at the ledger)
    deliveries = obs.deliveries
    spans: dict[str, list[tuple[float, float, int]]] = defaultdict(list)
    for d in deliveries:
        spans[d.key].append(
            (d.started, d.ended if d.ended is not None else plan.drained_at, d.token)
        )
    overlaps = 0
    for key, items in spans.items():
        items.sort()
        for i, (s1, e1, k1) in enumerate(items):
            for s2, _e2, k2 in items[i + 1 :]:
                if s2 < e1 and k1 != k2:
                    overlaps += 1
                    if overlaps <= 5:
                        problems.append(
                            f"run {key}: attempts with tokens {k1} and {k2} overlapped "
                            f"({s1:.3f}-{e1:.3f} and from {s2:.3f})"
                        )
    if overlaps > 5:
        problems.append(f"... {overlaps} overlapping attempt pairs in all")
    redeliveries = sum(max(0, len(v) - 1) for v in spans.values())
    stale = sum(1 for d in deliveries if d.status == 409)

    # 5. nothing started early
    early = [(r[0], _epoch(r[2]) - _epoch(r[1])) for r in effects if r[2] < r[1]]
    early += [
        (d.key, d.started - run_due[d.key])
        for d in deliveries
        if d.key in run_due and d.started < run_due[d.key]
    ]
    if early:
        worst = min(early, key=lambda e: e[1])
        problems.append(
            f"{len(early)} attempts started before due; worst {worst[1]:.3f} s ({worst[0]})"
        )

    # figures: failover and recovery
    starts: dict[str, list[tuple[float, int, str]]] = defaultdict(list)
    for run_id, number, started_at, _finished, outcome, _worker, _error in attempts:
        starts[run_id].append((_epoch(started_at), number, outcome))
    first_start = {rid: min(s[0] for s in v) for rid, v in starts.items()}
    second_jobs = [j for j, (_n, p) in plan.cron.items() if p == 1 and j not in plan.http_jobs]
    node_faults = [f for f in faults if not f.kind.startswith("pg_")]
    # A node fault's failover is not judged across a PostgreSQL restart that began before the
    # next start: that wait is the outage's (its recovery is measured on its own).
    outages = [f.started for f in faults if f.kind.startswith("pg_")]
    worst_failover = 0.0
    worst_failover_at = ""
    failover_by_kind: dict[str, float] = {}

    def failover(fault: Fault, took: float, how: str) -> None:
        nonlocal worst_failover, worst_failover_at
        if any(fault.started < o < fault.started + took for o in outages):
            return
        failover_by_kind[fault.kind] = max(failover_by_kind.get(fault.kind, 0.0), took)
        if took > worst_failover:
            worst_failover = took
            worst_failover_at = f"{fault.kind} {fault.target} ({how})"

    for fault in node_faults:
        for job_id in second_jobs:
            later = [
                first_start[rid]
                for due, rid in by_job[job_id]
                if due >= fault.started and rid in first_start
            ]
            if later:
                failover(fault, min(later) - fault.started, "next start of a per-second job")
    for items in starts.values():
        items.sort()
        for (s, _n, outcome), (s_next, _m, _o) in itertools.pairwise(items):
            if outcome != "lost":
                continue
            before = [f for f in faults if s - BLAME <= f.started <= s_next]
            if not before:
                continue
            fault = max(before, key=lambda f: f.started)
            if not fault.kind.startswith("pg_"):
                failover(fault, s_next - max(fault.started, s), "a lost attempt run again")
    worst_recovery = 0.0
    all_starts = sorted(s for v in starts.values() for s, _n, _o in v)
    for fault in faults:
        if fault.ready is None:
            continue
        after = [s for s in all_starts if s >= fault.ready]
        took = (after[0] - fault.ready) if after else float("inf")
        worst_recovery = max(worst_recovery, took)

    outcomes = Counter(a[4] for a in attempts)
    kinds = Counter(f.kind for f in faults)
    figures: dict[str, object] = {
        "seed": plan.seed,
        "window": f"{plan.paused_at - EDGE - plan.window_start:.0f} s judged "
        f"({plan.faults_end - plan.window_start:.0f} s of faults)",
        "load (1/5/15 min)": " ".join(f"{x:.2f}" for x in plan.load)
        + " at the start, "
        + " ".join(f"{x:.2f}" for x in plan.load_end)
        + " at the end",
        "faults": ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())),
        "fires expected": expected_fires,
        "runs": len(runs),
        "attempts": len(attempts),
        "retries": len(attempts) - len({a[0] for a in attempts}),
        "attempts lost to faults": outcomes.get("lost", 0),
        "attempt outcomes": dict(sorted(outcomes.items())),
        "why attempts failed": dict(
            Counter(_last_line(a[6]) for a in attempts if a[4] != "succeeded").most_common(4)
        ),
        "duplicates": duplicates + double_effects,
        "lost": lost_effects + missing_fires,
        "overlapping attempts": overlaps,
        "early starts": len(early),
        "unended runs": len(unended),
        "ledger deliveries": len(deliveries),
        "redeliveries absorbed": redeliveries,
        "stale deliveries refused": stale,
        "worst failover": f"{worst_failover:.2f} s ({worst_failover_at or 'no node fault'})",
        "worst failover by fault": ", ".join(
            f"{k} {v:.2f} s" for k, v in sorted(failover_by_kind.items())
        ),
        "worst recovery": f"{worst_recovery:.2f} s after PostgreSQL accepted connections",
        "unexpected exits": plan.unexpected_exits or 0,
    }
    return Report(plan.seed, figures, problems, faults)

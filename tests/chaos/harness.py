"""The chaos run: a real cluster on a PostgreSQL server of its own, under seeded faults.

Design note. The run owns everything it breaks: a PostgreSQL server on a free port
(``tests/support/pg_instance.py``, so it can be restarted fast or ``-m immediate``), one TCP
proxy per worker between that worker and the server (``tests/support/tcp_proxy.py``, so one
worker can be cut off), and an idempotent HTTP ledger on loopback
(``tests/support/http_ledger.py``) that the HTTP jobs deliver to. Schedulers and workers are
real ``oncely scheduler`` / ``oncely worker`` subprocesses.

Jobs: per-second cron jobs running a transactional task that writes an effect row in the
run's completing transaction (``tests/chaos/app.py``), sub-minute cron jobs and one-shot jobs
whose HTTP action the ledger receives (each request held open a while, so an attempt has a
duration). Every job retries generously: a fault may cost attempts, never a run.

Faults, one at a time, each bounded in time, kinds and targets drawn from ``random.Random(seed)``
(the seed is printed; the same seed draws the same faults, though the timing of real processes
does not replay exactly): SIGKILL of a node (restarted after), SIGSTOP for longer than the lease
(then SIGCONT), a PostgreSQL restart (``fast`` and ``immediate``), one worker cut off from the
database through its proxy for longer than the lease, a node restarted with its clock skewed by
two minutes (libfaketime) for a while, then restarted with the right one.

After the faults the cluster is made whole, the cron jobs are paused and the queue drains; then
``tests/chaos/checker.py`` judges what the database and the ledger hold.
"""

from __future__ import annotations

import os
import pwd
import random
import signal
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import psycopg

import oncely
from oncely.config import Settings
from tests.acceptance.procs import Proc
from tests.chaos.app import EFFECTS_DDL
from tests.chaos.checker import Fault, Plan, Report, check
from tests.support.http_ledger import HttpLedger
from tests.support.pg_instance import BIN, PgInstance, free_port
from tests.support.tcp_proxy import TcpProxy

APP = "tests.chaos.app:app"
LIBFAKETIME = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")
LOOPBACK = ("127.0.0.1/32",)  # the ledger: the only private address jobs may call
LEASE = 3.0  # scheduler and worker lease TTL, seconds
KINDS = ("kill", "stop", "pg_fast", "pg_immediate", "cut", "skew")


@dataclass
class Options:
    duration: float = 600.0  # seconds of faults
    schedulers: int = 3
    workers: int = 3
    seed: int | None = None
    per_second_jobs: int = 4
    log_dir: Path | None = None
    drain_timeout: float = 120.0
    say: Callable[[str], None] = print


@dataclass
class Node:
    name: str
    role: str
    url: str
    log_dir: Path
    env: dict[str, str]
    proxy: TcpProxy | None = None
    proc: Proc | None = None
    incarnation: int = 0
    pids: list[int] = field(default_factory=list)
    unexpected_exits: int = 0

    def start(self, extra_env: dict[str, str] | None = None) -> None:
        self.incarnation += 1
        args = ["--store", self.url, self.role]
        if self.role == "worker":
            args += ["--app", APP, "--concurrency", "20"]
        self.proc = Proc(
            f"{self.name}.{self.incarnation}", args, self.log_dir, {**self.env, **(extra_env or {})}
        )
        self.pids.append(self.proc.pid)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.popen.poll() is None

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.signal(signal.SIGKILL)
        self.proc.popen.wait()
        self.proc.stop()  # closes the log

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()


def _server_user() -> str | None:
    if os.geteuid() != 0:
        return None
    pwd.getpwnam("postgres")  # KeyError: as root, initdb needs a postgres user to run as
    return "postgres"


@contextmanager
def own_postgres() -> Iterator[PgInstance]:
    if not (BIN / "initdb").exists():
        raise RuntimeError(f"no PostgreSQL binaries in {BIN}")
    user = _server_user()
    root = Path(tempfile.mkdtemp(prefix="oncely-chaos-pg-"))
    if user is not None:
        info = pwd.getpwnam(user)
        os.chown(root, info.pw_uid, info.pw_gid)
    instance = PgInstance(root, free_port(), user)
    try:
        instance.init()
        instance.start()
        yield instance
    finally:
        instance.destroy()


def _sql(url: str, query: str, *args: object) -> list[tuple[object, ...]]:
    with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
        conn.execute("SET search_path TO oncely")
        return conn.execute(query, args).fetchall()  # type: ignore[arg-type]


def _ready_wall(ready_mono: float) -> float:
    return time.time() - (time.monotonic() - ready_mono)


def run(opts: Options) -> Report:
    seed = opts.seed if opts.seed is not None else random.SystemRandom().randrange(1, 2**31)
    rng = random.Random(seed)
    say = opts.say
    load = os.getloadavg()
    say(
        f"chaos: seed {seed}, {opts.schedulers} schedulers, {opts.workers} workers, "
        f"{opts.duration:.0f} s of faults, started {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC, "
        f"load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, {os.cpu_count()} CPUs"
    )
    kinds = list(KINDS)
    if not LIBFAKETIME.exists():
        kinds.remove("skew")
        say(f"chaos: the skewed-clock fault is skipped: {LIBFAKETIME} is missing (libfaketime)")
    log_dir = opts.log_dir or Path(tempfile.mkdtemp(prefix="oncely-chaos-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    say(f"chaos: process logs in {log_dir}")
    with own_postgres() as pg, HttpLedger() as ledger:
        return _run(opts, seed, rng, kinds, pg, ledger, log_dir, load)


def _run(
    opts: Options,
    seed: int,
    rng: random.Random,
    kinds: list[str],
    pg: PgInstance,
    ledger: HttpLedger,
    log_dir: Path,
    load: tuple[float, float, float],
) -> Report:
    say = opts.say
    client = oncely.App(settings=Settings(store=pg.url, http_allowed_networks=LOOPBACK))
    client.store  # noqa: B018 - migrate before the processes start
    with psycopg.connect(pg.url, autocommit=True) as conn:
        conn.execute(EFFECTS_DDL)

    retry = {"retries": 50, "base_delay": 0.2, "max_delay": 1.0, "misfire_grace": 3600.0}
    plan = Plan(ledger_url=ledger.url)
    for i in range(opts.per_second_jobs):
        job = client.add_job(f"second-{i}", cron="* * * * * *", task="effect", **retry)
        plan.cron[job.id] = (job.name, 1)
    for period, hold in ((2, 0.3), (5, 0.8), (15, 1.0)):
        job = client.add_job(
            f"every-{period}s",
            cron=f"*/{period} * * * * *",
            http={"url": f"{ledger.url}?hold={hold}", "timeout": 10},
            **retry,
        )
        plan.cron[job.id] = (job.name, period)
        plan.http_jobs.add(job.id)
    warmup = 8.0
    first_at = time.time() + warmup
    for i in range(max(3, int(opts.duration / 3))):
        at = datetime.fromtimestamp(round(first_at + rng.uniform(0, opts.duration), 3), UTC)
        job = client.add_job(
            f"once-{i}",
            at=at,
            http={"url": f"{ledger.url}?hold={rng.uniform(0.1, 1.0):.2f}", "timeout": 10},
            **retry,
        )
        plan.oneshots[job.id] = at.timestamp()
        plan.http_jobs.add(job.id)
    client.close()

    env = {
        "ONCELY_SCHEDULER_LEASE_TTL": str(LEASE),
        "ONCELY_WORKER_LEASE_TTL": str(LEASE),
        "ONCELY_SHUTDOWN_GRACE": "5",
        "ONCELY_HTTP_ALLOWED_NETWORKS": ",".join(LOOPBACK),
    }
    nodes: list[Node] = []
    for i in range(opts.schedulers):
        nodes.append(Node(f"scheduler-{i + 1}", "scheduler", pg.url, log_dir, env))
    for i in range(opts.workers):
        proxy = TcpProxy("127.0.0.1", pg.port)
        url = f"postgresql://postgres@127.0.0.1:{proxy.port}/postgres"
        nodes.append(Node(f"worker-{i + 1}", "worker", url, log_dir, env, proxy=proxy))
    workers = [n for n in nodes if n.role == "worker"]
    faults: list[Fault] = []
    try:
        for node in nodes:
            node.start()
        deadline = time.monotonic() + 60
        while not all(n.proc is not None and "oncely running" in n.proc.log() for n in nodes):
            if time.monotonic() > deadline:
                raise RuntimeError("the cluster did not start within 60 s")
            time.sleep(0.2)
        time.sleep(max(0.0, first_at - time.time()))
        plan.window_start = time.time()
        say(f"chaos: cluster up; faults from {_ts(plan.window_start)}")

        def tend() -> None:
            """Like systemd: a node that exited on its own is counted and started again."""
            for node in nodes:
                if node.proc is not None and not node.alive():
                    node.unexpected_exits += 1
                    say(
                        f"chaos: {node.proc.name} exited on its own "
                        f"(code {node.proc.popen.returncode}); restarting it"
                    )
                    node.proc.stop()
                    node.start()

        order: list[str] = []
        end = plan.window_start + opts.duration
        while time.time() < end - 2:
            if not order:
                order = list(kinds)
                rng.shuffle(order)
            kind = order.pop()
            fault = _fault(kind, rng, nodes, workers, pg, say)
            faults.append(fault)
            tend()
            pause = rng.uniform(1.0, 3.0)
            time.sleep(max(0.0, min(pause, end - time.time())))
        tend()
        plan.faults_end = time.time()
        # Whole again: give the cluster a moment, stop scheduling, let the queue drain.
        time.sleep(5)
        client = oncely.App(settings=Settings(store=pg.url, http_allowed_networks=LOOPBACK))
        for job_id in plan.cron:
            client.pause(job_id)
        client.close()
        plan.paused_at = time.time()
        drain_deadline = time.monotonic() + opts.drain_timeout
        while time.monotonic() < drain_deadline:
            busy = _sql(
                pg.url,
                "SELECT count(*) FROM runs WHERE state IN ('queued','running','retrying') "
                "OR (state = 'pending' AND due_at <= clock_timestamp())",
            )[0][0]
            if busy == 0:
                break
            tend()
            time.sleep(0.5)
        time.sleep(2)  # quiet: anything still moving would show in the check
        plan.drained_at = time.time()
        plan.load_end = os.getloadavg()
    finally:
        for node in nodes:
            if node.proc is not None:
                node.proc.signal(signal.SIGCONT)
            node.stop()
            if node.proxy is not None:
                node.proxy.close()
    plan.seed = seed
    plan.load = load
    plan.unexpected_exits = {n.name: n.unexpected_exits for n in nodes if n.unexpected_exits}
    plan.worker_pids = {pid: n.name for n in nodes for pid in n.pids}
    return check(pg.url, ledger, plan, faults)


def _fault(
    kind: str,
    rng: random.Random,
    nodes: list[Node],
    workers: list[Node],
    pg: PgInstance,
    say: Callable[[str], None],
) -> Fault:
    started = time.time()
    if kind == "kill":
        node = rng.choice(nodes)
        down = rng.uniform(0.5, 3.0)
        node.kill()
        time.sleep(down)
        node.start()
        fault = Fault(kind, node.name, started, time.time(), f"down {down:.1f} s")
    elif kind == "stop":
        node = rng.choice(nodes)
        held = LEASE + rng.uniform(1.0, 3.0)
        assert node.proc is not None
        node.proc.signal(signal.SIGSTOP)
        time.sleep(held)
        node.proc.signal(signal.SIGCONT)
        fault = Fault(kind, node.name, started, time.time(), f"stopped {held:.1f} s")
    elif kind in ("pg_fast", "pg_immediate"):
        mode = kind.removeprefix("pg_")
        down = rng.uniform(0.0, 4.0)
        pg.stop(mode)
        time.sleep(down)
        ready = _ready_wall(pg.start())
        fault = Fault(kind, "postgresql", started, ready, f"down {down:.1f} s", ready=ready)
    elif kind == "cut":
        node = rng.choice(workers)
        assert node.proxy is not None
        how = rng.choice(("blackhole", "reset"))
        held = LEASE + rng.uniform(1.0, 3.0)
        node.proxy.cut(how)
        time.sleep(held)
        node.proxy.restore()
        fault = Fault(kind, node.name, started, time.time(), f"{how} {held:.1f} s")
    elif kind == "skew":
        node = rng.choice(nodes)
        offset = rng.choice(("+120s", "-120s"))
        held = rng.uniform(6.0, 12.0)
        node.stop()
        node.start({"LD_PRELOAD": str(LIBFAKETIME), "FAKETIME": offset, "DONT_FAKE_MONOTONIC": "1"})
        time.sleep(held)
        node.stop()
        node.start()
        fault = Fault(kind, node.name, started, time.time(), f"clock {offset} for {held:.1f} s")
    else:
        raise ValueError(f"unknown fault kind {kind!r}")
    say(f"chaos: {_ts(started)} {kind:<12} {fault.target:<12} {fault.note}")
    return fault


def _ts(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%H:%M:%S.%f")[:-3]

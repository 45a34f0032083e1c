"""What every workload shares: the start-time sink, statistics, subprocesses, the machine.

The sink is the same for oncely and every peer: the no-op task appends one line
``key<TAB>scheduled<TAB>started`` (epoch seconds) to a per-process file with one unbuffered
``os.write`` on an ``O_APPEND`` descriptor. A line is far below ``PIPE_BUF``, so threads of one
process never interleave; the cost is one syscall per run (a couple of microseconds) and
nothing is lost when a process is stopped or killed.
"""

from __future__ import annotations

import contextlib
import glob
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PG_DSN = os.environ.get("BENCH_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_HOST = os.environ.get("BENCH_REDIS_HOST", "127.0.0.1")
REDIS_PORT = int(os.environ.get("BENCH_REDIS_PORT", "6379"))
REDIS_DB = int(os.environ.get("BENCH_REDIS_DB", "9"))
"""A dedicated Redis database number, flushed before and after each peer."""
REDIS_URL = f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_DB}"
SINK_ENV = "BENCH_SINK_DIR"

# -- the sink ------------------------------------------------------------------------------

_fd: int | None = None
_fd_pid: int | None = None


def record(key: str, scheduled: float, started: float | None = None) -> None:
    """Called by every no-op task, first thing: one line per run, one syscall."""
    global _fd, _fd_pid
    if started is None:
        started = time.time()
    pid = os.getpid()
    if _fd is None or _fd_pid != pid:  # a forked child gets its own file
        directory = os.environ.get(SINK_ENV)
        if not directory:
            return
        _fd = os.open(
            os.path.join(directory, f"{socket.gethostname()}-{pid}.rec"),
            os.O_WRONLY | os.O_CREAT | os.O_APPEND,
            0o644,
        )
        _fd_pid = pid
    os.write(_fd, f"{key}\t{scheduled:.6f}\t{started:.6f}\n".encode())


def read_records(directory: Path) -> list[tuple[str, float, float]]:
    out: list[tuple[str, float, float]] = []
    for path in glob.glob(str(directory / "*.rec")):
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                parts = line.rstrip("\n").split("\t")
                if len(parts) == 3:
                    with contextlib.suppress(ValueError):
                        out.append((parts[0], float(parts[1]), float(parts[2])))
    return out


def fresh_sink(root: Path, name: str) -> Path:
    directory = root / name
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    return directory


def count_records(directory: Path) -> int:
    """Lines written so far (cheap enough to poll once or twice a second)."""
    total = 0
    for path in glob.glob(str(directory / "*.rec")):
        with contextlib.suppress(OSError), open(path, "rb") as fh:
            total += fh.read().count(b"\n")
    return total


def wait_for_records(
    directory: Path, expected: int, *, timeout: float, settle: float = 0.0
) -> tuple[int, bool]:
    """Poll until ``expected`` lines are in, or ``timeout``; returns (count, complete)."""
    deadline = time.monotonic() + timeout
    count = 0
    while time.monotonic() < deadline:
        count = count_records(directory)
        if count >= expected:
            break
        time.sleep(0.25)
    if settle:
        time.sleep(settle)  # late duplicates have a chance to show up
        count = count_records(directory)
    return count, count >= expected


# -- statistics ----------------------------------------------------------------------------


def percentile(sorted_values: Sequence[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    k = (len(sorted_values) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


@dataclass
class Result:
    """One workload on one system: what the report prints and plots."""

    workload: str
    system: str
    store: str
    expected: int = 0
    ran: int = 0
    duplicates: int = 0
    lost: int = 0
    throughput: float | None = None
    """Runs per second (W1: from the due instant until the last run started)."""
    lag_p50: float | None = None
    lag_p95: float | None = None
    lag_p99: float | None = None
    lag_max: float | None = None
    duration: float | None = None
    setup_seconds: float | None = None
    """Time to store the jobs / enqueue the messages (not part of throughput)."""
    extra: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    lags: list[float] = field(default_factory=list, repr=False)
    starts: list[float] = field(default_factory=list, repr=False)
    """Start times relative to the workload's origin (for the plots), sampled."""
    error: str | None = None

    def summary(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("lags")
        data.pop("starts")
        return data

    def line(self) -> str:
        if self.error:
            return f"{self.workload:<4} {self.system:<22} ERROR {self.error}"
        thr = f"{self.throughput:9.0f}/s" if self.throughput is not None else " " * 11
        lag = (
            f"lag p50 {ms(self.lag_p50)} p95 {ms(self.lag_p95)} p99 {ms(self.lag_p99)} "
            f"max {ms(self.lag_max)}"
            if self.lag_p50 is not None
            else ""
        )
        return (
            f"{self.workload:<4} {self.system:<22} ran {self.ran}/{self.expected} {thr} "
            f"{lag} dups {self.duplicates} lost {self.lost}"
        )


def ms(seconds: float | None) -> str:
    if seconds is None or seconds != seconds:
        return "—"
    return f"{seconds * 1000:.0f} ms" if abs(seconds) < 10 else f"{seconds:.1f} s"


def analyse(
    result: Result,
    records: Iterable[tuple[str, float, float]],
    *,
    expected_keys: set[str] | None,
    origin: float,
    window: tuple[float, float] | None = None,
    sample: int = 5000,
) -> Result:
    """Fill counts and lag percentiles. ``window`` keeps only fires scheduled inside it."""
    counts: Counter[str] = Counter()
    first: dict[str, tuple[float, float]] = {}
    for key, scheduled, started in records:
        if window is not None and not (window[0] <= scheduled < window[1]):
            continue
        counts[key] += 1
        if key not in first or started < first[key][1]:
            first[key] = (scheduled, started)
    result.duplicates = sum(c - 1 for c in counts.values() if c > 1)
    if expected_keys is not None:
        result.ran = len(expected_keys & counts.keys())
        result.lost = len(expected_keys - counts.keys())
        unexpected = len(counts.keys() - expected_keys)
        if unexpected:
            result.notes.append(f"{unexpected} runs of keys that were not expected")
    else:
        result.ran = len(counts)
        result.lost = max(result.expected - result.ran, 0)
    lags = sorted(started - scheduled for scheduled, started in first.values())
    if lags:
        result.lag_p50 = percentile(lags, 0.50)
        result.lag_p95 = percentile(lags, 0.95)
        result.lag_p99 = percentile(lags, 0.99)
        result.lag_max = lags[-1]
    step = max(1, len(lags) // sample)
    result.lags = lags[::step]
    starts = sorted(started - origin for _, started in first.values())
    result.starts = starts[:: max(1, len(starts) // sample)]
    return result


# -- subprocesses --------------------------------------------------------------------------


class Proc:
    """A process we start, log to a file, and stop: SIGTERM, then SIGKILL of its group."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_dir: Path,
        env: dict[str, str] | None = None,
        cwd: Path = ROOT,
    ) -> None:
        self.name = name
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.popen = subprocess.Popen(
            list(argv),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=cwd,
            env={
                **os.environ,
                "PYTHONPATH": os.pathsep.join(
                    filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])
                ),
                **(env or {}),
                "PYTHONUNBUFFERED": "1",
            },
            start_new_session=True,  # its own process group: children die with it
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait()

    def stop(self, timeout: float = 15.0, sig: int = signal.SIGTERM) -> int:
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, sig)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        # Leftover children of the group (pool processes) go too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self._log.close()
        return self.popen.returncode

    def tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


class Stack:
    """The oncely processes of one workload, stopped together."""

    def __init__(self, log_dir: Path, sink: Path, env: dict[str, str] | None = None) -> None:
        self.log_dir = log_dir
        self.env = {SINK_ENV: str(sink), **(env or {})}
        self.procs: list[Proc] = []

    def start(self, name: str, argv: list[str]) -> Proc:
        proc = Proc(name, argv, self.log_dir, self.env)
        self.procs.append(proc)
        return proc

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()
        self.procs.clear()

    def check(self) -> None:
        for proc in self.procs:
            if not proc.alive():
                raise RuntimeError(f"{proc.name} exited early:\n{proc.tail()}")


def python_argv(*args: str) -> list[str]:
    return [sys.executable, *args]


def rss_bytes(pid: int) -> int | None:
    """Resident set size of a process (from /proc)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def hwm_bytes(pid: int) -> int | None:
    """Peak resident set size of a process (VmHWM)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


# -- services ------------------------------------------------------------------------------


def pg_connect(dbname: str = "postgres", autocommit: bool = True) -> Any:
    import psycopg

    dsn = PG_DSN.rsplit("/", 1)[0] + "/" + dbname
    return psycopg.connect(dsn, autocommit=autocommit)


def pg_drop_schema(schema: str) -> None:
    with pg_connect() as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def pg_recreate_database(name: str, *, drop_only: bool = False) -> None:
    with pg_connect() as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
        )
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        if not drop_only:
            conn.execute(f'CREATE DATABASE "{name}"')


def redis_flush() -> None:
    import redis

    redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=REDIS_DB).flushdb()


def pg_available() -> bool:
    try:
        with pg_connect() as conn:
            conn.execute("SELECT 1")
    except Exception:
        return False
    return True


def redis_available() -> bool:
    try:
        import redis

        return bool(redis.Redis(host=REDIS_HOST, port=REDIS_PORT, socket_timeout=1).ping())
    except Exception:
        return False


# -- the machine ---------------------------------------------------------------------------


def machine() -> dict[str, str]:
    info: dict[str, str] = {
        "host": socket.gethostname(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "cores": str(os.cpu_count()),
    }
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    with contextlib.suppress(OSError), open("/proc/meminfo", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("MemTotal:"):
                info["ram"] = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    try:
        with pg_connect() as conn:
            row = conn.execute("SHOW server_version").fetchone()
            info["postgresql"] = str(row[0]) if row else "?"
    except Exception as exc:
        info["postgresql"] = f"unavailable ({type(exc).__name__})"
    try:
        import redis

        info["redis"] = str(
            redis.Redis(host=REDIS_HOST, port=REDIS_PORT).info("server")["redis_version"]
        )
    except Exception as exc:
        info["redis"] = f"unavailable ({type(exc).__name__})"
    with contextlib.suppress(Exception):
        info["load_before"] = " ".join(f"{v:.2f}" for v in os.getloadavg())
    return info


def package_version(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None


def log(message: str) -> None:
    print(message, flush=True)

"""Where oncely's processes spend their time during a workload (py-spy, sampled).

``python -m bench --profile --only W1 --peers oncely`` attaches ``py-spy record`` to each oncely
process while the workload runs and writes, next to the report, ``profile.md``: for each
process the share of samples by area (inclusive) and the top functions by own time.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

from bench.common import Proc

AREAS = [
    # (label, substring of a frame): a sample counts once per area its stack touches.
    ("store: PostgreSQL calls (psycopg, waiting on the server)", "psycopg/"),
    ("store: SQLite calls", "sqlite3"),
    ("store adapter (oncely.adapters.*: SQL params, row decoding)", "oncely/adapters/"),
    ("codec (row <-> domain objects)", "oncely/adapters/codec"),
    ("worker loop (oncely.runtime.worker)", "oncely/runtime/worker"),
    ("scheduler loop (oncely.runtime.scheduler)", "oncely/runtime/scheduler"),
    ("firing plan (oncely.domain.firing)", "oncely/domain/firing"),
    ("schedules / cron (oncely.domain.schedule, cron)", "oncely/domain/schedule"),
    ("run decisions (oncely.domain.runs)", "oncely/domain/runs"),
    ("task execution (oncely.runtime.tasks + the no-op)", "oncely/runtime/tasks"),
    ("asyncio event loop machinery", "asyncio/"),
    ("thread hand-off (BlockingCaller / executors)", "oncely/runtime/blocking"),
    ("logging", "logging/"),
]


def _py_spy() -> str | None:
    """py-spy on PATH, or beside this interpreter (a venv's bin/ is often not on PATH)."""
    beside = Path(sys.executable).with_name("py-spy")
    return shutil.which("py-spy") or (str(beside) if beside.exists() else None)


def available() -> str | None:
    return None if _py_spy() else "py-spy is not installed (pip install py-spy)"


class Profiler:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.procs: list[tuple[str, Proc]] = []

    def attach(self, name: str, pid: int) -> None:
        out = self.directory / f"{name}.txt"
        proc = Proc(
            f"py-spy-{name}",
            [
                _py_spy() or "py-spy", "record", "--pid", str(pid), "--format", "raw",
                "--rate", "200",
                "--nonblocking", "--threads", "--output", str(out),
            ],
            self.directory,
        )  # fmt: skip
        self.procs.append((name, proc))

    def stop(self) -> None:
        for _, proc in self.procs:
            if proc.alive():
                proc.popen.send_signal(signal.SIGINT)
        for _, proc in self.procs:
            try:
                proc.popen.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
            proc.stop()


def summarize(path: Path, top: int = 12) -> str:
    """A markdown section from one py-spy raw (collapsed stacks) file."""
    total = 0
    idle = 0
    areas: Counter[str] = Counter()
    own: Counter[str] = Counter()
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        try:
            count = int(count_text)
        except ValueError:
            continue
        frames = stack.split(";")
        total += count
        leaf = frames[-1] if frames else "?"
        # An idle thread (waiting in select/epoll, a lock or a queue) is not work.
        if any(
            s in leaf
            for s in ("select (", "poll (", "wait (", "_worker (concurrent", "sleep (", "acquire")
        ):
            idle += count
            continue
        own[_short(leaf)] += count
        for label, needle in AREAS:
            if any(needle in f for f in frames):
                areas[label] += count
    busy = max(total - idle, 1)
    out = [
        f"### {path.stem}",
        "",
        f"{total:,} samples over all threads, {busy:,} busy "
        f"({100 * busy / max(total, 1):.0f}%). Shares below are of busy samples.",
        "",
        "| area (inclusive) | share |",
        "|---|---|",
    ]
    out += [f"| {label} | {100 * n / busy:.0f}% |" for label, n in areas.most_common()]
    out += ["", "| top functions (own time) | share |", "|---|---|"]
    out += [f"| `{name}` | {100 * n / busy:.1f}% |" for name, n in own.most_common(top)]
    out.append("")
    return "\n".join(out)


def _short(frame: str) -> str:
    # "function (path/to/module.py:123)" -> "function (module.py)"
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    file = where.rsplit("/", 1)[-1].split(":", 1)[0]
    return f"{name} ({file})" if file else name

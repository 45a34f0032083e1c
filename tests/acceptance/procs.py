"""Running oncely roles as real subprocesses, with their logs kept for failure reports."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


class Proc:
    def __init__(self, name: str, args: Sequence[str], log_dir: Path, env: dict[str, str]) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "oncely.cli.main", *args],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            env={**os.environ, **env, "PYTHONUNBUFFERED": "1"},
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def signal(self, sig: int) -> None:
        self.popen.send_signal(sig)

    def stop(self, timeout: float = 20) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGCONT)
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self._log.close()
        return self.popen.returncode

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


class Cluster:
    """A set of oncely processes sharing one PostgreSQL schema."""

    def __init__(self, store_url: str, log_dir: Path, env: dict[str, str] | None = None) -> None:
        self.store_url = store_url
        self.log_dir = log_dir
        self.env = {
            "ONCELY_SCHEDULER_LEASE_TTL": "3",
            "ONCELY_WORKER_LEASE_TTL": "3",
            "ONCELY_SHUTDOWN_GRACE": "5",
            **(env or {}),
        }
        self.procs: list[Proc] = []

    def start(self, name: str, *role: str) -> Proc:
        proc = Proc(name, ["--store", self.store_url, *role], self.log_dir, self.env)
        self.procs.append(proc)
        return proc

    def scheduler(self, name: str) -> Proc:
        return self.start(name, "scheduler")

    def worker(self, name: str, concurrency: int = 20) -> Proc:
        return self.start(
            name,
            "worker",
            "--app",
            "tests.acceptance.apps.chaos_app:app",
            "--concurrency",
            str(concurrency),
        )

    def stop_all(self) -> None:
        for proc in self.procs:
            proc.stop()

    def logs(self) -> str:
        return "\n".join(f"----- {p.name} -----\n{p.log()[-4000:]}" for p in self.procs)


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")

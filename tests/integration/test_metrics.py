"""/metrics on a live process (a real App with its HTTP server on loopback, a real SQLite
file): the numbers follow what ran, labels stay bounded, and Debian's promtool accepts the
exposition."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

import oncely
from oncely.config import Settings

Q = ("queue", "default")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def scrape_while_running(tmp_path: Path, jobs: tuple[str, ...] = ()) -> str:
    """Run an App with per-second, failing and dead jobs until they have run, then return
    one scrape of its /metrics (the store's gauges are read at most every 5 s: a dead run
    shows in them within that)."""
    port = free_port()
    app = oncely.App(
        settings=Settings(
            store=f"sqlite:///{tmp_path / 'oncely.db'}",
            port=port,
            worker_lease_ttl=5,
            shutdown_grace=1,
            metrics_jobs=jobs,
            metrics_public=True,
        )
    )
    done = threading.Event()

    @app.task("tick")
    def tick(ctx: oncely.TaskContext) -> None:
        return None

    @app.task("broken")
    def broken(ctx: oncely.TaskContext) -> None:
        done.set()
        raise RuntimeError("down")

    app.add_job("every second", cron="* * * * * *", task="tick")
    app.add_job("broken", every="1h", task="broken", retries=1, base_delay=0.05, max_delay=0.1)
    app.trigger("broken")
    body: list[str] = []

    async def main() -> None:
        stop = asyncio.Event()
        runner = asyncio.create_task(app.run_async(stop=stop, serve_http=True))
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            deadline = time.monotonic() + 60  # generous: a loaded CI machine is slow
            while time.monotonic() < deadline and not runner.done():
                await asyncio.sleep(0.2)
                try:
                    response = await client.get("/metrics")
                except httpx.TransportError:
                    continue
                got = samples(response.text)
                if (
                    got.get(("oncely_runs", (("state", "dead"),))) == 1
                    and got.get(("oncely_runs_finished_total", (Q, ("state", "dead")))) == 1
                    and got.get(("oncely_runs_finished_total", (Q, ("state", "succeeded"))), 0) >= 2
                    # The store's gauges are cached for up to 5 s: wait for a read taken
                    # after the scheduler's first claim, not one from before it.
                    and got.get(("oncely_shards_unheld", ())) == 0
                ):
                    assert response.headers["content-type"].startswith("text/plain")
                    body.append(response.text)
                    break
        stop.set()
        await runner

    asyncio.run(main())
    app.close()
    assert body, "the metrics never showed the runs"
    return body[0]


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[s.name, tuple(sorted(s.labels.items()))] = s.value
    return out


def test_metrics_follow_the_runs_and_pass_promtool(tmp_path: Path) -> None:
    text = scrape_while_running(tmp_path, jobs=("every second",))
    got = samples(text)
    q = Q
    assert got["oncely_attempts_total", (("outcome", "failed"), q)] == 2
    assert got["oncely_run_retries_total", (q,)] == 1
    assert got["oncely_fires_materialized_total", ()] >= 2
    assert got["oncely_attempts_started_total", (q,)] >= 4
    assert got["oncely_fire_lag_seconds_count", (q,)] >= 3
    assert got["oncely_run_duration_seconds_count", (q,)] >= 4
    assert got["oncely_worker_slots", (q,)] == 10
    assert ("oncely_worker_slots_busy", (q,)) in got
    assert sum(v for (name, _), v in got.items() if name == "oncely_shard_leases_held") == 64
    assert got["oncely_shards_unheld", ()] == 0
    assert got["oncely_queue_waiting", (q,)] >= 1  # the per-second job's runs ahead
    assert ("oncely_queue_depth", (q,)) in got
    assert got["oncely_queue_oldest_due_age_seconds", (q,)] >= 0
    assert got["oncely_runs", (("state", "dead"),)] == 1
    assert got["oncely_store_call_seconds_count", (("operation", "run_claim"),)] > 0
    roles = {dict(labels)["role"] for (name, labels) in got if name == "oncely_role"}
    assert roles == {"scheduler", "worker"}
    # Per-job series only for the listed job; no run or job id anywhere in a label.
    jobs = {dict(labels).get("job") for (name, labels) in got if name.startswith("oncely_job_")}
    assert jobs == {"every second"}
    for _, labels in got:
        for key, value in labels:
            assert key not in ("run_id", "job_id", "run")
            assert len(value) < 64 or key == "node"

    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (scripts/ensure-tools installs Debian's prometheus)")
    check = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )
    assert check.returncode == 0, check.stdout + check.stderr

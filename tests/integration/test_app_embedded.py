"""The App end to end on a real SQLite file: scheduler and worker in one process."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import oncely
from oncely.config import Settings
from oncely.domain.runs import AttemptOutcome, RunState


def make_app(tmp_path: Path, **settings: Any) -> oncely.App:
    base = Settings(
        store=f"sqlite:///{tmp_path / 'oncely.db'}",
        **{"worker_lease_ttl": 5, "shutdown_grace": 2, **settings},
    )
    return oncely.App(settings=base)


def run_until(app: oncely.App, done: Callable[[], bool], timeout: float = 20) -> None:
    """Run the app in this thread's event loop until ``done()`` or the timeout."""

    async def main() -> None:
        stop = asyncio.Event()
        runner = asyncio.create_task(app.run_async(stop=stop))
        deadline = time.monotonic() + timeout
        while not done() and time.monotonic() < deadline and not runner.done():  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        stop.set()
        await runner

    asyncio.run(main())
    assert done(), "condition not reached before the timeout"


def test_per_second_cron_runs_each_fire_once(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    seen: list[tuple[str, str, int]] = []
    lock = threading.Lock()

    @app.task("tick")
    def tick(ctx: oncely.TaskContext) -> dict[str, Any]:
        with lock:
            seen.append((ctx.run_id, ctx.scheduled_for.isoformat(), ctx.fencing_token))
            early.append(ctx.scheduled_for.timestamp() - time.time())
        return {"ok": True, "payload": ctx.payload}

    early: list[float] = []
    app.add_job("every second", cron="* * * * * *", task="tick", payload={"n": 1})
    run_until(app, lambda: len(seen) >= 4)
    # Runs are claimed up to worker_prefetch ahead, but none starts before its fire time.
    assert max(early) <= 0, f"a run started {max(early) * 1000:.3f} ms early"
    runs = app.list_runs("every second", states=["succeeded"])
    assert len(runs) >= 4
    fires = [s for _, s, _ in seen]
    assert len(fires) == len(set(fires)), "a fire ran twice"
    assert len({r for r, _, _ in seen}) == len(seen)
    succeeded = {r.id: r for r in runs}
    some = next(iter(succeeded.values()))
    assert some.output is not None and '"payload": {"n": 1}' in some.output
    [attempt] = app.attempts(some.id)
    assert attempt.outcome is AttemptOutcome.SUCCEEDED and attempt.token == some.token
    app.close()


def test_failures_retry_then_die_and_requeue_runs_again(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    calls: list[int] = []

    @app.task("flaky")
    def flaky(ctx: oncely.TaskContext) -> None:
        calls.append(ctx.attempt)
        if len(calls) <= 3:
            raise RuntimeError(f"boom {ctx.attempt}")

    app.add_job(
        "flaky",
        at="2030-01-01T00:00:00+00:00",
        task="flaky",
        retries=2,
        base_delay=0.05,
        max_delay=0.1,
        paused=True,
    )
    run = app.trigger("flaky")
    run_until(app, lambda: app.get_run(run.id).state is RunState.DEAD)
    dead = app.get_run(run.id)
    assert dead.failures == 3 and dead.error is not None and "boom 3" in dead.error
    attempts = app.attempts(run.id)
    assert [a.outcome for a in attempts] == [AttemptOutcome.FAILED] * 3
    assert [a.number for a in attempts] == [1, 2, 3]
    assert len({a.token for a in attempts}) == 3

    app.requeue(run.id)
    run_until(app, lambda: app.get_run(run.id).state is RunState.SUCCEEDED)
    assert calls == [1, 2, 3, 4]
    app.close()


def test_timeout_fails_the_attempt(tmp_path: Path) -> None:
    app = make_app(tmp_path)

    @app.task("slow")
    async def slow(ctx: oncely.TaskContext) -> None:
        await asyncio.sleep(30)

    app.add_job("slow", every="1h", task="slow", timeout=0.2, retries=0)
    run = app.trigger("slow")
    run_until(app, lambda: app.get_run(run.id).state is RunState.DEAD)
    [attempt] = app.attempts(run.id)
    assert attempt.outcome is AttemptOutcome.TIMED_OUT
    assert attempt.error == "timed out after 0.2 s"
    app.close()


def test_transactional_task_writes_commit_with_the_run(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    db = tmp_path / "oncely.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE ledger (run_id TEXT PRIMARY KEY, amount INTEGER)")

    @app.task("bill", transactional=True)
    def bill(ctx: oncely.TaskContext) -> int:
        ctx.connection.execute(
            "INSERT INTO ledger (run_id, amount) VALUES (?, ?)", (ctx.run_id, 42)
        )
        if ctx.payload == "fail":
            raise RuntimeError("card declined")
        return 42

    app.add_job("bill", every="1h", task="bill", retries=0)
    app.add_job("bill-fails", every="1h", task="bill", retries=0, payload="fail")
    ok = app.trigger("bill")
    bad = app.trigger("bill-fails")
    run_until(
        app,
        lambda: (
            app.get_run(ok.id).state is RunState.SUCCEEDED
            and app.get_run(bad.id).state is RunState.DEAD
        ),
    )
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT run_id, amount FROM ledger").fetchall()
    assert rows == [(ok.id, 42)]  # the failed attempt's insert was rolled back
    assert app.get_run(ok.id).output == "42"
    app.close()


def test_overlap_forbid_skips_fires_while_a_run_is_live(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    release = threading.Event()

    @app.task("long")
    def long(ctx: oncely.TaskContext) -> None:
        release.wait(10)

    app.add_job("long", cron="* * * * * *", task="long", overlap="forbid")

    def skipped() -> int:
        return len(app.list_runs("long", states=["skipped"]))

    try:
        run_until(app, lambda: skipped() >= 2, timeout=8)
    finally:
        release.set()
    runs = app.list_runs("long")
    started = [r for r in runs if r.attempt > 0]
    assert len(started) == 1  # only the first fire ran; the others were skipped
    skipped_run = next(r for r in runs if r.state is RunState.SKIPPED)
    assert skipped_run.error is not None and "live" in skipped_run.error
    app.close()


def test_graceful_shutdown_releases_unfinished_runs(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    started = threading.Event()

    @app.task("stuck")
    async def stuck(ctx: oncely.TaskContext) -> None:
        started.set()
        await asyncio.sleep(60)

    app.add_job("stuck", every="1h", task="stuck")
    run = app.trigger("stuck")
    run_until(app, started.is_set)
    back = app.get_run(run.id)
    assert back.state is RunState.QUEUED and back.failures == 0
    [attempt] = app.attempts(run.id)
    assert attempt.outcome is AttemptOutcome.RELEASED
    app.close()


def test_prefetched_runs_start_on_time_or_are_released_at_shutdown(tmp_path: Path) -> None:
    app = make_app(tmp_path, worker_prefetch=2.0, worker_lease_ttl=9)
    ran: list[float] = []

    @app.task("mark")
    async def mark(ctx: oncely.TaskContext) -> None:
        ran.append(time.time() - ctx.scheduled_for.timestamp())

    due = time.time() + 2.5
    app.add_job("soon", at=datetime.fromtimestamp(due, UTC), task="mark")
    app.add_job("sooner", at=datetime.fromtimestamp(due - 1.5, UTC), task="mark")

    seen_held = threading.Event()

    def claimed_early() -> bool:
        # Checked again after the app stopped: remember what was seen while it ran.
        runs = app.list_runs("soon")
        held = runs and runs[0].state is RunState.RUNNING and time.time() < due - 0.2
        if held and ran:
            seen_held.set()
        return seen_held.is_set()

    # Stop once "sooner" ran and "soon" is held by the worker but not due: it goes back,
    # never having run.
    run_until(app, claimed_early)
    assert len(ran) == 1 and 0 <= ran[0] < 0.5  # "sooner" ran, on time and not early
    [back] = app.list_runs("soon")
    assert back.state in (RunState.PENDING, RunState.QUEUED) and back.failures == 0
    [attempt] = app.attempts(back.id)
    assert attempt.outcome is AttemptOutcome.RELEASED
    # Started again, the run is claimed anew and runs at its time.
    run_until(app, lambda: len(ran) == 2)
    assert 0 <= ran[1] < 0.5
    app.close()


def test_pause_resume_and_delete(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    app.add_job("p", cron="*/5 * * * *", task="noop")
    paused = app.pause("p")
    assert paused.paused
    resumed = app.resume("p")
    assert not resumed.paused and resumed.next_fire_at is not None
    assert resumed.next_fire_at - app.clock.now() <= timedelta(minutes=5)
    app.delete("p")
    with pytest.raises(oncely.NotFound):
        app.get_job("p")
    app.add_job("q", every="1m", task="noop")
    with pytest.raises(oncely.Conflict):
        app.add_job("q", every="1m", task="noop")
    replaced = app.add_job("q", every="2m", task="noop", replace=True)
    assert replaced.version == 2
    app.close()


def test_bad_input_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    with pytest.raises(oncely.InvalidInput, match="hour"):
        app.add_job("bad", cron="0 25 * * *", task="t")
    with pytest.raises(oncely.InvalidInput, match="shell actions are disabled"):
        app.add_job("sh", every="1m", shell=["true"])
    with pytest.raises(oncely.InvalidInput):
        app.add_job("ssrf", every="1m", http="http://169.254.169.254/latest/meta-data")
    with pytest.raises(oncely.InvalidInput, match="payload"):
        app.add_job("big", every="1m", task="t", payload="x" * 300_000)
    with pytest.raises(oncely.InvalidInput, match="exactly one"):
        app.add_job("two", every="1m", task="t", http="https://example.com")
    with pytest.raises(oncely.InvalidInput, match=r"time zone|timezone"):
        app.add_job("tz", cron="0 9 * * *", timezone="Mars/Olympus", task="t")
    assert app.list_jobs() == []
    app.close()


def _alive_with_arg(marker: str) -> list[int]:
    """Pids of live (non-zombie) processes whose command line contains ``marker``."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            status = (entry / "status").read_text()
        except OSError:
            continue
        if marker in cmdline and "State:\tZ" not in status:
            pids.append(int(entry.name))
    return pids


def test_shell_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    app = make_app(tmp_path, allow_shell=True)
    marker = "97.3141"
    app.add_job(
        "hang",
        every="1h",
        shell=["sh", "-c", f"sleep {marker} & sleep {marker}"],
        timeout=0.5,
        retries=0,
    )
    run = app.trigger("hang")
    run_until(app, lambda: app.get_run(run.id).state is RunState.DEAD)
    [attempt] = app.attempts(run.id)
    assert attempt.outcome is AttemptOutcome.TIMED_OUT
    deadline = time.monotonic() + 5
    while _alive_with_arg(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _alive_with_arg(marker) == []
    app.close()


def test_shell_action_sees_its_run_identity(tmp_path: Path) -> None:
    app = make_app(tmp_path, allow_shell=True)
    app.add_job(
        "env",
        every="1h",
        shell=["sh", "-c", 'echo "$ONCELY_RUN_ID $ONCELY_ATTEMPT $ONCELY_FENCING_TOKEN"'],
    )
    run = app.trigger("env")
    run_until(app, lambda: app.get_run(run.id).state is RunState.SUCCEEDED)
    done = app.get_run(run.id)
    assert done.output is not None
    assert done.output.split() == [run.id, "1", str(done.token)]
    app.close()


def test_http_action_sends_idempotency_key_and_fencing_token(tmp_path: Path) -> None:
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    received: list[dict[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            received.append({**dict(self.headers), "body": self.rfile.read(length).decode()})
            self.send_response(503 if len(received) == 1 else 200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        app = make_app(tmp_path, http_allow_private=True)
        url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        app.add_job("hook", every="1h", http=url, payload={"k": 1}, base_delay=0.05, max_delay=0.1)
        run = app.trigger("hook")
        run_until(app, lambda: app.get_run(run.id).state is RunState.SUCCEEDED)
        first, second = received
        assert first["Idempotency-Key"] == second["Idempotency-Key"] == run.id
        assert int(second["Oncely-Fencing-Token"]) > int(first["Oncely-Fencing-Token"])
        assert second["body"] == '{"k":1}' or json_equal(second["body"], {"k": 1})
        failed, ok = app.attempts(run.id)
        assert failed.outcome is AttemptOutcome.FAILED and "503" in (failed.error or "")
        assert ok.outcome is AttemptOutcome.SUCCEEDED
        app.close()
    finally:
        server.shutdown()


def json_equal(text: str, value: Any) -> bool:
    import json

    return bool(json.loads(text) == value)


def test_scheduler_survives_a_failing_store_call(tmp_path: Path) -> None:
    """A transient store error in a tick is logged and retried, not fatal."""
    app = make_app(tmp_path)
    ran: list[str] = []

    @app.task("t")
    def t(ctx: oncely.TaskContext) -> None:
        ran.append(ctx.run_id)

    app.add_job("t", cron="* * * * * *", task="t")
    real = app.store.jobs_due
    failures = {"left": 3}

    def flaky(*args: Any, **kwargs: Any) -> Any:
        if failures["left"]:
            failures["left"] -= 1
            raise sqlite3.OperationalError("database is locked")
        return real(*args, **kwargs)

    app.store.jobs_due = flaky  # type: ignore[method-assign]
    run_until(app, lambda: len(ran) >= 2, timeout=15)
    assert failures["left"] == 0
    app.close()


def test_add_jobs_in_bulk_runs_them_and_refuses_bad_batches_whole(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    ran: list[str] = []
    lock = threading.Lock()

    @app.task("note")
    def note(ctx: oncely.TaskContext) -> None:
        with lock:
            ran.append(ctx.payload["n"])

    specs = [
        {"name": f"once-{i}", "at": "2001-01-01T00:00:00Z", "task": "note", "payload": {"n": i}}
        for i in range(300)
    ]
    specs.append({"name": "yearly", "cron": "0 0 1 1 *", "task": "note", "retries": 0})
    assert app.add_jobs(specs) == 301
    assert app.get_job("yearly").policy.max_retries == 0

    bad_batches: list[tuple[list[dict[str, Any]], type[Exception], str]] = [
        ([{"name": "x", "cron": "61 * * * *", "task": "note"}], oncely.InvalidInput, "job 0"),
        (
            [
                {"name": "y", "at": "2030-01-01T00:00:00Z", "task": "note"},
                {"name": "once-5", "every": "5m", "task": "note"},
            ],
            oncely.Conflict,
            "once-5",
        ),
        (
            [{"name": "z", "cron": "* * * * *", "task": "note", "colour": "red"}],
            oncely.InvalidInput,
            "colour",
        ),
        ([{"cron": "* * * * *", "task": "note"}], oncely.InvalidInput, "name"),
        (
            [{"name": "w", "cron": "* * * * *", "task": "note", "replace": True}],
            oncely.InvalidInput,
            "replace",
        ),
    ]
    for batch, error, words in bad_batches:
        with pytest.raises(error, match=words):
            app.add_jobs(batch)
    assert len(app.list_jobs(limit=1000)) == 301

    run_until(app, lambda: len(ran) >= 300)
    time.sleep(0.3)
    assert sorted(ran) == list(range(300))

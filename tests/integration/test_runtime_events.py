"""The runtime emits typed events (a real engine on a real SQLite file): fires, attempts
started and finished in batches, a run retrying then dead, missed fires, leases, store calls."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import oncely
from oncely.domain.runs import AttemptOutcome, RunState
from oncely.runtime import events as ev
from tests.integration.test_app_embedded import make_app, run_until


def test_runtime_emits_typed_events(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    seen: list[object] = []
    lock = threading.Lock()

    def keep(event: object) -> None:
        with lock:
            seen.append(event)

    app.events.subscribe(keep)

    @app.task("tick")
    def tick(ctx: oncely.TaskContext) -> None:
        return None

    @app.task("broken")
    def broken(ctx: oncely.TaskContext) -> None:
        raise RuntimeError("target down")

    app.add_job("every second", cron="* * * * * *", task="tick")
    app.add_job("broken", every="1h", task="broken", retries=1, base_delay=0.05, max_delay=0.1)
    past = datetime.now(UTC) - timedelta(hours=1)
    app.add_job("missed", at=past.isoformat(), task="tick", misfire="skip", misfire_grace=1)
    dead = app.trigger("broken")

    def kinds() -> Counter[str]:
        with lock:
            return Counter(type(e).__name__ for e in seen)

    def done() -> bool:
        app.events.flush()
        k = kinds()
        return bool(k["RunDead"] and k["RunsMissed"] and k["AttemptsFinished"] >= 3)

    run_until(app, done)
    app.events.flush()
    with lock:
        events = list(seen)

    gained = [e for e in events if isinstance(e, ev.LeasesGained)]
    assert gained and sum(len(e.names) for e in gained) == 64
    assert all(len(e.names) == len(e.tokens) for e in gained)

    assert any(isinstance(e, ev.FiresMaterialized) and e.runs_created > 0 for e in events)

    started = [r for e in events if isinstance(e, ev.AttemptsStarted) for r in e.runs]
    assert {r.job_name for r in started} >= {"every second", "broken"}

    finished = [
        (r, ok)
        for e in events
        if isinstance(e, ev.AttemptsFinished)
        for r, ok in zip(e.results, e.accepted, strict=True)
    ]
    assert all(ok for _, ok in finished)
    ticks = [r for r, _ in finished if r.job_name == "every second"]
    # (a run prefetched when the engine stopped is given back: released)
    assert {r.outcome for r in ticks} <= {AttemptOutcome.SUCCEEDED, AttemptOutcome.RELEASED}
    assert any(r.outcome is AttemptOutcome.SUCCEEDED for r in ticks)
    assert all(r.queue == "default" and r.job_id for r, _ in finished)

    [retrying] = [e for e in events if isinstance(e, ev.RunRetrying)]
    assert retrying.run_id == dead.id and retrying.attempt == 1
    assert retrying.job_name == "broken" and retrying.error is not None
    assert "target down" in retrying.error and retrying.due_at is not None
    [died] = [e for e in events if isinstance(e, ev.RunDead)]
    assert (died.run_id, died.attempt, died.failures) == (dead.id, 2, 2)
    assert died.token == app.get_run(dead.id).token
    assert app.get_run(dead.id).state is RunState.DEAD

    [missed] = [e for e in events if isinstance(e, ev.RunsMissed)]
    assert missed.job_id == app.get_job("missed").id and missed.fires == 1

    calls = Counter(e.operation for e in events if isinstance(e, ev.StoreCall))
    assert calls["run_claim"] > 0 and calls["fires_commit"] > 0 and calls["run_complete"] > 0
    app.close()

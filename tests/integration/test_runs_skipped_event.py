"""A run its job's overlap policy skips inside a worker's claim is reported: a ``RunsSkipped``
event from the worker (a real engine on a real SQLite file), counted in the metrics and logged
at INFO with the run and the job."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest

import oncely
from oncely.domain.runs import RunState
from oncely.observe.metrics import RuntimeMetrics
from oncely.runtime import events as ev
from tests.integration.test_app_embedded import make_app, run_until


def test_a_run_skipped_by_overlap_is_an_event_a_metric_and_a_log_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app(tmp_path)
    skipped: list[ev.RunsSkipped] = []
    app.events.subscribe(skipped.append, ev.RunsSkipped)
    metrics = RuntimeMetrics()
    metrics.subscribe(app.events)
    started, release = threading.Event(), threading.Event()

    @app.task("slow")
    def slow(ctx: oncely.TaskContext) -> None:
        started.set()
        release.wait(10)

    job = app.add_job("slow", every="1h", task="slow", overlap="forbid")
    first = app.trigger("slow")
    second_ids: list[str] = []

    def step() -> bool:
        if started.is_set() and not second_ids:
            # The first run is live: the next one is skipped by the claim that finds it.
            second_ids.append(app.trigger("slow").id)
        app.events.flush()
        if skipped:
            release.set()
            return app.get_run(first.id).state is RunState.SUCCEEDED
        return False

    with caplog.at_level(logging.INFO, logger="oncely.runs"):
        run_until(app, step)
        app.events.flush()
    release.set()
    [second] = second_ids
    assert app.get_run(second).state is RunState.SKIPPED
    [event] = skipped
    assert (event.skipped, event.cancelled, event.queue) == (((second, job.id),), (), "default")
    value = metrics.registry.get_sample_value(
        "oncely_runs_overlap_total", {"queue": "default", "state": "skipped"}
    )
    assert value == 1.0
    # (The app's own runtime log, subscribed when it starts.)
    lines = [r for r in caplog.records if getattr(r, "oncely", {}).get("event") == "run.skipped"]
    assert len(lines) == 1 and lines[0].levelno == logging.INFO
    assert second in lines[0].getMessage() and job.id in lines[0].getMessage()
    metrics.close()
    app.close()

"""The runtime's log lines: a takeover and a dead run are one WARNING line each, with the
fields an on-call engineer needs, also as JSON."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

import pytest

from oncely.domain.runs import AttemptOutcome
from oncely.observe.logs import JsonFormatter, RuntimeLog
from oncely.runtime.events import RunDead, Takeover

AT = datetime(2026, 1, 1, tzinfo=UTC)


def test_takeover_and_dead_run_are_warnings_with_their_fields(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = RuntimeLog()
    with caplog.at_level(logging.INFO, logger="oncely.runs"):
        log.observe(Takeover("s2", "shard:7", "s1", 41, 57, AT))
        log.observe(
            RunDead("w1", "run-1", "job-1", "nightly", "default", 9, 88,
                    AttemptOutcome.TIMED_OUT, 9, "timed out after 30 s\n", AT)
        )  # fmt: skip
    takeover, dead = caplog.records
    assert takeover.levelno == dead.levelno == logging.WARNING
    line = takeover.getMessage()
    assert "shard:7" in line and "s1" in line and "node=s2" in line and "token=57" in line
    fields = json.loads(JsonFormatter().format(takeover))
    assert fields["event"] == "lease.takeover" and fields["previous_token"] == 41
    text = dead.getMessage()
    for part in ("run-1", "'nightly'", "attempt 9", "token=88", "node=w1", "job-1"):
        assert part in text
    assert json.loads(JsonFormatter().format(dead))["error"] == "timed out after 30 s"

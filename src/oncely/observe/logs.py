"""Logs of one oncely process: what an on-call engineer must see, and the log format.

- ``RuntimeLog`` subscribes to the runtime's events and writes one line per thing that went
  wrong, naming run, job, attempt, fencing token and node: a run that went **dead**
  (WARNING), fires recorded as **missed** (WARNING), a **takeover** of a lease another node
  let expire (WARNING), an attempt that failed and will be retried (INFO), a run its job's
  overlap policy skipped or cancelled (INFO). Successes are not logged one by one (metrics
  count them), so a failure is never quieter than a success.
- ``configure_logging`` sets the level and the format: ``text`` (one human line) or
  ``json`` (one JSON object per line: ``ts``, ``level``, ``logger``, ``message``, and the
  event's fields under their own names, for log pipelines). Libraries that log every
  successful request at INFO (httpx, httpcore: one line per HTTP action call) are held at
  WARNING, so their failures still show and their successes do not drown ours.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from oncely.runtime import events as ev

log = logging.getLogger("oncely.runs")

LOG_FORMATS = ("text", "json")
_CHATTY = ("httpx", "httpcore", "uvicorn.access")
"""Loggers that report each successful request at INFO."""


class RuntimeLog:
    """The runtime's events as log lines (see the module's notes)."""

    KINDS = (ev.RunDead, ev.RunRetrying, ev.RunsMissed, ev.RunsSkipped, ev.Takeover)

    def __init__(self, logger: logging.Logger = log) -> None:
        self.log = logger
        self._unsubscribe: Callable[[], None] | None = None

    def subscribe(self, bus: ev.EventBus) -> None:
        self.close()
        self._unsubscribe = bus.subscribe(self.observe, *self.KINDS)

    def close(self) -> None:
        unsubscribe, self._unsubscribe = self._unsubscribe, None
        if unsubscribe is not None:
            unsubscribe()

    def observe(self, event: Any) -> None:
        if isinstance(event, ev.RunDead):
            self._run(logging.WARNING, "is dead", event, event.error)
        elif isinstance(event, ev.RunRetrying):
            due = event.due_at.isoformat() if event.due_at is not None else "-"
            self._run(logging.INFO, f"failed; retry at {due}", event, event.error)
        elif isinstance(event, ev.RunsMissed):
            fields = {
                "event": "run.missed",
                "job_id": event.job_id,
                "fires": event.fires,
                "first_fire": event.first.isoformat(),
                "last_fire": event.last.isoformat(),
                "node": event.node,
            }
            self.log.warning(
                "job %s: %d fire(s) from %s to %s recorded as missed (misfire policy) node=%s",
                event.job_id,
                event.fires,
                event.first.isoformat(),
                event.last.isoformat(),
                event.node,
                extra={"oncely": fields},
            )
        elif isinstance(event, ev.RunsSkipped):
            # A policy doing its job, not a failure: INFO, like a run that will be retried.
            for what, pairs in (("skipped", event.skipped), ("cancelled", event.cancelled)):
                reason = "a run of this job was live" if what == "skipped" else "replaced"
                for run_id, job_id in pairs:
                    fields = {
                        "event": f"run.{what}",
                        "run_id": run_id,
                        "job_id": job_id,
                        "queue": event.queue,
                        "node": event.node,
                    }
                    self.log.info(
                        "run %s of job_id=%s %s by its overlap policy (%s) node=%s",
                        run_id,
                        job_id,
                        what,
                        reason,
                        event.node,
                        extra={"oncely": fields},
                    )
        elif isinstance(event, ev.Takeover):
            fields = {
                "event": "lease.takeover",
                "lease": event.name,
                "previous_holder": event.previous_holder,
                "previous_token": event.previous_token,
                "token": event.token,
                "node": event.node,
            }
            self.log.warning(
                "takeover of %s: %s let it expire (token %d); now held by node=%s token=%d",
                event.name,
                event.previous_holder,
                event.previous_token,
                event.node,
                event.token,
                extra={"oncely": fields},
            )

    def _run(
        self, level: int, what: str, event: ev.RunDead | ev.RunRetrying, error: str | None
    ) -> None:
        name = "run.dead" if isinstance(event, ev.RunDead) else "run.retrying"
        fields = {
            "event": name,
            "run_id": event.run_id,
            "job_id": event.job_id,
            "job": event.job_name,
            "queue": event.queue,
            "attempt": event.attempt,
            "token": event.token,
            "outcome": event.outcome.value,
            "failures": event.failures,
            "node": event.node,
            "error": _one_line(error),
        }
        self.log.log(
            level,
            "run %s of job %r %s after attempt %d (%s) token=%d node=%s job_id=%s: %s",
            event.run_id,
            event.job_name,
            what,
            event.attempt,
            event.outcome.value,
            event.token,
            event.node,
            event.job_id,
            _one_line(error),
            extra={"oncely": fields},
        )


def _one_line(text: str | None, limit: int = 500) -> str:
    if not text:
        return "-"
    flat = " | ".join(line.strip() for line in text.strip().splitlines() if line.strip())
    return flat if len(flat) <= limit else "…" + flat[-limit:]


class JsonFormatter(logging.Formatter):
    """One JSON object per line; an event's fields (``extra={"oncely": {...}}``) at top
    level."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "oncely", None)
        if isinstance(fields, dict):
            for key, value in fields.items():
                out.setdefault(key, value)
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, ensure_ascii=False)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(level: str = "INFO", fmt: str = "text") -> None:
    """Set up the root logger for an oncely process (replaces earlier handlers)."""
    if fmt not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}, not {fmt!r}")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    quiet_chatty_loggers()


def quiet_chatty_loggers() -> None:
    """Hold libraries that log each successful request at INFO to WARNING."""
    for name in _CHATTY:
        logging.getLogger(name).setLevel(logging.WARNING)

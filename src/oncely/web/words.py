"""Words and times for the dashboard's pages (pure formatting, no I/O)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from markupsafe import Markup, escape

from oncely.domain.actions import (
    Action,
    EmailAction,
    HttpAction,
    PythonAction,
    ShellAction,
    SqlAction,
)
from oncely.domain.describe import duration_in_words
from oncely.domain.policy import Policy
from oncely.domain.runs import Run, RunState


def ago(at: datetime | None, now: datetime) -> str:
    """``3 min ago`` / ``in 12 s``."""
    if at is None:
        return "—"
    delta = (at - now).total_seconds()
    future = delta > 0
    s = abs(delta)
    if s < 1:
        return "now"
    if s < 60:
        text = f"{int(s)} s"
    elif s < 3600:
        text = f"{int(s // 60)} min"
    elif s < 86400 * 2:
        text = f"{s / 3600:.1f} h"
    else:
        text = f"{int(s // 86400)} days"
    return f"in {text}" if future else f"{text} ago"


def when(at: datetime | None, now: datetime, *, countdown: bool = False) -> Markup:
    """A ``<time>`` with the relative time shown and the exact UTC time in its title."""
    if at is None:
        return Markup('<span class="muted">—</span>')
    exact = at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    extra = ' data-countdown=""' if countdown else ""
    return Markup(  # noqa: S704 (every value escaped)
        f'<time datetime="{escape(at.isoformat())}" title="{escape(exact)}"{extra}>'
        f"{escape(ago(at, now))}</time>"
    )


def exact(at: datetime | None) -> str:
    return "—" if at is None else at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def seconds(value: float | None) -> str:
    if value is None:
        return "—"
    if value < 1:
        return f"{value * 1000:.0f} ms"
    if value < 120:
        return f"{value:.1f} s"
    return duration_in_words(timedelta(seconds=round(value)))


def action_words(action: Action) -> str:
    if isinstance(action, PythonAction):
        return f"Python task {action.task}"
    if isinstance(action, HttpAction):
        return f"HTTP {action.method.upper()} {action.url}"
    if isinstance(action, ShellAction):
        return "Shell: " + " ".join(action.argv)
    if isinstance(action, SqlAction):
        return f"SQL on connection {action.connection}"
    if isinstance(action, EmailAction):
        return f"Email {action.subject!r} to " + ", ".join(action.to)
    return f"{action.kind} action"


def policy_words(policy: Policy) -> list[tuple[str, str]]:
    """Every policy of a job as (what, in plain words)."""
    retries = (
        "No retries: a failed attempt makes the run dead."
        if policy.max_retries == 0
        else f"Up to {policy.max_retries} retries after a failed attempt, waiting a random "
        f"time up to {seconds(policy.base_delay)} doubled each time, at most "
        f"{seconds(policy.max_delay)}; then the run is dead."
    )
    timeout = (
        "No time limit."
        if policy.timeout is None
        else f"An attempt is stopped after {seconds(policy.timeout)} and counts as failed."
    )
    overlap = {
        "allow": "Runs may overlap: a fire starts even if the previous run is still going.",
        "forbid": "Never overlapping: a fire due while the previous run is live is skipped.",
        "replace": "A new fire cancels a previous run that is still live.",
    }[policy.overlap]
    misfire = {
        "run_once": "Fires missed during downtime run once, as one run.",
        "run_all": f"Fires missed during downtime all run (at most {policy.misfire_cap}).",
        "skip": "Fires missed during downtime are skipped and recorded as missed.",
    }[policy.misfire]
    misfire += f" A fire found up to {seconds(policy.misfire_grace)} late simply runs late."
    out = [
        ("Retries", retries),
        ("Timeout", timeout),
        ("Overlap", overlap),
        ("Misfires", misfire),
        ("Queue", f"Runs on queue {policy.queue!r} with priority {policy.priority}."),
    ]
    if policy.deadline is not None:
        out.append(("Deadline", f"Alert if no success within {seconds(policy.deadline)}."))
    return out


def duration(run: Run) -> float | None:
    if run.started_at is None or run.finished_at is None:
        return None
    return max((run.finished_at - run.started_at).total_seconds(), 0.0)


def lag(run: Run) -> float | None:
    if run.started_at is None or run.manual:
        return None
    return max((run.started_at - run.scheduled_for).total_seconds(), 0.0)


def outcome_value(state: RunState) -> float | None:
    if state is RunState.SUCCEEDED:
        return 1.0
    if state in (RunState.DEAD, RunState.RETRYING, RunState.MISSED):
        return 0.0
    return None


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)

"""The job form: its fields as text in, the wire models out, and errors per field.

A form posts strings; this module turns them into ``JobCreate``/``JobPatch`` (the same models
the API validates), so a job made here is exactly one made through the API. Whatever is wrong
is reported under the field the user typed it in: ``FormError`` maps field -> message, and the
domain's ``InvalidInput`` (a bad cron names its token) is mapped the same way by the routes.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import ValidationError

from oncely.domain.actions import HttpAction, PythonAction
from oncely.domain.jobs import Job
from oncely.domain.schedule import AtSchedule, CronSchedule, EverySchedule
from oncely.wire import JobCreate, JobFields, JobPatch


class FormError(Exception):
    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


def schedule_form(form: dict[str, str]) -> dict[str, Any]:
    """The schedule fields of the form, as ``make_schedule``'s keyword arguments."""
    kind = form.get("kind", "cron")
    zone = (form.get("timezone") or "UTC").strip()
    out: dict[str, Any] = {"timezone": zone}
    if kind == "cron":
        cron = (form.get("cron") or "").strip()
        if not cron:
            raise FormError({"cron": "give a cron expression, e.g. 0 9 * * MON-FRI"})
        out["cron"] = cron
        out["dst_gap"] = form.get("dst_gap") or "shift"
        out["dst_fold"] = form.get("dst_fold") or "first"
    elif kind == "every":
        every = (form.get("every") or "").strip()
        if not every:
            raise FormError({"every": "give an interval, e.g. 90s, 5m or 1h30m"})
        out = {"every": every}
    elif kind == "at":
        out = {"at": _instant(form.get("at") or "", zone)}
    else:
        raise FormError({"kind": "choose cron, every or at"})
    return out


def _instant(text: str, zone: str) -> datetime:
    text = text.strip()
    if not text:
        raise FormError({"at": "give a date and time"})
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise FormError({"at": "not a date and time (2027-01-31T09:00)"}) from None
    if value.tzinfo is None:
        try:
            value = value.replace(tzinfo=ZoneInfo(zone))
        except (ZoneInfoNotFoundError, ValueError):
            raise FormError({"timezone": f"unknown time zone {zone!r}"}) from None
    return value


def parse_job_form(form: dict[str, str], *, create: bool) -> Any:
    """``JobCreate`` (or ``JobPatch``) from the form; ``FormError`` naming each bad field."""
    errors: dict[str, str] = {}
    data: dict[str, Any] = {"name": (form.get("name") or "").strip()}
    try:
        data.update(schedule_form(form))
    except FormError as exc:
        errors.update(exc.errors)
    action = form.get("action", "task")
    if action == "task":
        data["task"] = (form.get("task") or "").strip() or None
        if not data["task"]:
            errors["task"] = "give the name of a registered task"
    elif action == "http":
        data["http"] = (form.get("http") or "").strip() or None
        if not data["http"]:
            errors["http"] = "give a URL"
    else:
        errors["action"] = "the dashboard makes Python and HTTP jobs"
    payload = (form.get("payload") or "").strip()
    if payload:
        try:
            data["payload"] = json.loads(payload)
        except ValueError as exc:
            errors["payload"] = f"not valid JSON: {exc}"
    elif not create:
        data["payload"] = None
    for key, kind in (("retries", int), ("priority", int), ("timeout", float)):
        text = (form.get(key) or "").strip()
        if text:
            try:
                data[key] = kind(text)
            except ValueError:
                errors[key] = "must be a number"
    if (form.get("deadline") or "").strip():
        data["deadline"] = form["deadline"].strip()
    for key in ("overlap", "misfire", "queue"):
        if form.get(key):
            data[key] = form[key].strip()
    if not data["name"]:
        errors["name"] = "give the job a name"
    if errors:
        raise FormError(errors)
    model = JobCreate if create else JobPatch
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        found: dict[str, str] = {}
        for err in exc.errors():
            head = str(err["loc"][0]) if err["loc"] else "name"
            found.setdefault(head, err["msg"])
        raise FormError(found) from None


def job_form_defaults(job: Job | None = None) -> dict[str, str]:
    """The form's fields for a new job, or filled from ``job``."""
    d = {k: f.default for k, f in JobFields.model_fields.items()}
    values = {
        "name": "",
        "kind": "cron",
        "cron": "",
        "every": "",
        "at": "",
        "timezone": d["timezone"],
        "dst_gap": d["dst_gap"],
        "dst_fold": d["dst_fold"],
        "action": "task",
        "task": "",
        "http": "",
        "payload": "",
        "retries": str(d["retries"]),
        "timeout": "",
        "overlap": d["overlap"],
        "misfire": d["misfire"],
        "queue": d["queue"],
        "priority": str(d["priority"]),
        "deadline": "",
    }
    if job is None:
        return values
    s, a, p = job.schedule, job.action, job.policy
    values["name"] = job.name
    if isinstance(s, CronSchedule):
        values.update(
            kind="cron", cron=s.expr, timezone=s.timezone, dst_gap=s.dst_gap, dst_fold=s.dst_fold
        )
    elif isinstance(s, EverySchedule):
        values.update(kind="every", every=f"{int(s.interval.total_seconds())}s")
    elif isinstance(s, AtSchedule):
        values.update(kind="at", at=s.at.strftime("%Y-%m-%dT%H:%M:%S"))
    if isinstance(a, PythonAction):
        values.update(action="task", task=a.task)
    elif isinstance(a, HttpAction):
        values.update(action="http", http=a.url)
    else:
        values["action"] = "other"
    values["payload"] = "" if job.payload is None else json.dumps(job.payload, indent=2)
    values.update(
        retries=str(p.max_retries),
        timeout="" if p.timeout is None else str(p.timeout),
        overlap=p.overlap,
        misfire=p.misfire,
        queue=p.queue,
        priority=str(p.priority),
        deadline="" if p.deadline is None else f"{p.deadline:g}",
    )
    return values

"""``oncely crontab check`` (what importing a crontab would create, without creating anything)
and ``oncely export crontab`` (jobs written back as a crontab).

Importing itself creates shell jobs, which only admins may do; it belongs with the service
layer that checks who is asking, not here.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TextIO

import click

from oncely.cli.errors import EXIT_INVALID
from oncely.domain.actions import ShellAction
from oncely.domain.crontab import ExportItem, parse_crontab, render_crontab
from oncely.domain.describe import schedule_in_words
from oncely.domain.errors import InvalidInput, OncelyError
from oncely.domain.jobs import Job
from oncely.domain.schedule import CronSchedule, next_fire, schedule_to_dict

_PAGE = 500


def _fail(message: str, code: int = EXIT_INVALID) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


@click.group("crontab")
def crontab_group() -> None:
    """Read crontabs (see also: oncely export crontab)."""


@crontab_group.command("check")
@click.argument("file", type=click.File("r", encoding="utf-8"))
@click.option("--system", is_flag=True, help="Lines have a user column (/etc/crontab, cron.d).")
@click.option(
    "--tz",
    "tz",
    default="UTC",
    show_default=True,
    help="The zone of lines before any CRON_TZ/TZ (cron uses the machine's).",
)
@click.option("--json", "as_json", is_flag=True)
def crontab_check(file: TextIO, system: bool, tz: str, as_json: bool) -> None:
    """Show the jobs a crontab becomes and the lines that cannot be imported (exit 2 if any).

    Nothing is created. FILE may be - for standard input."""
    try:
        parsed = parse_crontab(file.read(), system=system, timezone=tz)
    except InvalidInput as exc:
        _fail(str(exc))
        return
    now = datetime.now(UTC)
    if as_json:
        data = {
            "jobs": [
                {
                    "line": j.line,
                    "name": j.name,
                    "schedule": schedule_to_dict(j.schedule),
                    "words": schedule_in_words(j.schedule),
                    "next_fire": _iso(next_fire(j.schedule, now)),
                    "argv": list(j.action.argv),
                    "stdin": j.action.stdin,
                    "env": dict(j.action.env),
                    "user": j.user,
                    "mailto": j.mailto,
                    "warnings": list(j.warnings),
                }
                for j in parsed.jobs
            ],
            "problems": [
                {"line": p.line, "text": p.text, "reason": p.reason} for p in parsed.problems
            ],
        }
        click.echo(json.dumps(data, indent=2))
    else:
        for job in parsed.jobs:
            click.echo(f"line {job.line}: {job.name}")
            click.echo(f"  when:    {schedule_in_words(job.schedule)}")
            click.echo(f"  next:    {_iso(next_fire(job.schedule, now)) or '-'}")
            click.echo(f"  runs:    {json.dumps(list(job.action.argv))}")
            if job.action.stdin is not None:
                click.echo(f"  stdin:   {json.dumps(job.action.stdin)}")
            for warning in job.warnings:
                click.echo(f"  warning: {warning}")
        for problem in parsed.problems:
            click.echo(f"line {problem.line}: cannot import: {problem.reason}", err=True)
        click.echo(
            f"{len(parsed.jobs)} job{'s' if len(parsed.jobs) != 1 else ''}, "
            f"{len(parsed.problems)} line{'s' if len(parsed.problems) != 1 else ''} "
            "that cannot be imported",
            err=True,
        )
    if parsed.problems:
        sys.exit(EXIT_INVALID)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


@click.group("export")
def export_group() -> None:
    """Write jobs out in other formats."""


def _all_jobs(ctx: click.Context) -> Iterator[Job]:
    # Imported here: the pure commands above must not need a store or settings.
    from oncely.app import App
    from oncely.config import load_settings

    obj = ctx.find_root().obj or {}
    settings = load_settings(obj.get("config"), store=obj.get("store"))
    app = App(settings=settings, owner=obj.get("owner") or "default")
    try:
        after: str | None = None
        while True:
            page = app.list_jobs(limit=_PAGE, after_name=after)
            yield from page
            if len(page) < _PAGE:
                return
            after = page[-1].name
    finally:
        app.close()


@export_group.command("crontab")
@click.option("--user", default=None, help="Write a system crontab with this user column.")
@click.option("--include-paused", is_flag=True, help="Export paused jobs too (as active lines).")
@click.option("--output", "-o", type=click.File("w", encoding="utf-8"), default="-")
@click.pass_context
def export_crontab(
    ctx: click.Context, user: str | None, include_paused: bool, output: TextIO
) -> None:
    """Write this owner's cron shell jobs as a crontab (CRON_TZ lines included).

    Jobs cron cannot express (other actions, intervals, seconds, bounds, jitter...) are left
    out and named on standard error."""
    items: list[ExportItem] = []
    left_out: list[str] = []
    try:
        for job in _all_jobs(ctx):
            reason = _why_not(job, include_paused)
            if reason is not None:
                left_out.append(f"{job.name}: {reason}")
                continue
            assert isinstance(job.schedule, CronSchedule)
            assert isinstance(job.action, ShellAction)
            items.append(ExportItem(job.name, job.schedule, job.action, user))
    except OncelyError as exc:
        _fail(str(exc), 1)
    # Fewer variables first: crontab variables only accumulate, so this leaves out the fewest.
    items.sort(key=lambda i: (len(i.action.env), sorted(i.action.env.items()), i.schedule.timezone))

    def report(item: ExportItem, exc: InvalidInput) -> None:
        left_out.append(f"{item.name}: {exc}")

    text = render_crontab(items, header="Written by oncely export crontab.", on_error=report)
    output.write(text)
    for line in left_out:
        click.echo(f"left out {line}", err=True)


def _why_not(job: Job, include_paused: bool) -> str | None:
    if job.paused and not include_paused:
        return "paused (--include-paused exports it)"
    if not isinstance(job.schedule, CronSchedule):
        return f"an {job.schedule.kind} schedule (cron has no {job.schedule.kind})"
    if not isinstance(job.action, ShellAction):
        return f"a {job.action.kind} action (only shell actions have a crontab form)"
    return None

"""``oncely import crontab``, ``oncely import json`` and ``oncely export json``: moving jobs in
and out, through the service layer (``oncely.service.imports``) like every other change."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, TextIO

import click

from oncely.cli.crontab import _all_jobs, export_group
from oncely.cli.errors import EXIT_INVALID, cli_errors
from oncely.domain.crontab import CrontabProblem
from oncely.domain.describe import schedule_in_words
from oncely.domain.jobsfile import dump_jobs
from oncely.domain.schedule import schedule_to_dict
from oncely.service.imports import ImportReport


def _local_only(ctx: click.Context) -> None:
    if (ctx.find_root().obj or {}).get("server"):
        # Acting on the local store when a server was named would read or change other jobs.
        click.echo(
            f"error: oncely {ctx.command_path.split(' ', 1)[-1]} works on a local store "
            "(--store); against a server use its REST API (see docs/schedules.md)",
            err=True,
        )
        sys.exit(EXIT_INVALID)


@contextmanager
def _app(ctx: click.Context) -> Iterator[Any]:
    from oncely.app import App
    from oncely.config import load_settings

    obj = ctx.find_root().obj or {}
    _local_only(ctx)
    with cli_errors():
        settings = load_settings(obj.get("config"), store=obj.get("store"))
    app = App(settings=settings, owner=obj.get("owner") or "default")
    try:
        yield app
    finally:
        app.close()


@click.group("import")
def import_group() -> None:
    """Create or update jobs from a crontab or a jobs file (see: oncely export)."""


@import_group.command("crontab")
@click.argument("file", type=click.File("r", encoding="utf-8"))
@click.option("--system", is_flag=True, help="Lines have a user column (/etc/crontab, cron.d).")
@click.option(
    "--tz",
    "tz",
    default="UTC",
    show_default=True,
    help="The zone of lines before any CRON_TZ/TZ (cron uses the machine's).",
)
@click.option("--dry-run", is_flag=True, help="Show what would change; change nothing.")
@click.option(
    "--skip-invalid",
    is_flag=True,
    help="Import the lines that can be, leaving out those that cannot (listed).",
)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def import_crontab(
    ctx: click.Context,
    file: TextIO,
    system: bool,
    tz: str,
    dry_run: bool,
    skip_invalid: bool,
    as_json: bool,
) -> None:
    """Make each line of a crontab a shell job of this owner (admins only; the server must
    allow shell actions). Importing the same file again changes nothing; a changed line
    updates its job. If any line cannot be imported, nothing is (exit 2) unless
    --skip-invalid. FILE may be - for standard input."""
    text = file.read()
    with _app(ctx) as app, cli_errors():
        report = app.service.imports.crontab(
            app.principal,
            text,
            system=system,
            timezone=tz,
            dry_run=dry_run,
            skip_invalid=skip_invalid,
        )
    _show(report, as_json)
    if report.problems and not skip_invalid:
        sys.exit(EXIT_INVALID)


def _show(report: ImportReport, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(_report_json(report), indent=2))
        return
    verb = {"create": "create", "update": "update", "unchanged": "unchanged"}
    for job in report.jobs:
        click.echo(f"{verb[job.status]:<9} line {job.line}: {job.name}")
        click.echo(f"  when:    {schedule_in_words(job.schedule)}")
        click.echo(f"  next:    {', '.join(_iso(f) for f in job.next_fires) or '-'}")
        click.echo(f"  runs:    {json.dumps(list(job.action.argv))}")
        for warning in job.warnings:
            click.echo(f"  warning: {warning}")
    for problem in report.problems:
        click.echo(f"line {problem.line}: cannot import: {problem.reason}", err=True)
    for warning in report.warnings:
        click.echo(f"warning: {warning}", err=True)
    would = "" if report.applied else "would be "
    click.echo(
        f"{'dry run: ' if not report.applied else ''}"
        f"{report.count('create')} {would}created, {report.count('update')} {would}updated, "
        f"{report.count('unchanged')} unchanged, {len(report.problems)} "
        f"line{'s' if len(report.problems) != 1 else ''} not imported",
        err=True,
    )


def _report_json(report: ImportReport) -> dict[str, Any]:
    return {
        "applied": report.applied,
        "jobs": [
            {
                "line": j.line,
                "name": j.name,
                "status": j.status,
                "schedule": schedule_to_dict(j.schedule),
                "words": schedule_in_words(j.schedule),
                "next_fires": [_iso(f) for f in j.next_fires],
                "argv": list(j.action.argv),
                "stdin": j.action.stdin,
                "env": dict(j.action.env),
                "warnings": list(j.warnings),
            }
            for j in report.jobs
        ],
        "problems": [_problem(p) for p in report.problems],
        "warnings": list(report.warnings),
    }


def _problem(p: CrontabProblem) -> dict[str, Any]:
    return {"line": p.line, "text": p.text, "reason": p.reason}


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


@import_group.command("json")
@click.argument("file", type=click.File("r", encoding="utf-8"))
@click.option("--dry-run", is_flag=True, help="Show what would change; change nothing.")
@click.pass_context
def import_json(ctx: click.Context, file: TextIO, dry_run: bool) -> None:
    """Create or update this owner's jobs from a file written by oncely export json (by
    name; identical jobs are left alone; all or nothing). FILE may be -."""
    text = file.read()
    with _app(ctx) as app, cli_errors():
        report = app.service.imports.jobs_json(app.principal, text, dry_run=dry_run)
    would = "" if report.applied else "would be "
    for name in report.created:
        click.echo(f"create    {name}")
    for name in report.updated:
        click.echo(f"update    {name}")
    click.echo(
        f"{len(report.created)} {would}created, {len(report.updated)} {would}updated, "
        f"{len(report.unchanged)} unchanged",
        err=True,
    )


@export_group.command("json")
@click.option("--output", "-o", type=click.File("w", encoding="utf-8"), default="-")
@click.pass_context
def export_json(ctx: click.Context, output: TextIO) -> None:
    """Write every job of this owner as JSON (every field but ids and timestamps), for
    backups and moving between stores: oncely import json reads it back."""
    _local_only(ctx)
    with cli_errors():
        jobs = list(_all_jobs(ctx))
    output.write(dump_jobs(jobs))

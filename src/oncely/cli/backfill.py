"""``oncely jobs backfill``, ``oncely jobs backfills`` and ``oncely jobs backfill-cancel``, on
the local store, through the service layer (``oncely.service.backfills``)."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from typing import Any

import click

from oncely.cli.errors import cli_errors
from oncely.cli.imports import _app
from oncely.domain.backfill import DEFAULT_RATE, Backfill


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def _backfill_json(b: Backfill) -> dict[str, Any]:
    return {
        "id": b.id,
        "job_id": b.job_id,
        "start": _iso(b.start),
        "end": _iso(b.end),
        "rate": b.rate,
        "fires": b.fires,
        "created": b.created,
        "state": b.state,
        "created_at": _iso(b.created_at),
        "created_by": b.created_by,
        "cancelled_at": _iso(b.cancelled_at),
        "cancelled": b.cancelled,
    }


@click.command("backfill")
@click.argument("job")
@click.option("--from", "start", required=True, help="Start of the period (ISO 8601, with offset).")
@click.option("--to", "end", required=True, help="End of the period, inclusive (in the past).")
@click.option(
    "--rate",
    type=float,
    default=DEFAULT_RATE,
    show_default=True,
    help="Runs per second: the runs become due this far apart, oldest first.",
)
@click.option("--yes", is_flag=True, help="Create the runs (without it, only show the fires).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def backfill_command(
    ctx: click.Context, job: str, start: str, end: str, rate: float, yes: bool, as_json: bool
) -> None:
    """Run JOB's fires of a past period: first shows them (count, first, last, a sample);
    with --yes creates them as runs, each fire at most once (a fire that already has a run,
    from its time or an earlier backfill, is left alone), under the job's overlap policy."""
    with _app(ctx) as app, cli_errors():
        plan = app.service.backfills.preview(app.principal, job, start, end, rate=rate)
        made = (
            app.service.backfills.create(app.principal, job, start, end, rate=rate) if yes else None
        )
    if as_json:
        out: dict[str, Any] = {
            "job": plan.job.name,
            "count": plan.count,
            "first": _iso(plan.fires[0]),
            "last": _iso(plan.fires[-1]),
            "sample": [_iso(f) for f in plan.sample],
            "backfill": None if made is None else _backfill_json(made),
        }
        click.echo(json.dumps(out, indent=2))
        return
    click.echo(f"job:    {plan.job.name}")
    click.echo(f"fires:  {plan.count}")
    click.echo(f"first:  {_iso(plan.fires[0])}")
    click.echo(f"last:   {_iso(plan.fires[-1])}")
    shown = plan.sample
    click.echo("sample: " + ", ".join(str(_iso(f)) for f in shown[: len(shown) // 2 or 1]))
    if len(shown) > 1:
        click.echo("        " + ", ".join(str(_iso(f)) for f in shown[len(shown) // 2 or 1 :]))
    if made is None:
        seconds = plan.count / plan.rate
        click.echo(
            f"nothing created: add --yes to create them (due over {seconds:.0f} s at "
            f"{plan.rate:g} per second)",
            err=True,
        )
        return
    click.echo(
        f"backfill {made.id}: {made.created} runs created, "
        f"{made.fires - made.created} fires already had one"
    )


@click.command("backfills")
@click.argument("job")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def backfills_command(ctx: click.Context, job: str, as_json: bool) -> None:
    """List JOB's backfills, newest first."""
    with _app(ctx) as app, cli_errors():
        found = app.service.backfills.list(app.principal, job)
    if as_json:
        click.echo(json.dumps([_backfill_json(b) for b in found], indent=2))
        return
    for b in found:
        click.echo(
            f"{b.id}  {b.state:<9} {_iso(b.start)} .. {_iso(b.end)}  "
            f"{b.created}/{b.fires} created, {b.cancelled} cancelled"
        )
    if not found:
        click.echo("no backfills", err=True)


@click.command("backfill-cancel")
@click.argument("backfill_id")
@click.pass_context
def backfill_cancel_command(ctx: click.Context, backfill_id: str) -> None:
    """Cancel a backfill: its runs that have not started are cancelled."""
    with _app(ctx) as app, cli_errors():
        done = app.service.backfills.cancel(app.principal, backfill_id)
    click.echo(f"backfill {done.id} cancelled: {done.cancelled} runs cancelled")


def register(group: click.Group) -> None:
    jobs = group.commands.get("jobs")
    if not isinstance(jobs, click.Group):  # pragma: no cover - the CLI always has it
        sys.exit("oncely: no jobs command group")
    for command in (backfill_command, backfills_command, backfill_cancel_command):
        jobs.add_command(command)

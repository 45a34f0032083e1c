"""``oncely preview``: a schedule in words and its next fires, with DST changes flagged.

Pure: no store is opened, so it works before anything is deployed. Exit codes as the rest of the
``oncely`` command: 0 ok, 2 invalid input.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import click

from oncely.domain.describe import schedule_in_words
from oncely.domain.errors import InvalidInput
from oncely.domain.preview import MAX_PREVIEW, DstDay, PreviewEntry, dst_days, preview
from oncely.domain.schedule import CronSchedule, Schedule, make_schedule, schedule_to_dict

EXIT_INVALID = 2


@contextmanager
def _invalid_input() -> Iterator[None]:
    try:
        yield
    except InvalidInput as exc:
        where = f" ({exc.field})" if exc.field else ""
        click.echo(f"error{where}: {exc}", err=True)
        sys.exit(EXIT_INVALID)


def _instant(text: str | None, field: str) -> datetime:
    if text is None:
        return datetime.now(UTC)
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(
            f'{field} "{text}" is not an ISO 8601 date-time such as 2030-06-01T09:00:00Z',
            field=field,
        ) from None
    if value.tzinfo is None:
        raise InvalidInput(f'{field} "{text}" has no UTC offset (add Z or +02:00)', field=field)
    return value.astimezone(UTC)


def _entry_dict(entry: PreviewEntry) -> dict[str, Any]:
    return {
        "utc": entry.utc.isoformat().replace("+00:00", "Z"),
        "local": entry.local.isoformat(),
        "wall": entry.wall.isoformat(),
        "fires": entry.fires,
        "dst": entry.dst,
        "note": entry.note,
    }


def _day_dict(day: DstDay) -> dict[str, Any]:
    return {
        "date": day.day.isoformat(),
        "flag": day.flag,
        "change_at": day.change.at.isoformat().replace("+00:00", "Z"),
        "offset_before": day.change.before.total_seconds(),
        "offset_after": day.change.after.total_seconds(),
        "walls": [w.time().isoformat() for w in day.walls],
        "instants": [i.isoformat().replace("+00:00", "Z") for i in day.instants],
        "note": day.note,
    }


def _entry_line(entry: PreviewEntry) -> str:
    local = f"{entry.local:%a %Y-%m-%d %H:%M:%S} {entry.local.tzname() or ''}".rstrip()
    utc = f"{entry.utc:%Y-%m-%d %H:%M:%S}Z"
    line = f"  {local:32} {utc}"
    if entry.dst is not None:
        mark = "NOT FIRED, " if not entry.fires else ""
        line += f"  [{mark}{entry.dst}] {entry.note}"
    return line


@click.command("preview")
@click.argument("cron", required=False)
@click.option("--job", "job_ref", default=None, help="Preview a stored job (name or id).")
@click.option("--every", help="An interval instead of cron: 90s, 5m, 1h30m.")
@click.option("--at", "at", help="One instant instead of cron, ISO 8601 with offset.")
@click.option(
    "--tz",
    "--timezone",
    "tz",
    default="UTC",
    show_default=True,
    help="The job's time zone (for --every/--at: the zone to show times in).",
)
@click.option("--dst-gap", type=click.Choice(["shift", "skip"]), default="shift", show_default=True)
@click.option(
    "--dst-fold", type=click.Choice(["first", "last", "both"]), default="first", show_default=True
)
@click.option("--start", default=None, help="No fires before this instant (ISO 8601).")
@click.option("--end", default=None, help="No fires after this instant (ISO 8601).")
@click.option("--jitter", default=None, help="Each fire delayed by up to this long: 30s.")
@click.option("--anchor", default=None, help="--every counts from this instant (default: now).")
@click.option("--from", "from_", default=None, help="Preview from this instant (default: now).")
@click.option("--count", type=click.IntRange(1, MAX_PREVIEW), default=10, show_default=True)
@click.option("--dst-days", is_flag=True, help="List the days of --year a DST change affects.")
@click.option("--year", type=click.IntRange(1900, 9000), default=None, help="For --dst-days.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def preview_command(
    ctx: click.Context,
    cron: str | None,
    job_ref: str | None,
    every: str | None,
    at: str | None,
    tz: str,
    dst_gap: str,
    dst_fold: str,
    start: str | None,
    end: str | None,
    jitter: str | None,
    anchor: str | None,
    from_: str | None,
    count: int,
    dst_days: bool,
    year: int | None,
    as_json: bool,
) -> None:
    """Preview a schedule: in words, its next fires, DST changes.

    Fires are shown in the zone and in UTC; a fire a DST change moves, skips or doubles (under
    --dst-gap and --dst-fold) is flagged.

    \b
    oncely preview "0 2 * * *" --tz America/New_York --count 10
    oncely preview "0 2 * * *" --tz America/New_York --dst-days --year 2027
    oncely preview --every 5m
    oncely preview --job "nightly backup"
    """
    with _invalid_input():
        after = _instant(from_, "from")
        schedule: Schedule
        if job_ref is not None:
            if cron is not None or every is not None or at is not None:
                raise InvalidInput("give a job or a schedule, not both", field="job")
            schedule = _stored_schedule(ctx, job_ref)
        else:
            is_cron = every is None and at is None
            schedule = make_schedule(
                cron=cron,
                at=at,
                every=every,
                timezone=tz if is_cron else "UTC",
                dst_gap=dst_gap,
                dst_fold=dst_fold,
                start=start,
                end=end,
                jitter=jitter,
                anchor=anchor,
                now=after,
            )
        shown_zone = _shown_zone(schedule, tz)
        if dst_days:
            _show_dst_days(schedule, schedule_in_words(schedule), year or after.year, as_json)
            return
        entries = preview(schedule, after, count, zone=shown_zone)
    if as_json:
        data = {"schedule": schedule_to_dict(schedule), **preview_dict(schedule, entries, tz)}
        click.echo(json.dumps(data, indent=2))
        return
    echo_preview(schedule, entries, after, tz)


def preview_dict(
    schedule: Schedule, entries: list[PreviewEntry], tz: str = "UTC"
) -> dict[str, Any]:
    """The schedule in words and its fires, for ``--json`` (here and in ``oncely jobs show``)."""
    return {
        "words": schedule_in_words(schedule),
        "timezone": _shown_zone(schedule, tz),
        "fires": [_entry_dict(e) for e in entries],
    }


def echo_preview(
    schedule: Schedule,
    entries: list[PreviewEntry],
    after: datetime,
    tz: str = "UTC",
    *,
    heading: str = "Next",
) -> None:
    """Print the schedule in words, then each fire in its zone and in UTC with DST flags (here
    and in ``oncely jobs show``)."""
    shown_zone = _shown_zone(schedule, tz)
    click.echo(schedule_in_words(schedule))
    fired = sum(1 for e in entries if e.fires)
    if not entries:
        click.echo("No fires after " + after.isoformat(timespec="seconds"))
        return
    columns = "UTC" if shown_zone == "UTC" else f"{shown_zone}, then UTC"
    click.echo(f"{heading} {fired} fire{'s' if fired != 1 else ''} ({columns}):")
    for entry in entries:
        click.echo(_entry_line(entry))


def _shown_zone(schedule: Schedule, tz: str) -> str:
    """A cron schedule is shown in its own zone; ``at``/``every`` in the one asked for."""
    return schedule.timezone if isinstance(schedule, CronSchedule) else tz


def _stored_schedule(ctx: click.Context, ref: str) -> Schedule:
    # Imported here: previewing a schedule given on the command line needs no store.
    from oncely.app import App
    from oncely.config import load_settings
    from oncely.domain.errors import NotFound

    obj = ctx.find_root().obj or {}
    app = App(
        settings=load_settings(obj.get("config"), store=obj.get("store")),
        owner=obj.get("owner") or "default",
    )
    try:
        return app.get_job(ref).schedule
    except NotFound as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(3)
    finally:
        app.close()


def _show_dst_days(schedule: Any, words: str, year: int, as_json: bool) -> None:
    days = dst_days(schedule, year)
    if as_json:
        data = {
            "schedule": schedule_to_dict(schedule),
            "words": words,
            "year": year,
            "days": [_day_dict(d) for d in days],
        }
        click.echo(json.dumps(data, indent=2))
        return
    click.echo(words)
    if not isinstance(schedule, CronSchedule):
        click.echo(f"No DST days in {year}: this schedule counts absolute time.")
        return
    if not days:
        click.echo(f"No DST days in {year}: no clock change in {schedule.timezone} touches it.")
        return
    click.echo(f"Days in {year} when a clock change in {schedule.timezone} affects it:")
    for day in days:
        click.echo(f"  {day.day:%a %Y-%m-%d}  [{day.flag}] {day.note}")

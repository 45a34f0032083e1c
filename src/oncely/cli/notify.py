"""``oncely notify``: notification channels and rules, the notifications sent (with their
delivery tries), and the jobs expected but missing (dead-man's switch).

Like the other local commands these act with the store's own credentials, as ``--owner``;
they go through the service layer, so the same checks apply as over REST (channel URLs
checked and never printed unmasked; a webhook's secret printed once, when it is made).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import click

from oncely import wire
from oncely.app import App
from oncely.cli.errors import cli_errors
from oncely.config import load_settings
from oncely.domain.principal import system_principal
from oncely.service.notifications import NotificationService


@contextmanager
def _service(ctx: click.Context) -> Iterator[tuple[NotificationService, App]]:
    obj = ctx.obj or {}
    with cli_errors():
        settings = load_settings(obj.get("config"), store=obj.get("store"))
        app = App(settings=settings, owner=obj.get("owner") or "default")
    try:
        with cli_errors():
            yield app.service.notifications, app
    finally:
        app.close()


def _who(app: App) -> Any:
    return system_principal(app.owner)


def _emit(value: Any, as_json: bool, lines: list[str]) -> None:
    if as_json:
        click.echo(json.dumps(value, indent=2, default=str))
    else:
        for line in lines:
            click.echo(line)


@click.group("notify")
def notify_group() -> None:
    """Notifications: channels, rules, what was sent, and missing jobs."""


@notify_group.group("channels")
def channels() -> None:
    """Where notifications go (webhooks, and everything Apprise reaches)."""


@channels.command("add")
@click.argument("name")
@click.argument("url")
@click.option(
    "--kind",
    type=click.Choice(["webhook", "apprise", "email"]),
    default="webhook",
    show_default=True,
)
@click.option("--secret", help="The webhook signing secret (made for you if not given).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def channels_add(
    ctx: click.Context, name: str, url: str, kind: str, secret: str | None, as_json: bool
) -> None:
    """Make a channel. URL is a secret: it is never printed back unmasked."""
    with _service(ctx) as (notes, app):
        made = notes.channel_create(_who(app), name, kind, url, secret)
    out = wire.ChannelCreated(**wire.channel_out(made.channel).model_dump(), secret=made.secret)
    lines = [f"channel {out.name} ({out.id}): {out.kind} {out.url}"]
    if made.secret:
        lines.append(f"signing secret (shown once): {made.secret}")
    _emit(out.model_dump(mode="json"), as_json, lines)


@channels.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def channels_list(ctx: click.Context, as_json: bool) -> None:
    with _service(ctx) as (notes, app):
        found = [wire.channel_out(c) for c in notes.channel_list(_who(app))]
    _emit(
        [c.model_dump(mode="json") for c in found],
        as_json,
        [f"{c.name}\t{c.kind}\t{c.url}\t{c.id}" for c in found],
    )


@channels.command("rm")
@click.argument("channel")
@click.pass_context
def channels_rm(ctx: click.Context, channel: str) -> None:
    """Delete a channel (id or name) and its rules."""
    with _service(ctx) as (notes, app):
        notes.channel_delete(_who(app), channel)
    click.echo(f"deleted channel {channel}")


@notify_group.group("rules")
def rules() -> None:
    """When to notify: on dead, failure, recovery, missed or deadman."""


@rules.command("add")
@click.argument("channel")
@click.option(
    "--on",
    "events",
    required=True,
    help="Comma-separated: dead, failure, recovery, missed, deadman.",
)
@click.option("--job", help="One job (id or name); every job of the owner if not given.")
@click.option("--global", "is_global", is_flag=True, help="Every owner's jobs (admins).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def rules_add(
    ctx: click.Context, channel: str, events: str, job: str | None, is_global: bool, as_json: bool
) -> None:
    with _service(ctx) as (notes, app):
        rule = wire.rule_out(
            notes.rule_create(_who(app), channel, events, job=job, is_global=is_global)
        )
    scope = "every job" if rule.is_global else (rule.job_id or f"every job of {rule.owner}")
    _emit(
        rule.model_dump(mode="json"),
        as_json,
        [f"rule {rule.id}: {','.join(rule.events)} of {scope} -> {rule.channel_id}"],
    )


@rules.command("list")
@click.option("--job", help="Only this job's rules (id or name).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def rules_list(ctx: click.Context, job: str | None, as_json: bool) -> None:
    with _service(ctx) as (notes, app):
        found = [wire.rule_out(r) for r in notes.rule_list(_who(app), job=job)]
    _emit(
        [r.model_dump(mode="json") for r in found],
        as_json,
        [
            f"{r.id}\t{','.join(r.events)}\t"
            f"{'global' if r.is_global else r.job_id or 'owner'}\t{r.channel_id}"
            for r in found
        ],
    )


@rules.command("rm")
@click.argument("rule_id")
@click.pass_context
def rules_rm(ctx: click.Context, rule_id: str) -> None:
    with _service(ctx) as (notes, app):
        notes.rule_delete(_who(app), rule_id)
    click.echo(f"deleted rule {rule_id}")


@notify_group.command("list")
@click.option("--state", type=click.Choice(["pending", "delivered", "failed"]))
@click.option("--job", help="Only this job's (id or name).")
@click.option("--limit", default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def notify_list(
    ctx: click.Context, state: str | None, job: str | None, limit: int, as_json: bool
) -> None:
    """Notifications, newest first."""
    with _service(ctx) as (notes, app):
        found = [
            wire.notification_out(n)
            for n in notes.notifications(_who(app), state=state, job=job, limit=limit)
        ]
    _emit(
        [n.model_dump(mode="json") for n in found],
        as_json,
        [
            f"{n.created_at:%Y-%m-%d %H:%M:%S}  {n.event:<8} {n.job_name}  {n.state}"
            f" tries={n.attempts}  {n.id}"
            + (f"  last error: {n.last_error}" if n.last_error else "")
            for n in found
        ],
    )


@notify_group.command("show")
@click.argument("notification_id")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def notify_show(ctx: click.Context, notification_id: str, as_json: bool) -> None:
    """A notification and every delivery try."""
    with _service(ctx) as (notes, app):
        n = wire.notification_out(notes.get(_who(app), notification_id))
        tries = [wire.delivery_out(d) for d in notes.deliveries(_who(app), notification_id)]
    detail = wire.NotificationDetail(**n.model_dump(), deliveries=tries)
    lines = [f"{n.event} of {n.job_name} ({n.job_id}) run={n.run_id} state={n.state}"]
    lines += [
        f"  try {d.attempt} at {d.at:%Y-%m-%d %H:%M:%S}: "
        f"{'ok' if d.ok else d.error} ({d.duration_ms} ms)"
        for d in tries
    ]
    _emit(detail.model_dump(mode="json"), as_json, lines)


@notify_group.command("missing")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def notify_missing(ctx: click.Context, as_json: bool) -> None:
    """Jobs expected but missing: their dead-man's deadline passed without a success."""
    now = datetime.now(UTC)
    with _service(ctx) as (notes, app):
        found = [wire.missing_out(m, now) for m in notes.missing(_who(app))]
    _emit(
        [m.model_dump(mode="json") for m in found],
        as_json,
        [
            f"{m.name}\toverdue {int(m.overdue_seconds)} s\tdeadline {int(m.deadline)} s"
            + ("\tPAUSED" if m.paused else "")
            for m in found
        ]
        or ["no job is missing"],
    )


def register(main: click.Group) -> None:
    main.add_command(notify_group)

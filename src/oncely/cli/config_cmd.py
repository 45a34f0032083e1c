"""``oncely config show``: the effective configuration, where each value came from, and
every secret masked (passwords in store and SQL connection URLs)."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from typing import Any

import click

from oncely.config import SECRET_FIELDS, Settings, load_settings
from oncely.domain.errors import InvalidInput
from oncely.observe.redact import masked_url


def shown(settings: Settings) -> dict[str, Any]:
    """The settings as plain values, secrets masked."""
    out: dict[str, Any] = {}
    for name in Settings.model_fields:
        value = getattr(settings, name)
        if name in SECRET_FIELDS:
            value = (
                {k: masked_url(v) for k, v in value.items()}
                if isinstance(value, Mapping)
                else masked_url(value)
            )
        elif isinstance(value, Mapping):
            value = dict(value)
        elif isinstance(value, tuple):
            value = list(value)
        out[name] = value
    return out


@click.group("config")
def config_group() -> None:
    """The server configuration."""


@config_group.command("show")
@click.option("--json", "as_json", is_flag=True, help="As a JSON object (no origins).")
@click.pass_context
def config_show(ctx: click.Context, as_json: bool) -> None:
    """Print the effective configuration (file, ONCELY_* environment, flags), secrets masked."""
    obj = ctx.obj or {}
    try:
        settings = load_settings(
            obj.get("config"),
            store=obj.get("store"),
            log_level=obj.get("log_level"),
            log_format=obj.get("log_format"),
        )
    except InvalidInput as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    values = shown(settings)
    if as_json:
        click.echo(json.dumps(values, indent=2))
        return
    for name, value in values.items():
        click.echo(f"{name} = {json.dumps(value)}  # {settings.origin(name)}")


def register(group: click.Group) -> None:
    group.add_command(config_group)

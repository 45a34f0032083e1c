"""The commands about time and crontabs, registered on the ``oncely`` group in one call:
``oncely preview``, ``oncely crontab check``, ``oncely export crontab|json``,
``oncely import crontab|json``, ``oncely jobs backfill|backfills|backfill-cancel``."""

from __future__ import annotations

import click

from oncely.cli.backfill import register as register_backfill
from oncely.cli.crontab import crontab_group, export_group
from oncely.cli.imports import import_group
from oncely.cli.preview import preview_command


def register(group: click.Group) -> None:
    for command in (preview_command, crontab_group, export_group, import_group):
        group.add_command(command)
    register_backfill(group)

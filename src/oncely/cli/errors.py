"""The CLI's exit codes, and the one place that turns oncely's errors into them."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import click

from oncely.domain.errors import Conflict, InvalidInput, NotFound, OncelyError, PermissionDenied

EXIT_INVALID, EXIT_NOT_FOUND, EXIT_CONFLICT, EXIT_FORBIDDEN = 2, 3, 4, 5


@contextmanager
def cli_errors(using: str | None = None) -> Iterator[None]:
    """Exit with a message and a code for each kind of error; a lookup that finds nothing
    says which store or server it looked in (``using``)."""
    try:
        yield
    except InvalidInput as exc:
        where = f" ({exc.field})" if exc.field else ""
        click.echo(f"error{where}: {exc}", err=True)
        sys.exit(EXIT_INVALID)
    except NotFound as exc:
        suffix = f"; looked in {using}" if using else ""
        click.echo(f"error: {exc}{suffix}", err=True)
        sys.exit(EXIT_NOT_FOUND)
    except PermissionDenied as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_FORBIDDEN)
    except Conflict as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_CONFLICT)
    except OncelyError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)

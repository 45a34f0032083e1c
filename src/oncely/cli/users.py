"""``oncely users`` and ``oncely apikeys``: accounts and API keys, managed locally.

These commands act with the store's own credentials (whoever can run them can read the
database anyway), so they need no login; the audit log records them as ``cli:<os user>``.
Passwords are read from a hidden prompt or, with ``--password-stdin``, from the first line of
standard input: never from an argument, where ``ps`` and shell history would show them.
"""

from __future__ import annotations

import getpass
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import click

from oncely.auth import Authenticator
from oncely.cli.errors import EXIT_INVALID, cli_errors
from oncely.config import load_settings
from oncely.domain.errors import InvalidInput, NotFound
from oncely.domain.principal import Role
from oncely.domain.users import ApiKey, User, validate_role


@contextmanager
def _auth(ctx: click.Context) -> Iterator[Authenticator]:
    from oncely import compose

    obj = ctx.obj or {}
    with cli_errors():
        settings = load_settings(obj.get("config"), store=obj.get("store"))
        store = compose.open_store(settings.store)
    try:
        with cli_errors():
            yield Authenticator(
                store, compose.pick_clock(store), token_ttl=timedelta(seconds=settings.token_ttl)
            )
    finally:
        store.close()


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        password = line[:-1] if line.endswith("\n") else line
        if not password:
            raise InvalidInput("no password on standard input", field="password")
        return password
    value: str = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    return value


def _user(auth: Authenticator, name: str) -> User:
    user = auth.store.user_get_by_name(name)
    if user is None:
        raise NotFound(f"no user {name!r}")
    return user


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat(timespec="seconds")


def _user_dict(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "name": user.name,
        "role": user.role.value,
        "owner": user.owner,
        "created_at": _iso(user.created_at),
        "disabled_at": _iso(user.disabled_at),
    }


def _key_dict(key: ApiKey, user: str) -> dict[str, Any]:
    return {
        "id": key.id,
        "prefix": key.prefix,
        "name": key.name,
        "user": user,
        "created_at": _iso(key.created_at),
        "expires_at": _iso(key.expires_at),
        "revoked_at": _iso(key.revoked_at),
        "last_used_at": _iso(key.last_used_at),
    }


# -- users ----------------------------------------------------------------------------------


@click.group("users")
def users_group() -> None:
    """Create and manage the users of the HTTP API."""


@users_group.command("create")
@click.argument("name")
@click.option("--admin", is_flag=True, help="Same as --role admin.")
@click.option(
    "--role",
    type=click.Choice([r.value for r in Role]),
    default=None,
    help="admin, user (default: own jobs) or viewer (read only).",
)
@click.option("--owner", default=None, help="Whose jobs the user works on (default: its name).")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.pass_context
def users_create(
    ctx: click.Context,
    name: str,
    admin: bool,
    role: str | None,
    owner: str | None,
    password_stdin: bool,
) -> None:
    """Create a user (prompts for its password)."""
    if admin and role not in (None, Role.ADMIN.value):
        click.echo("error: --admin and --role disagree", err=True)
        sys.exit(EXIT_INVALID)
    chosen = Role.ADMIN if admin else validate_role(role or Role.USER.value)
    with cli_errors():
        password = _read_password(password_stdin)
    with _auth(ctx) as auth:
        user = auth.create_user(name, password, role=chosen, owner=owner, actor=_actor())
    click.echo(f"user {user.name} ({user.role.value}, owner {user.owner}) created")


@users_group.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def users_list(ctx: click.Context, as_json: bool) -> None:
    """List users."""
    with _auth(ctx) as auth:
        found: list[User] = []
        after: str | None = None
        while page := auth.store.user_list(limit=500, after_name=after):
            found += page
            after = page[-1].name
    if as_json:
        click.echo(json.dumps([_user_dict(u) for u in found], indent=2))
        return
    click.echo(f"{'NAME':24} {'ROLE':7} {'OWNER':24} STATE")
    for user in found:
        state = "disabled" if user.disabled else "active"
        click.echo(f"{user.name:24} {user.role.value:7} {user.owner:24} {state}")


def _set_disabled(ctx: click.Context, name: str, disabled: bool) -> None:
    with _auth(ctx) as auth:
        user = _user(auth, name)
        auth.store.user_disable(user.id, disabled=disabled, now=auth.clock.now(), actor=_actor())
    click.echo(f"user {name} {'disabled' if disabled else 'enabled'}")


@users_group.command("disable")
@click.argument("name")
@click.pass_context
def users_disable(ctx: click.Context, name: str) -> None:
    """Disable a user: its logins, tokens and API keys stop working at once."""
    _set_disabled(ctx, name, True)


@users_group.command("enable")
@click.argument("name")
@click.pass_context
def users_enable(ctx: click.Context, name: str) -> None:
    """Enable a disabled user again."""
    _set_disabled(ctx, name, False)


@users_group.command("set-password")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.pass_context
def users_set_password(ctx: click.Context, name: str, password_stdin: bool) -> None:
    """Set a user's password (prompts for it)."""
    with cli_errors():
        password = _read_password(password_stdin)
    with _auth(ctx) as auth:
        auth.set_password(_user(auth, name).id, password, actor=_actor())
    click.echo(f"password of {name} changed")


@users_group.command("set-role")
@click.argument("name")
@click.argument("role", type=click.Choice([r.value for r in Role]))
@click.pass_context
def users_set_role(ctx: click.Context, name: str, role: str) -> None:
    """Change a user's role (applies to its next request)."""
    with _auth(ctx) as auth:
        user = _user(auth, name)
        auth.store.user_set_role(user.id, Role(role), now=auth.clock.now(), actor=_actor())
    click.echo(f"user {name} is now {role}")


# -- API keys -------------------------------------------------------------------------------


@click.group("apikeys")
def apikeys_group() -> None:
    """Create, list and revoke API keys."""


@apikeys_group.command("create")
@click.option("--user", "user_name", required=True, help="The user the key acts as.")
@click.option("--name", "key_name", required=True, help="What the key is for (e.g. ci).")
@click.option("--expires-in-days", type=float, default=None, help="Default: never.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def apikeys_create(
    ctx: click.Context,
    user_name: str,
    key_name: str,
    expires_in_days: float | None,
    as_json: bool,
) -> None:
    """Create a key. It is printed once: only a hash of it is stored."""
    with _auth(ctx) as auth:
        user = _user(auth, user_name)
        if expires_in_days is not None and expires_in_days <= 0:
            raise InvalidInput("--expires-in-days must be positive", field="expires_in_days")
        expires = (
            None if expires_in_days is None else auth.clock.now() + timedelta(days=expires_in_days)
        )
        key, full = auth.create_api_key(user, key_name, expires_at=expires, actor=_actor())
    if as_json:
        click.echo(json.dumps({**_key_dict(key, user.name), "key": full}, indent=2))
        return
    click.echo(full)
    click.echo(
        f"API key {key.id} for {user.name}: keep it now, it will not be shown again.", err=True
    )


@apikeys_group.command("list")
@click.option("--user", "user_name", default=None, help="Only this user's keys.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def apikeys_list(ctx: click.Context, user_name: str | None, as_json: bool) -> None:
    """List keys (never the keys themselves)."""
    with _auth(ctx) as auth:
        if user_name is None:
            names = {u.id: u.name for u in auth.store.user_list(limit=1_000_000)}
            keys = auth.store.apikey_list(None, limit=1_000_000)
        else:
            user = _user(auth, user_name)
            names = {user.id: user.name}
            keys = auth.store.apikey_list(user.id, limit=1_000_000)
        now = auth.clock.now()
    rows = [_key_dict(k, names.get(k.user_id, "?")) for k in keys]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    click.echo(f"{'ID':36} {'PREFIX':12} {'USER':16} {'NAME':16} STATE")
    for key, row in zip(keys, rows, strict=True):
        state = "revoked" if key.revoked_at else "expired" if not key.usable_at(now) else "active"
        click.echo(f"{key.id:36} {key.prefix:12} {row['user']:16} {key.name[:16]:16} {state}")


@apikeys_group.command("revoke")
@click.argument("key_id")
@click.pass_context
def apikeys_revoke(ctx: click.Context, key_id: str) -> None:
    """Revoke a key (by id, or by its prefix)."""
    with _auth(ctx) as auth:
        found = auth.store.apikey_get_by_prefix(key_id)
        target = found.id if found is not None else key_id
        key = auth.store.apikey_revoke(target, now=auth.clock.now(), actor=_actor())
        if key is None:
            raise NotFound(f"no API key {key_id}")
    click.echo(f"API key {key.id} revoked")


# -- the signing key --------------------------------------------------------------------


@click.group("auth")
def auth_group() -> None:
    """Server-wide authentication settings."""


@auth_group.command("rotate-signing-key")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def auth_rotate(ctx: click.Context, yes: bool) -> None:
    """Replace the access-token signing key: every token ends (within 30 s on every API
    process) and everyone logs in again. API keys keep working."""
    if not yes:
        click.confirm("Every access token will stop working. Go on?", abort=True)
    with _auth(ctx) as auth:
        auth.rotate_signing_key(actor=_actor())
    click.echo("signing key replaced: every access token has ended")


def register(group: click.Group) -> None:
    group.add_command(users_group)
    group.add_command(apikeys_group)
    group.add_command(auth_group)

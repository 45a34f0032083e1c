"""What a job does when it fires: the action specifications and their validation.

An action is data: it is stored with the job as JSON and executed by an adapter in
``oncely.adapters.actions``. Validation here covers everything that can be decided without
knowing the server's configuration (which networks HTTP may reach, whether shell is enabled,
which SQL connections exist); the adapters check those.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from oncely.domain.errors import InvalidInput
from oncely.domain.limits import (
    MAX_ARGV_ITEMS,
    MAX_HEADERS,
    MAX_NAME_CHARS,
    MAX_STATEMENT_CHARS,
    MAX_STDIN_BYTES,
)

HTTP_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
_HEADER_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_TASK_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.:\-]*$")
_RESERVED_HEADERS = frozenset({"idempotency-key", "oncely-fencing-token", "host", "content-length"})


@dataclass(frozen=True)
class HttpAction:
    """Call a URL. Success is a status in ``success_statuses`` (default: any 2xx)."""

    url: str
    method: str = "POST"
    headers: Mapping[str, str] = field(default_factory=dict)
    body: str | None = None
    timeout: float = 30.0
    success_statuses: tuple[int, ...] = ()
    kind: Literal["http"] = "http"

    def is_success(self, status: int) -> bool:
        if self.success_statuses:
            return status in self.success_statuses
        return 200 <= status < 300


@dataclass(frozen=True)
class ShellAction:
    """Run a program as an argv list (never through a shell). Exit code 0 is success.

    ``stdin``, when given, is written to the program's standard input (then closed); without
    it the program reads /dev/null. (A crontab line's text after ``%`` becomes ``stdin``.)"""

    argv: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: str | None = None
    stdin: str | None = None
    kind: Literal["shell"] = "shell"


@dataclass(frozen=True)
class PythonAction:
    """Call a task registered with ``@app.task(name)`` in the worker's process."""

    task: str
    kind: Literal["python"] = "python"


@dataclass(frozen=True)
class SqlAction:
    """Run one statement in one transaction on a connection named in the server's config."""

    connection: str
    statement: str
    params: Mapping[str, Any] | None = None
    kind: Literal["sql"] = "sql"


@dataclass(frozen=True)
class EmailAction:
    """Send an email through the server's SMTP relay (configured by the server, never by the
    job). The run's id is the message's ``Message-ID``, so a retried attempt is the same
    message to any mail system that dedupes on it."""

    to: tuple[str, ...]
    subject: str
    body: str
    cc: tuple[str, ...] = ()
    kind: Literal["email"] = "email"


Action = HttpAction | ShellAction | PythonAction | SqlAction | EmailAction

MAX_EMAIL_RECIPIENTS = 50
MAX_EMAIL_BODY_BYTES = 256 * 1024
_ADDRESS = re.compile(r"^[^@\s<>,;\x00-\x1f]{1,64}@[A-Za-z0-9.\-]{1,253}\.[A-Za-z0-9\-]{2,63}$")


def is_email_address(text: str) -> bool:
    """The shape of an address the ``email`` action and ``email`` channels accept."""
    return bool(_ADDRESS.match(text))


def _require_str(value: object, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"{name} must be a non-empty string", field=name)
    return value


def validate_action(action: Action) -> Action:
    """Check an action for what can be checked without the server's configuration."""
    if isinstance(action, HttpAction):
        parts = urlsplit(action.url)
        if parts.scheme not in ("http", "https"):
            raise InvalidInput("http.url must start with http:// or https://", field="http.url")
        if not parts.hostname:
            raise InvalidInput("http.url has no host", field="http.url")
        if parts.username or parts.password:
            raise InvalidInput(
                "http.url must not carry credentials; use a header", field="http.url"
            )
        if action.method.upper() not in HTTP_METHODS:
            raise InvalidInput(
                f"http.method must be one of {', '.join(sorted(HTTP_METHODS))}",
                field="http.method",
            )
        if len(action.headers) > MAX_HEADERS:
            raise InvalidInput(f"at most {MAX_HEADERS} headers", field="http.headers")
        for name, value in action.headers.items():
            if not _HEADER_NAME.match(name):
                raise InvalidInput(f"invalid header name {name!r}", field="http.headers")
            if name.lower() in _RESERVED_HEADERS:
                raise InvalidInput(f"header {name!r} is set by oncely", field="http.headers")
            if "\r" in value or "\n" in value:
                raise InvalidInput(f"header {name!r} contains a newline", field="http.headers")
        if not 0 < action.timeout <= 3600:
            raise InvalidInput("http.timeout must be in (0, 3600] seconds", field="http.timeout")
        for status in action.success_statuses:
            if not 100 <= status <= 599:
                raise InvalidInput(f"invalid HTTP status {status}", field="http.success_statuses")
    elif isinstance(action, ShellAction):
        if not action.argv:
            raise InvalidInput("shell.argv must be a non-empty list", field="shell.argv")
        if len(action.argv) > MAX_ARGV_ITEMS:
            raise InvalidInput(
                f"shell.argv has more than {MAX_ARGV_ITEMS} items", field="shell.argv"
            )
        for item in action.argv:
            if not isinstance(item, str) or "\x00" in item:
                raise InvalidInput(
                    "shell.argv items must be strings without NUL", field="shell.argv"
                )
        for key, value in action.env.items():
            if not key or "=" in key or "\x00" in key or "\x00" in value:
                raise InvalidInput(f"invalid environment variable {key!r}", field="shell.env")
        if action.stdin is not None:
            if not isinstance(action.stdin, str):
                raise InvalidInput("shell.stdin must be a string", field="shell.stdin")
            if len(action.stdin.encode("utf-8", errors="replace")) > MAX_STDIN_BYTES:
                raise InvalidInput(
                    f"shell.stdin is larger than {MAX_STDIN_BYTES // 1024} KiB",
                    field="shell.stdin",
                )
    elif isinstance(action, PythonAction):
        if not _TASK_NAME.match(action.task) or len(action.task) > MAX_NAME_CHARS:
            raise InvalidInput(f"invalid task name {action.task!r}", field="task")
    elif isinstance(action, EmailAction):
        _validate_email(action)
    elif isinstance(action, SqlAction):
        _require_str(action.connection, "sql.connection")
        _require_str(action.statement, "sql.statement")
        if len(action.statement) > MAX_STATEMENT_CHARS:
            raise InvalidInput("sql.statement is too long", field="sql.statement")
    return action


def _validate_email(action: EmailAction) -> None:
    recipients = (*action.to, *action.cc)
    if not action.to:
        raise InvalidInput("email.to needs at least one address", field="email.to")
    if len(recipients) > MAX_EMAIL_RECIPIENTS:
        raise InvalidInput(
            f"at most {MAX_EMAIL_RECIPIENTS} recipients (to and cc)", field="email.to"
        )
    for where, addresses in (("email.to", action.to), ("email.cc", action.cc)):
        for address in addresses:
            if not isinstance(address, str) or not _ADDRESS.match(address):
                raise InvalidInput(f"{address!r} is not an email address", field=where)
    if not isinstance(action.subject, str) or not action.subject.strip():
        raise InvalidInput("email.subject must not be empty", field="email.subject")
    if len(action.subject) > 998 or "\r" in action.subject or "\n" in action.subject:
        raise InvalidInput(
            "email.subject must be one line of at most 998 characters", field="email.subject"
        )
    if not isinstance(action.body, str):
        raise InvalidInput("email.body must be a string", field="email.body")
    if len(action.body.encode("utf-8", errors="replace")) > MAX_EMAIL_BODY_BYTES:
        raise InvalidInput(
            f"email.body is larger than {MAX_EMAIL_BODY_BYTES // 1024} KiB", field="email.body"
        )


def action_to_dict(action: Action) -> dict[str, Any]:
    """Serialize for storage (JSON-compatible)."""
    if isinstance(action, HttpAction):
        return {
            "kind": "http",
            "url": action.url,
            "method": action.method.upper(),
            "headers": dict(action.headers),
            "body": action.body,
            "timeout": action.timeout,
            "success_statuses": list(action.success_statuses),
        }
    if isinstance(action, ShellAction):
        shell: dict[str, Any] = {
            "kind": "shell",
            "argv": list(action.argv),
            "env": dict(action.env),
            "cwd": action.cwd,
        }
        if action.stdin is not None:  # absent rather than null: older readers ignore nothing
            shell["stdin"] = action.stdin
        return shell
    if isinstance(action, PythonAction):
        return {"kind": "python", "task": action.task}
    if isinstance(action, EmailAction):
        email: dict[str, Any] = {
            "kind": "email",
            "to": list(action.to),
            "subject": action.subject,
            "body": action.body,
        }
        if action.cc:
            email["cc"] = list(action.cc)
        return email
    return {
        "kind": "sql",
        "connection": action.connection,
        "statement": action.statement,
        "params": dict(action.params) if action.params is not None else None,
    }


def action_from_dict(data: Mapping[str, Any]) -> Action:
    """Rebuild (and validate) an action from its stored or submitted form."""
    kind = data.get("kind")
    try:
        action: Action
        if kind == "http":
            action = HttpAction(
                url=data["url"],
                method=str(data.get("method", "POST")).upper(),
                headers=dict(data.get("headers") or {}),
                body=data.get("body"),
                timeout=float(data.get("timeout", 30.0)),
                success_statuses=tuple(int(s) for s in data.get("success_statuses") or ()),
            )
        elif kind == "shell":
            action = ShellAction(
                argv=tuple(data["argv"]),
                env=dict(data.get("env") or {}),
                cwd=data.get("cwd"),
                stdin=data.get("stdin"),
            )
        elif kind == "python":
            action = PythonAction(task=data["task"])
        elif kind == "email":
            to, cc = data["to"], data.get("cc") or ()
            action = EmailAction(
                to=(to,) if isinstance(to, str) else tuple(to),
                subject=data["subject"],
                body=data.get("body", ""),
                cc=(cc,) if isinstance(cc, str) else tuple(cc),
            )
        elif kind == "sql":
            action = SqlAction(
                connection=data["connection"],
                statement=data["statement"],
                params=data.get("params"),
            )
        else:
            raise InvalidInput(f"unknown action kind {kind!r}", field="action")
    except (KeyError, TypeError) as exc:
        raise InvalidInput(f"incomplete {kind} action: {exc}", field="action") from exc
    return validate_action(action)

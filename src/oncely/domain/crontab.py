"""Crontabs: read a user or system crontab into oncely job specs, and write jobs back as one.

Design note
-----------
What a line means follows Vixie cron (and cronie, which Debian, Fedora and most distributions
ship):

* Blank lines and lines whose first non-blank character is ``#`` are ignored. A ``#`` later in
  a command line is part of the command, as in cron.
* ``NAME=value`` lines (spaces around ``=`` allowed, the value optionally in matching quotes)
  set the environment of the lines *after* them. ``CRON_TZ`` and ``TZ`` also set the time zone
  those lines are read in (``TZ`` stays in the environment, as cron leaves it; ``CRON_TZ`` does
  not). ``SHELL`` picks the shell (default ``/bin/sh``). ``MAILTO`` is recorded on each job so
  the importer can turn it into a failure notification or warn; it is not put into the
  environment.
* A job line is five time fields, or a macro (``@daily``...), then (system crontabs:
  ``/etc/crontab``, ``/etc/cron.d/*``) a user name, then the command. Fields are read by
  ``oncely.domain.cron``, which follows cron's rules (names, ``7`` for Sunday, and the
  day-of-month/day-of-week rule: either may match when both are restricted).
* In the command, the first unescaped ``%`` ends the command; the text after it is the
  program's standard input, in which each further unescaped ``%`` is a newline. ``\\%`` is a
  literal ``%`` (the backslash is dropped); other backslashes are kept for the shell.
* cron runs the command with ``$SHELL -c command``; oncely runs argv lists, so the action's
  argv is ``[SHELL, "-c", command]``, with ``stdin`` from ``%``.
* ``@reboot`` is refused: oncely fires at times, not when a daemon starts.

Names. Each job is named ``<slug of the command>-<8 hex digits>``; the digits hash (user,
command as written). The schedule is *not* in the hash: importing the file again after a line's
schedule (or its ``CRON_TZ``) changed yields the same name, so the importer updates that job
instead of adding a second one. A changed command is a different job (new name). The same
(user, command) on several lines gets ``-2``, ``-3``... in file order. A line right after a
``# oncely-job: NAME`` comment (what ``render_crontab`` writes) keeps that name, so a crontab
exported from oncely imports back onto the same jobs.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from oncely.domain.actions import ShellAction, validate_action
from oncely.domain.cron import MACROS
from oncely.domain.errors import InvalidInput
from oncely.domain.jobs import validate_job_name
from oncely.domain.schedule import CronSchedule, make_schedule

__all__ = [
    "DEFAULT_SHELL",
    "Crontab",
    "CrontabJob",
    "CrontabProblem",
    "ExportItem",
    "job_name",
    "parse_crontab",
    "problems_text",
    "render_crontab",
    "render_line",
    "split_percent",
]

DEFAULT_SHELL = "/bin/sh"
MAX_CRONTAB_BYTES = 1024 * 1024
_NOT_ENV = frozenset({"CRON_TZ", "MAILTO", "MAILFROM"})
_ENV_LINE = re.compile(r"""^\s*(["']?)([A-Za-z_][A-Za-z0-9_]*)\1\s*=\s*(.*?)\s*$""")
_SLUG_CHARS = re.compile(r"[^a-z0-9]+")
_NAME_MARK = re.compile(r"^#\s*oncely-job:\s*(.*?)\s*$")
_MAX_SLUG = 40
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class CrontabJob:
    """One importable line: a job spec (name, schedule, shell action) and where it came from.

    ``command`` is the command as cron hands it to the shell (after ``%`` processing);
    ``user`` is the system crontab's user column (None in a user's crontab); ``mailto`` the
    ``MAILTO`` in force (None: not set, cron mails the owner; "": no mail)."""

    line: int
    text: str
    name: str
    schedule: CronSchedule
    action: ShellAction
    command: str
    user: str | None = None
    mailto: str | None = None
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class CrontabProblem:
    """A line that cannot be imported, and why."""

    line: int
    text: str
    reason: str


@dataclass(frozen=True)
class Crontab:
    jobs: tuple[CrontabJob, ...] = ()
    problems: tuple[CrontabProblem, ...] = ()


def split_percent(command: str) -> tuple[str, str | None]:
    r"""Split a crontab command at its first unescaped ``%`` as cron does: (command, stdin).

    As in Vixie cron, a backslash escapes the character after it while looking for ``%``
    (so ``\\%`` is a backslash pair, then the split); ``\%`` is a literal ``%`` (the
    backslash is dropped) and other escapes are kept for the shell. In the standard input,
    unescaped ``%`` are newlines. None when there is no standard input."""
    out: list[str] = []
    escaped = False
    for i, ch in enumerate(command):
        if escaped:
            if ch == "%":
                out[-1] = "%"  # the backslash gives way to the percent sign
            else:
                out.append(ch)
            escaped = False
        elif ch == "\\":
            out.append(ch)
            escaped = True
        elif ch == "%":
            return "".join(out), _stdin(command[i + 1 :])
        else:
            out.append(ch)
    return "".join(out), None


def _stdin(text: str) -> str:
    data: list[str] = []
    escaped = False
    for ch in text:
        if escaped:
            if ch != "%":
                data.append("\\")
        elif ch == "%":
            ch = "\n"
        escaped = ch == "\\"
        if not escaped:
            data.append(ch)
    if escaped:
        data.append("\\")
    return "".join(data)


def _slug(command: str) -> str:
    slug = _SLUG_CHARS.sub("-", command.lower()).strip("-")
    if len(slug) > _MAX_SLUG:
        cut = slug[:_MAX_SLUG]
        slug = cut.rsplit("-", 1)[0] if "-" in cut else cut
    return slug or "cron"


def job_name(user: str | None, command: str, occurrence: int = 1) -> str:
    """The stable name of a crontab line's job (see the design note)."""
    digest = hashlib.sha256(f"{user or ''}\0{command}".encode()).hexdigest()[:8]
    name = f"{_slug(command)}-{digest}"
    return name if occurrence == 1 else f"{name}-{occurrence}"


def _env_value(raw: str) -> str:
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "\"'":
        return raw[1:-1]
    return raw


@dataclass
class _State:
    timezone: str
    timezone_error: str | None = None
    shell: str = DEFAULT_SHELL
    mailto: str | None = None
    env: dict[str, str] = field(default_factory=dict)


def _set_timezone(state: _State, value: str, line: int) -> str | None:
    """Set the zone of the lines that follow; the error, if the zone is unknown."""
    try:
        make_schedule(cron="@daily", timezone=value or "UTC", now=_EPOCH)
    except InvalidInput as exc:
        state.timezone_error = f"{exc} (set on line {line})"
        return str(exc)
    state.timezone, state.timezone_error = value or "UTC", None
    return None


def parse_crontab(text: str, *, system: bool = False, timezone: str = "UTC") -> Crontab:
    """Read a crontab. ``system``: lines carry a user column (``/etc/crontab``,
    ``/etc/cron.d/*``). ``timezone`` is the zone of lines before any ``CRON_TZ``/``TZ`` (cron
    uses the machine's zone). Never raises for bad lines: they are listed as problems."""
    if len(text.encode("utf-8", errors="replace")) > MAX_CRONTAB_BYTES:
        raise InvalidInput("the crontab is larger than 1 MiB", field="crontab")
    state = _State(timezone=timezone)
    jobs: list[CrontabJob] = []
    problems: list[CrontabProblem] = []
    seen: dict[tuple[str | None, str], int] = {}
    marked: str | None = None  # a name from "# oncely-job: NAME" on the line before
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            mark = _NAME_MARK.match(stripped)
            marked = mark.group(1) if mark is not None else None
            continue
        given, marked = marked, None
        env = _ENV_LINE.match(raw) if not stripped[0].isdigit() and stripped[0] != "*" else None
        if env is not None and not stripped.startswith("@"):
            name, value = env.group(2), _env_value(env.group(3))
            if name in ("CRON_TZ", "TZ"):
                error = _set_timezone(state, value, number)
                if error is not None:
                    problems.append(CrontabProblem(number, raw, error))
            if name == "SHELL":
                state.shell = value or DEFAULT_SHELL
            if name == "MAILTO":
                state.mailto = value
            elif name not in _NOT_ENV:
                state.env[name] = value
            continue
        result = _job_line(raw, number, system, state)
        if isinstance(result, CrontabProblem):
            problems.append(result)
            continue
        key = (result.user, result.text_command)
        seen[key] = seen.get(key, 0) + 1
        name = job_name(result.user, result.text_command, seen[key])
        if given is not None:
            try:
                name = validate_job_name(given)
            except InvalidInput as exc:
                problems.append(CrontabProblem(number - 1, f"# oncely-job: {given}", str(exc)))
                continue
        jobs.append(result.build(name))
    return Crontab(tuple(jobs), tuple(problems))


@dataclass(frozen=True)
class _Pending:
    line: int
    text: str
    schedule: CronSchedule
    action: ShellAction
    command: str
    text_command: str  # as written, % and all: what the name hashes
    user: str | None
    mailto: str | None
    warnings: tuple[str, ...]

    def build(self, name: str) -> CrontabJob:
        return CrontabJob(
            self.line,
            self.text,
            name,
            self.schedule,
            self.action,
            self.command,
            self.user,
            self.mailto,
            self.warnings,
        )


def _job_line(raw: str, number: int, system: bool, state: _State) -> _Pending | CrontabProblem:
    def problem(reason: str) -> CrontabProblem:
        return CrontabProblem(number, raw, reason)

    # Only leading blanks go: cron reads the command to the end of the line, trailing blanks
    # and all (they matter in standard input).
    stripped = raw.lstrip()
    if stripped.startswith("@"):
        macro, *tail = stripped.split(None, 1)
        rest = tail[0] if tail else ""
        if macro.lower() == "@reboot":
            return problem(
                "@reboot runs when the cron daemon starts; oncely fires at times, so it cannot "
                "be imported (start it from your service manager instead)"
            )
        if macro.lower() not in MACROS:
            return problem(f"unknown macro {macro}; known macros are {', '.join(MACROS)}")
        expr, fields_after = macro.lower(), rest
    else:
        parts = stripped.split(None, 5)
        if len(parts) < 6:
            return problem(
                f"expected 5 time fields then {'a user and ' if system else ''}a command, "
                f"got {len(parts)} field{'s' if len(parts) != 1 else ''}"
            )
        expr, fields_after = " ".join(parts[:5]), parts[5]
    user: str | None = None
    if system:
        user_parts = fields_after.split(None, 1)
        if len(user_parts) < 2:
            return problem("a system crontab line needs a user and a command after the times")
        user, fields_after = user_parts[0], user_parts[1]
    written = fields_after.lstrip()
    if not written.strip():
        return problem("no command after the times")
    if state.timezone_error is not None:
        return problem(f"its time zone is unknown: {state.timezone_error}")
    try:
        schedule = make_schedule(cron=expr, timezone=state.timezone, now=_EPOCH)
    except InvalidInput as exc:
        return problem(str(exc))
    assert isinstance(schedule, CronSchedule)
    command, stdin = split_percent(written)
    if not command.strip():
        return problem("the command is empty (it starts with %)")
    try:
        action = validate_action(
            ShellAction(argv=(state.shell, "-c", command), env=dict(state.env), stdin=stdin)
        )
    except InvalidInput as exc:
        return problem(str(exc))
    assert isinstance(action, ShellAction)
    warnings: list[str] = []
    if user is not None and user != "root":
        warnings.append(f"runs as {user} under cron; oncely runs it as the worker's user")
    elif user == "root":
        warnings.append("runs as root under cron; oncely runs it as the worker's user")
    if state.mailto:
        warnings.append(f"MAILTO={state.mailto}: cron mails the output; oncely keeps it on the run")
    return _Pending(
        number,
        raw,
        schedule,
        action,
        command,
        written,
        user,
        state.mailto,
        tuple(warnings),
    )


# -- export ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportItem:
    """What ``render_crontab`` needs of a job: its name, schedule and shell action."""

    name: str
    schedule: CronSchedule
    action: ShellAction
    user: str | None = None


def _escape(command: str, stdin: str | None) -> str | None:
    """The crontab text cron reads back as (command, stdin), or None when there is none: a
    ``%`` right after an unpaired backslash, for instance, cannot be written."""
    text = command.replace("%", "\\%")
    if stdin is not None:
        text += "%" + stdin.replace("%", "\\%").replace("\n", "%")
    if command[:1].isspace() or "\n" in command or split_percent(text) != (command, stdin):
        return None
    return text


def render_line(item: ExportItem) -> tuple[str, str]:
    """(shell, line) for one job, or raise ``InvalidInput`` when cron cannot express it."""
    schedule, action = item.schedule, item.action
    if len(action.argv) != 3 or action.argv[1] != "-c":
        raise InvalidInput(
            f"job {item.name!r}: only [shell, -c, command] actions have a crontab form",
            field="shell.argv",
        )
    fields = schedule.expr.split()
    if len(fields) == 6:
        raise InvalidInput(
            f"job {item.name!r}: cron has no seconds field ({schedule.expr!r})", field="cron"
        )
    for name, value in (("start", schedule.start), ("end", schedule.end)):
        if value is not None:
            raise InvalidInput(f"job {item.name!r}: cron has no {name} bound", field=name)
    if schedule.jitter:
        raise InvalidInput(f"job {item.name!r}: cron has no jitter", field="jitter")
    if action.cwd is not None:
        raise InvalidInput(f"job {item.name!r}: cron has no working directory", field="shell.cwd")
    command = action.argv[2]
    text = _escape(command, action.stdin)
    if text is None:
        raise InvalidInput(
            f"job {item.name!r}: the command or its input cannot be written exactly in a "
            "crontab (a newline or a leading blank in the command, or a backslash right "
            "before a % or a newline)",
            field="shell.argv",
        )
    line = f"{schedule.expr} "
    if item.user is not None:
        line += f"{item.user} "
    return action.argv[0], line + text


def render_crontab(
    items: Iterable[ExportItem],
    *,
    header: str | None = None,
    on_error: Callable[[ExportItem, InvalidInput], None] | None = None,
) -> str:
    """A crontab for the jobs, in order: ``CRON_TZ``, ``SHELL`` and environment lines are
    written where they change (crontab variables apply to every later line, so a variable one
    job sets and the next does not is refused). Raises ``InvalidInput`` naming the job when
    cron cannot express one (seconds, bounds, jitter, a working directory, a non-shell argv);
    with ``on_error``, reports that job to it and leaves it out instead."""
    lines: list[str] = [f"# {text}" for text in (header or "").splitlines()]
    zone: str | None = None
    shell = DEFAULT_SHELL
    env: dict[str, str] = {}
    for item in items:
        try:
            _check_env(item, env)
            item_shell, line = render_line(item)
        except InvalidInput as exc:
            if on_error is None:
                raise
            on_error(item, exc)
            continue
        wanted: Mapping[str, str] = {
            k: v for k, v in item.action.env.items() if k not in ("SHELL", "TZ")
        }
        # TZ is in the environment and also sets the zone of later lines; CRON_TZ after it
        # sets the zone alone.
        env_tz = item.action.env.get("TZ")
        if env_tz is not None and env.get("TZ") != env_tz:
            zone = env["TZ"] = env_tz
            lines.append(f"TZ={_quote_env(env_tz)}")
        if item.schedule.timezone != zone:
            zone = item.schedule.timezone
            lines.append(f"CRON_TZ={zone}")
        # SHELL picks the shell and is also in the environment, as cron sets it.
        if item_shell != shell or ("SHELL" in item.action.env and "SHELL" not in env):
            shell = env["SHELL"] = item_shell
            lines.append(f"SHELL={shell}")
        for key, value in wanted.items():
            if env.get(key) != value:
                env[key] = value
                lines.append(f"{key}={_quote_env(value)}")
        if item.schedule.dst_gap != "shift" or item.schedule.dst_fold != "first":
            lines.append(
                f"# {item.name}: DST policy {item.schedule.dst_gap}/{item.schedule.dst_fold} "
                "has no crontab form (cron implementations differ)"
            )
        lines.append(f"# oncely-job: {item.name}")
        lines.append(line)
    return "\n".join(lines) + "\n"


def _check_env(item: ExportItem, env: Mapping[str, str]) -> None:
    dropped = set(env) - set(item.action.env) - {"SHELL"}
    if dropped:
        raise InvalidInput(
            f"job {item.name!r} does not set {', '.join(sorted(dropped))}, which an earlier "
            "job sets; a crontab cannot unset a variable (export these jobs separately)",
            field="shell.env",
        )


def _quote_env(value: str) -> str:
    if value == "" or value != value.strip() or value[0] in "\"'":
        return f'"{value}"'
    return value


def problems_text(problems: Sequence[CrontabProblem]) -> list[str]:
    """One line per problem: ``line 7: @reboot runs when...``."""
    return [f"line {p.line}: {p.reason}" for p in problems]

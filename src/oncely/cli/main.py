"""The ``oncely`` command.

Exit codes: 0 ok, 1 unexpected error, 2 invalid input, 3 not found, 4 conflict, 5 forbidden.

Job and run commands act on a local store (``--store``/``ONCELY_STORE``) or, with
``--server``/``ONCELY_SERVER``, on a remote oncely server as the user of ``ONCELY_TOKEN`` (or
the token ``oncely login`` saved): the same commands and output either way.
"""

from __future__ import annotations

import importlib
import json
import logging
import shlex
import sys
from collections.abc import Callable
from datetime import datetime
from typing import Any

import click

from oncely import app as app_module
from oncely import wire
from oncely.app import App
from oncely.cli.backend import Backend, LocalBackend, RemoteBackend, save_token, saved_token
from oncely.cli.errors import EXIT_INVALID, cli_errors
from oncely.config import Settings, load_settings, parse_queues
from oncely.domain.errors import InvalidInput
from oncely.domain.jobs import Job
from oncely.domain.runs import Run
from oncely.observe.logs import configure_logging
from oncely.observe.redact import masked_url as _masked_url
from oncely.runtime.engine import ComponentFailed

_D = wire.JobFields()


def _settings(ctx: click.Context, **overrides: Any) -> Settings:
    obj = ctx.obj or {}
    with cli_errors():
        return load_settings(
            obj.get("config"),
            store=obj.get("store"),
            log_level=obj.get("log_level"),
            log_format=obj.get("log_format"),
            **overrides,
        )


def _load_app(spec: str | None, settings: Settings) -> App:
    """Import the user's ``module:attribute`` App (to get its tasks), or make a fresh one."""
    if not spec:
        return App(settings=settings)
    module_name, _, attr = spec.partition(":")
    sys.path.insert(0, ".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        click.echo(f"error: cannot import {module_name!r}: {exc}", err=True)
        sys.exit(EXIT_INVALID)
    app = getattr(module, attr or "app", None)
    if not isinstance(app, App):
        click.echo(f"error: {spec!r} is not an oncely.App", err=True)
        sys.exit(EXIT_INVALID)
    app.configure(settings)
    return app


def _app(ctx: click.Context) -> App:
    obj = ctx.obj or {}
    return App(settings=_settings(ctx), owner=obj.get("owner") or "default")


def _backend(ctx: click.Context) -> Backend:
    """The remote server if one is named, else the local store."""
    obj = ctx.obj or {}
    server = obj.get("server")
    if server:
        return RemoteBackend(server, obj.get("token") or saved_token(server))
    return LocalBackend(_app(ctx))


def _payload(text: str | None) -> Any:
    """``--payload``: JSON text, ``@file.json``, or ``-`` for standard input."""
    if text is None:
        return None
    source = "--payload"
    if text == "-":
        text, source = sys.stdin.read(), "--payload (stdin)"
    elif text.startswith("@"):
        path = text[1:]
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except OSError as exc:
            raise InvalidInput(f"cannot read {path}: {exc.strerror}", field="payload") from None
        source = f"--payload ({path})"
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{source} is not valid JSON: {exc}", field="payload") from exc


@click.group()
@click.option("--store", envvar="ONCELY_STORE", help="sqlite:///oncely.db or postgresql://...")
@click.option(
    "--config",
    "config_file",
    envvar="ONCELY_CONFIG",
    type=click.Path(dir_okay=False),
    help="A TOML settings file.",
)
@click.option("--owner", default="default", show_default=True, help="Whose jobs to act on.")
@click.option(
    "--server",
    envvar="ONCELY_SERVER",
    help="Manage a remote server (http://host:8080) instead of a local store.",
)
@click.option(
    "--token",
    envvar="ONCELY_TOKEN",
    help="Access token or API key for --server (default: the one oncely login saved).",
)
@click.option("--log-level", default=None, help="DEBUG, INFO, WARNING...")
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default=None,
    help="text (default) or json: one JSON object per line.",
)
@click.version_option("0.1.0", prog_name="oncely")
@click.pass_context
def main(
    ctx: click.Context,
    store: str | None,
    config_file: str | None,
    owner: str,
    server: str | None,
    token: str | None,
    log_level: str | None,
    log_format: str | None,
) -> None:
    """oncely: a distributed cron and job scheduler where every fire runs once."""
    if ctx.get_parameter_source("store") is not click.core.ParameterSource.COMMANDLINE:
        store = None  # from ONCELY_STORE: the settings read it themselves (and say so)
    ctx.obj = {
        "store": store,
        "config": config_file,
        "owner": owner,
        "log_level": log_level,
        "log_format": log_format,
        "server": server.rstrip("/") if server else None,
        "token": token,
    }
    configure_logging(log_level or "INFO", log_format or "text")


def _serve(
    ctx: click.Context,
    *,
    app_spec: str | None,
    scheduler: bool,
    worker: bool,
    serve_http: bool,
    **overrides: Any,
) -> None:
    settings = _settings(ctx, **overrides)
    configure_logging(settings.log_level, settings.log_format)  # flags won over settings
    app = _load_app(app_spec, settings)
    with cli_errors():
        if serve_http:
            # A log line (not a bare echo) so that --log-format json stays all JSON.
            logging.getLogger("oncely").info(
                "oncely on %s — http://%s:%d/healthz",
                _masked_url(settings.store),
                settings.host,
                settings.port,
            )
        try:
            app.run(scheduler=scheduler, worker=worker, serve_http=serve_http)
        except ComponentFailed as exc:
            # Exit non-zero so that systemd or Kubernetes restarts the process.
            click.echo(f"error: {exc}; exiting", err=True)
            app.close()
            sys.exit(1)
    app.close()


def _queues(queues: str | None, concurrency: int | None) -> dict[str, int] | None:
    if queues is None and concurrency is None:
        return None
    with cli_errors():
        return parse_queues(queues or "default", concurrency or 10)


@main.command()
@click.option("--app", "app_spec", help="module:attribute of your oncely.App (for @app.task).")
@click.option("--host", default=None, help="Address to serve HTTP on (default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="HTTP port (default 8080).")
@click.option("--queues", default=None, help="e.g. default,heavy=2 (name=concurrency).")
@click.option("--concurrency", type=int, default=None, help="Default per-queue concurrency.")
@click.pass_context
def up(
    ctx: click.Context,
    app_spec: str | None,
    host: str | None,
    port: int | None,
    queues: str | None,
    concurrency: int | None,
) -> None:
    """Run scheduler, worker and HTTP in one process (SQLite ./oncely.db by default)."""
    _serve(
        ctx,
        app_spec=app_spec,
        scheduler=True,
        worker=True,
        serve_http=True,
        host=host,
        port=port,
        queues=_queues(queues, concurrency),
    )


@main.command()
@click.option("--host", default=None)
@click.option("--port", type=int, default=None, help="Serve /healthz and /readyz on this port.")
@click.pass_context
def scheduler(ctx: click.Context, host: str | None, port: int | None) -> None:
    """Run a scheduler: materialize fires and reap lost attempts."""
    _serve(
        ctx,
        app_spec=None,
        scheduler=True,
        worker=False,
        serve_http=port is not None,
        host=host,
        port=port,
    )


@main.command()
@click.option("--app", "app_spec", help="module:attribute of your oncely.App (for @app.task).")
@click.option(
    "--queues",
    default="default",
    show_default=True,
    help="Queues to serve, e.g. default,heavy=2 (name=concurrency).",
)
@click.option(
    "--concurrency",
    type=int,
    default=10,
    show_default=True,
    help="Concurrency of queues given without =N.",
)
@click.option("--host", default=None)
@click.option("--port", type=int, default=None, help="Serve /healthz and /readyz on this port.")
@click.pass_context
def worker(
    ctx: click.Context,
    app_spec: str | None,
    queues: str,
    concurrency: int,
    host: str | None,
    port: int | None,
) -> None:
    """Run a worker: claim and execute due runs."""
    _serve(
        ctx,
        app_spec=app_spec,
        scheduler=False,
        worker=True,
        serve_http=port is not None,
        host=host,
        port=port,
        queues=_queues(queues, concurrency),
    )


@main.command()
@click.option("--host", default=None, help="Address to serve HTTP on (default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="HTTP port (default 8080).")
@click.pass_context
def api(ctx: click.Context, host: str | None, port: int | None) -> None:
    """Serve the REST API (/v1, /openapi.json) and health checks; no scheduler or worker."""
    _serve(
        ctx,
        app_spec=None,
        scheduler=False,
        worker=False,
        serve_http=True,
        host=host,
        port=port,
    )


# -- db ---------------------------------------------------------------------------------


@main.group()
def db() -> None:
    """Database schema."""


@db.command("migrate")
@click.pass_context
def db_migrate(ctx: click.Context) -> None:
    """Create or upgrade the schema."""
    from oncely.adapters.factory import open_store

    settings = _settings(ctx)
    with cli_errors():
        store = open_store(settings.store)
        version = store.migrate()
        store.close()
    click.echo(f"schema at version {version}")


# -- jobs -------------------------------------------------------------------------------


@main.group()
def jobs() -> None:
    """Create and manage jobs."""


def _dt(value: datetime | None) -> str:
    return "-" if value is None else value.isoformat(timespec="seconds")


def _job_dict(job: Job) -> dict[str, Any]:
    return wire.job_out(job).model_dump(mode="json")


def _nothing_in(backend: Backend, what: str) -> None:
    """An empty answer says where it looked (on stderr: --json output stays parseable)."""
    click.echo(f"no {what} in {backend.where}", err=True)


def _last_error(error: str | None, width: int = 60) -> str:
    """A run's last error on one line: its last line (the exception), cut to ``width``."""
    if not error:
        return ""
    lines = [line.strip() for line in error.strip().splitlines() if line.strip()]
    last = lines[-1] if lines else ""
    return last if len(last) <= width else last[: width - 1] + "…"


def _run_dict(run: Run, now: datetime) -> dict[str, Any]:
    return wire.run_out(run, now).model_dump(mode="json")


def _print(data: Any, as_json: bool, table: Callable[[], None]) -> None:
    if as_json:
        click.echo(json.dumps(data, indent=2, default=str))
    else:
        table()


@jobs.command("add")
@click.argument("name")
@click.option("--cron", help='Cron expression, 5 fields or 6 with seconds first: "*/5 * * * *".')
@click.option("--at", help="One instant, ISO 8601 with offset: 2030-01-01T09:00:00+01:00.")
@click.option("--every", help="Interval: 90s, 5m, 1h30m.")
@click.option("--task", help="A Python task registered with @app.task.")
@click.option("--http", "http_url", help="URL to call.")
@click.option("--method", default="POST", show_default=True)
@click.option("--header", "headers", multiple=True, help="Name: value (repeatable).")
@click.option("--body", default=None, help="HTTP body (default: the payload as JSON).")
@click.option("--shell", "shell_cmd", help="A command, split into argv (never run by a shell).")
@click.option("--sql", "sql_statement", help="A SQL statement.")
@click.option("--sql-connection", help="The server-configured SQL connection name.")
@click.option("--payload", help="JSON payload handed to the action.")
@click.option("--retries", type=int, default=None, help=f"Default {_D.retries}.")
@click.option("--base-delay", type=float, default=None, help=f"Default {_D.base_delay} s.")
@click.option("--max-delay", type=float, default=None, help=f"Default {_D.max_delay} s.")
@click.option("--timeout", type=float, default=None)
@click.option(
    "--overlap",
    type=click.Choice(["allow", "forbid", "replace"]),
    default=None,
    help=f"Default {_D.overlap}.",
)
@click.option(
    "--misfire",
    type=click.Choice(["run_once", "run_all", "skip"]),
    default=None,
    help=f"Default {_D.misfire}.",
)
@click.option("--misfire-grace", type=float, default=None, help=f"Default {_D.misfire_grace} s.")
@click.option("--queue", default=None, help=f"Default {_D.queue}.")
@click.option("--priority", type=int, default=None, help=f"Default {_D.priority}.")
@click.option("--timezone", "tz", default=None, help=f"Default {_D.timezone}.")
@click.option("--dst-gap", type=click.Choice(["shift", "skip"]), default=None)
@click.option("--dst-fold", type=click.Choice(["first", "last", "both"]), default=None)
@click.option("--start", default=None, help="No fires before this instant (ISO 8601).")
@click.option("--end", default=None, help="No fires after this instant (ISO 8601).")
@click.option("--jitter", default=None, help="Spread each fire by up to this long: 30s.")
@click.option("--paused", is_flag=True)
@click.option("--replace", is_flag=True, help="Redefine the job if the name exists.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def jobs_add(
    ctx: click.Context,
    name: str,
    cron: str | None,
    at: str | None,
    every: str | None,
    task: str | None,
    http_url: str | None,
    method: str,
    headers: tuple[str, ...],
    body: str | None,
    shell_cmd: str | None,
    sql_statement: str | None,
    sql_connection: str | None,
    payload: str | None,
    retries: int | None,
    base_delay: float | None,
    max_delay: float | None,
    timeout: float | None,
    overlap: str | None,
    misfire: str | None,
    misfire_grace: float | None,
    queue: str | None,
    priority: int | None,
    tz: str | None,
    dst_gap: str | None,
    dst_fold: str | None,
    start: str | None,
    end: str | None,
    jitter: str | None,
    paused: bool,
    replace: bool,
    as_json: bool,
) -> None:
    """Create a job."""
    backend = _backend(ctx)
    with cli_errors(backend.where):
        http: dict[str, Any] | None = None
        if http_url:
            parsed_headers: dict[str, str] = {}
            for header in headers:
                key, sep, value = header.partition(":")
                if not sep:
                    raise InvalidInput(
                        f"header {header!r} must look like 'Name: value'", field="http.headers"
                    )
                parsed_headers[key.strip()] = value.strip()
            http = {"url": http_url, "method": method, "headers": parsed_headers, "body": body}
        shell = None
        if shell_cmd is not None:
            try:
                shell = shlex.split(shell_cmd)
            except ValueError as exc:
                raise InvalidInput(f"cannot split the shell command: {exc}", field="shell") from exc
        sql = None
        if sql_statement is not None:
            sql = {"connection": sql_connection or "", "statement": sql_statement}
        data = _payload(payload)
        given = {
            "cron": cron,
            "at": at,
            "every": every,
            "task": task,
            "http": http,
            "shell": shell,
            "sql": sql,
            "payload": data,
            "retries": retries,
            "base_delay": base_delay,
            "max_delay": max_delay,
            "timeout": timeout,
            "overlap": overlap,
            "misfire": misfire,
            "misfire_grace": misfire_grace,
            "queue": queue,
            "priority": priority,
            "timezone": tz,
            "dst_gap": dst_gap,
            "dst_fold": dst_fold,
            "start": start,
            "end": end,
            "jitter": jitter,
            "paused": paused or None,
        }
        spec = app_module.job_create(
            {"name": name, **{k: v for k, v in given.items() if v is not None}}
        )
        job = backend.add_job(spec, replace=replace)
    _print(
        job.model_dump(mode="json"),
        as_json,
        lambda: click.echo(
            f"job {job.name} ({job.id}): {job.schedule.description}; "
            f"next fire {_dt(job.next_fire_at)}"
        ),
    )
    backend.close()


@jobs.command("list")
@click.option("--limit", type=int, default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def jobs_list(ctx: click.Context, limit: int, as_json: bool) -> None:
    """List jobs."""
    backend = _backend(ctx)
    with cli_errors(backend.where):
        found = backend.list_jobs(limit=limit)

    def table() -> None:
        click.echo(f"{'NAME':30} {'SCHEDULE':40} {'STATE':7} NEXT FIRE")
        for job in found:
            state = "paused" if job.paused else "active"
            click.echo(
                f"{job.name[:30]:30} {job.schedule.description[:40]:40} {state:7} "
                f"{_dt(job.next_fire_at)}"
            )

    _print([j.model_dump(mode="json") for j in found], as_json, table)
    if not found:
        _nothing_in(backend, "jobs")
    backend.close()


def _job_command(name: str, help_text: str, act: Callable[[Backend, str], Any]) -> None:
    @jobs.command(name, help=help_text)
    @click.argument("job")
    @click.option("--json", "as_json", is_flag=True)
    @click.pass_context
    def command(ctx: click.Context, job: str, as_json: bool) -> None:
        backend = _backend(ctx)
        with cli_errors(backend.where):
            result = act(backend, job)
        if isinstance(result, wire.JobOut):
            data = result.model_dump(mode="json")
            _print(data, as_json, lambda: click.echo(json.dumps(data, indent=2)))
        elif isinstance(result, wire.RunOut):
            _print(
                result.model_dump(mode="json"),
                as_json,
                lambda: click.echo(f"run {result.id} {result.state}"),
            )
        else:
            click.echo(f"{name}: {job}")
        backend.close()


@jobs.command("show")
@click.argument("job")
@click.option(
    "--count",
    type=click.IntRange(1, 100),
    default=5,
    show_default=True,
    help="How many next fires to list.",
)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def jobs_show(ctx: click.Context, job: str, count: int, as_json: bool) -> None:
    """Show a job (by name or id): its settings, its schedule in words, and its next fires in
    its zone and in UTC, each flagged when a DST change moves, skips or doubles it."""
    from oncely.cli.preview import echo_preview, preview_dict
    from oncely.domain.preview import preview
    from oncely.domain.schedule import schedule_from_dict

    backend = _backend(ctx)
    with cli_errors(backend.where):
        found = backend.find_job(job)
        # The wire model carries the whole schedule, so the preview is computed here, from the
        # same domain code as the scheduler's, whether the job came from a store or a server.
        schedule = schedule_from_dict(found.schedule.model_dump(mode="json"))
        after = backend.now()
        entries = preview(schedule, after, count)
    backend.close()
    data = found.model_dump(mode="json")
    if as_json:
        click.echo(json.dumps({**data, "preview": preview_dict(schedule, entries)}, indent=2))
        return
    state = "paused" if found.paused else "active"
    click.echo(f"{found.name}  (id {found.id}, owner {found.owner}, {state}, v{found.version})")
    click.echo(f"schedule: {found.schedule.description}")
    click.echo(f"action:   {_action_text(data['action'])}")
    policy = data["policy"]
    click.echo(
        f"policy:   queue {policy['queue']}, retries {policy['max_retries']}, "
        f"overlap {policy['overlap']}, misfire {policy['misfire']}"
    )
    click.echo("")
    heading = "Once resumed, the next" if found.paused else "Next"
    echo_preview(schedule, entries, after, heading=heading)


def _action_text(action: dict[str, Any]) -> str:
    kind = str(action["kind"])
    if kind == "http":
        return f"http {action.get('method') or 'POST'} {action.get('url')}"
    if kind == "shell":
        return "shell " + shlex.join(action.get("argv") or [])
    if kind == "python":
        return f"python task {action.get('task')}"
    return kind


_job_command("pause", "Pause a job (no fires until resumed).", lambda b, job: b.pause(job))
_job_command("resume", "Resume a job (from now; no backfill).", lambda b, job: b.resume(job))
_job_command("trigger", "Run a job now, once.", lambda b, job: b.trigger(job))
_job_command("delete", "Delete a job (its runs stay readable).", lambda b, job: b.delete(job))


# -- runs -------------------------------------------------------------------------------


@main.group()
def runs() -> None:
    """Inspect and manage runs."""


@runs.command("list")
@click.option("--job", default=None, help="Only this job's runs (name or id).")
@click.option("--state", "states", multiple=True, help="Filter by state (repeatable).")
@click.option("--limit", type=int, default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def runs_list(
    ctx: click.Context, job: str | None, states: tuple[str, ...], limit: int, as_json: bool
) -> None:
    """List runs, newest first."""
    backend = _backend(ctx)
    with cli_errors(backend.where):
        found = backend.list_runs(job, states=list(states) or None, limit=limit)

    def table() -> None:
        click.echo(
            f"{'RUN':36} {'JOB':24} {'STATE':10} {'SCHEDULED FOR':25} {'ATTEMPT':7} LAST ERROR"
        )
        for run in found:
            click.echo(
                f"{run.id:36} {run.job[:24]:24} {run.state:10} "
                f"{_dt(run.scheduled_for):25} {run.attempt:<7} {_last_error(run.error)}"
            )

    _print([r.model_dump(mode="json") for r in found], as_json, table)
    if not found:
        _nothing_in(backend, "runs")
    backend.close()


@runs.command("show")
@click.argument("run_id")
@click.pass_context
def runs_show(ctx: click.Context, run_id: str) -> None:
    """Show a run and its attempts (JSON)."""
    backend = _backend(ctx)
    with cli_errors(backend.where):
        run = backend.get_run(run_id)
    click.echo(json.dumps(run.model_dump(mode="json"), indent=2))
    backend.close()


@runs.command("requeue")
@click.argument("run_id")
@click.pass_context
def runs_requeue(ctx: click.Context, run_id: str) -> None:
    """Queue a dead run again with a fresh retry budget."""
    backend = _backend(ctx)
    with cli_errors(backend.where):
        run = backend.requeue(run_id)
    click.echo(f"run {run.id} queued")
    backend.close()


@runs.command("cancel")
@click.argument("run_id")
@click.pass_context
def runs_cancel(ctx: click.Context, run_id: str) -> None:
    """Cancel a waiting or running run."""
    backend = _backend(ctx)
    with cli_errors(backend.where):
        run = backend.cancel(run_id)
    click.echo(f"run {run.id} cancelled")
    backend.close()


# -- remote servers ---------------------------------------------------------------------


@main.command()
@click.option("--username", prompt=True, help="Your user name on the server.")
@click.option("--password", prompt=True, hide_input=True, help="Prompted when not given.")
@click.pass_context
def login(ctx: click.Context, username: str, password: str) -> None:
    """Log in to --server (ONCELY_SERVER) and save the access token for later commands."""
    server = (ctx.obj or {}).get("server")
    if not server:
        click.echo("error: name the server with --server or ONCELY_SERVER", err=True)
        sys.exit(EXIT_INVALID)
    from oncely.client import ApiError, Client

    with Client(server) as client:
        try:
            token = client.login(username, password)
        except ApiError as exc:
            click.echo(f"error: login to {server} refused: {exc}", err=True)
            sys.exit(1)
    path = save_token(server, token)
    click.echo(f"logged in to {server} as {username}; token saved in {path}")


from oncely.cli.crontools import register  # noqa: E402  (preview, crontab, export)

register(main)

from oncely.cli.users import register as register_users  # noqa: E402  (users, apikeys)

register_users(main)

from oncely.cli.config_cmd import register as register_config  # noqa: E402  (config show)

register_config(main)

from oncely.cli.notify import register as register_notify  # noqa: E402  (notify ...)

register_notify(main)

from oncely.cli.cluster import register as register_cluster  # noqa: E402  (cluster status)

register_cluster(main)

if __name__ == "__main__":
    main()

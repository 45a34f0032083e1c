"""``oncely export json`` / ``oncely import json``: every kind of job goes from SQLite to
PostgreSQL and back exactly; the document drops ids, versions and timestamps (see
``oncely.domain.jobsfile``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import oncely
from oncely.cli.main import main
from oncely.config import Settings
from oncely.domain.errors import InvalidInput
from oncely.domain.jobsfile import JobSpec
from oncely.domain.principal import Principal, Role
from oncely.wire import JobCreate

ADMIN = Principal("root", "ops", Role.ADMIN)

EVERY_KIND = [
    {"name": "cron-task", "cron": "0 9 * * MON-FRI", "task": "reports.daily"},
    {
        "name": "cron-all-fields",
        "cron": "*/10 30 1 * * *",
        "timezone": "Australia/Lord_Howe",
        "dst_gap": "skip",
        "dst_fold": "both",
        "start": "2026-01-01T00:00:00Z",
        "end": "2040-06-30T12:00:00+02:00",
        "jitter": "1m30s",
        "task": "t",
        "payload": {"nested": [1, 2.5, None, "é"], "flag": True},
        "retries": 0,
        "base_delay": 1.5,
        "max_delay": 60,
        "timeout": 12.5,
        "overlap": "forbid",
        "misfire": "skip",
        "misfire_grace": 5,
        "queue": "slow",
        "priority": -3,
        "deadline": "26h",
        "paused": True,
    },
    {"name": "at-once", "at": "2031-02-03T04:05:06.789000+00:00", "task": "t", "payload": 7},
    {
        "name": "every-anchored",
        "every": "1h30m",
        "anchor": "2026-03-01T00:00:00Z",
        "start": "2026-03-01T00:00:00Z",
        "jitter": 5,
        "overlap": "replace",
        "http": {
            "url": "http://127.0.0.1:9/hook",
            "method": "PUT",
            "headers": {"X-Token": "abc"},
            "body": '{"a": 1}',
            "timeout": 3,
            "success_statuses": [200, 202],
        },
    },
    {"name": "every-ms", "every": "1500ms", "http": "http://127.0.0.1:9/ping", "paused": True},
    {
        "name": "shell-env",
        "cron": "@daily",
        "timezone": "America/New_York",
        "shell": {"argv": ["/bin/sh", "-c", "echo $A"], "env": {"A": "1"}, "cwd": "/tmp"},
        "misfire": "run_all",
    },
    {
        "name": "sql-main",
        "cron": "0 0 L * *",
        "sql": {"connection": "main", "statement": "SELECT %(x)s", "params": {"x": 1}},
    },
]


def settings(store: str, pg_url: str) -> dict[str, object]:
    return {
        "store": store,
        "allow_shell": True,
        "http_allow_private": True,
        "sql_connections": {"main": pg_url},
    }


def config_file(tmp_path: Path, pg_url: str, name: str) -> str:
    path = tmp_path / f"{name}.toml"
    path.write_text(
        f'allow_shell = true\nhttp_allow_private = true\n[sql_connections]\nmain = "{pg_url}"\n'
    )
    return str(path)


def run(args: list[str], **kw: object) -> str:
    result = CliRunner().invoke(main, args, **kw)  # type: ignore[arg-type]
    assert result.exit_code == 0, result.stderr
    return result.stdout


def test_sqlite_to_postgresql_and_back_is_exact(
    tmp_path: Path, pg_url: str, pg_schema: str
) -> None:
    sqlite = f"sqlite:///{tmp_path / 'a.db'}"
    postgres = f"{pg_url}?schema={pg_schema}"
    app = oncely.App(settings=Settings(**settings(sqlite, pg_url)), owner="ops")  # type: ignore[arg-type]
    try:
        for spec in EVERY_KIND:
            app.service.jobs.create(ADMIN, JobCreate.model_validate(spec))
        # A crontab job too: standard input from %, SHELL and the environment.
        line = "SHELL=/bin/bash\nX=y\n0 8 * * * mail -s hi a@b.c%Hello,%world\\%\n"
        app.service.imports.crontab(ADMIN, line)
        originals = {j.name: JobSpec.of(j) for j in app.list_jobs(limit=100)}
    finally:
        app.close()
    assert len(originals) == len(EVERY_KIND) + 1

    conf = config_file(tmp_path, pg_url, "c")
    first = run(["--config", conf, "--store", sqlite, "--owner", "ops", "export", "json"])
    document = json.loads(first)
    assert [j["name"] for j in document["jobs"]] == sorted(originals)
    assert not {"id", "version", "created_at", "updated_at", "next_fire_at", "shard"} & set(
        document["jobs"][0]
    )
    (tmp_path / "jobs.json").write_text(first)
    run(
        [
            "--config",
            conf,
            "--store",
            postgres,
            "--owner",
            "ops",
            "import",
            "json",
            str(tmp_path / "jobs.json"),
        ]
    )
    second = run(["--config", conf, "--store", postgres, "--owner", "ops", "export", "json"])
    assert second == first

    moved = oncely.App(settings=Settings(**settings(postgres, pg_url)), owner="ops")  # type: ignore[arg-type]
    try:
        assert {j.name: JobSpec.of(j) for j in moved.list_jobs(limit=100)} == originals
        # Importing the same file again changes nothing.
        report = moved.service.imports.jobs_json(ADMIN, first)
        assert (report.created, report.updated) == ((), ())
        assert len(report.unchanged) == len(originals)
        # A changed job is updated in place, its pause flag too.
        changed = json.loads(first)
        for job in changed["jobs"]:
            if job["name"] == "cron-task":
                job["schedule"]["expr"] = "0 10 * * MON-FRI"
                job["paused"] = True
        report = moved.service.imports.jobs_json(ADMIN, json.dumps(changed))
        assert report.updated == ("cron-task",) and report.created == ()
        job = moved.service.jobs.by_name(ADMIN, "cron-task")
        assert job.version > 1 and job.paused and job.schedule.expr == "0 10 * * MON-FRI"  # type: ignore[union-attr]
    finally:
        moved.close()


def test_a_bad_jobs_file_names_the_job_and_field_and_imports_nothing(tmp_path: Path) -> None:
    app = oncely.App(settings=Settings(store=f"sqlite:///{tmp_path / 'b.db'}"), owner="ops")  # type: ignore[arg-type]
    try:
        good = {
            "name": "ok",
            "schedule": {"kind": "every", "interval": 60, "anchor": "2026-01-01T00:00:00+00:00"},
            "action": {"kind": "python", "task": "t"},
            "payload": None,
            "policy": {},
            "paused": False,
        }
        bad = {**good, "name": "bad", "schedule": {"kind": "cron", "expr": "0 0 31 2 *"}}
        doc = {"format": "oncely-jobs", "version": 1, "jobs": [good, bad]}
        with pytest.raises(InvalidInput) as refused:
            app.service.imports.jobs_json(ADMIN, json.dumps(doc))
        assert refused.value.field == "cron" and "job 1 ('bad')" in str(refused.value)
        assert app.list_jobs() == []
        shell = {**good, "name": "sh", "action": {"kind": "shell", "argv": ["true"]}}
        doc["jobs"] = [good, shell]
        with pytest.raises(InvalidInput, match="shell actions are disabled"):
            app.service.imports.jobs_json(ADMIN, json.dumps(doc))
        assert app.list_jobs() == []
        with pytest.raises(InvalidInput) as wrong:
            app.service.imports.jobs_json(ADMIN, "{}")
        assert wrong.value.field == "format"
    finally:
        app.close()

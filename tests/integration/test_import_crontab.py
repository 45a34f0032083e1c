"""Importing crontabs through the service (what the CLI and REST call) and the CLI, on a real
SQLite store, with the corpus in tests/data/crontabs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

import oncely
from oncely.cli.main import main
from oncely.config import Settings
from oncely.domain.crontab import parse_crontab
from oncely.domain.errors import InvalidInput, PermissionDenied
from oncely.domain.principal import Principal, Role
from oncely.ports.store import JobQuery

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "data" / "crontabs"
ADMIN = Principal("root", "ops", Role.ADMIN)
ALICE = Principal("alice", "alice", Role.USER)
SYSTEM_FILES = sorted(p.name for p in CORPUS.glob("system-*"))


def make_app(tmp_path: Path, **settings: object) -> oncely.App:
    return oncely.App(settings=Settings(store=f"sqlite:///{tmp_path / 'o.db'}", **settings))  # type: ignore[arg-type]


@pytest.fixture
def app(tmp_path: Path) -> Iterator[oncely.App]:
    a = make_app(tmp_path, allow_shell=True)
    yield a
    a.close()


def jobs_of(app: oncely.App, owner: str = "ops") -> dict[str, oncely.Job]:
    found = app.service.jobs.search(ADMIN, JobQuery(limit=1000), owner=owner)
    return {j.name: j for j in found}


def audit_count(app: oncely.App) -> int:
    return len(app.store.audit_list(None, limit=10_000))


@pytest.mark.parametrize("name", ["user-examples", *SYSTEM_FILES])
def test_the_corpus_imports_and_a_second_import_changes_nothing(app: oncely.App, name: str) -> None:
    text = (CORPUS / name).read_text()
    system = name.startswith("system-")
    expected = parse_crontab(text, system=system)
    assert expected.jobs and not expected.problems

    report = app.service.imports.crontab(ADMIN, text, system=system)
    assert report.applied and [j.status for j in report.jobs] == ["create"] * len(expected.jobs)
    stored = jobs_of(app)
    assert sorted(stored) == sorted(j.name for j in expected.jobs)
    for line in expected.jobs:
        job = stored[line.name]
        assert (job.schedule, job.action, job.version) == (line.schedule, line.action, 1)
        assert job.next_fire_at is not None and not job.paused

    audited = audit_count(app)
    again = app.service.imports.crontab(ADMIN, text, system=system)
    assert [j.status for j in again.jobs] == ["unchanged"] * len(expected.jobs)
    assert jobs_of(app) == stored  # same versions, same next fires
    assert audit_count(app) == audited


def test_a_changed_line_updates_exactly_its_job(app: oncely.App) -> None:
    text = (CORPUS / "user-examples").read_text()
    app.service.imports.crontab(ADMIN, text)
    before = jobs_of(app)
    changed = text.replace(
        "30 2 1,15 * * /usr/local/bin/billing-run", "45 3 1,15 * * /usr/local/bin/billing-run"
    )
    assert changed != text
    report = app.service.imports.crontab(ADMIN, changed)
    updated = [j.name for j in report.jobs if j.status == "update"]
    assert len(updated) == 1 and updated[0].startswith("usr-local-bin-billing-run-")
    after = jobs_of(app)
    assert sorted(after) == sorted(before)  # the same names: updated, not added
    for name, job in after.items():
        if name == updated[0]:
            assert job.version == 2 and job.id == before[name].id
            assert job.schedule.expr == "45 3 1,15 * *"  # type: ignore[union-attr]
            versions = app.store.job_versions_list(None, job.id)
            assert [v.version for v in versions] == [1]
        else:
            assert job == before[name]


def test_dry_run_shows_the_plan_and_changes_nothing(app: oncely.App) -> None:
    text = (CORPUS / "user-examples").read_text()
    report = app.service.imports.crontab(ADMIN, text, dry_run=True)
    assert not report.applied and report.count("create") == len(report.jobs) > 0
    assert all(len(j.next_fires) == 3 for j in report.jobs)
    assert jobs_of(app) == {}
    assert any("MAILTO=ops@example.com" in w for w in report.warnings)


def test_lines_that_cannot_be_imported_stop_everything_unless_skipped(app: oncely.App) -> None:
    text = (CORPUS / "user-bad").read_text()
    with pytest.raises(InvalidInput) as refused:
        app.service.imports.crontab(ADMIN, text)
    assert refused.value.field == "crontab"
    message = str(refused.value)
    assert "nothing was imported" in message
    assert "line 2: @reboot runs when the cron daemon starts" in message
    assert 'line 9: invalid cron "0 0 * * FUN"' in message
    assert jobs_of(app) == {}

    report = app.service.imports.crontab(ADMIN, text, skip_invalid=True)
    assert len(report.problems) == 11
    assert [j.name for j in report.jobs] == list(jobs_of(app))
    assert len(jobs_of(app)) == 1


def test_a_job_of_another_kind_with_the_name_is_a_conflict(app: oncely.App) -> None:
    line = "0 5 * * * /usr/local/bin/report\n"
    name = parse_crontab(line).jobs[0].name
    app.service.jobs.create(ADMIN, oncely.wire.JobCreate(name=name, every="1h", task="t"))
    with pytest.raises(InvalidInput, match="a python job named"):
        app.service.imports.crontab(ADMIN, line)


def test_only_admins_and_only_when_the_server_runs_shell(tmp_path: Path) -> None:
    line = "0 5 * * * /usr/local/bin/report\n"
    app = make_app(tmp_path, allow_shell=True)
    try:
        with pytest.raises(PermissionDenied):
            app.service.imports.crontab(ALICE, line)
    finally:
        app.close()
    (tmp_path / "off").mkdir()
    off = make_app(tmp_path / "off", allow_shell=False)
    try:
        with pytest.raises(InvalidInput, match="shell actions are disabled") as refused:
            off.service.imports.crontab(ADMIN, line, dry_run=True)
        assert refused.value.field == "shell"
    finally:
        off.close()


def test_cli_import_dry_run_then_import_then_again(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'cli.db'}"
    env = {"ONCELY_ALLOW_SHELL": "true"}
    file = str(CORPUS / "system-etc-crontab")
    runner = CliRunner()
    dry = runner.invoke(
        main, ["--store", store, "import", "crontab", file, "--system", "--dry-run"], env=env
    )
    assert dry.exit_code == 0, dry.stderr
    assert dry.stdout.count("create    line") == 4 and "  next:    " in dry.stdout
    assert "dry run: 4 would be created, 0 would be updated, 0 unchanged" in dry.stderr

    done = runner.invoke(main, ["--store", store, "import", "crontab", file, "--system"], env=env)
    assert done.exit_code == 0, done.stderr
    assert "4 created, 0 updated, 0 unchanged" in done.stderr
    again = runner.invoke(
        main,
        ["--store", store, "import", "crontab", "-", "--system"],
        env=env,
        input=(CORPUS / "system-etc-crontab").read_text(),
    )
    assert again.exit_code == 0, again.stderr
    assert "0 created, 0 updated, 4 unchanged" in again.stderr

    bad = runner.invoke(
        main, ["--store", store, "import", "crontab", str(CORPUS / "user-bad")], env=env
    )
    assert bad.exit_code == 2
    assert "line 2: @reboot" in bad.stderr


def test_cli_refuses_to_import_locally_when_a_server_is_named(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        ["--server", "http://127.0.0.1:9", "import", "crontab", "-", "--dry-run"],
        input="0 5 * * * true\n",
    )
    assert result.exit_code == 2
    assert "works on a local store" in result.stderr

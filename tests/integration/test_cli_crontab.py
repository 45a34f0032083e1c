"""``oncely crontab check`` (pure) and ``oncely export crontab`` from a real SQLite store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from oncely.app import App
from oncely.cli.main import main
from oncely.config import Settings
from oncely.domain.crontab import parse_crontab
from oncely.domain.schedule import CronSchedule

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "data" / "crontabs"


def test_check_lists_jobs_and_exits_0_when_all_lines_import() -> None:
    result = CliRunner().invoke(
        main, ["crontab", "check", str(CORPUS / "system-etc-crontab"), "--system", "--json"]
    )
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert [(j["line"], j["words"], j["user"]) for j in data["jobs"]] == [
        (15, "Every hour, at minute 17 (UTC)", "root"),
        (16, "At 06:25 (UTC)", "root"),
        (17, "At 06:47, on Sunday (UTC)", "root"),
        (18, "At 06:52 on the 1st of the month (UTC)", "root"),
    ]
    assert data["problems"] == []
    assert data["jobs"][0]["argv"] == [
        "/bin/sh",
        "-c",
        "cd / && run-parts --report /etc/cron.hourly",
    ]


def test_check_exits_2_and_names_each_bad_line() -> None:
    result = CliRunner().invoke(main, ["crontab", "check", str(CORPUS / "user-bad")])
    assert result.exit_code == 2
    assert "line 2: cannot import: @reboot runs when the cron daemon starts" in result.stderr
    assert (
        'line 9: cannot import: invalid cron "0 0 * * FUN": field 5 (day-of-week) "FUN"'
        in result.stderr
    )
    assert result.stderr.strip().endswith("1 job, 11 lines that cannot be imported")
    assert "line 14: bin-fine-again-" in result.stdout


def test_check_reads_standard_input_in_a_zone() -> None:
    result = CliRunner().invoke(
        main, ["crontab", "check", "-", "--tz", "Europe/Paris"], input="0 9 * * 1-5 /bin/report\n"
    )
    assert result.exit_code == 0
    assert "  when:    At 09:00, Monday through Friday (Europe/Paris)" in result.stdout


def test_export_writes_what_cron_can_say_and_names_the_rest(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'oncely.db'}"
    app = App(settings=Settings(store=store, allow_shell=True))
    app.add_job(
        "nightly backup",
        cron="0 2 * * *",
        timezone="America/New_York",
        shell={"argv": ["/bin/sh", "-c", "backup --full"], "stdin": "100%\ndone"},
    )
    app.add_job("sync", cron="@hourly", shell=["/bin/bash", "-c", "sync --all"])
    app.add_job("hook", every="5m", http="https://example.com/hook")
    app.add_job("fast", cron="*/10 * * * * *", shell=["/bin/sh", "-c", "tick"])
    app.add_job("dump", cron="0 1 * * *", shell=["pg_dump", "db"])
    app.add_job("held", cron="0 4 * * *", shell=["/bin/sh", "-c", "held"])
    app.pause("held")
    app.close()
    # The standard input is stored with the action and shown with the job.
    shown = CliRunner().invoke(main, ["--store", store, "jobs", "show", "nightly backup", "--json"])
    assert shown.exit_code == 0, shown.stderr
    assert json.loads(shown.stdout)["action"]["stdin"] == "100%\ndone"

    env = {**os.environ, "ONCELY_STORE": store}
    done = subprocess.run(
        [sys.executable, "-m", "oncely.cli.main", "export", "crontab"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == (
        "# Written by oncely export crontab.\n"
        "CRON_TZ=America/New_York\n"
        "# oncely-job: nightly backup\n"
        "0 2 * * * backup --full%100\\%%done\n"
        "CRON_TZ=UTC\n"
        "SHELL=/bin/bash\n"
        "# oncely-job: sync\n"
        "@hourly sync --all\n"
    )
    assert sorted(done.stderr.splitlines()) == [
        "left out dump: job 'dump': only [shell, -c, command] actions have a crontab form",
        "left out fast: job 'fast': cron has no seconds field ('*/10 * * * * *')",
        "left out held: paused (--include-paused exports it)",
        "left out hook: an every schedule (cron has no every)",
    ]
    # Imported back: the same names, schedules, commands and standard input.
    again = parse_crontab(done.stdout)
    assert [(j.name, j.schedule, j.action.argv, j.action.stdin) for j in again.jobs] == [
        (
            "nightly backup",
            CronSchedule("0 2 * * *", timezone="America/New_York"),
            ("/bin/sh", "-c", "backup --full"),
            "100%\ndone",
        ),
        ("sync", CronSchedule("@hourly"), ("/bin/bash", "-c", "sync --all"), None),
    ]
    # A system crontab with a user column, paused jobs included, into a file.
    out = tmp_path / "crontab.txt"
    result = CliRunner().invoke(
        main,
        [
            "--store",
            store,
            "export",
            "crontab",
            "--user",
            "backup",
            "--include-paused",
            "-o",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.stderr
    lines = out.read_text().splitlines()
    assert "0 4 * * * backup held" in lines
    assert [j.user for j in parse_crontab(out.read_text(), system=True).jobs] == ["backup"] * 3


def test_preview_a_stored_job(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'oncely.db'}"
    app = App(settings=Settings(store=store))
    app.add_job(
        "east nightly",
        cron="30 1 * * *",
        timezone="America/New_York",
        dst_fold="last",
        http="https://example.com/hook",
    )
    app.close()
    args = ["--store", store, "preview", "--job", "east nightly", "--from", "2027-11-06T12:00:00Z"]
    result = CliRunner().invoke(main, [*args, "--count", "2", "--json"])
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["words"].startswith("At 01:30 (America/New_York); ")
    # 7 November 2027: 01:30 occurs twice; "last" fires at 01:30 EST = 06:30Z.
    assert [(f["utc"], f["dst"]) for f in data["fires"]] == [
        ("2027-11-07T06:30:00Z", "fold-second"),
        ("2027-11-08T06:30:00Z", None),
    ]
    missing = CliRunner().invoke(main, ["--store", store, "preview", "--job", "nope"])
    assert missing.exit_code == 3
    both = CliRunner().invoke(main, ["--store", store, "preview", "@daily", "--job", "x"])
    assert both.exit_code == 2
    assert "give a job or a schedule, not both" in both.stderr

"""Crontab parsing and rendering: the corpus in tests/data/crontabs, cron's % rules, stable
names, the day rule, and a round trip."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oncely.adapters.actions import ShellExecutor
from oncely.domain.actions import ShellAction
from oncely.domain.crontab import (
    DEFAULT_SHELL,
    ExportItem,
    job_name,
    parse_crontab,
    problems_text,
    render_crontab,
    split_percent,
)
from oncely.domain.errors import InvalidInput
from oncely.domain.schedule import CronSchedule, fires_between
from oncely.ports.actions import ActionContext, ActionSettings

CORPUS = Path(__file__).resolve().parents[1] / "data" / "crontabs"
FILES = sorted(p for p in CORPUS.iterdir() if p.name.startswith(("system-", "user-")))


def is_job_line(line: str) -> bool:
    stripped = line.strip()
    if not stripped or stripped.startswith("#"):
        return False
    return stripped[0].isdigit() or stripped[0] in "*@"


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_every_line_of_the_corpus_is_a_job_or_a_reasoned_problem(path: Path) -> None:
    text = path.read_text()
    parsed = parse_crontab(text, system=path.name.startswith("system-"))
    job_lines = [n for n, line in enumerate(text.splitlines(), 1) if is_job_line(line)]
    assert sorted([j.line for j in parsed.jobs] + [p.line for p in parsed.problems]) == sorted(
        set(job_lines) | {p.line for p in parsed.problems}
    )
    if not path.name.endswith("-bad"):
        assert problems_text(parsed.problems) == []
        assert len(parsed.jobs) == len(job_lines) >= 1
    for job in parsed.jobs:
        assert job.action.argv[1] == "-c"
        assert job.action.argv[2].strip()
        # Every name is a valid job name, and parsing again gives the same names.
        assert job.name[0].isalnum() and len(job.name) <= 60
    assert [j.name for j in parse_crontab(text, system=path.name.startswith("system-")).jobs] == [
        j.name for j in parsed.jobs
    ]
    assert len({j.name for j in parsed.jobs}) == len(parsed.jobs)


def test_system_crontab() -> None:
    parsed = parse_crontab((CORPUS / "system-etc-crontab").read_text(), system=True)
    assert [(j.line, j.schedule.expr, j.user) for j in parsed.jobs] == [
        (15, "17 * * * *", "root"),
        (16, "25 6 * * *", "root"),
        (17, "47 6 * * 7", "root"),
        (18, "52 6 1 * *", "root"),
    ]
    daily = parsed.jobs[1]
    assert daily.action.argv == (
        "/bin/sh",
        "-c",
        "test -x /usr/sbin/anacron || { cd / && run-parts --report /etc/cron.daily; }",
    )
    assert dict(daily.action.env) == {
        "SHELL": "/bin/sh",
        "PATH": "/usr/local/sbin:/usr/local/bin:/sbin:/bin:/usr/sbin:/usr/bin",
    }
    assert daily.warnings == ("runs as root under cron; oncely runs it as the worker's user",)
    # Read as a user crontab, "root" would be part of the command.
    as_user = parse_crontab("17 * * * * root cd / && run-parts /etc/cron.hourly")
    assert as_user.jobs[0].command == "root cd / && run-parts /etc/cron.hourly"


def test_escaped_percent_in_a_system_line() -> None:
    parsed = parse_crontab((CORPUS / "system-cron.d-mdadm").read_text(), system=True)
    (job,) = parsed.jobs
    assert "[ $(date +%d) -le 7 ]" in job.command
    assert job.action.stdin is None
    assert job.mailto == "root"


def test_user_crontab_environment_zones_and_mailto() -> None:
    parsed = parse_crontab((CORPUS / "user-examples").read_text())
    by_line = {j.line: j for j in parsed.jobs}
    tar = by_line[7]
    assert tar.action.argv == ("/bin/bash", "-c", "tar -zcf $BACKUP_DIR/home.tgz /home/")
    assert dict(tar.action.env) == {"SHELL": "/bin/bash", "BACKUP_DIR": "/srv/backups"}
    assert tar.mailto == "ops@example.com"
    assert tar.schedule.timezone == "UTC"
    assert "MAILTO=ops@example.com" in tar.warnings[0]
    east, london = by_line[31], by_line[34]
    assert east.schedule == CronSchedule("0 2 * * *", timezone="America/New_York")
    assert london.schedule == CronSchedule("30 1 * * *", timezone="Europe/London")
    assert london.mailto == ""  # no mail
    assert london.action.env["TZ"] == "Europe/London"  # TZ stays in the environment
    assert "CRON_TZ" not in east.action.env and "MAILTO" not in east.action.env
    macros = {j.schedule.expr for j in parsed.jobs if j.schedule.expr.startswith("@")}
    assert macros == {
        "@daily",
        "@hourly",
        "@weekly",
        "@monthly",
        "@yearly",
        "@annually",
        "@midnight",
    }


def test_default_zone_is_the_callers() -> None:
    parsed = parse_crontab(
        "0 2 * * * a\nCRON_TZ=Asia/Tokyo\n0 2 * * * b\n", timezone="Europe/Paris"
    )
    assert [j.schedule.timezone for j in parsed.jobs] == ["Europe/Paris", "Asia/Tokyo"]


def test_percent_makes_standard_input() -> None:
    parsed = parse_crontab((CORPUS / "user-examples").read_text())
    mail = next(j for j in parsed.jobs if j.line == 27)
    assert mail.action.argv[2] == 'mail -s "Daily %age report" team@example.com'
    assert mail.action.stdin == "Good morning,\nthe report is attached.\n"


@pytest.mark.parametrize(
    ("written", "command", "stdin"),
    [
        ("echo hi", "echo hi", None),
        ("cat%", "cat", ""),
        ("cat%a%b", "cat", "a\nb"),
        ("cat%a%b%", "cat", "a\nb\n"),
        (r"date +\%s", "date +%s", None),
        (r"printf '\%s'%x\%y%z", "printf '%s'", "x%y\nz"),
        (r"echo a\b", r"echo a\b", None),  # other backslashes reach the shell
        (r"cat%a\b", "cat", r"a\b"),
        ("%only", "", "only"),
        # A backslash escapes the next character while cron looks for %, as in Vixie cron.
        (r"a\\%b", r"a\\", "b"),
        (r"a\\\%b", r"a\\%b", None),
        (r"cat%a\\%b", "cat", r"a\%b"),
        ("cat%a\\", "cat", "a\\"),
        ("echo hi  %x  ", "echo hi  ", "x  "),
    ],
)
def test_split_percent(written: str, command: str, stdin: str | None) -> None:
    assert split_percent(written) == (command, stdin)


def test_the_stdin_reaches_the_program() -> None:
    """A parsed line run by the real shell executor: cron's % rules, end to end."""
    (job,) = parse_crontab(r"* * * * * tr a-z A-Z; echo \%done%hello%world").jobs
    ctx = ActionContext(
        run_id="run_1",
        job_id="job_1",
        job_name=job.name,
        owner="alice",
        attempt=1,
        fencing_token=1,
        scheduled_for=datetime(2030, 1, 1, tzinfo=UTC),
        payload=None,
    )
    executor = ShellExecutor(ActionSettings(allow_shell=True))
    result = asyncio.run(executor.execute(job.action, ctx))
    assert result.ok, result.error
    assert result.output == "HELLO\nWORLD%done\n"


def test_bad_lines_are_listed_with_their_reasons() -> None:
    parsed = parse_crontab((CORPUS / "user-bad").read_text())
    assert problems_text(parsed.problems) == [
        "line 2: @reboot runs when the cron daemon starts; oncely fires at times, so it cannot "
        "be imported (start it from your service manager instead)",
        'line 3: invalid cron "61 * * * *": field 1 (minute) value 61 is out of range 0-59',
        'line 4: invalid cron "0 0 * * 8": field 5 (day-of-week) value 8 is out of range 0-7',
        'line 5: cron "0 0 30 2 *" never fires: no date matches its day and month fields',
        "line 6: unknown macro @fortnightly; known macros are @yearly, @annually, @monthly, "
        "@weekly, @daily, @midnight, @hourly",
        "line 7: expected 5 time fields then a command, got 5 fields",
        "line 8: expected 5 time fields then a command, got 4 fields",
        'line 9: invalid cron "0 0 * * FUN": field 5 (day-of-week) "FUN" is not a day-of-week '
        "number (0-7) or name (SUN-SAT)",
        'line 10: unknown time zone "Mars/Olympus": use an IANA name such as "Europe/Paris" or '
        '"UTC"',
        'line 11: its time zone is unknown: unknown time zone "Mars/Olympus": use an IANA name '
        'such as "Europe/Paris" or "UTC" (set on line 10)',
        "line 13: the command is empty (it starts with %)",
    ]
    assert [j.line for j in parsed.jobs] == [14]
    assert parse_crontab("0 0 * * * root\n", system=True).problems[0].reason == (
        "a system crontab line needs a user and a command after the times"
    )


def test_vixie_day_rule() -> None:
    after = datetime(2026, 11, 1, tzinfo=UTC)  # a Sunday
    end = after + timedelta(days=60)
    (either,) = parse_crontab("0 12 13 * 5 /bin/superstition").jobs
    days = [f.date().isoformat() for f in fires_between(either.schedule, after, end, 5)]
    # Fridays, and the 13th (a Friday in November 2026, a Sunday in December).
    assert days == ["2026-11-06", "2026-11-13", "2026-11-20", "2026-11-27", "2026-12-04"]
    (both,) = parse_crontab("0 12 */2 * 1 /bin/odd-mondays").jobs
    days = [f.date().isoformat() for f in fires_between(both.schedule, after, end, 3)]
    # Odd days that are Mondays: 9 Nov, 23 Nov, 7 Dec.
    assert days == ["2026-11-09", "2026-11-23", "2026-12-07"]
    (named,) = parse_crontab("0 9 * jan-mar mon-fri /bin/q1").jobs
    assert named.schedule.expr == "0 9 * jan-mar mon-fri"


def test_names_are_stable_and_follow_the_command() -> None:
    base = parse_crontab("0 2 * * * /usr/local/bin/backup --full\n").jobs[0]
    assert base.name == job_name(None, "/usr/local/bin/backup --full")
    assert base.name.startswith("usr-local-bin-backup-full-")
    # A new schedule or zone: the same job (the importer updates it).
    moved = parse_crontab("CRON_TZ=Europe/Paris\n30 3 * * 1 /usr/local/bin/backup --full\n")
    assert moved.jobs[0].name == base.name
    # A new command: another job.
    assert parse_crontab("0 2 * * * /usr/local/bin/backup --incr\n").jobs[0].name != base.name
    # The user is part of the identity in system crontabs.
    root = parse_crontab("0 2 * * * root /bin/x\n", system=True).jobs[0]
    www = parse_crontab("0 2 * * * www-data /bin/x\n", system=True).jobs[0]
    assert root.name != www.name
    # The same command twice: numbered in file order.
    twice = parse_crontab("0 9 * * * /bin/report\n0 18 * * * /bin/report\n").jobs
    assert [j.name for j in twice] == [
        job_name(None, "/bin/report"),
        job_name(None, "/bin/report") + "-2",
    ]
    assert job_name(None, "%%%").startswith("cron-")
    assert len(job_name(None, "x" * 500)) <= 60


def test_env_lines() -> None:
    parsed = parse_crontab(
        'A=1\n B = two words \nC=\'quoted \'\nD=""\n"E"=5\nSHELL=\n* * * * * env\n'
    )
    (job,) = parsed.jobs
    assert dict(job.action.env) == {
        "A": "1",
        "B": "two words",
        "C": "quoted ",
        "D": "",
        "E": "5",
        "SHELL": "",
    }
    assert job.action.argv[0] == DEFAULT_SHELL  # an empty SHELL falls back to /bin/sh


def test_oversized_crontab_is_refused() -> None:
    with pytest.raises(InvalidInput) as info:
        parse_crontab("#" * (1024 * 1024 + 1))
    assert info.value.field == "crontab"


# -- rendering -------------------------------------------------------------------------------


def test_round_trip_of_the_corpus() -> None:
    text = (CORPUS / "user-examples").read_text()
    parsed = parse_crontab(text)
    items = [ExportItem(j.name, j.schedule, j.action, j.user) for j in parsed.jobs]
    rendered = render_crontab(items, header="exported by oncely")
    again = parse_crontab(rendered)
    assert again.problems == ()
    assert [(j.schedule, j.action.argv, j.action.stdin) for j in again.jobs] == [
        (j.schedule, j.action.argv, j.action.stdin) for j in parsed.jobs
    ]
    assert [j.name for j in again.jobs] != []  # names follow the command as rendered
    for path in FILES:
        system = path.name.startswith("system-")
        parsed = parse_crontab(path.read_text(), system=system)
        items = [ExportItem(j.name, j.schedule, j.action, j.user) for j in parsed.jobs]
        again = parse_crontab(render_crontab(items), system=system)
        assert [(j.schedule, j.action, j.user, j.name) for j in again.jobs] == [
            (j.schedule, j.action, j.user, j.name) for j in parsed.jobs
        ], path.name


def test_render_writes_zones_shell_and_escapes() -> None:
    items = [
        ExportItem(
            "a",
            CronSchedule("0 2 * * *", timezone="America/New_York"),
            ShellAction(("/bin/sh", "-c", "date +%d"), stdin="x%y\nz"),
        ),
        ExportItem(
            "b",
            CronSchedule("0 3 * * *", timezone="America/New_York", dst_fold="both"),
            ShellAction(("/bin/bash", "-c", "echo b")),
        ),
    ]
    assert render_crontab(items) == (
        "CRON_TZ=America/New_York\n"
        "# oncely-job: a\n"
        "0 2 * * * date +\\%d%x\\%y%z\n"
        "SHELL=/bin/bash\n"
        "# b: DST policy shift/both has no crontab form (cron implementations differ)\n"
        "# oncely-job: b\n"
        "0 3 * * * echo b\n"
    )


@pytest.mark.parametrize(
    ("item", "field"),
    [
        (ExportItem("s", CronSchedule("*/10 * * * * *"), ShellAction(("sh", "-c", "x"))), "cron"),
        (
            ExportItem("argv", CronSchedule("@daily"), ShellAction(("backup", "--full"))),
            "shell.argv",
        ),
        (
            ExportItem(
                "j",
                CronSchedule("@daily", jitter=timedelta(seconds=5)),
                ShellAction(("sh", "-c", "x")),
            ),
            "jitter",
        ),
        (
            ExportItem(
                "e",
                CronSchedule("@daily", end=datetime(2030, 1, 1, tzinfo=UTC)),
                ShellAction(("sh", "-c", "x")),
            ),
            "end",
        ),
        (
            ExportItem("d", CronSchedule("@daily"), ShellAction(("sh", "-c", "x"), cwd="/tmp")),
            "shell.cwd",
        ),
        (ExportItem("n", CronSchedule("@daily"), ShellAction(("sh", "-c", "a\nb"))), "shell.argv"),
    ],
)
def test_render_refuses_what_cron_cannot_say(item: ExportItem, field: str) -> None:
    with pytest.raises(InvalidInput) as info:
        render_crontab([item])
    assert info.value.field == field
    assert repr(item.name) in str(info.value)


def test_render_refuses_to_leak_a_variable_into_a_later_job() -> None:
    first = ExportItem("a", CronSchedule("@daily"), ShellAction(("sh", "-c", "x"), env={"K": "1"}))
    second = ExportItem("b", CronSchedule("@daily"), ShellAction(("sh", "-c", "y")))
    with pytest.raises(InvalidInput, match="does not set K"):
        render_crontab([first, second])
    assert "K=1" in render_crontab([second, first])


def test_exported_names_come_back() -> None:
    items = [
        ExportItem("nightly backup", CronSchedule("0 2 * * *"), ShellAction(("sh", "-c", "b"))),
        ExportItem("sync", CronSchedule("@hourly"), ShellAction(("sh", "-c", "s"))),
    ]
    again = parse_crontab(render_crontab(items))
    assert [j.name for j in again.jobs] == ["nightly backup", "sync"]
    # The mark names only the line right after it.
    parsed = parse_crontab("# oncely-job: kept\n0 1 * * * a\n# oncely-job: lost\n\n0 2 * * * b\n")
    assert [j.name for j in parsed.jobs] == ["kept", job_name(None, "b")]
    bad = parse_crontab("# oncely-job: -bad name!\n0 1 * * * a\n")
    assert [(p.line, p.reason.split(" must")[0]) for p in bad.problems] == [(1, "job name")]
    assert bad.jobs == ()


five_field = st.sampled_from(
    ["0 2 * * *", "*/15 9-17 * * mon-fri", "@daily", "0 0 1,15 * *", "5 4 * * sun", "@hourly"]
)
awkward = st.text(alphabet="ab %\\\n#'\"\t", max_size=12)


@settings(max_examples=400, deadline=None)
@given(
    expr=five_field,
    zone=st.sampled_from(["UTC", "Europe/Paris", "America/New_York"]),
    command=awkward.filter(lambda c: c.strip() != ""),
    stdin=st.none() | awkward,
)
def test_render_then_parse_gives_the_job_back_or_refuses(
    expr: str, zone: str, command: str, stdin: str | None
) -> None:
    item = ExportItem(
        "j", CronSchedule(expr, timezone=zone), ShellAction(("sh", "-c", command), stdin=stdin)
    )
    text = _rendered(item)
    if isinstance(text, InvalidInput):
        assert "cannot be written exactly" in str(text)
        assert "\n" in command or command[0].isspace() or "\\" in command + (stdin or "")
        return
    (job,) = parse_crontab(text).jobs
    assert (job.name, job.schedule, job.action.argv, job.action.stdin) == (
        "j",
        item.schedule,
        item.action.argv,
        stdin,
    )


def _rendered(item: ExportItem) -> str | InvalidInput:
    try:
        return render_crontab([item])
    except InvalidInput as exc:
        return exc

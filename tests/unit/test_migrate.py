"""Planning a crontab import against stored jobs, and the fires of a backfill."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from oncely.domain.actions import HttpAction, ShellAction
from oncely.domain.crontab import parse_crontab
from oncely.domain.errors import InvalidInput
from oncely.domain.migrate import StoredJob, backfill_fires, plan_import
from oncely.domain.schedule import AtSchedule, CronSchedule, EverySchedule

TEXT = """\
MAILTO=ops@example.com
0 2 * * * /bin/backup
*/15 * * * * /bin/poll
0 9 * * 1-5 /bin/report
"""


def z(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_first_import_creates_everything() -> None:
    crontab = parse_crontab(TEXT)
    plan = plan_import(crontab, [])
    assert [j.command for j in plan.create] == ["/bin/backup", "/bin/poll", "/bin/report"]
    assert plan.update == plan.unchanged == plan.stale == plan.conflicts == ()
    assert plan.changes_anything


def test_reimport_updates_only_what_changed_and_reports_stale_jobs() -> None:
    first = parse_crontab(TEXT)
    stored = [StoredJob(j.name, j.schedule, j.action) for j in first.jobs]
    stored.append(StoredJob("other", CronSchedule("@daily"), ShellAction(("true",))))
    edited = parse_crontab(
        TEXT.replace("0 2 * * * /bin/backup", "30 3 * * * /bin/backup").replace(
            "*/15 * * * * /bin/poll\n", ""
        )
    )
    plan = plan_import(edited, stored, previously_imported=[j.name for j in first.jobs])
    backup, report = first.jobs[0], first.jobs[2]
    assert [j.name for j in plan.update] == [backup.name]
    assert plan.update[0].schedule == CronSchedule("30 3 * * *")
    assert [j.name for j in plan.unchanged] == [report.name]
    assert plan.create == ()
    assert plan.stale == (first.jobs[1].name,)  # /bin/poll left the file; "other" never in it
    # Nothing changed: nothing to do.
    again = plan_import(first, stored)
    assert not again.changes_anything
    assert len(again.unchanged) == 3


def test_a_job_of_another_kind_with_the_same_name_is_a_conflict() -> None:
    crontab = parse_crontab("# oncely-job: hook\n0 * * * * /bin/hook\n0 1 * * * /bin/x\n")
    stored = [StoredJob("hook", CronSchedule("@hourly"), HttpAction("https://example.com"))]
    plan = plan_import(crontab, stored)
    assert [(c.line, c.reason) for c in plan.conflicts] == [
        (
            2,
            "a http job named 'hook' exists; importing does not replace it with a shell job "
            "(rename one of them)",
        )
    ]
    assert [j.command for j in plan.create] == ["/bin/x"]
    assert plan_import(parse_crontab("@reboot x\n"), []).problems[0].line == 1


NOW = z("2030-03-01T00:00:00")


def test_backfill_fires_in_a_past_period_both_ends_included() -> None:
    sched = CronSchedule("0 2 * * *", timezone="America/New_York")
    fires = backfill_fires(sched, z("2024-03-09T07:00:00"), z("2024-03-11T06:00:00"), now=NOW)
    # 02:00 EST = 07:00Z on the 9th (the start itself); the 10th's 02:00 does not exist and
    # shifts to 03:00 EDT = 07:00Z; 02:00 EDT = 06:00Z on the 11th (the end itself).
    assert fires == [z("2024-03-09T07:00:00"), z("2024-03-10T07:00:00"), z("2024-03-11T06:00:00")]
    every = EverySchedule(timedelta(hours=6), z("2024-01-01T00:00:00"))
    assert (
        len(backfill_fires(every, z("2024-01-01T00:00:00"), z("2024-01-02T00:00:00"), now=NOW)) == 5
    )
    at = AtSchedule(z("2024-05-05T05:05:00"))
    assert backfill_fires(at, z("2024-05-01T00:00:00"), z("2024-06-01T00:00:00"), now=NOW) == [
        z("2024-05-05T05:05:00")
    ]


@pytest.mark.parametrize(
    ("start", "end", "field", "text"),
    [
        ("2024-03-02T00:00:00", "2024-03-01T00:00:00", "end", "must be before end"),
        ("2030-02-01T00:00:00", "2030-04-01T00:00:00", "end", "is in the future"),
        ("2024-01-01T00:00:00", "2024-12-31T00:00:00", "end", "more than 100 fires (the 101th"),
    ],
)
def test_backfill_refuses_bad_periods(start: str, end: str, field: str, text: str) -> None:
    with pytest.raises(InvalidInput) as info:
        backfill_fires(CronSchedule("@daily"), z(start), z(end), now=NOW, limit=100)
    assert info.value.field == field
    assert text in str(info.value)
    with pytest.raises(InvalidInput) as info:
        backfill_fires(CronSchedule("@daily"), datetime(2024, 1, 1), z(end), now=NOW)
    assert info.value.field == "start"

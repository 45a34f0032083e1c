"""The stored form of schedules and policies: compact, and stable across default changes."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from oncely.adapters.codec import action_from_row, job_columns, policy_from_row, schedule_from_row
from oncely.domain.errors import InvalidInput
from oncely.domain.policy import Policy, policy_to_dict
from oncely.domain.schedule import CronSchedule, schedule_to_dict
from tests.contract.conftest import make_job


def test_a_default_job_stores_only_what_sql_reads() -> None:
    cols = job_columns(make_job(schedule=CronSchedule(expr="0 0 1 1 *")))
    assert json.loads(cols["policy"]) == {"overlap": "allow", "queue": "default", "priority": 0}
    assert json.loads(cols["schedule"]) == {"kind": "cron", "expr": "0 0 1 1 *"}


def test_compact_columns_round_trip() -> None:
    for policy in (Policy(), Policy(max_retries=0, timeout=9.5, misfire="skip", misfire_cap=7)):
        job = make_job(policy=policy)
        assert policy_from_row(job_columns(job)["policy"]) == policy
    schedule = CronSchedule(expr="*/5 * * * * *", timezone="Pacific/Chatham", dst_gap="skip")
    assert schedule_from_row(job_columns(make_job(schedule=schedule))["schedule"]) == schedule


def test_full_stored_forms_still_read() -> None:
    policy = replace(Policy(), max_retries=7)
    assert policy_from_row(json.dumps(policy_to_dict(policy))) == policy
    schedule = CronSchedule(expr="0 9 * * 1-5", timezone="Europe/Paris")
    assert schedule_from_row(json.dumps(schedule_to_dict(schedule))) == schedule


def test_stored_defaults_do_not_follow_policy_defaults() -> None:
    # What a stored job means is fixed by the storage format, not by today's Policy():
    # a missing key reads as the value frozen in the codec.
    assert policy_from_row('{"queue": "default", "priority": 0, "overlap": "allow"}') == Policy(
        max_retries=3, base_delay=1.0, max_delay=300.0, misfire_grace=60.0, misfire_cap=100
    )


def test_the_same_stored_text_decodes_once_and_a_changed_one_anew() -> None:
    # The hot paths select these columns as text so that 500 rows of one policy decode once.
    text = json.dumps({"queue": "q", "priority": 0, "overlap": "allow", "timeout": 5})
    first, again = policy_from_row(text), policy_from_row(text)
    assert first is again and first.timeout == 5
    changed = policy_from_row(text.replace('"timeout": 5', '"timeout": 6'))
    assert changed.timeout == 6 and changed is not first
    action = '{"kind": "http", "url": "https://example.com/a", "headers": {"x-a": "1"}}'
    assert action_from_row(action) is action_from_row(action)
    # jsonb values (dicts) still decode, uncached; a malformed text raises every time.
    assert action_from_row(json.loads(action)) == action_from_row(action)
    for _ in range(2):
        with pytest.raises(InvalidInput):
            policy_from_row('{"queue": "q", "priority": "high", "overlap": "allow"}')

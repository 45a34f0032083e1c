"""The dashboard's pure parts: redirect targets, form parsing, charts' escaping, words."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from oncely.domain.policy import Policy
from oncely.web import charts, words
from oncely.web.forms import FormError, parse_job_form, schedule_form
from oncely.web.routes import _error_key, _safe_next

T = datetime(2027, 3, 14, 6, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/jobs?q=a", "/jobs?q=a"),
        ("//evil.example/x", "/"),
        ("https://evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("javascript:alert(1)", "/"),
        ("", "/"),
    ],
)
def test_after_login_only_paths_of_this_site(target: str, expected: str) -> None:
    assert _safe_next(target) == expected


def test_the_form_names_every_missing_or_bad_field_at_once() -> None:
    with pytest.raises(FormError) as err:
        parse_job_form({"kind": "cron", "action": "task", "payload": "{nope", "retries": "x"},
                       create=True)
    assert set(err.value.errors) == {"name", "cron", "task", "payload", "retries"}
    assert "not valid JSON" in err.value.errors["payload"]


def test_the_form_makes_the_api_s_model() -> None:
    spec = parse_job_form(
        {"name": "n", "kind": "every", "every": "5m", "action": "http",
         "http": "https://example.com/x", "payload": '{"a": 1}', "retries": "2"},
        create=True,
    )
    assert (spec.every, spec.http, spec.payload, spec.retries) == (
        "5m", "https://example.com/x", {"a": 1}, 2
    )
    at = schedule_form({"kind": "at", "at": "2027-03-14T02:30", "timezone": "Europe/Paris"})
    assert at["at"] == datetime(2027, 3, 14, 1, 30, tzinfo=UTC)
    with pytest.raises(FormError) as err:
        schedule_form({"kind": "at", "at": "2027-03-14T02:30", "timezone": "Nowhere/City"})
    assert set(err.value.errors) == {"timezone"}


def test_charts_escape_text_and_draw_numbers_only() -> None:
    hostile = "<script>alert(1)</script>"
    heat = str(charts.month_heatmap([[(1, 2, 1, hostile)] + [None] * 6]))
    assert "<script>" not in heat and "&lt;script&gt;" in heat
    assert 'class="h-some"' in heat
    chart = str(charts.duration_chart([(T, 0.2, 0.01), (T + timedelta(minutes=1), 0.4, None)]))
    assert chart.count("<circle") == 3 and "<polyline" in chart
    assert "No finished runs yet" in str(charts.duration_chart([]))
    spark = str(charts.sparkline([1.0, 0.0, None]))
    assert 'aria-label="1 of the last 3 runs succeeded"' in spark


def test_words() -> None:
    assert words.ago(T - timedelta(seconds=90), T) == "1 min ago"
    assert words.ago(T + timedelta(seconds=5), T) == "in 5 s"
    shown = str(words.when(T, T, countdown=True))
    assert 'datetime="2027-03-14T06:00:00+00:00"' in shown and "data-countdown" in shown
    said = dict(words.policy_words(Policy(max_retries=0, overlap="forbid", deadline=3600)))
    assert said["Retries"].startswith("No retries")
    assert "skipped" in said["Overlap"]
    assert said["Deadline"] == "Alert if no success within 1 hour."
    assert _error_key("Traceback (most recent call last):\n  File x\nValueError: bad") == (
        "ValueError: bad"
    )


def test_every_action_kind_has_words() -> None:
    from oncely.domain.actions import EmailAction, SqlAction

    assert words.action_words(EmailAction(to=("a@example.com",), subject="Hi", body="x")) == (
        "Email 'Hi' to a@example.com"
    )
    assert words.action_words(SqlAction(connection="main", statement="select 1")) == (
        "SQL on connection main"
    )

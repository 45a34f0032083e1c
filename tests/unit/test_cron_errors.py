"""Every error for a bad cron expression names the field and the token at fault."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oncely.domain.cron import parse_cron
from oncely.domain.errors import InvalidInput

FIELDS = ["minute", "hour", "day-of-month", "month", "day-of-week"]
VALID = ["0", "0", "1", "1", "*"]


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        (
            "0 0 1 1 *-xC",
            'invalid cron "0 0 1 1 *-xC": field 5 (day-of-week) "*" in "*-XC" is not a '
            "day-of-week number (0-7) or name (SUN-SAT)",
        ),
        (
            "0 0 1 1-FOO *",
            'invalid cron "0 0 1 1-FOO *": field 4 (month) "FOO" in "1-FOO" is not a month '
            "number (1-12) or name (JAN-DEC)",
        ),
        (
            "0 5*-9 * * *",
            'invalid cron "0 5*-9 * * *": field 2 (hour) "5*" in "5*-9" is not a number',
        ),
        ("x * * * *", 'invalid cron "x * * * *": field 1 (minute) "X" is not a number'),
    ],
)
def test_a_part_of_an_item_is_shown_with_its_item(expr: str, message: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_cron(expr)
    assert str(info.value) == message


_QUOTED = re.compile(r'"([^"]*)"')
_NUMBERS = re.compile(r"(?:value|step|range) (\S+?)(?: |$)")


@settings(max_examples=2000, deadline=None)
@given(
    position=st.integers(0, 4),
    text=st.text(alphabet="0123456789*/-,LW#?ABCJANMONSUx", min_size=1, max_size=8),
)
def test_errors_name_the_field_and_a_token_from_it(position: int, text: str) -> None:
    parts = list(VALID)
    parts[position] = text
    expr = " ".join(parts)
    error = _error_of(expr)
    if error is None:
        return  # valid after all
    message = str(error)
    assert error.field == "cron"
    assert f"field {position + 1} ({FIELDS[position]})" in message
    detail = message.split(f"({FIELDS[position]}) ", 1)[1]
    named = _QUOTED.findall(detail) + _NUMBERS.findall(detail)
    written = text.upper()
    # A quoted token is part of what was written; a number may have lost leading zeros.
    assert any(
        token and (token in written or (token.isdigit() and str(int(token)) in written))
        for token in named
    ), message


def _error_of(expr: str) -> InvalidInput | None:
    try:
        parse_cron(expr)
    except InvalidInput as exc:
        return exc
    return None

"""``oncely preview``: the pure command through click, and once as a real process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from oncely.cli.main import main

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["preview", *args])
    return result.exit_code, result.stdout, result.stderr


def test_text_output_flags_the_shifted_fire() -> None:
    code, out, _ = run(
        "0 2 * * *", "--tz", "America/New_York", "--count", "3", "--from", "2027-03-12T12:00:00Z"
    )
    assert code == 0
    assert out.splitlines() == [
        "At 02:00 (America/New_York)",
        "Next 3 fires (America/New_York, then UTC):",
        "  Sat 2027-03-13 02:00:00 EST      2027-03-13 07:00:00Z",
        "  Sun 2027-03-14 03:00:00 EDT      2027-03-14 07:00:00Z  [shifted] 02:00 does not "
        "exist on 2027-03-14 (clocks jump forward from 02:00 to 03:00, UTC-05:00 to UTC-04:00): "
        "shifted to 03:00",
        "  Mon 2027-03-15 02:00:00 EDT      2027-03-15 06:00:00Z",
    ]


def test_json_output_with_skip_and_fold_policies() -> None:
    code, out, _ = run(
        "30 1 * * *",
        "--tz",
        "America/New_York",
        "--dst-fold",
        "both",
        "--count",
        "3",
        "--from",
        "2027-11-06T12:00:00Z",
        "--json",
    )
    assert code == 0
    data = json.loads(out)
    assert data["words"].startswith("At 01:30 (America/New_York)")
    assert data["schedule"]["dst_fold"] == "both"
    assert [(f["utc"], f["local"], f["dst"]) for f in data["fires"]] == [
        ("2027-11-07T05:30:00Z", "2027-11-07T01:30:00-04:00", "fold-first"),
        ("2027-11-07T06:30:00Z", "2027-11-07T01:30:00-05:00", "fold-second"),
        ("2027-11-08T06:30:00Z", "2027-11-08T01:30:00-05:00", None),
    ]
    code, out, _ = run(
        "30 2 * * *",
        "--tz",
        "America/New_York",
        "--dst-gap",
        "skip",
        "--count",
        "1",
        "--from",
        "2027-03-13T12:00:00Z",
        "--json",
    )
    fires = json.loads(out)["fires"]
    assert [(f["fires"], f["dst"], f["wall"]) for f in fires] == [
        (False, "skipped", "2027-03-14T02:30:00"),
        (True, None, "2027-03-15T02:30:00"),
    ]


def test_dst_days() -> None:
    code, out, _ = run("0 2 * * *", "--tz", "America/New_York", "--dst-days", "--year", "2027")
    assert code == 0
    assert out.splitlines()[1:] == [
        "Days in 2027 when a clock change in America/New_York affects it:",
        "  Sun 2027-03-14  [shifted] clocks jump forward from 02:00 to 03:00, UTC-05:00 to "
        "UTC-04:00; 02:00: shifted to 03:00",
    ]
    code, out, _ = run(
        "30 1 * * *", "--tz", "Europe/London", "--dst-days", "--year", "2027", "--json"
    )
    days = json.loads(out)["days"]
    # 28 March 01:00 GMT -> 02:00 BST at 01:00Z; 31 October 02:00 BST -> 01:00 GMT at 01:00Z.
    assert [(d["date"], d["flag"], d["instants"]) for d in days] == [
        ("2027-03-28", "shifted", ["2027-03-28T01:00:00Z"]),
        ("2027-10-31", "fold-first", ["2027-10-31T00:30:00Z"]),
    ]
    code, out, _ = run("0 12 * * *", "--tz", "Asia/Tokyo", "--dst-days", "--year", "2027")
    assert out.splitlines()[1] == "No DST days in 2027: no clock change in Asia/Tokyo touches it."


def test_every_and_at() -> None:
    code, out, _ = run(
        "--every",
        "90m",
        "--anchor",
        "2027-03-14T05:00:00Z",
        "--from",
        "2027-03-14T05:00:00Z",
        "--tz",
        "America/New_York",
        "--count",
        "2",
    )
    assert code == 0
    assert out.splitlines() == [
        "Every 1 hour 30 minutes, counted from 2027-03-14T05:00:00Z",
        "Next 2 fires (America/New_York, then UTC):",
        "  Sun 2027-03-14 01:30:00 EST      2027-03-14 06:30:00Z",
        "  Sun 2027-03-14 04:00:00 EDT      2027-03-14 08:00:00Z",
    ]
    code, out, _ = run("--at", "2030-01-01T09:00:00+01:00", "--from", "2029-01-01T00:00:00Z")
    assert out.splitlines() == [
        "Once, at 2030-01-01T08:00:00Z",
        "Next 1 fire (UTC):",
        "  Tue 2030-01-01 08:00:00 UTC      2030-01-01 08:00:00Z",
    ]


def test_bad_input_names_the_field_and_token() -> None:
    code, _, err = run("0 0 * * FUN")
    assert code == 2
    assert err.strip() == (
        'error (cron): invalid cron "0 0 * * FUN": field 5 (day-of-week) "FUN" is not a '
        "day-of-week number (0-7) or name (SUN-SAT)"
    )
    code, _, err = run("0 0 * * *", "--tz", "Mars/Olympus")
    assert code == 2
    assert err.startswith('error (timezone): unknown time zone "Mars/Olympus"')
    code, _, err = run("0 0 * * *", "--every", "5m")
    assert code == 2
    assert "give exactly one of cron, at or every" in err
    code, _, err = run("0 0 * * *", "--from", "tomorrow")
    assert code == 2
    assert err.startswith('error (from): from "tomorrow" is not an ISO 8601')


def test_real_process() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "oncely.cli.main",
            "preview",
            "*/15 * * * *",
            "--tz",
            "Australia/Lord_Howe",
            "--from",
            "2027-10-02T15:10:00Z",
            "--count",
            "3",
            "--json",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    fires = json.loads(done.stdout)["fires"]
    # Lord Howe, 2027-10-03 02:00 -> 02:30 (+10:30 -> +11) at 10-02 15:30Z: 02:00 and 02:15
    # do not exist and merge into 02:30's fire.
    assert [(f["local"], f["dst"]) for f in fires] == [
        ("2027-10-03T01:45:00+10:30", None),
        ("2027-10-03T02:30:00+11:00", "merged"),
        ("2027-10-03T02:45:00+11:00", None),
    ]

"""``oncely jobs show``: the job, its schedule in words, and its next fires in its zone and in
UTC with DST flags, from a local store and from a remote server (real processes)."""

from __future__ import annotations

from pathlib import Path

from tests.acceptance.test_cli import Cli
from tests.acceptance.test_cli_remote import ADMIN, PASSWORD, RemoteCli, server

__all__ = ["server"]  # the fixture, used by the remote test


def test_jobs_show_previews_the_next_fires_with_dst_flags(tmp_path: Path) -> None:
    cli = Cli(tmp_path)
    # Troll goes back from 03:00 +02 to 01:00 +00 at 2027-10-31 01:00Z: 01:30 occurs twice,
    # first at 23:30Z on the 30th, then at 01:30Z. The start bound puts the fold in view.
    added = cli(
        "jobs", "add", "nightly", "--cron", "30 1 * * *", "--timezone", "Antarctica/Troll",
        "--dst-fold", "both", "--start", "2027-10-30T00:00:00Z", "--http",
        "https://example.com/hook",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    done = cli("jobs", "show", "nightly", "--count", "3")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("nightly  (id ") and "active" in lines[0]
    assert "action:   http POST https://example.com/hook" in lines
    assert lines[lines.index("") + 1].startswith("At 01:30 (Antarctica/Troll)")
    fires = lines[lines.index("") + 2 :]
    assert fires[0] == "Next 3 fires (Antarctica/Troll, then UTC):"
    assert fires[1].split() [:6] == [
        "Sun", "2027-10-31", "01:30:00", "+02", "2027-10-30", "23:30:00Z",
    ]  # fmt: skip
    assert "[fold-first] 01:30 occurs twice on 2027-10-31" in fires[1]
    assert fires[2].split()[:6] == [
        "Sun",
        "2027-10-31",
        "01:30:00",
        "+00",
        "2027-10-31",
        "01:30:00Z",
    ]
    assert "[fold-second]" in fires[2] and "fires both times (dst_fold=both)" in fires[2]
    assert fires[3].split() == ["Mon", "2027-11-01", "01:30:00", "+00", "2027-11-01", "01:30:00Z"]

    data = cli.json("jobs", "show", "nightly", "--count", "3")
    assert data["name"] == "nightly"
    assert data["preview"]["timezone"] == "Antarctica/Troll"
    assert [(f["utc"], f["dst"]) for f in data["preview"]["fires"]] == [
        ("2027-10-30T23:30:00Z", "fold-first"),
        ("2027-10-31T01:30:00Z", "fold-second"),
        ("2027-11-01T01:30:00Z", None),
    ]
    assert cli("jobs", "show", "missing").returncode == 3


def test_jobs_show_against_a_server(server: str, tmp_path: Path) -> None:
    cli = RemoteCli(tmp_path, server)
    assert cli("login", "--username", ADMIN, "--password", PASSWORD).returncode == 0
    # New York 2027-03-14: 02:00 EST -> 03:00 EDT at 07:00Z; 02:30 shifts to 03:00 EDT; a paused
    # job still shows what it would do once resumed.
    added = cli(
        "jobs", "add", "report", "--cron", "30 2 * * *", "--timezone", "America/New_York",
        "--start", "2027-03-13T12:00:00Z", "--task", "send",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert cli("jobs", "pause", "report").returncode == 0
    done = cli("jobs", "show", "report", "--count", "2")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "paused" in out.splitlines()[0]
    assert "Once resumed, the next 2 fires (America/New_York, then UTC):" in out
    shifted = next(line for line in out.splitlines() if "[shifted]" in line)
    assert shifted.split()[:6] == [
        "Sun",
        "2027-03-14",
        "03:00:00",
        "EDT",
        "2027-03-14",
        "07:00:00Z",
    ]
    assert "02:30 does not exist on 2027-03-14" in shifted
    data = cli.json("jobs", "show", "report", "--count", "2")
    assert [f["utc"] for f in data["preview"]["fires"]] == [  # type: ignore[index]
        "2027-03-14T07:00:00Z",
        "2027-03-15T06:30:00Z",
    ]

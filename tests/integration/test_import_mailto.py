"""A crontab's ``MAILTO`` becomes a failure notification: an ``email`` channel through the
server's SMTP relay (a real aiosmtpd server on loopback) and a failure rule per job of that
section; the job fails, the mail arrives; a re-import makes nothing new. Without a relay, or
for a local user, a warning instead."""

from __future__ import annotations

from pathlib import Path

import pytest

import oncely
from oncely.config import Settings
from oncely.domain.errors import InvalidInput
from oncely.domain.notify import ChannelKind, NotifyEvent
from oncely.domain.principal import system_principal
from tests.integration.test_action_email import Mailbox, run_until, smtp

__all__ = ["smtp"]  # the fixture

CRONTAB = """\
MAILTO=ops@example.com
0 0 1 1 * echo broken >&2; exit 3
MAILTO=""
0 5 1 1 * true
MAILTO=root
0 6 1 1 * true
"""


def _app(tmp_path: Path, port: int | None) -> oncely.App:
    relay = (
        {}
        if port is None
        else {"smtp_url": f"smtp://127.0.0.1:{port}", "smtp_from": "oncely@example.com"}
    )
    return oncely.App(
        settings=Settings(
            store=f"sqlite:///{tmp_path / 'oncely.db'}",
            allow_shell=True,
            worker_lease_ttl=5,
            shutdown_grace=2,
            **relay,
        )
    )


def test_mailto_becomes_an_email_failure_notification(
    tmp_path: Path,
    smtp: tuple[Mailbox, int],
) -> None:
    box, port = smtp
    app = _app(tmp_path, port)
    me = system_principal(app.owner)
    report = app.service.imports.crontab(me, CRONTAB)
    assert [j.status for j in report.jobs] == ["create"] * 3
    failing, quiet, local = (j.name for j in report.jobs)
    assert report.jobs[0].warnings == (
        "MAILTO: failures are mailed to ops@example.com (email channel, rule)",
    )
    assert report.jobs[2].warnings == (
        "MAILTO=root: cron mails the output; oncely keeps it on the run",
    )
    # MAILTO=root is a local user: warned about, no channel; MAILTO="" is no mail.
    assert len(report.warnings) == 1 and report.warnings[0].startswith("MAILTO=root (lines 6)")
    store = app.service.deps.store()
    [channel] = store.channel_list(app.owner)
    assert (channel.kind, channel.url) == (ChannelKind.EMAIL, "ops@example.com")
    [rule] = store.rule_list(app.owner)
    assert rule.events == {NotifyEvent.FAILURE} and rule.channel_id == channel.id
    assert rule.job_id == app.get_job(failing).id

    again = app.service.imports.crontab(me, CRONTAB)
    assert [j.status for j in again.jobs] == ["unchanged"] * 3
    assert store.channel_list(app.owner) == [channel]
    assert store.rule_list(app.owner) == [rule]

    run = app.trigger(failing)
    run_until(app, lambda: any("failed" in (m["Subject"] or "") for m in box.messages))
    # One mail per failed attempt: a retry 2 s later may have failed and mailed too by now
    # (seen in CI), never the same notification twice.
    failed = [m for m in box.messages if "failed" in (m["Subject"] or "")]
    assert len({m["Message-ID"] for m in failed}) == len(failed)
    mail = failed[0]
    assert mail["Subject"] == f"[oncely] {failing} failed"
    assert mail["To"] == "ops@example.com" and mail["From"] == "oncely@example.com"
    assert mail["Message-ID"].endswith("@oncely>")
    body = mail.get_payload(decode=True).decode()
    assert run.id in body
    assert ("oncely@example.com", ["ops@example.com"]) in box.envelopes
    assert not any(
        quiet in (m["Subject"] or "") or local in (m["Subject"] or "") for m in box.messages
    )
    app.close()


def test_without_a_relay_mailto_is_a_warning(tmp_path: Path) -> None:
    app = _app(tmp_path, None)
    me = system_principal(app.owner)
    report = app.service.imports.crontab(me, CRONTAB)
    assert [w.split(" (")[0] for w in report.warnings] == ["MAILTO=ops@example.com", "MAILTO=root"]
    assert "no SMTP relay" in report.warnings[0]
    assert app.service.deps.store().channel_list(app.owner) == []
    # And an email channel cannot be made by hand there either.
    with pytest.raises(InvalidInput, match="smtp_url"):
        app.service.notifications.channel_create(me, "ops", "email", "ops@example.com")
    app.close()

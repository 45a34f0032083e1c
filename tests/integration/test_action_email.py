"""The ``email`` action and email notifications against a real SMTP server (aiosmtpd) on
loopback, through the embedded App: the relay comes from server config, the run id is the
Message-ID, a refused recipient fails the attempt, and a run that goes dead is announced by
an Apprise mailto:// channel through the notification service."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from email import message_from_string
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

import oncely
from oncely.adapters.actions.email import EmailExecutor
from oncely.config import Settings
from oncely.domain.actions import EmailAction
from oncely.domain.errors import InvalidInput
from oncely.domain.principal import system_principal
from oncely.domain.runs import RunState
from oncely.ports.actions import ActionContext, ActionSettings

REFUSED = "nobody@refused.example.com"


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[Any] = []
        self.envelopes: list[tuple[str, list[str]]] = []

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address == REFUSED:
            return "550 no such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        self.messages.append(message_from_string(envelope.content.decode("utf-8", "replace")))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    yield box, port
    controller.stop()


def _app(tmp_path: Path, port: int | None) -> oncely.App:
    relay = (
        {}
        if port is None
        else {"smtp_url": f"smtp://127.0.0.1:{port}", "smtp_from": "oncely@example.com"}
    )
    return oncely.App(
        settings=Settings(
            store=f"sqlite:///{tmp_path / 'oncely.db'}",
            worker_lease_ttl=5,
            shutdown_grace=2,
            **relay,
        )
    )


def run_until(app: oncely.App, done: Callable[[], bool], timeout: float = 30) -> None:
    async def main() -> None:
        stop = asyncio.Event()
        runner = asyncio.create_task(app.run_async(stop=stop))
        deadline = time.monotonic() + timeout
        while not done() and time.monotonic() < deadline and not runner.done():  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        stop.set()
        await runner

    asyncio.run(main())
    assert done(), "condition not reached before the timeout"


def test_an_email_job_sends_its_message_with_the_run_id(
    tmp_path: Path, smtp: tuple[Mailbox, int]
) -> None:
    box, port = smtp
    app = _app(tmp_path, port)
    app.add_job(
        "weekly-report",
        cron="0 9 * * MON",
        email={
            "to": ["team@example.com"],
            "cc": ["boss@example.com"],
            "subject": "Weekly report",
            "body": "All green.\n",
        },
        paused=True,
    )
    run = app.trigger("weekly-report")
    run_until(app, lambda: app.get_run(run.id).state is RunState.SUCCEEDED)
    [message] = box.messages
    assert message["Message-ID"] == f"<{run.id}@oncely>"
    assert message["Idempotency-Key"] == run.id
    assert message["Subject"] == "Weekly report" and message["To"] == "team@example.com"
    assert message.get_payload().strip() == "All green."
    assert box.envelopes == [("oncely@example.com", ["team@example.com", "boss@example.com"])]
    job = app.get_job("weekly-report")
    assert job.action == EmailAction(
        to=("team@example.com",),
        subject="Weekly report",
        body="All green.\n",
        cc=("boss@example.com",),
    )
    app.close()


def test_email_jobs_need_a_relay_and_valid_addresses(tmp_path: Path) -> None:
    app = _app(tmp_path, None)
    with pytest.raises(InvalidInput) as no_relay:
        app.add_job("x", every="1h", email={"to": ["a@example.com"], "subject": "s"})
    assert no_relay.value.field == "email"
    app.close()
    app = _app(tmp_path, 2525)
    with pytest.raises(InvalidInput) as bad:
        app.add_job("x", every="1h", email={"to": ["not-an-address"], "subject": "s"})
    assert bad.value.field == "email.to"
    with pytest.raises(InvalidInput):
        app.add_job("x", every="1h", email={"to": ["a@example.com"], "subject": "a\nBcc: x"})
    assert app.list_jobs() == []
    app.close()


def test_a_refused_recipient_fails_and_retries_resend_the_same_message(
    smtp: tuple[Mailbox, int],
) -> None:
    box, port = smtp
    executor = EmailExecutor(
        ActionSettings(smtp_url=f"smtp://127.0.0.1:{port}", smtp_from="oncely@example.com")
    )
    action = EmailAction(to=("ok@example.com", REFUSED), subject="s", body="b")
    ctx = ActionContext(
        "01a2b3c4-0000-7000-8000-000000000001", "j", "job", "o", 1, 7, datetime.now(UTC)
    )
    result = asyncio.run(executor.execute(action, ctx))
    assert not result.ok and result.error is not None and REFUSED in result.error
    ok = EmailAction(to=("ok@example.com",), subject="s", body="b")
    first = asyncio.run(executor.execute(ok, ctx))
    second = asyncio.run(
        executor.execute(ok, ActionContext(ctx.run_id, "j", "job", "o", 2, 8, ctx.scheduled_for))
    )
    assert first.ok and second.ok
    ids = {m["Message-ID"] for m in box.messages}
    assert ids == {f"<{ctx.run_id}@oncely>"}  # every attempt of a run: one message id
    down = EmailExecutor(ActionSettings(smtp_url="smtp://127.0.0.1:9", smtp_from="a@b.example"))
    refused = asyncio.run(down.execute(ok, ctx))
    assert not refused.ok and "ConnectionRefusedError" in (refused.error or "")


def test_a_dead_run_is_announced_by_email_through_the_notification_service(
    tmp_path: Path, smtp: tuple[Mailbox, int]
) -> None:
    box, port = smtp
    app = _app(tmp_path, port)
    notes = app.service.notifications
    me = system_principal(app.owner)
    notes.channel_create(
        me,
        "oncall",
        "apprise",
        f"mailto://127.0.0.1:{port}?from=oncely@example.com&to=oncall@example.com&mode=insecure",
    )
    app.add_job(
        "mail-fails",
        every="1h",
        paused=True,
        retries=0,
        email={"to": [REFUSED], "subject": "never", "body": ""},
    )
    notes.rule_create(me, "oncall", ["dead"], job="mail-fails")
    run = app.trigger("mail-fails")
    run_until(app, lambda: any("is dead" in (m["Subject"] or "") for m in box.messages))
    [alert] = [m for m in box.messages if "is dead" in (m["Subject"] or "")]
    assert alert["Subject"] == "[oncely] mail-fails is dead"
    text = alert.get_payload()[0].get_payload(decode=True).decode()
    assert run.id in text and "550" in text
    [n] = notes.notifications(me)
    assert n.state.value == "delivered" and n.run_id == run.id
    app.close()

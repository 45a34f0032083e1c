"""Notification channels against real receivers: an SMTP server (aiosmtpd) through Apprise's
mailto://, and oncely's signed webhook to an HTTP server on loopback (refused by the network
guard unless the server allows private addresses). The delivery service runs for real."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from oncely.adapters.notify import ChannelSender, check_channel
from oncely.adapters.sqlite import SqliteStore
from oncely.domain.errors import InvalidInput
from oncely.domain.ids import new_id
from oncely.domain.notify import (
    Channel,
    ChannelKind,
    NotificationState,
    NotifyEvent,
    Rule,
    mask_url,
)
from oncely.domain.policy import Policy
from oncely.domain.runs import AttemptOutcome, decide_after_attempt
from oncely.domain.signing import verify_webhook
from oncely.ports.actions import ActionSettings
from oncely.ports.store import AttemptResult, ClaimParams, Store
from oncely.runtime.clock import SystemClock
from oncely.runtime.notify import NotifyConfig, NotifyService
from tests.contract.conftest import make_job


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Mailbox:
    def __init__(self) -> None:
        self.messages: list[str] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope.content.decode("utf-8", "replace"))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[_Mailbox, int]]:
    box = _Mailbox()
    port = _free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    yield box, port
    controller.stop()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(str(tmp_path / "oncely.db"))
    s.migrate()
    yield s
    s.close()


def _setup(store: Store, kind: ChannelKind, url: str, secret: str | None = None) -> str:
    now = datetime.now(UTC)
    channel = store.channel_create(
        Channel(new_id(0), "alice", "c", kind, url, secret, now), now=now
    )
    store.rule_create(Rule(new_id(0), "alice", channel.id, frozenset(NotifyEvent)), now=now)
    job = store.job_create(
        make_job(name="nightly-report", policy=Policy(max_retries=0), now=now), now=now
    )
    store.job_trigger("alice", job.id, run_id=new_id(0), now=now)
    [c] = store.run_claim(ClaimParams("w", "default", 1, now, timedelta(seconds=30)))
    decision = decide_after_attempt(AttemptOutcome.FAILED, 0, c.policy, now)
    store.run_complete(
        [
            AttemptResult(
                c.run_id,
                c.token,
                c.attempt,
                "w",
                AttemptOutcome.FAILED,
                decision,
                c.started_at,
                now,
                error="disk full",
            )
        ]
    )
    return c.run_id


def _service(store: Store, settings: ActionSettings, **config: Any) -> NotifyService:
    return NotifyService(
        store,
        SystemClock(),
        ChannelSender(settings, timeout=5.0),
        holder="test",
        config=NotifyConfig(**config),
    )


async def _turns(service: NotifyService, store: Store, until: Any, limit: float = 20) -> None:
    deadline = time.monotonic() + limit
    try:
        while not until():
            assert time.monotonic() < deadline, "the service did not get there in time"
            assert await service._hold()
            await service.turn()
            await asyncio.sleep(0.05)
    finally:
        await service.sender.aclose()


def test_email_through_apprise_reaches_a_real_smtp_server(
    store: SqliteStore, smtp: tuple[_Mailbox, int]
) -> None:
    box, port = smtp
    url = f"mailto://127.0.0.1:{port}?from=oncely@example.com&to=oncall@example.com&mode=insecure"
    check_channel(ChannelKind.APPRISE, url, ActionSettings())
    run_id = _setup(store, ChannelKind.APPRISE, url)
    service = _service(store, ActionSettings())
    asyncio.run(_turns(service, store, lambda: len(box.messages) >= 2))
    text = "\n".join(box.messages)
    assert "Subject: [oncely] nightly-report is dead" in text
    assert "Subject: [oncely] nightly-report failed" in text
    assert run_id in text and "disk full" in text
    ids = {n.id for n in store.notification_list("alice")}
    assert all(nid in text for nid in ids)  # each message names its notification id
    assert all(n.state is NotificationState.DELIVERED for n in store.notification_list("alice"))


class _Hook:
    def __init__(self, fail_first: int) -> None:
        self.bodies: list[tuple[dict[str, str], bytes]] = []
        self.fail_left = fail_first
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.bodies.append((dict(self.headers), body))
                status = 204
                if hook.fail_left > 0:
                    hook.fail_left -= 1
                    status = 503
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook?token=abc"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_webhooks_are_signed_retried_with_backoff_and_each_try_recorded(
    store: SqliteStore,
) -> None:
    hook = _Hook(fail_first=2)
    try:
        _setup(store, ChannelKind.WEBHOOK, hook.url, secret="s3")
        service = _service(
            store,
            ActionSettings(http_allow_private=True),
            backoff_base=0.1,
            backoff_cap=0.2,
            concurrency=1,
        )
        asyncio.run(
            _turns(
                service,
                store,
                lambda: not store.notification_list("alice", state=NotificationState.PENDING),
            )
        )
    finally:
        hook.server.shutdown()
    delivered = store.notification_list("alice", state=NotificationState.DELIVERED)
    assert len(delivered) == 2  # failure and dead
    tries = [d for n in delivered for d in store.delivery_list("alice", n.id)]
    assert (
        sorted((d.ok, d.error) for d in tries if not d.ok)
        == [(False, "the receiver answered HTTP 503")] * 2
    )
    assert len(tries) == 4 and len(hook.bodies) == 4
    for headers, body in hook.bodies:
        nid = verify_webhook("s3", headers, body)
        assert headers["Idempotency-Key"] == nid and nid in {n.id for n in delivered}
        assert b"nightly-report" in body


def test_webhooks_to_private_addresses_are_refused_unless_allowed(store: SqliteStore) -> None:
    hook = _Hook(fail_first=0)
    try:
        with pytest.raises(InvalidInput):
            check_channel(ChannelKind.WEBHOOK, hook.url, ActionSettings())
        check_channel(ChannelKind.WEBHOOK, hook.url, ActionSettings(http_allow_private=True))
        # A channel stored while allowed, delivered by a server that does not allow it:
        # refused at connect time, never sent.
        _setup(store, ChannelKind.WEBHOOK, hook.url, secret="s3")
        service = _service(store, ActionSettings(), backoff_base=30)

        async def once() -> None:
            assert await service._hold()
            await service.turn()
            await service.sender.aclose()

        asyncio.run(once())
    finally:
        hook.server.shutdown()
    assert hook.bodies == []
    [n, _] = store.notification_list("alice")
    assert n.state is NotificationState.PENDING and n.attempts == 1
    assert "network guard" in (n.last_error or "")
    assert n.next_attempt_at is not None


def test_channel_urls_are_masked() -> None:
    assert mask_url("https://hooks.slack.com/services/T0/B0/XYZ") == "https://hooks.slack.com/***"
    assert "pass" not in mask_url("mailto://user:pass@smtp.example.com?to=a@b.c")
    assert mask_url("slack://tokenA/tokenB/tokenC") == "slack://***"
    assert mask_url("not a url") == "***"

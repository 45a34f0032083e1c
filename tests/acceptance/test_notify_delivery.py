"""Notifications survive the death of the process delivering them.

A real subprocess delivers signed webhooks to a real HTTP receiver on loopback that answers
slowly and records every receipt by notification id. It is SIGKILLed in the middle of the
batch; a second one (after the first one's lease expires) delivers the rest. Every
notification arrives (at-least-once on the wire), and the receiver, deduping on the id, acts
once per notification.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from oncely.adapters.sqlite import SqliteStore
from oncely.domain.ids import new_id
from oncely.domain.notify import Channel, ChannelKind, NotificationState, NotifyEvent, Rule
from oncely.domain.policy import Policy
from oncely.domain.runs import AttemptOutcome, decide_after_attempt
from oncely.domain.signing import WebhookRejected, verify_webhook
from oncely.ports.store import AttemptResult, ClaimParams, Store
from tests.contract.conftest import make_job

ROOT = Path(__file__).resolve().parents[2]
SECRET = "receiver-secret"


class Receiver:
    """Records receipts keyed by notification id; refuses bad signatures."""

    def __init__(self, delay: float) -> None:
        self.receipts: Counter[str] = Counter()
        self.rejected = 0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                try:
                    nid = verify_webhook(SECRET, dict(self.headers), body)
                except WebhookRejected:
                    with receiver.lock:
                        receiver.rejected += 1
                    self.send_response(401)
                    self.end_headers()
                    return
                with receiver.lock:
                    receiver.receipts[nid] += 1
                time.sleep(delay)  # a slow receiver: the deliverer dies mid-batch
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(delay=0.15)
    yield r
    r.close()


def _dead_runs(store: Store, count: int, url: str) -> None:
    now = datetime.now(UTC)
    channel = store.channel_create(
        Channel(new_id(0), "alice", "hook", ChannelKind.WEBHOOK, url, SECRET, now), now=now
    )
    store.rule_create(Rule(new_id(0), "alice", channel.id, frozenset({NotifyEvent.DEAD})), now=now)
    for _ in range(count):
        job = store.job_create(make_job(policy=Policy(max_retries=0), now=now), now=now)
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
                    error="boom",
                )
            ]
        )


def _deliverer(url: str, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.acceptance.apps.notify_deliverer", url],
        cwd=ROOT,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def _wait(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture(params=["sqlite", "postgresql"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Store]]:
    """(URL for the deliverer processes, the test's own store on the same database)."""
    store: Store
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'oncely.db'}"
        store = SqliteStore(str(tmp_path / "oncely.db"))
    else:
        from oncely.adapters.postgres import PostgresStore

        schema = request.getfixturevalue("pg_schema")
        base = request.getfixturevalue("pg_url")
        url = f"{base}{'&' if '?' in base else '?'}schema={schema}"
        store = PostgresStore(base, schema=schema)
    store.migrate()
    yield url, store
    store.close()


def test_killed_deliverer_loses_nothing(
    target: tuple[str, Store], tmp_path: Path, receiver: Receiver
) -> None:
    url, store = target
    count = 30
    _dead_runs(store, count, receiver.url)
    ids = {n.id for n in store.notification_list(None, limit=1000)}
    assert len(ids) == count

    log = tmp_path / "deliverer.log"
    first = _deliverer(url, log)
    try:
        _wait(lambda: len(receiver.receipts) >= 6, 60, "the first deliveries")
        first.send_signal(signal.SIGKILL)  # mid-batch: requests in flight, tries unrecorded
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
    assert len(receiver.receipts) < count, "the first deliverer finished before the kill"
    pending = store.notification_list(None, state=NotificationState.PENDING, limit=1000)
    assert pending, "nothing was left to deliver after the kill"

    second = _deliverer(url, log)
    try:
        _wait(
            lambda: not store.notification_list(None, state=NotificationState.PENDING, limit=1),
            90,
            "the second deliverer to deliver the rest",
        )
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(10)

    assert set(receiver.receipts) == ids  # every notification arrived ...
    assert receiver.rejected == 0  # ... signed
    # ... and the receiver, keyed by id, has each once; only tries cut by the kill repeat.
    repeats = sum(n - 1 for n in receiver.receipts.values())
    assert repeats <= 2, receiver.receipts  # at most the two tries in flight
    delivered = store.notification_list(None, state=NotificationState.DELIVERED, limit=1000)
    assert {n.id for n in delivered} == ids
    for n in delivered:
        deliveries = store.delivery_list(None, n.id)
        assert deliveries and deliveries[-1].ok

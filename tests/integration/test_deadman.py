"""The dead-man's switch end to end: jobs made through the service with ``deadline``, the
notification service (frozen clock) sweeping and delivering to a real webhook receiver. It
fires whatever the cause (a paused job, a job whose every run fails, a job nothing ran for),
once per lapse, and never for a job that keeps succeeding. SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from oncely import compose
from oncely.adapters.notify import ChannelSender
from oncely.domain.ids import new_id
from oncely.domain.principal import system_principal
from oncely.domain.runs import AttemptOutcome, decide_after_attempt
from oncely.domain.signing import verify_webhook
from oncely.ports.actions import ActionSettings
from oncely.ports.store import AttemptResult, ClaimParams, Store
from oncely.runtime.clock import FrozenClock
from oncely.runtime.notify import NotifyConfig, NotifyService
from oncely.service import Service, ServiceDeps
from oncely.wire import JobCreate

T0 = datetime(2031, 3, 1, 0, 0, tzinfo=UTC)
ALLOW = ActionSettings(http_allow_private=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    s: Store
    if request.param == "sqlite":
        from oncely.adapters.sqlite import SqliteStore

        s = SqliteStore(str(tmp_path / "oncely.db"))
    else:
        from oncely.adapters.postgres import PostgresStore

        s = PostgresStore(
            request.getfixturevalue("pg_url"), schema=request.getfixturevalue("pg_schema")
        )
    s.migrate()
    yield s
    s.close()


class _Receiver:
    def __init__(self) -> None:
        self.got: list[dict[str, object]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                import json

                body = self.rfile.read(int(self.headers["Content-Length"]))
                verify_webhook(receiver.secret, dict(self.headers), body)
                receiver.got.append(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return

        self.secret = ""
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/dms"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def _complete(store: Store, clock: FrozenClock, job_id: str, outcome: AttemptOutcome) -> None:
    now = clock.now()
    store.job_trigger(None, job_id, run_id=new_id(0), now=now)
    [c] = store.run_claim(ClaimParams("w", "default", 1, now, timedelta(seconds=30)))
    decision = decide_after_attempt(outcome, c.failures, c.policy, now)
    store.run_complete(
        [AttemptResult(c.run_id, c.token, c.attempt, "w", outcome, decision, c.started_at, now)]
    )


def test_deadman_fires_whatever_the_cause_once_per_lapse(store: Store) -> None:
    clock = FrozenClock(T0)
    service = Service(
        ServiceDeps(
            store=lambda: store,
            clock=lambda: clock,
            actions=ALLOW,
            check_action=compose.check_action_allowed,
        ),
        check_channel=compose.check_channel,
    )
    who = system_principal("ops")
    receiver = _Receiver()
    made = service.notifications.channel_create(who, "dms", "webhook", receiver.url)
    receiver.secret = made.secret or ""
    service.notifications.rule_create(who, "dms", ["deadman"])
    every_min = {"every": "1m", "task": "t", "deadline": "1h", "retries": 0}
    paused = service.jobs.create(who, JobCreate(name="paused", paused=True, **every_min))
    failing = service.jobs.create(who, JobCreate(name="failing", **every_min))
    idle = service.jobs.create(who, JobCreate(name="idle", **every_min))
    healthy = service.jobs.create(who, JobCreate(name="healthy", **every_min))
    assert healthy.policy.deadline == 3600
    notifier = NotifyService(
        store, clock, ChannelSender(ALLOW), holder="t", config=NotifyConfig(deadman_every=1)
    )

    async def run() -> None:
        assert await notifier._hold()
        await notifier.turn()  # arms the four deadlines at T0
        for minute in range(1, 200, 10):
            clock.set(T0 + timedelta(minutes=minute))
            _complete(store, clock, healthy.id, AttemptOutcome.SUCCEEDED)
            _complete(store, clock, failing.id, AttemptOutcome.FAILED)
            assert await notifier._hold()
            await notifier.turn()
        await notifier.sender.aclose()

    asyncio.run(run())
    receiver.server.shutdown()
    names = sorted(str(g["job"]["name"]) for g in receiver.got)  # type: ignore[index]
    # One lapse each at T0+1h (paused, failing, idle), none for healthy; and only one per
    # lapse although the deadline stays passed for two more hours.
    assert names == ["failing", "idle", "paused"]
    assert all(g["event"] == "deadman" for g in receiver.got)
    missing = service.notifications.missing(who)
    assert sorted(m.name for m in missing) == ["failing", "idle", "paused"]
    assert [m.paused for m in missing if m.job_id == paused.id] == [True]
    assert idle.id in {m.job_id for m in missing}

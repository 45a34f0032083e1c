"""A test hook for process supervision: `oncely up --app tests.acceptance.apps.crash_app:app`
with ``ONCELY_TEST_CRASH=<component>`` runs that component's real loop for a moment, stops
it, and then raises a real exception out of its task, as a bug in the loop would. Only this
test module patches anything; the process, store and the other components are real."""

from __future__ import annotations

import asyncio
import os

import oncely
from oncely.runtime.membership import Membership
from oncely.runtime.scheduler import Scheduler
from oncely.runtime.worker import Worker

app = oncely.App()
CRASH = os.environ.get("ONCELY_TEST_CRASH", "")
AFTER = float(os.environ.get("ONCELY_TEST_CRASH_AFTER", "4"))


def _dies_after_a_while(cls: type) -> None:
    real_run = cls.run

    async def run(self: object, stop: asyncio.Event) -> None:
        own_stop = asyncio.Event()
        loop = asyncio.ensure_future(real_run(self, own_stop))
        await asyncio.wait({loop, asyncio.ensure_future(stop.wait())}, timeout=AFTER)
        own_stop.set()
        await loop
        if not stop.is_set():
            raise RuntimeError(f"injected crash of the {CRASH} loop")

    cls.run = run  # type: ignore[attr-defined]


_CLASSES: dict[str, type] = {"scheduler": Scheduler, "worker": Worker, "membership": Membership}
if CRASH:
    _dies_after_a_while(_CLASSES[CRASH])

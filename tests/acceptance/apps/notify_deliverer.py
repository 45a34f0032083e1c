"""A process that only delivers notifications (the notify service of a scheduler), for the
kill-mid-delivery test: ``python -m tests.acceptance.apps.notify_deliverer <store url>``."""

from __future__ import annotations

import asyncio
import os
import sys

from oncely.adapters.notify import ChannelSender
from oncely.compose import open_store, pick_clock
from oncely.ports.actions import ActionSettings
from oncely.runtime.notify import NotifyConfig, NotifyService


async def main(url: str) -> None:
    store = open_store(url)
    # Loopback receivers are allowed here, as a server config would allow an internal one.
    sender = ChannelSender(ActionSettings(http_allow_private=True), timeout=5.0)
    service = NotifyService(
        store,
        pick_clock(store),
        sender,
        holder=f"deliverer:{os.getpid()}",
        config=NotifyConfig(
            lease_ttl=2.0, poll=0.1, batch=10, concurrency=2, backoff_base=0.2, backoff_cap=1.0
        ),
    )
    print("deliverer ready", flush=True)
    await service.run(asyncio.Event())


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))

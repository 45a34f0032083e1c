"""/readyz reports each loop of the process (membership heartbeat, scheduler, worker) with
the age of its last turn, and fails when one is stale: here every loop is really stalled, by
a real SQLite write lock held from outside, while a frozen clock moves past the limit."""

from __future__ import annotations

import asyncio
import socket
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

import oncely
from oncely.config import Settings
from oncely.runtime.clock import FrozenClock


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _poll(
    url: str,
    status: int,
    until: Callable[[dict[str, Any]], bool] = lambda body: True,
    within: float = 20,
) -> dict[str, Any]:
    async with httpx.AsyncClient() as client:
        deadline = asyncio.get_running_loop().time() + within
        while True:
            try:
                response = await client.get(url, timeout=5)
            except httpx.TransportError:
                text = "not serving yet"
            else:
                body: dict[str, Any] = response.json()
                if until(body) and response.status_code == status:
                    return body
                text = response.text
            assert asyncio.get_running_loop().time() < deadline, text
            await asyncio.sleep(0.1)


def test_readyz_reports_each_loop_and_fails_when_one_stalls(tmp_path: Path) -> None:
    db = tmp_path / "oncely.db"
    port = _free_port()
    clock = FrozenClock(datetime.now(UTC))
    app = oncely.App(settings=Settings(store=f"sqlite:///{db}", port=port), clock=clock)
    url = f"http://127.0.0.1:{port}/readyz"

    async def main() -> None:
        stop = asyncio.Event()
        runner = asyncio.create_task(app.run_async(serve_http=True, stop=stop))
        try:
            ready = await _poll(url, 200)
            components = ready["components"]
            assert set(components) == {"membership", "scheduler", "worker"}
            assert all(c["alive"] and c["ok"] for c in components.values())
            assert all(c["last_turn_age"] is not None for c in components.values())
            # Stall every loop that writes (they all do) and let time pass beyond the limit.
            blocker = sqlite3.connect(db, isolation_level=None)
            blocker.execute("BEGIN IMMEDIATE")
            try:
                # Each loop stalls at its next write (reads still go through, WAL); time
                # keeps moving, so a stalled loop's last turn grows old.
                def stalled(body: dict[str, Any]) -> bool:
                    clock.advance(60)
                    wanted = {"scheduler loop is not turning", "membership loop is not turning"}
                    return wanted <= set(body.get("problems", []))

                stale = await _poll(url, 503, stalled)
                assert stale["components"]["scheduler"]["last_turn_age"] >= 60
                assert stale["components"]["scheduler"]["alive"] is True
            finally:
                blocker.execute("ROLLBACK")
                blocker.close()
            # The loops turn again: ready again.
            await _poll(url, 200)
        finally:
            stop.set()
            await runner

    asyncio.run(main())
    app.close()

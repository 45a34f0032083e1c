"""An idempotent HTTP ledger on loopback: the receiver of the chaos suite's HTTP jobs.

Each request is one delivery of a run's effect. The ledger keeps, per delivery, the run's
idempotency key, the attempt and its fencing token, and when the request arrived and when it
was answered (by this process's wall clock: the same machine clock the PostgreSQL server on
loopback reads). It behaves as a careful receiver would:

- the first delivery of a key applies the effect (once, under a lock); later deliveries of
  the same key are answered 200 without applying it again (idempotent);
- a delivery whose fencing token is lower than one already seen for its key is refused
  with 409 (a stale worker);
- ``?hold=SECONDS`` keeps the request open that long before answering, so an attempt has a
  duration in which a second attempt of the same run would show as an overlap.

Usage::

    with HttpLedger() as ledger:
        url = ledger.url + "?hold=0.5"
        ...
        ledger.deliveries()    # every delivery, in arrival order
        ledger.applied()       # key -> number of times its effect was applied (must be 1)
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import parse_qs, urlsplit


@dataclass
class Delivery:
    key: str
    token: int
    attempt: int
    scheduled_for: str
    started: float
    ended: float | None = None
    status: int | None = None  # 200 applied or already applied, 409 stale token
    applied: bool = False


class HttpLedger:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._deliveries: list[Delivery] = []
        self._applied: dict[str, int] = {}
        self._highest: dict[str, int] = {}
        ledger = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                started = time.time()
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                query = parse_qs(urlsplit(self.path).query)
                hold = float(query.get("hold", ["0"])[0])
                key = self.headers.get("Idempotency-Key") or ""
                delivery = Delivery(
                    key=key,
                    token=int(self.headers.get("Oncely-Fencing-Token") or -1),
                    attempt=int(self.headers.get("Oncely-Attempt") or -1),
                    scheduled_for=self.headers.get("Oncely-Scheduled-For") or "",
                    started=started,
                )
                with ledger._lock:
                    ledger._deliveries.append(delivery)
                if hold:
                    time.sleep(hold)
                with ledger._lock:
                    if delivery.token < ledger._highest.get(key, -1):
                        delivery.status = 409
                    else:
                        ledger._highest[key] = delivery.token
                        if key not in ledger._applied:
                            ledger._applied[key] = 0
                        if ledger._applied[key] == 0:
                            ledger._applied[key] += 1
                            delivery.applied = True
                        delivery.status = 200
                    delivery.ended = time.time()
                body = b"applied" if delivery.applied else b"seen"
                try:
                    self.send_response(delivery.status)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass  # the caller gave up (cancelled, or its process was killed)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port: int = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/effect"
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="http-ledger", daemon=True
        )
        self._thread.start()

    def deliveries(self) -> list[Delivery]:
        with self._lock:
            return list(self._deliveries)

    def applied(self) -> dict[str, int]:
        with self._lock:
            return dict(self._applied)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> HttpLedger:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

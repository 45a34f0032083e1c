"""HTTP actions against a real HTTP(S) server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from oncely.adapters.actions import HttpExecutor
from oncely.adapters.actions.http import USER_AGENT
from oncely.domain.actions import HttpAction
from oncely.ports.actions import ActionContext, ActionResult, ActionSettings

PRIVATE_OK = ActionSettings(http_allow_private=True)
CTX = ActionContext(
    run_id="run_01HXYZ",
    job_id="job_42",
    job_name="nightly",
    owner="alice",
    attempt=3,
    fencing_token=1234,
    scheduled_for=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
)


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Server:
    base: str
    port: int
    seen: list[Seen] = field(default_factory=list)
    big_bytes_sent: list[int] = field(default_factory=list)

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"{self.base.replace('127.0.0.1', host)}{path}"


def _handler(server: Server) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _respond(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            server.seen.append(Seen(self.command, self.path, dict(self.headers.items()), body))
            if self.path.startswith("/status/"):
                status = int(self.path.rsplit("/", 1)[1])
                self._respond(status, f"status {status}".encode())
            elif self.path == "/echo":
                self._respond(200, body, {"Content-Type": "application/octet-stream"})
            elif self.path == "/slow":
                time.sleep(3)
                self._respond(200, b"late")
            elif self.path == "/redirect":
                self._respond(302, b"", {"Location": "/status/200"})
            elif self.path == "/latin1":
                self._respond(
                    200, "café".encode("latin-1"), {"Content-Type": "text/plain; charset=latin-1"}
                )
            elif self.path == "/big":
                # Announces 1 GiB and streams until the client hangs up.
                self.send_response(200)
                self.send_header("Content-Length", str(1 << 30))
                self.end_headers()
                chunk, sent = b"x" * 65536, 0
                try:
                    while sent < 1 << 30:
                        self.wfile.write(chunk)
                        sent += len(chunk)
                except OSError:
                    pass
                server.big_bytes_sent.append(sent)
                self.close_connection = True
            else:
                self._respond(404, b"no such path")

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle

    return Handler


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # the default backlog of 5 turns a burst into SYN retransmits

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that hang up early are part of the tests


def _serve(ssl_context: ssl.SSLContext | None = None) -> Iterator[Server]:
    httpd = QuietServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    port = httpd.server_address[1]
    scheme = "https" if ssl_context else "http"
    server = Server(base=f"{scheme}://127.0.0.1:{port}", port=port)
    httpd.RequestHandlerClass = _handler(server)
    if ssl_context is not None:
        httpd.socket = ssl_context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    yield from _serve()


@pytest.fixture
def fresh(server: Server) -> Server:
    server.seen.clear()
    return server


def run(
    settings: ActionSettings, action: HttpAction, ctx: ActionContext = CTX, **kw: Any
) -> ActionResult:
    async def main() -> ActionResult:
        executor = HttpExecutor(settings, **kw)
        try:
            return await executor.execute(action, ctx)
        finally:
            await executor.aclose()

    return asyncio.run(main())


def test_sends_idempotency_and_fencing_headers(fresh: Server) -> None:
    result = run(PRIVATE_OK, HttpAction(url=fresh.url("/status/200"), headers={"X-Team": "data"}))
    assert result == ActionResult(ok=True, output="HTTP 200\nstatus 200")
    (seen,) = fresh.seen
    assert seen.method == "POST"
    assert seen.headers["Idempotency-Key"] == "run_01HXYZ"
    assert seen.headers["Oncely-Fencing-Token"] == "1234"
    assert seen.headers["Oncely-Attempt"] == "3"
    assert seen.headers["Oncely-Scheduled-For"] == "2026-01-02T03:04:05+00:00"
    assert seen.headers["User-Agent"] == USER_AGENT
    assert USER_AGENT.startswith("oncely/")
    assert seen.headers["X-Team"] == "data"


def test_job_headers_cannot_forge_oncely_headers(fresh: Server) -> None:
    forged = {"idempotency-key": "forged", "ONCELY-ATTEMPT": "99", "User-Agent": "custom/1"}
    assert run(PRIVATE_OK, HttpAction(url=fresh.url("/status/200"), headers=forged)).ok
    (seen,) = fresh.seen
    values = {k.lower(): v for k, v in seen.headers.items()}
    assert values["idempotency-key"] == "run_01HXYZ"
    assert values["oncely-attempt"] == "3"
    assert values["user-agent"] == "custom/1"  # not ours to enforce
    assert "forged" not in str(seen.headers)


def test_payload_is_sent_as_json_when_there_is_no_body(fresh: Server) -> None:
    ctx = ActionContext(**{**CTX.__dict__, "payload": {"day": "2026-01-02", "n": [1, 2]}})
    result = run(PRIVATE_OK, HttpAction(url=fresh.url("/echo")), ctx)
    assert result.ok
    (seen,) = fresh.seen
    assert seen.headers["Content-Type"] == "application/json"
    assert json.loads(seen.body) == {"day": "2026-01-02", "n": [1, 2]}
    assert result.output is not None
    assert json.loads(result.output.split("\n", 1)[1]) == {"day": "2026-01-02", "n": [1, 2]}


def test_explicit_body_wins_over_payload(fresh: Server) -> None:
    ctx = ActionContext(**{**CTX.__dict__, "payload": {"ignored": True}})
    action = HttpAction(
        url=fresh.url("/echo"), method="PUT", body="hello", headers={"Content-Type": "text/plain"}
    )
    assert run(PRIVATE_OK, action, ctx).ok
    (seen,) = fresh.seen
    assert (seen.method, seen.body, seen.headers["Content-Type"]) == ("PUT", b"hello", "text/plain")


def test_get_without_payload_has_no_body(fresh: Server) -> None:
    assert run(PRIVATE_OK, HttpAction(url=fresh.url("/echo"), method="GET")).ok
    assert fresh.seen[0].body == b""


def test_success_is_decided_by_status(fresh: Server) -> None:
    failed = run(PRIVATE_OK, HttpAction(url=fresh.url("/status/500")))
    assert failed == ActionResult(ok=False, output="HTTP 500\nstatus 500", error="HTTP status 500")
    assert run(PRIVATE_OK, HttpAction(url=fresh.url("/status/204"))).ok
    custom = HttpAction(url=fresh.url("/status/404"), success_statuses=(404, 410))
    assert run(PRIVATE_OK, custom).ok
    assert not run(PRIVATE_OK, HttpAction(url=fresh.url("/status/200"), success_statuses=(201,))).ok


def test_redirects_are_not_followed(fresh: Server) -> None:
    result = run(PRIVATE_OK, HttpAction(url=fresh.url("/redirect"), method="GET"))
    assert not result.ok
    assert result.output is not None and result.output.startswith("HTTP 302")
    assert [s.path for s in fresh.seen] == ["/redirect"]


def test_body_charset_is_honoured(fresh: Server) -> None:
    result = run(PRIVATE_OK, HttpAction(url=fresh.url("/latin1"), method="GET"))
    assert result.output == "HTTP 200\ncafé"


def test_timeout_is_a_failure(fresh: Server) -> None:
    started = time.monotonic()
    result = run(PRIVATE_OK, HttpAction(url=fresh.url("/slow"), timeout=0.5))
    assert time.monotonic() - started < 2.5
    assert not result.ok
    assert result.error is not None and "timed out after 0.5s" in result.error


def test_context_timeout_caps_the_action_timeout(fresh: Server) -> None:
    ctx = ActionContext(**{**CTX.__dict__, "timeout": 0.3})
    started = time.monotonic()
    result = run(PRIVATE_OK, HttpAction(url=fresh.url("/slow"), timeout=60), ctx)
    assert time.monotonic() - started < 2.5
    assert result.error is not None and "timed out after 0.3s" in result.error


def test_big_body_is_capped_and_not_downloaded(fresh: Server) -> None:
    settings = ActionSettings(http_allow_private=True, max_output_bytes=1000)
    result = run(settings, HttpAction(url=fresh.url("/big"), method="GET"))
    assert result.ok
    assert result.output is not None
    assert result.output.startswith("HTTP 200\nxxxx")
    assert len(result.output.encode()) <= 1000
    assert "bytes cut" in result.output
    for _ in range(100):  # the server notices the hang-up on its next write
        if fresh.big_bytes_sent:
            break
        time.sleep(0.05)
    assert fresh.big_bytes_sent and fresh.big_bytes_sent[0] < 200 * 1024 * 1024


def test_connection_refused_is_a_failure() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = run(PRIVATE_OK, HttpAction(url=f"http://127.0.0.1:{port}/"))
    assert not result.ok
    assert result.error is not None and result.error.startswith("connection failed")


def test_unresolvable_host_is_a_failure() -> None:
    result = run(PRIVATE_OK, HttpAction(url="http://no-such-host.invalid/"))
    assert not result.ok
    assert result.error is not None and "cannot resolve no-such-host.invalid" in result.error


def test_loopback_is_blocked_by_default(fresh: Server) -> None:
    result = run(ActionSettings(), HttpAction(url=fresh.url("/status/200")))
    assert result == ActionResult(
        ok=False,
        error="blocked: 127.0.0.1 is a loopback address; "
        "allow it in server config (http_allowed_networks)",
    )
    assert fresh.seen == []


@pytest.mark.parametrize("host", ["2130706433", "127.1", "[::ffff:127.0.0.1]"])
def test_odd_spellings_of_loopback_are_blocked(fresh: Server, host: str) -> None:
    result = run(ActionSettings(), HttpAction(url=fresh.url("/status/200", host=host)))
    assert result.error is not None and result.error.startswith("blocked: ")
    assert fresh.seen == []


def test_allowed_network_lets_loopback_through(fresh: Server) -> None:
    settings = ActionSettings(http_allowed_networks=("127.0.0.0/8",))
    assert run(settings, HttpAction(url=fresh.url("/status/200"))).ok
    assert run(settings, HttpAction(url=fresh.url("/status/200", host="localhost"))).ok
    other = ActionSettings(http_allowed_networks=("10.0.0.0/8",))
    assert not run(other, HttpAction(url=fresh.url("/status/200"))).ok


def test_localhost_name_is_refused_at_connect_time(fresh: Server) -> None:
    result = run(ActionSettings(), HttpAction(url=fresh.url("/status/200", host="localhost")))
    assert result.error is not None
    assert result.error.startswith("blocked: localhost resolves to ")
    assert fresh.seen == []


@pytest.fixture
def rebinding_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    """``example.test`` resolves to 127.0.0.1 through the system resolver path."""
    real = socket.getaddrinfo

    def fake(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host in ("example.test", b"example.test"):
            return real("127.0.0.1", port, *args, **kwargs)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)


@pytest.mark.usefixtures("rebinding_dns")
def test_dns_rebinding_is_refused_at_connect_time(fresh: Server) -> None:
    result = run(ActionSettings(), HttpAction(url=fresh.url("/status/200", host="example.test")))
    assert result.error == (
        "blocked: example.test resolves to 127.0.0.1, which is a loopback address; "
        "allow it in server config (http_allowed_networks)"
    )
    assert fresh.seen == []


@pytest.mark.usefixtures("rebinding_dns")
def test_allowed_name_connects_to_the_checked_address_with_its_host_header(fresh: Server) -> None:
    settings = ActionSettings(http_allowed_networks=("127.0.0.0/8",))
    result = run(settings, HttpAction(url=fresh.url("/status/200", host="example.test")))
    assert result.ok
    assert fresh.seen[0].headers["Host"] == f"example.test:{fresh.port}"


def test_forbidden_answers_are_skipped_and_the_allowed_one_used(fresh: Server) -> None:
    async def resolver(host: str, port: int) -> list[str]:
        return ["10.0.0.1", "127.0.0.1"] if host == "mixed.test" else []

    settings = ActionSettings(http_allowed_networks=("127.0.0.0/8",))
    url = fresh.url("/status/200", host="mixed.test")
    assert run(settings, HttpAction(url=url), resolver=resolver).ok
    refused = run(ActionSettings(), HttpAction(url=url), resolver=resolver)
    assert refused.error is not None
    assert refused.error.startswith("blocked: mixed.test resolves to 10.0.0.1")


def test_concurrent_calls_share_the_pool(fresh: Server) -> None:
    async def main() -> list[ActionResult]:
        executor = HttpExecutor(PRIVATE_OK)
        try:
            action = HttpAction(url=fresh.url("/status/200"))
            return await asyncio.gather(*(executor.execute(action, CTX) for _ in range(100)))
        finally:
            await executor.aclose()

    results = asyncio.run(main())
    assert all(r.ok for r in results)
    assert len(fresh.seen) == 100


def test_cancellation_propagates(fresh: Server) -> None:
    async def main() -> None:
        executor = HttpExecutor(PRIVATE_OK)
        try:
            task = asyncio.ensure_future(executor.execute(HttpAction(url=fresh.url("/slow")), CTX))
            await asyncio.sleep(0.2)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        finally:
            await executor.aclose()

    asyncio.run(main())


# TLS: the certificate is checked against the host name even though the connection goes to the
# address the guard checked.


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-keyout", str(key), "-out", str(cert), "-subj", "/CN=example.test",
            "-addext", "subjectAltName=DNS:example.test",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture(scope="module")
def tls_server(tls_files: tuple[Path, Path]) -> Iterator[Server]:
    cert, key = tls_files
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    yield from _serve(context)


@pytest.mark.usefixtures("rebinding_dns")
def test_tls_verifies_the_host_name(tls_server: Server, tls_files: tuple[Path, Path]) -> None:
    settings = ActionSettings(http_allowed_networks=("127.0.0.0/8",))
    trusting = ssl.create_default_context(cafile=str(tls_files[0]))
    by_name = HttpAction(url=tls_server.url("/status/200", host="example.test"))
    assert run(settings, by_name, ssl_context=trusting).ok
    # Same address, but the name the certificate does not carry: refused.
    by_address = HttpAction(url=tls_server.url("/status/200"))
    mismatch = run(settings, by_address, ssl_context=trusting)
    assert mismatch.error is not None and mismatch.error.startswith("TLS error")
    # Default trust store: the self-signed certificate is refused.
    untrusted = run(settings, by_name)
    assert untrusted.error is not None and untrusted.error.startswith("TLS error")

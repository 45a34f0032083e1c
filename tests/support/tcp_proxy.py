"""A TCP proxy on loopback that a test can cut and restore: a network partition on demand.

    with TcpProxy("127.0.0.1", 5432) as proxy:
        url = f"postgresql://postgres@127.0.0.1:{proxy.port}/postgres"
        ...
        proxy.cut()            # every connection goes silent; new ones hang (a partition)
        proxy.cut("reset")     # or: every connection is closed; new ones are refused at once
        proxy.restore()        # forward again (connections cut are not revived)

A ``blackhole`` cut is the harder case for a client: nothing fails, calls just never answer,
as when a network path drops packets. Its connections are closed when the proxy is restored
(as a firewall's or a NAT's state would be lost), so clients see them fail then.

Threads, one pair per connection: the proxy carries a few connections of a test, not load.
Listens on 127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from types import TracebackType


class TcpProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._held: list[socket.socket] = []
        self._mode: str | None = None  # None (forwarding), "blackhole" or "reset"
        self._closed = False
        self.accepted = 0
        self._thread = threading.Thread(target=self._accept_loop, name="tcp-proxy", daemon=True)
        self._thread.start()

    # -- control --------------------------------------------------------------------------

    @property
    def is_cut(self) -> bool:
        return self._mode is not None

    def cut(self, mode: str = "blackhole") -> None:
        if mode not in ("blackhole", "reset"):
            raise ValueError(f"unknown cut mode {mode!r}")
        with self._lock:
            self._mode = mode
            pairs = list(self._pairs) if mode == "reset" else []
            if mode == "reset":
                self._pairs.clear()
        for client, server in pairs:
            _close(client, reset=True)
            _close(server)

    def restore(self) -> None:
        with self._lock:
            self._mode = None
            # Silenced connections lost bytes both ways: they cannot carry on.
            stale, self._pairs = self._pairs, []
            held, self._held = self._held, []
        for client, server in stale:
            _close(client, reset=True)
            _close(server)
        for sock in held:
            _close(sock, reset=True)

    def close(self) -> None:
        self._closed = True
        _close(self._listener)
        self.restore()
        self._thread.join(5)

    def __enter__(self) -> TcpProxy:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- forwarding -----------------------------------------------------------------------

    def _accept_loop(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self.accepted += 1
            mode = self._mode
            if mode == "reset":
                _close(client, reset=True)
                continue
            if mode == "blackhole":
                with self._lock:
                    self._held.append(client)  # accepted, never answered
                continue
            try:
                server = socket.create_connection(self.target, timeout=5)
                server.settimeout(None)
            except OSError:
                _close(client, reset=True)
                continue
            with self._lock:
                self._pairs.append((client, server))
            for src, dst in ((client, server), (server, client)):
                threading.Thread(
                    target=self._pump, args=(src, dst, client, server), daemon=True
                ).start()

    def _pump(
        self, src: socket.socket, dst: socket.socket, client: socket.socket, server: socket.socket
    ) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if self._mode is not None:
                    continue  # silenced: the bytes are dropped, as by a broken path
                dst.sendall(data)
        except OSError:
            pass
        with self._lock:
            if (client, server) in self._pairs:
                self._pairs.remove((client, server))
        _close(client)
        _close(server)


def _close(sock: socket.socket, *, reset: bool = False) -> None:
    with contextlib.suppress(OSError):
        if reset:
            # SO_LINGER 0: close with a RST, as a dropped connection looks to its peer.
            sock.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
            )
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()

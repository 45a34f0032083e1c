"""The HTTP action: call a URL, judge the attempt by the status code.

Every request carries the run's idempotency key and the attempt's fencing token, so a receiver
can make retries harmless and refuse a stale worker. Connections go through
``GuardedNetworkBackend``, which refuses forbidden addresses at connect time (see ``netguard``).
Redirects are not followed: a 3xx is a status like any other, and following it would let a
public URL bounce the request to an internal one.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterable, AsyncIterator, Iterator
from importlib import metadata
from typing import Any

import httpcore
import httpx

from oncely.adapters.actions.netguard import BlockedAddress, GuardedNetworkBackend, Resolver
from oncely.domain.actions import HttpAction
from oncely.domain.limits import cap_text
from oncely.ports.actions import ActionContext, ActionResult, ActionSettings


def _version() -> str:
    try:
        return metadata.version("oncely")
    except metadata.PackageNotFoundError:
        return "0.1.0"


USER_AGENT = f"oncely/{_version()}"

_ONCELY_HEADERS = frozenset(
    {"idempotency-key", "oncely-fencing-token", "oncely-attempt", "oncely-scheduled-for"}
)

# Most specific first: httpcore's hierarchy mirrors httpx's, so the first match is the right one.
_ERROR_MAP: tuple[tuple[type[Exception], type[httpx.TransportError]], ...] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.ProtocolError, httpx.ProtocolError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.ProxyError, httpx.ProxyError),
)


@contextlib.contextmanager
def _httpx_errors() -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        for core_type, httpx_type in _ERROR_MAP:
            if isinstance(exc, core_type):
                raise httpx_type(str(exc)) from exc
        raise


class _ResponseStream(httpx.AsyncByteStream):
    def __init__(self, stream: AsyncIterable[bytes]) -> None:
        self._stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _httpx_errors():
            async for part in self._stream:
                yield part

    async def aclose(self) -> None:
        aclose = getattr(self._stream, "aclose", None)
        if aclose is not None:
            await aclose()


class GuardedTransport(httpx.AsyncBaseTransport):
    """An httpx transport over an httpcore pool whose connections pass the SSRF guard.

    HTTP/1.1 only, no proxies, no unix sockets: the smallest surface that HTTP actions need.
    """

    def __init__(
        self,
        settings: ActionSettings,
        *,
        limits: httpx.Limits,
        ssl_context: ssl.SSLContext | None = None,
        resolver: Resolver | None = None,
    ) -> None:
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context or httpx.create_ssl_context(trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            http1=True,
            http2=False,
            network_backend=GuardedNetworkBackend(settings, resolver=resolver),
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.AsyncByteStream)
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        with _httpx_errors():
            core_response = await self._pool.handle_async_request(core_request)
        assert isinstance(core_response.stream, AsyncIterable)
        return httpx.Response(
            status_code=core_response.status,
            headers=core_response.headers,
            stream=_ResponseStream(core_response.stream),
            extensions=core_response.extensions,
        )

    async def aclose(self) -> None:
        await self._pool.aclose()


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    seen: BaseException | None = exc
    for _ in range(10):  # the chain is short; the bound only guards against a cycle
        if seen is None:
            return False
        if isinstance(seen, kind):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _describe(exc: BaseException, url: str, timeout: float) -> str:
    if isinstance(exc, BlockedAddress):
        return f"blocked: {exc}"
    if isinstance(exc, TimeoutError | httpx.TimeoutException):
        phase = "connecting" if isinstance(exc, httpx.ConnectTimeout) else "waiting for a response"
        return f"timed out after {timeout:g}s {phase} ({url})"
    if isinstance(exc, httpx.ConnectError):
        if _caused_by(exc, ssl.SSLError):
            return f"TLS error: {exc} ({url})"
        return f"connection failed: {exc or type(exc).__name__} ({url})"
    if isinstance(exc, httpx.HTTPError):
        return f"{type(exc).__name__}: {exc or 'no details'} ({url})"
    return f"unexpected error: {type(exc).__name__}: {exc}"


def _decode(body: bytes, charset: str | None) -> str:
    try:
        return body.decode(charset or "utf-8", errors="replace")
    except LookupError:
        return body.decode("utf-8", errors="replace")


class HttpExecutor:
    """Executes ``HttpAction``s over one shared connection pool.

    ``ssl_context`` replaces the default trust store (certifi); ``resolver`` replaces the system
    resolver (tests, or a resolver with its own cache).
    """

    kind = "http"

    def __init__(
        self,
        settings: ActionSettings,
        *,
        ssl_context: ssl.SSLContext | None = None,
        resolver: Resolver | None = None,
        max_connections: int = 500,
    ) -> None:
        self._settings = settings
        limits = httpx.Limits(
            max_connections=max_connections,
            max_keepalive_connections=min(100, max_connections),
            keepalive_expiry=30.0,
        )
        self._client = httpx.AsyncClient(
            transport=GuardedTransport(
                settings, limits=limits, ssl_context=ssl_context, resolver=resolver
            ),
            follow_redirects=False,
            trust_env=False,
            headers={"User-Agent": USER_AGENT},
        )

    async def execute(self, action: HttpAction, ctx: ActionContext) -> ActionResult:
        timeout = min(action.timeout, ctx.timeout) if ctx.timeout else action.timeout
        headers = {
            # Ours win, whatever the case the job spelled them in.
            **{k: v for k, v in action.headers.items() if k.lower() not in _ONCELY_HEADERS},
            "Idempotency-Key": ctx.run_id,
            "Oncely-Fencing-Token": str(ctx.fencing_token),
            "Oncely-Attempt": str(ctx.attempt),
            "Oncely-Scheduled-For": ctx.scheduled_for.isoformat(),
        }
        body: dict[str, Any] = {}
        if action.body is not None:
            body["content"] = action.body.encode("utf-8")
        elif ctx.payload is not None:
            body["json"] = ctx.payload

        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            request = self._client.build_request(
                action.method.upper(),
                action.url,
                headers=headers,
                timeout=httpx.Timeout(timeout),
                **body,
            )
            async with asyncio.timeout_at(deadline):
                response = await self._client.send(request, stream=True)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            return ActionResult(ok=False, error=_describe(exc, action.url, timeout))

        try:
            head, note = await self._read_head(response, deadline)
        finally:
            await response.aclose()
        text = f"HTTP {response.status_code}\n{_decode(head, response.charset_encoding)}{note}"
        ok = action.is_success(response.status_code)
        return ActionResult(
            ok=ok,
            output=cap_text(text, self._settings.max_output_bytes),
            error=None if ok else f"HTTP status {response.status_code}",
        )

    async def _read_head(self, response: httpx.Response, deadline: float) -> tuple[bytes, str]:
        """Read at most ``max_output_bytes`` of the body; the rest is never downloaded.

        The status already decided the attempt, so a body that fails half-way is noted in the
        output rather than turning a success into a failure.
        """
        limit = self._settings.max_output_bytes
        head = bytearray()
        try:
            async with asyncio.timeout_at(deadline):
                async for chunk in response.aiter_bytes():
                    head += chunk
                    if len(head) >= limit:
                        return bytes(head[:limit]), ""
        except TimeoutError:
            return bytes(head), "\n[body read timed out]"
        except httpx.HTTPError as exc:
            return bytes(head), f"\n[body read failed: {type(exc).__name__}: {exc}]"
        return bytes(head), ""

    async def aclose(self) -> None:
        await self._client.aclose()

"""SSRF protection for HTTP actions.

A job's URL is chosen by a user, but the request is made from inside the server's network. Left
alone, a job could read cloud metadata credentials or poke internal services. Two checks stop that:

* ``validate_http_target`` runs when a job is created, so an obviously forbidden URL (an IP literal
  in a private range, ``localhost``, a metadata host name) is refused with a 4xx up front.
* ``GuardedNetworkBackend`` runs on every connection. It resolves the host itself, checks every
  address, and connects to a checked address. A name that resolved to a public address at creation
  time and to ``127.0.0.1`` later (DNS rebinding) is refused here, because the address checked is
  the address connected to. TLS still verifies the certificate against the host name, and the
  ``Host`` header still carries it: only the TCP connect target changes.

Addresses are classified from an explicit table (IANA special-purpose registries) rather than
``ipaddress.is_private``, whose answer changed between Python patch releases and which calls every
IPv4-mapped IPv6 address private, public ones included. IPv6 forms that embed an IPv4 address
(mapped, compatible, 6to4, NAT64) are judged by the embedded address.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

import httpcore

from oncely.domain.errors import InvalidInput, OncelyError
from oncely.ports.actions import ActionSettings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[list[str]]]
"""Resolves (host, port) to IP address strings, in the order they should be tried."""

_V4 = ipaddress.IPv4Network
_V6 = ipaddress.IPv6Network

METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean...
        "169.254.170.2",  # AWS ECS task credentials
        "fd00:ec2::254",  # AWS over IPv6
        "100.100.100.200",  # Alibaba Cloud
    )
)

# Order matters only for the label: the first matching network names the reason.
_V4_BLOCKED: tuple[tuple[IPNetwork, str], ...] = (
    (_V4("0.0.0.0/8"), "unspecified"),
    (_V4("127.0.0.0/8"), "loopback"),
    (_V4("10.0.0.0/8"), "private"),
    (_V4("172.16.0.0/12"), "private"),
    (_V4("192.168.0.0/16"), "private"),
    (_V4("100.64.0.0/10"), "private (carrier-grade NAT)"),
    (_V4("169.254.0.0/16"), "link-local"),
    (_V4("192.0.0.0/24"), "reserved"),
    (_V4("192.0.2.0/24"), "reserved (documentation)"),
    (_V4("198.51.100.0/24"), "reserved (documentation)"),
    (_V4("203.0.113.0/24"), "reserved (documentation)"),
    (_V4("192.88.99.0/24"), "reserved (6to4 relay)"),
    (_V4("198.18.0.0/15"), "reserved (benchmarking)"),
    (_V4("224.0.0.0/4"), "multicast"),
    (_V4("240.0.0.0/4"), "reserved"),
)

_V6_BLOCKED: tuple[tuple[IPNetwork, str], ...] = (
    (_V6("::/128"), "unspecified"),
    (_V6("::1/128"), "loopback"),
    (_V6("64:ff9b:1::/48"), "private (local-use NAT64)"),
    (_V6("100::/64"), "reserved (discard)"),
    (_V6("2001:db8::/32"), "reserved (documentation)"),
    (_V6("3fff::/20"), "reserved (documentation)"),
    # IETF protocol assignments, Teredo among them (its client address is obfuscated).
    (_V6("2001::/23"), "reserved"),
    (_V6("fc00::/7"), "private (unique local)"),
    (_V6("fec0::/10"), "private (site-local)"),
    (_V6("fe80::/10"), "link-local"),
    (_V6("ff00::/8"), "multicast"),
)
_V6_GLOBAL_UNICAST = _V6("2000::/3")
_NAT64 = _V6("64:ff9b::/96")
_V4_COMPATIBLE = _V6("::/96")

_LOCAL_NAMES: dict[str, tuple[str, ...]] = {
    # Host names that mean a forbidden address whatever DNS says; judged by what they stand for.
    "localhost": ("127.0.0.1", "::1"),
    "localhost.localdomain": ("127.0.0.1", "::1"),
    "ip6-localhost": ("::1",),
    "ip6-loopback": ("::1",),
    "metadata": ("169.254.169.254",),
    "metadata.google.internal": ("169.254.169.254",),
    "metadata.goog": ("169.254.169.254",),
    "instance-data": ("169.254.169.254",),
    "instance-data.ec2.internal": ("169.254.169.254",),
}
_LEGACY_V4 = re.compile(r"^(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+)){0,3}$")


class BlockedAddress(OncelyError):
    """A connection to an address the server's configuration does not allow."""

    def __init__(
        self, address: str, reason: str, *, host: str | None = None, detail: str = ""
    ) -> None:
        self.address = address
        self.reason = reason
        self.host = host
        article = "an" if reason[:1] in ("a", "e", "i", "o", "u") else "a"
        subject = (
            f"{host} resolves to {address}, which is"
            if host and host != address
            else f"{address} is"
        )
        super().__init__(
            f"{subject} {article} {reason} address{detail}; "
            "allow it in server config (http_allowed_networks)"
        )


def _embedded_v4(ip: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address, str] | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped, "IPv4-mapped"
    if ip.sixtofour is not None:
        return ip.sixtofour, "6to4"
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF), "NAT64"
    if ip in _V4_COMPATIBLE and int(ip) > 1:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF), "IPv4-compatible"
    return None


def _plain_reason(ip: IPAddress) -> str | None:
    if ip in METADATA_ADDRESSES:
        return "cloud metadata"
    table = _V4_BLOCKED if ip.version == 4 else _V6_BLOCKED
    for network, reason in table:
        if ip in network:
            return reason
    if ip.version == 6 and ip not in _V6_GLOBAL_UNICAST:
        return "reserved"
    return None


def _parse(ip: str | IPAddress) -> IPAddress:
    if isinstance(ip, str):
        # A zone ("fe80::1%eth0") does not change what kind of address it is.
        return ipaddress.ip_address(ip.split("%", 1)[0])
    return ip


def classify_address(ip: str | IPAddress) -> tuple[str, str] | None:
    """Why ``ip`` is forbidden by default, as ``(reason, detail)``; ``None`` if it is public.

    ``reason`` reads as an adjective ("loopback", "private", "cloud metadata"); ``detail`` names
    the embedded IPv4 address when the verdict comes from one (empty otherwise).
    """
    addr = _parse(ip)
    if isinstance(addr, ipaddress.IPv6Address):
        embedded = _embedded_v4(addr)
        if embedded is not None:
            v4, form = embedded
            inner = _plain_reason(v4)
            if inner is not None:
                return inner, f" ({form} {v4})"
            # Deprecated since 2006 and routed nowhere: no legitimate target uses this form.
            return ("reserved", f" ({form} {v4})") if form == "IPv4-compatible" else None
    reason = _plain_reason(addr)
    return (reason, "") if reason is not None else None


@functools.lru_cache(maxsize=32)
def _allowed_networks(cidrs: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    networks: list[IPNetwork] = []
    for cidr in cidrs:
        try:
            networks.append(ipaddress.ip_network(cidr, strict=False))
        except ValueError as exc:
            raise ValueError(f"http_allowed_networks: invalid network {cidr!r}: {exc}") from exc
    return tuple(networks)


def _is_allowed(addr: IPAddress, settings: ActionSettings) -> bool:
    networks = _allowed_networks(tuple(settings.http_allowed_networks))
    candidates: list[IPAddress] = [addr]
    if isinstance(addr, ipaddress.IPv6Address):
        embedded = _embedded_v4(addr)
        if embedded is not None:
            candidates.append(embedded[0])
    return any(c in n for c in candidates for n in networks if c.version == n.version)


def check_address(
    ip: str | IPAddress, settings: ActionSettings, *, host: str | None = None
) -> None:
    """Raise ``BlockedAddress`` unless the server may connect to ``ip``.

    Loopback, private, link-local, unspecified, multicast, reserved and cloud metadata
    addresses (and IPv6 forms embedding such an IPv4 address) are refused, unless
    ``settings.http_allow_private`` is set or the address lies in ``http_allowed_networks``.
    ``host`` only improves the message ("x resolves to 10.0.0.5, which is...").
    """
    if settings.http_allow_private:
        return
    addr = _parse(ip)
    verdict = classify_address(addr)
    if verdict is None or _is_allowed(addr, settings):
        return
    reason, detail = verdict
    raise BlockedAddress(str(ip), reason, host=host, detail=detail)


def _literal_address(host: str) -> IPAddress | None:
    try:
        return _parse(host)
    except ValueError:
        pass
    # inet_aton accepts the forms resolvers also accept ("127.1", "0x7f.0.0.1", "2130706433").
    if _LEGACY_V4.match(host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def validate_http_target(url: str, settings: ActionSettings) -> None:
    """Refuse, at job creation, a URL whose host is plainly a forbidden address.

    Only what can be decided without DNS is checked here; names are checked again, resolved,
    on every connection (see ``GuardedNetworkBackend``). Raises ``InvalidInput`` on ``http.url``.
    """
    host = urlsplit(url).hostname
    if not host:
        raise InvalidInput("http.url has no host", field="http.url")
    if settings.http_allow_private:
        return
    host = host.rstrip(".").lower()
    literal = _literal_address(host)
    if literal is not None:
        candidates: Iterable[str | IPAddress] = (literal,)
    elif host in _LOCAL_NAMES:
        candidates = _LOCAL_NAMES[host]
    elif host.endswith(".localhost"):
        candidates = _LOCAL_NAMES["localhost"]
    else:
        return
    # Like the connect-time check, a name passes if any address it stands for is allowed.
    refusal: BlockedAddress | None = None
    for candidate in candidates:
        try:
            check_address(candidate, settings, host=host if literal is None else None)
        except BlockedAddress as exc:
            refusal = refusal or exc
        else:
            return
    assert refusal is not None
    raise InvalidInput(f"http.url: {refusal}", field="http.url") from refusal


async def _system_resolver(host: str, port: int) -> list[str]:
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses: list[str] = []
    for family, _type, _proto, _canon, sockaddr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        address = str(sockaddr[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


class GuardedNetworkBackend(httpcore.AsyncNetworkBackend):
    """An httpcore network backend that connects only to addresses ``check_address`` allows.

    It resolves the name itself and hands the inner backend an IP literal, so there is no second
    resolution the check could disagree with. Forbidden addresses among the answers are skipped
    (``localhost`` may answer ``::1`` besides an allowed ``127.0.0.1``); a name with no
    allowed answer is refused.
    """

    def __init__(
        self,
        settings: ActionSettings,
        *,
        resolver: Resolver | None = None,
        inner: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self._settings = settings
        self._resolve = resolver or _system_resolver
        self._inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's backend interface
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        try:
            async with asyncio.timeout_at(deadline):
                addresses = await self._resolve(host, port)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"resolving {host} timed out") from None
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        if not addresses:
            raise httpcore.ConnectError(f"cannot resolve {host}: no addresses")
        allowed: list[str] = []
        refusal: BlockedAddress | None = None
        for address in addresses:
            try:
                check_address(address, self._settings, host=host)
            except BlockedAddress as exc:
                refusal = refusal or exc
            else:
                allowed.append(address)
        if not allowed:
            assert refusal is not None
            raise refusal

        last_error: Exception | None = None
        for address in allowed:
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                raise httpcore.ConnectTimeout(f"connecting to {host}:{port} timed out")
            try:
                return await self._inner.connect_tcp(
                    address,
                    port,
                    timeout=remaining,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last_error = exc
        assert last_error is not None
        raise last_error

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's backend interface
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are not allowed for HTTP actions")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)

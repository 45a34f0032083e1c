"""The SSRF guard's address table, its allow-list, and the job-creation check."""

from __future__ import annotations

import pytest

from oncely.adapters.actions.netguard import (
    BlockedAddress,
    check_address,
    classify_address,
    validate_http_target,
)
from oncely.domain.errors import InvalidInput
from oncely.ports.actions import ActionSettings

DEFAULT = ActionSettings()

ADDRESSES: list[tuple[str, str | None]] = [
    # IPv4
    ("8.8.8.8", None),
    ("1.1.1.1", None),
    ("172.32.0.1", None),
    ("100.128.0.1", None),
    ("127.0.0.1", "loopback"),
    ("127.255.255.254", "loopback"),
    ("10.1.2.3", "private"),
    ("172.16.0.1", "private"),
    ("172.31.255.255", "private"),
    ("192.168.1.1", "private"),
    ("100.64.0.1", "private (carrier-grade NAT)"),
    ("100.127.255.255", "private (carrier-grade NAT)"),
    ("169.254.1.1", "link-local"),
    ("169.254.169.254", "cloud metadata"),
    ("169.254.170.2", "cloud metadata"),
    ("100.100.100.200", "cloud metadata"),
    ("0.0.0.0", "unspecified"),
    ("0.1.2.3", "unspecified"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "reserved"),
    ("192.0.2.1", "reserved (documentation)"),
    ("198.18.0.1", "reserved (benchmarking)"),
    # IPv6
    ("2001:4860:4860::8888", None),
    ("2606:4700:4700::1111", None),
    ("::1", "loopback"),
    ("::", "unspecified"),
    ("fe80::1", "link-local"),
    ("fe80::1%eth0", "link-local"),
    ("fc00::1", "private (unique local)"),
    ("fd12:3456::1", "private (unique local)"),
    ("fd00:ec2::254", "cloud metadata"),
    ("fec0::1", "private (site-local)"),
    ("ff02::1", "multicast"),
    ("2001:db8::1", "reserved (documentation)"),
    ("2001::1", "reserved"),  # Teredo
    ("4000::1", "reserved"),  # outside global unicast
    ("64:ff9b:1::a", "private (local-use NAT64)"),
    # IPv6 embedding IPv4: judged by the embedded address
    ("::ffff:127.0.0.1", "loopback"),
    ("::ffff:7f00:1", "loopback"),
    ("::ffff:10.0.0.1", "private"),
    ("::ffff:169.254.169.254", "cloud metadata"),
    ("::ffff:8.8.8.8", None),
    ("2002:7f00:1::", "loopback"),  # 6to4 of 127.0.0.1
    ("2002:a9fe:a9fe::1", "cloud metadata"),  # 6to4 of 169.254.169.254
    ("2002:808:808::", None),
    ("64:ff9b::a00:1", "private"),  # NAT64 of 10.0.0.1
    ("64:ff9b::7f00:1", "loopback"),
    ("64:ff9b::808:808", None),
    ("::127.0.0.1", "loopback"),  # IPv4-compatible (deprecated)
    ("::8.8.8.8", "reserved"),
]


@pytest.mark.parametrize(("address", "reason"), ADDRESSES)
def test_classify(address: str, reason: str | None) -> None:
    verdict = classify_address(address)
    assert (verdict[0] if verdict else None) == reason


@pytest.mark.parametrize(("address", "reason"), ADDRESSES)
def test_check_address_by_default(address: str, reason: str | None) -> None:
    if reason is None:
        check_address(address, DEFAULT)
    else:
        with pytest.raises(BlockedAddress) as info:
            check_address(address, DEFAULT)
        assert info.value.reason == reason


@pytest.mark.parametrize(("address", "reason"), ADDRESSES)
def test_allow_private_allows_everything(address: str, reason: str | None) -> None:
    check_address(address, ActionSettings(http_allow_private=True))


def test_message_names_address_reason_and_setting() -> None:
    with pytest.raises(BlockedAddress) as info:
        check_address("10.0.0.5", DEFAULT)
    assert str(info.value) == (
        "10.0.0.5 is a private address; allow it in server config (http_allowed_networks)"
    )
    with pytest.raises(BlockedAddress) as info:
        check_address("::ffff:127.0.0.1", DEFAULT, host="sneaky.example")
    assert str(info.value).startswith(
        "sneaky.example resolves to ::ffff:127.0.0.1, which is a loopback address"
        " (IPv4-mapped 127.0.0.1)"
    )
    with pytest.raises(BlockedAddress, match="is an unspecified address"):
        check_address("0.0.0.0", DEFAULT)


def test_allowed_networks() -> None:
    settings = ActionSettings(http_allowed_networks=("10.20.0.0/16", "fd00:1234::/32"))
    check_address("10.20.1.1", settings)
    check_address("::ffff:10.20.1.1", settings)  # the mapped form of an allowed address
    check_address("64:ff9b::a14:101", settings)  # NAT64 of 10.20.1.1
    check_address("fd00:1234::5", settings)
    for address in ("10.21.0.1", "127.0.0.1", "fd00:1235::5", "169.254.169.254"):
        with pytest.raises(BlockedAddress):
            check_address(address, settings)


def test_invalid_allowed_network_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="http_allowed_networks: invalid network 'nope'"):
        check_address("10.0.0.1", ActionSettings(http_allowed_networks=("nope",)))


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://127.0.0.1:8080/hook",
        "https://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[fe80::1%25eth0]/",
        "http://10.0.0.5/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/",
        "http://0.0.0.0:8000/",
        "http://2130706433/",  # 127.0.0.1 as one decimal number
        "http://0x7f.1/",
        "http://127.1/",
        "http://017700000001/",
        "http://localhost/",
        "http://LOCALHOST./",
        "http://app.localhost:3000/",
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://metadata/",
    ],
)
def test_validate_http_target_rejects(url: str) -> None:
    with pytest.raises(InvalidInput) as info:
        validate_http_target(url, DEFAULT)
    assert info.value.field == "http.url"
    assert "allow it in server config" in str(info.value)


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/hook",
        "http://8.8.8.8/",
        "https://[2606:4700:4700::1111]/",
        "http://localhost.example.com/",  # a public name that merely starts with "localhost"
        "http://10.example.com/",
        "http://1.2.3.4.nip.io/",  # a name: checked when resolved, at connect time
    ],
)
def test_validate_http_target_accepts(url: str) -> None:
    validate_http_target(url, DEFAULT)


def test_validate_http_target_follows_settings() -> None:
    validate_http_target("http://localhost:8000/", ActionSettings(http_allow_private=True))
    validate_http_target("http://10.0.0.5/", ActionSettings(http_allowed_networks=("10.0.0.0/8",)))
    loopback = ActionSettings(http_allowed_networks=("127.0.0.0/8",))
    validate_http_target("http://localhost:8000/", loopback)
    with pytest.raises(InvalidInput):
        validate_http_target("http://metadata.google.internal/", loopback)


def test_validate_http_target_needs_a_host() -> None:
    with pytest.raises(InvalidInput, match="no host"):
        validate_http_target("http:///path", DEFAULT)

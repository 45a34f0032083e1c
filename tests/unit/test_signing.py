"""Webhook signatures: what oncely signs and what receivers accept."""

from __future__ import annotations

import pytest

from oncely.domain.signing import (
    ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookRejected,
    sign,
    signed_headers,
    verify_webhook,
)

BODY = b'{"event":"dead","id":"n1"}'


def test_a_fresh_signed_request_is_accepted_and_names_its_id() -> None:
    headers = signed_headers("k", "n1", 1_000_000, BODY)
    lowered = {k.lower(): v for k, v in headers.items()}  # header names are case-insensitive
    assert verify_webhook("k", lowered, BODY, now=1_000_010) == "n1"


@pytest.mark.parametrize(
    "change",
    [
        lambda h, b: (h, b + b" "),  # body changed
        lambda h, b: ({**h, ID_HEADER: "n2"}, b),  # id swapped
        lambda h, b: ({**h, TIMESTAMP_HEADER: "1000001"}, b),  # timestamp moved
        lambda h, b: ({**h, SIGNATURE_HEADER: sign("other", "n1", 1_000_000, b)}, b),
        lambda h, b: ({k: v for k, v in h.items() if k != SIGNATURE_HEADER}, b),
        lambda h, b: ({**h, TIMESTAMP_HEADER: "soon"}, b),
    ],
)
def test_tampered_requests_are_rejected(change) -> None:  # type: ignore[no-untyped-def]
    headers, body = change(signed_headers("k", "n1", 1_000_000, BODY), BODY)
    with pytest.raises(WebhookRejected):
        verify_webhook("k", headers, body, now=1_000_000)


def test_old_and_future_timestamps_are_rejected() -> None:
    headers = signed_headers("k", "n1", 1_000_000, BODY)
    assert verify_webhook("k", headers, BODY, now=1_000_300) == "n1"
    with pytest.raises(WebhookRejected, match="old"):
        verify_webhook("k", headers, BODY, now=1_000_301)  # a replay, 5 min later
    with pytest.raises(WebhookRejected):
        verify_webhook("k", headers, BODY, now=999_000)
    assert verify_webhook("k", headers, BODY, now=1_000_900, tolerance=1000) == "n1"


def test_the_signature_is_hmac_sha256_over_id_timestamp_and_body() -> None:
    import hashlib
    import hmac

    expected = hmac.new(b"k", b"n1.1000000." + BODY, hashlib.sha256).hexdigest()
    assert sign("k", "n1", 1_000_000, BODY) == "v1=" + expected

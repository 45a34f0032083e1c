"""Webhook signatures: how oncely signs a notification and how a receiver checks it.

oncely sends three headers with every webhook POST::

    Oncely-Notification-Id: <the notification id: dedupe on it>
    Oncely-Timestamp: <Unix seconds when this try was sent>
    Oncely-Signature: v1=<hex HMAC-SHA256 of "<id>.<timestamp>.<body>" under the channel secret>

The id and timestamp are inside the signed text, so neither can be swapped; the timestamp lets a
receiver refuse a captured request replayed later (``verify_webhook`` rejects anything older
than ``tolerance`` seconds). Retries of one notification carry the same id with a new timestamp
and signature.

Receivers can use ``verify_webhook`` as it is (it needs only the standard library)::

    from oncely.domain.signing import verify_webhook, WebhookRejected

    try:
        verify_webhook(secret, request.headers, raw_body)
    except WebhookRejected:
        return 401
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping

SIGNATURE_HEADER = "Oncely-Signature"
TIMESTAMP_HEADER = "Oncely-Timestamp"
ID_HEADER = "Oncely-Notification-Id"
DEFAULT_TOLERANCE = 300.0


class WebhookRejected(Exception):
    """The request is not a valid, fresh oncely webhook."""


def sign(secret: str, notification_id: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), digestmod=hashlib.sha256)
    mac.update(f"{notification_id}.{timestamp}.".encode())
    mac.update(body)
    return "v1=" + mac.hexdigest()


def signed_headers(
    secret: str, notification_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    return {
        ID_HEADER: notification_id,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: sign(secret, notification_id, timestamp, body),
    }


def _header(headers: Mapping[str, str], name: str) -> str:
    for key, value in headers.items():
        if key.lower() == name.lower():
            return value
    raise WebhookRejected(f"missing header {name}")


def verify_webhook(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> str:
    """Check a received webhook; return its notification id (the key to dedupe on).

    Raises ``WebhookRejected`` if a header is missing, the signature does not match the body
    (compared in constant time), or the timestamp is more than ``tolerance`` seconds away from
    ``now`` (default: this machine's clock), in the past or in the future.
    """
    notification_id = _header(headers, ID_HEADER)
    stamp = _header(headers, TIMESTAMP_HEADER)
    given = _header(headers, SIGNATURE_HEADER)
    try:
        timestamp = int(stamp)
    except ValueError:
        raise WebhookRejected("timestamp is not an integer") from None
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise WebhookRejected("timestamp is too old (or in the future): a replay?")
    expected = sign(secret, notification_id, timestamp, body)
    if not any(hmac.compare_digest(expected, part.strip()) for part in given.split(",")):
        raise WebhookRejected("signature does not match")
    return notification_id

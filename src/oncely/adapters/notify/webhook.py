"""oncely's own webhook: a JSON POST signed with HMAC-SHA256 (``oncely.domain.signing``).

The request goes through the same SSRF guard as HTTP actions (``GuardedTransport``): a webhook
URL that resolves to a loopback, private, link-local or metadata address is refused at every
connection unless the server's network settings allow it. No redirects are followed.
"""

from __future__ import annotations

import json
import time

import httpx

from oncely.adapters.actions.http import GuardedTransport
from oncely.adapters.actions.netguard import BlockedAddress, Resolver
from oncely.domain.notify import DueNotification, Message
from oncely.domain.signing import signed_headers
from oncely.ports.actions import ActionSettings
from oncely.ports.notify import DeliveryFailed

USER_AGENT = "oncely-webhook/1"


def webhook_body(message: Message) -> bytes:
    """The exact bytes sent (and signed): compact JSON with sorted keys."""
    return json.dumps(message.payload, separators=(",", ":"), sort_keys=True).encode()


class WebhookSender:
    def __init__(
        self, settings: ActionSettings, *, timeout: float = 10.0, resolver: Resolver | None = None
    ) -> None:
        self._timeout = timeout
        self._client = httpx.AsyncClient(
            transport=GuardedTransport(
                settings,
                limits=httpx.Limits(max_connections=32, max_keepalive_connections=8),
                resolver=resolver,
            ),
            follow_redirects=False,
            trust_env=False,
            headers={"User-Agent": USER_AGENT},
        )

    async def send(self, due: DueNotification, message: Message) -> None:
        if due.channel_url is None or due.channel_secret is None:
            raise DeliveryFailed("the webhook channel has no URL or secret")
        notification_id = due.notification.id
        body = webhook_body(message)
        headers = signed_headers(due.channel_secret, notification_id, int(time.time()), body)
        headers["Content-Type"] = "application/json"
        headers["Idempotency-Key"] = notification_id
        try:
            response = await self._client.post(
                due.channel_url, content=body, headers=headers, timeout=self._timeout
            )
        except BlockedAddress as exc:
            raise DeliveryFailed(f"refused by the network guard: {exc}") from None
        except httpx.TimeoutException:
            raise DeliveryFailed("timed out") from None
        except httpx.HTTPError as exc:
            raise DeliveryFailed(f"{type(exc).__name__}") from None
        if not 200 <= response.status_code < 300:
            raise DeliveryFailed(f"the receiver answered HTTP {response.status_code}")

    async def aclose(self) -> None:
        await self._client.aclose()

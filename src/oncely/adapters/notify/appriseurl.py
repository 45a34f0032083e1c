"""Channels through Apprise: email (``mailto://``), Slack, Microsoft Teams, Discord, PagerDuty,
Telegram and the many other services Apprise supports, each named by one URL.

Apprise's calls block (SMTP, HTTPS), so each send runs in a thread. Its reasons for a failure
go to its log; they are captured and returned as the error, with the URL left out (it holds
credentials). Apprise's generic schemes that post to any host (``json://``, ``xml://``,
``form://``) pass the same network check as webhooks when the channel is made.
"""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import urlsplit

import apprise

from oncely.adapters.actions.netguard import validate_http_target
from oncely.domain.errors import InvalidInput
from oncely.domain.notify import DueNotification, Message
from oncely.ports.actions import ActionSettings
from oncely.ports.notify import DeliveryFailed

# Apprise schemes that reach a host the URL names (the rest talk to a fixed service).
_ANY_HOST = {
    "json": "http",
    "jsons": "https",
    "xml": "http",
    "xmls": "https",
    "form": "http",
    "forms": "https",
}


def check_apprise_url(url: str, settings: ActionSettings) -> None:
    """Refuse a URL Apprise does not understand, or a generic one aimed at a forbidden host."""
    if not apprise.Apprise().add(url):
        raise InvalidInput(
            "Apprise does not understand this url (see the Apprise services list for its "
            "schemes: mailto://, slack://, msteams://, discord://, pagerduty://...)",
            field="url",
        )
    parts = urlsplit(url)
    if parts.scheme.lower() in _ANY_HOST:
        plain = _ANY_HOST[parts.scheme.lower()] + "://" + parts.netloc.rpartition("@")[2] + "/"
        validate_http_target(plain, settings)


class AppriseSender:
    def __init__(self, *, timeout: float = 30.0) -> None:
        self._timeout = timeout

    async def send(self, due: DueNotification, message: Message) -> None:
        if due.channel_url is None:
            raise DeliveryFailed("the channel has no URL")
        await asyncio.wait_for(
            asyncio.to_thread(_send, due.channel_url, message), timeout=self._timeout
        )

    async def aclose(self) -> None:
        return None


def _send(url: str, message: Message) -> None:
    notifier = apprise.Apprise()
    if not notifier.add(url):
        raise DeliveryFailed("Apprise does not understand the channel's url")
    with apprise.LogCapture(level=logging.WARNING) as captured:  # type: ignore[no-untyped-call]
        ok = notifier.notify(title=message.title, body=message.body)
    if not ok:
        reason = captured.getvalue().strip().splitlines()
        raise DeliveryFailed(_scrub(reason[-1] if reason else "Apprise could not deliver", url))


def _scrub(text: str, url: str) -> str:
    """Never echo the URL (or its host's credentials) back into stored errors."""
    return text.replace(url, "<channel url>")[:500]

"""One sender for every channel kind, as the delivery service sees it."""

from __future__ import annotations

from oncely.adapters.actions.netguard import validate_http_target
from oncely.adapters.notify.appriseurl import AppriseSender, check_apprise_url
from oncely.adapters.notify.email import EmailChannelSender
from oncely.adapters.notify.webhook import WebhookSender
from oncely.domain.errors import InvalidInput
from oncely.domain.notify import ChannelKind, DueNotification, Message, validate_channel_url
from oncely.ports.actions import ActionSettings
from oncely.ports.notify import DeliveryFailed


def check_channel(kind: ChannelKind, url: str, settings: ActionSettings) -> None:
    """Refuse, when a channel is made, a URL that can never be delivered to."""
    validate_channel_url(kind, url)
    if kind is ChannelKind.EMAIL:
        if not settings.smtp_url or not settings.smtp_from:
            raise InvalidInput(
                "email channels send through the server's SMTP relay: set smtp_url and "
                "smtp_from in server config",
                field="kind",
            )
        return
    try:
        if kind is ChannelKind.WEBHOOK:
            validate_http_target(url, settings)
        else:
            check_apprise_url(url, settings)
    except InvalidInput as exc:  # the network guard names HTTP actions' field
        raise InvalidInput(str(exc).removeprefix("http.url: "), field="url") from None


class ChannelSender:
    def __init__(self, settings: ActionSettings, *, timeout: float = 10.0) -> None:
        self.webhook = WebhookSender(settings, timeout=timeout)
        self.apprise = AppriseSender(timeout=max(timeout, 30.0))
        self.email = EmailChannelSender(settings, timeout=max(timeout, 30.0))

    async def send(self, due: DueNotification, message: Message) -> None:
        if due.channel_kind is ChannelKind.WEBHOOK:
            await self.webhook.send(due, message)
        elif due.channel_kind is ChannelKind.APPRISE:
            await self.apprise.send(due, message)
        elif due.channel_kind is ChannelKind.EMAIL:
            await self.email.send(due, message)
        else:
            raise DeliveryFailed("the channel was deleted")

    async def aclose(self) -> None:
        await self.webhook.aclose()
        await self.apprise.aclose()
        await self.email.aclose()

"""The notification sender port: how the delivery service hands a message to a channel."""

from __future__ import annotations

from typing import Protocol

from oncely.domain.errors import OncelyError
from oncely.domain.notify import DueNotification, Message


class DeliveryFailed(OncelyError):
    """The channel did not take the message (refused, unreachable, timed out). The text says
    why, without the channel's URL or secret."""


class NotificationSender(Protocol):
    async def send(self, due: DueNotification, message: Message) -> None:
        """Deliver ``message`` through ``due``'s channel, or raise ``DeliveryFailed``.
        Every try of one notification carries its id, for receivers to dedupe on."""
        ...

    async def aclose(self) -> None: ...

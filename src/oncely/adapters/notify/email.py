"""``email`` channels: notifications mailed through the server's own SMTP relay.

The relay and the sender address are the server's (``smtp_url``, ``smtp_from``), exactly as
for the ``email`` action, whose sending code this reuses; the channel holds only the
recipients. The notification's id is the ``Message-ID`` (``<id@oncely>``) and the
``Idempotency-Key``: a delivery retried after the relay accepted it is the same message.
"""

from __future__ import annotations

import asyncio
import smtplib
from email.message import EmailMessage
from email.utils import formatdate

from oncely.adapters.actions.email import parse_smtp_url, send_via_relay
from oncely.domain.errors import InvalidInput
from oncely.domain.notify import DueNotification, Message, email_recipients
from oncely.ports.actions import ActionSettings
from oncely.ports.notify import DeliveryFailed


class EmailChannelSender:
    def __init__(self, settings: ActionSettings, *, timeout: float = 30.0) -> None:
        self._settings = settings
        self._timeout = timeout

    async def send(self, due: DueNotification, message: Message) -> None:
        url, sender = self._settings.smtp_url, self._settings.smtp_from
        if not url or not sender:
            raise DeliveryFailed("email channels need smtp_url and smtp_from in server config")
        try:
            relay = parse_smtp_url(url)
            recipients = email_recipients(due.channel_url or "")
        except InvalidInput as exc:
            raise DeliveryFailed(str(exc)) from None
        mail = EmailMessage()
        mail["From"] = sender
        mail["To"] = ", ".join(recipients)
        mail["Subject"] = message.title
        mail["Date"] = formatdate(usegmt=True)
        mail["Message-ID"] = f"<{due.notification.id}@oncely>"
        mail["Idempotency-Key"] = due.notification.id
        mail.set_content(message.body)
        try:
            refused = await asyncio.to_thread(send_via_relay, relay, mail, self._timeout)
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryFailed(f"{type(exc).__name__}: {exc}") from None
        if refused:
            raise DeliveryFailed(
                f"the relay refused {len(refused)} of {len(recipients)} recipients: "
                + ", ".join(sorted(refused))
            )

    async def aclose(self) -> None:
        return None

"""The ``email`` action: a message sent through the SMTP relay the server is configured with.

The relay comes from server configuration (``smtp_url``, ``smtp_from``), never from the job:
a job names recipients, a subject and a body, and cannot point oncely at another mail server
or log in anywhere. ``smtp_url`` is ``smtp://host:25`` (plain), ``smtp+starttls://user:pass@
host:587`` (upgraded with STARTTLS, refused if the server does not offer it) or
``smtps://user:pass@host:465`` (TLS from the start); certificates are verified.

The run's id is the message's ``Message-ID`` (``<run-id@oncely>``) and its
``Idempotency-Key`` header: every attempt of a run sends the same message id, so a retry after
a crash that came after the relay accepted the message is recognisable as a duplicate.

smtplib blocks; each send runs in a thread with the attempt's timeout as its socket timeout.
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate
from urllib.parse import unquote, urlsplit

from oncely.domain.actions import EmailAction
from oncely.domain.errors import InvalidInput
from oncely.ports.actions import ActionContext, ActionResult, ActionSettings

_DEFAULT_PORTS = {"smtp": 25, "smtp+starttls": 587, "smtps": 465}


@dataclass(frozen=True)
class SmtpRelay:
    scheme: str
    host: str
    port: int
    username: str | None
    password: str | None


def parse_smtp_url(url: str) -> SmtpRelay:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise InvalidInput(
            "smtp_url must be smtp://host[:port], smtp+starttls://user:pass@host[:port] "
            "or smtps://user:pass@host[:port]",
            field="smtp_url",
        )
    return SmtpRelay(
        scheme=scheme,
        host=parts.hostname,
        port=parts.port or _DEFAULT_PORTS[scheme],
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )


def message_for(action: EmailAction, ctx: ActionContext, sender: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = ", ".join(action.to)
    if action.cc:
        message["Cc"] = ", ".join(action.cc)
    message["Subject"] = action.subject
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = f"<{ctx.run_id}@oncely>"
    message["Idempotency-Key"] = ctx.run_id
    message["Oncely-Job"] = ctx.job_name
    message["Oncely-Attempt"] = str(ctx.attempt)
    message.set_content(action.body or "")
    return message


class EmailExecutor:
    kind = "email"

    def __init__(self, settings: ActionSettings, *, timeout: float = 30.0) -> None:
        self._settings = settings
        self._timeout = timeout

    async def execute(self, action: EmailAction, ctx: ActionContext) -> ActionResult:
        url, sender = self._settings.smtp_url, self._settings.smtp_from
        if not url or not sender:
            return ActionResult(
                ok=False, error="email actions need smtp_url and smtp_from in server config"
            )
        try:
            relay = parse_smtp_url(url)
        except InvalidInput as exc:
            return ActionResult(ok=False, error=str(exc))
        timeout = min(self._timeout, ctx.timeout) if ctx.timeout else self._timeout
        message = message_for(action, ctx, sender)
        try:
            refused = await asyncio.to_thread(send_via_relay, relay, message, timeout)
        except asyncio.CancelledError:
            raise
        except smtplib.SMTPResponseException as exc:
            text = (
                exc.smtp_error.decode("utf-8", "replace")
                if isinstance(exc.smtp_error, bytes)
                else str(exc.smtp_error)
            )
            return ActionResult(ok=False, error=f"SMTP {exc.smtp_code}: {text}")
        except (smtplib.SMTPException, OSError) as exc:
            return ActionResult(ok=False, error=f"{type(exc).__name__}: {exc}")
        recipients = len(action.to) + len(action.cc)
        if refused:
            return ActionResult(
                ok=False,
                error=f"the relay refused {len(refused)} of {recipients} recipients: "
                + ", ".join(sorted(refused)),
            )
        return ActionResult(
            ok=True, output=f"sent {message['Message-ID']} to {recipients} recipient(s)"
        )

    async def aclose(self) -> None:
        return None


def send_via_relay(relay: SmtpRelay, message: EmailMessage, timeout: float) -> dict[str, object]:
    """Send one message through the relay (blocking); the recipients it refused. Shared by
    the ``email`` action and ``email`` notification channels."""
    context = ssl.create_default_context()
    client: smtplib.SMTP
    if relay.scheme == "smtps":
        client = smtplib.SMTP_SSL(relay.host, relay.port, timeout=timeout, context=context)
    else:
        client = smtplib.SMTP(relay.host, relay.port, timeout=timeout)
    with client:
        client.ehlo()
        if relay.scheme == "smtp+starttls":
            client.starttls(context=context)
            client.ehlo()
        if relay.username is not None:
            client.login(relay.username, relay.password or "")
        refused = client.send_message(message)
    return dict(refused)

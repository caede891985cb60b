"""Email through aiosmtplib: one connection for as many messages as the server takes, HTML
and plain-text parts.

Each message succeeds or fails on its own. A reply refusing a message (a 4xx: try again
later; a 5xx: stop) is that message's. When the connection is lost (the server closed it,
a message stalled past SMTP_TIMEOUT, a 421 "closing"), the message in flight is charged
only if its content had gone: the server may have taken it without our hearing the 250,
so the retry may repeat it (at most one duplicate per drop, never a loss); a message whose
content had not gone is sent again on the next connection, uncharged. The sender then
reconnects and goes on with the rest, until MAX_FAILED_CONNECTIONS connections in the
batch have been lost before delivering anything: the rest then wait for the next run,
uncharged.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

import aiosmtplib

from bot.channels.base import DeliveryError, not_tried
from bot.settings import Settings

# Connections lost in one batch without a message delivered on them, before the rest of the
# batch waits for the next run. A connection that delivered something and was then closed
# (a relay's cap of messages per connection) is the server's habit, not a fault: not counted.
MAX_FAILED_CONNECTIONS = 5

CERTIFICATE_HINT = ("the SMTP server's TLS certificate is not trusted ({detail}); set "
                    "SMTP_CA_FILE to the CA bundle (PEM) that signed it")


def _one_line(text: str) -> str:
    """Text written from records (agency and area names) as one header line, whatever it
    holds: line breaks as spaces, and "=?" broken up. Python's email package reads an RFC
    2047 encoded word in a value it is given and writes out what it decodes, so an agency
    named "=?utf-8?q?SPS=0D=0ABcc:...?=" (no control character: the importer takes it)
    wrote a Bcc line into its chasers."""
    return " ".join(text.replace("=?", "= ?").split())


def build_email(settings: Settings, to: str, subject: str, text: str, html: str,
                headers: dict | None = None,
                attachments: list[tuple[str, bytes, str]] = (),
                reply_to: str | None = None) -> EmailMessage:
    """One message with the headers mail systems expect of an automated sender: Date,
    Message-ID, Auto-Submitted (RFC 3834: no out-of-office replies to a bot) and Reply-To
    (a person who can answer; the sender if there is none)."""
    msg = EmailMessage()
    msg["From"] = settings.mail_from
    msg["To"] = to
    msg["Subject"] = _one_line(subject)
    msg["Date"] = formatdate(localtime=False, usegmt=True)
    msg["Message-ID"] = make_msgid(domain=settings.mail_from.rpartition("@")[2] or None)
    msg["Auto-Submitted"] = "auto-generated"
    msg["Reply-To"] = reply_to or settings.mail_from
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(text)
    msg.add_alternative(html, subtype="html")
    for filename, data, mimetype in attachments:
        maintype, _, subtype = mimetype.partition("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return msg


@dataclass
class SendResult:
    message: EmailMessage
    error: DeliveryError | None = None


def _certificate_error(exc: BaseException) -> ssl.SSLCertVerificationError | None:
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, ssl.SSLCertVerificationError):
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


def _classify(exc: BaseException) -> DeliveryError:
    cert = _certificate_error(exc)
    if cert is not None or "CERTIFICATE_VERIFY_FAILED" in str(exc):
        # Retrying cannot help until someone changes the configuration.
        detail = getattr(cert, "verify_message", None) or "certificate verify failed"
        return DeliveryError(CERTIFICATE_HINT.format(detail=detail), permanent=True)
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        codes = [r.code for r in exc.recipients]
        return DeliveryError(f"recipient refused ({codes})", permanent=all(c >= 500 for c in codes))
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        return DeliveryError("SMTP authentication failed", permanent=True)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return DeliveryError(f"SMTP {exc.code}: {exc.message}", permanent=exc.code >= 500)
    return DeliveryError(f"{type(exc).__name__}: {exc}", permanent=False)


class _Client(aiosmtplib.SMTP):
    """aiosmtplib's client, noting whether the message being sent got as far as DATA: from
    then on the server may have taken it, whether or not its answer arrives."""

    data_started = False

    async def data(self, *args, **kwargs):
        self.data_started = True
        return await super().data(*args, **kwargs)


def _client(settings: Settings) -> _Client:
    return _Client(
        hostname=settings.smtp_host, port=settings.smtp_port, timeout=settings.smtp_timeout,
        use_tls=settings.smtp_tls, start_tls=settings.smtp_starttls and not settings.smtp_tls,
        cert_bundle=getattr(settings, "smtp_ca_file", "") or None,
    )


def _lost(client: _Client, exc: BaseException) -> bool:
    """Whether the connection is no longer fit to send on after `exc`."""
    if isinstance(exc, TimeoutError | aiosmtplib.SMTPTimeoutError | aiosmtplib.SMTPServerDisconnected):
        return True  # a stalled transaction leaves the conversation out of step
    if isinstance(exc, aiosmtplib.SMTPResponseException) and exc.code == 421:
        return True  # "service not available, closing transmission channel"
    return not client.is_connected


async def _close(client: _Client) -> None:
    if client.is_connected:
        try:
            await asyncio.wait_for(client.quit(), 5)
        except (TimeoutError, aiosmtplib.SMTPException, OSError):
            client.close()


async def send_batch(
    settings: Settings, messages: list[EmailMessage], on_result=None
) -> list[SendResult]:
    """Send the messages over as few connections as the server allows; each message gets its
    own result (and its own timeout). See the module docstring for what a lost connection
    charges.

    `on_result(index, result)`, if given, is awaited as soon as each message is done, so
    that a crash later in the batch cannot make an earlier message go out again.
    """
    results: list[SendResult | None] = [None] * len(messages)

    async def done(i: int, result: SendResult) -> None:
        results[i] = result
        if on_result is not None:
            await on_result(i, result)

    if not messages:
        return []
    if not settings.smtp_host:
        err = DeliveryError("SMTP_HOST is not set", permanent=False)
        for i, m in enumerate(messages):
            await done(i, SendResult(m, err))
        return results  # type: ignore[return-value]
    i, failed_connections, resent = 0, 0, set()
    client: _Client | None = None
    delivered_here = 0  # messages delivered on the current connection
    try:
        while i < len(messages):
            if client is None:
                if failed_connections >= MAX_FAILED_CONNECTIONS:
                    wait = not_tried(f"the SMTP server dropped {failed_connections} "
                                     "connections in this run")
                    for j in range(i, len(messages)):
                        await done(j, SendResult(messages[j], wait))
                    break
                client, delivered_here = _client(settings), 0
                try:
                    await client.connect()
                    if settings.smtp_username:
                        await client.login(settings.smtp_username, settings.smtp_password)
                except (TimeoutError, aiosmtplib.SMTPException, OSError) as exc:
                    client.close()
                    err = _classify(exc)
                    if err.permanent:  # the configuration's fault: every message would fail
                        for j in range(i, len(messages)):
                            await done(j, SendResult(messages[j], err))
                        break
                    # No server to talk to: the message in flight is charged, the rest wait.
                    await done(i, SendResult(messages[i], err))
                    wait = not_tried(f"could not connect to the SMTP server ({err})")
                    for j in range(i + 1, len(messages)):
                        await done(j, SendResult(messages[j], wait))
                    break
            msg = messages[i]
            client.data_started = False
            try:
                await asyncio.wait_for(client.send_message(msg), settings.smtp_timeout)
            except (TimeoutError, aiosmtplib.SMTPException, OSError) as exc:
                err = _classify(exc)
                if not _lost(client, exc):  # the server refused this message: its failure
                    await done(i, SendResult(msg, err))
                    i += 1
                    continue
                # The connection is gone. Did this message reach the server? Not if the
                # server said 421 (closing) or the line dropped before its DATA.
                closing = isinstance(exc, aiosmtplib.SMTPResponseException) and exc.code == 421
                refused = isinstance(exc, aiosmtplib.SMTPResponseException
                                     | aiosmtplib.SMTPRecipientsRefused) and not closing
                unsent = closing or not (client.data_started or refused)
                client.close()
                client = None
                if not delivered_here:
                    failed_connections += 1
                if unsent and i not in resent:
                    resent.add(i)  # again on the next connection, uncharged (once)
                    continue
                # Refused, or its content went and no answer came (the server may have taken
                # it: the retry may repeat it): charged, retried later.
                await done(i, SendResult(msg, err))
                i += 1
                continue
            except Exception as exc:  # a bug, or a message aiosmtplib cannot send: its own
                client.close()
                client = None
                await done(i, SendResult(msg, DeliveryError(
                    f"{type(exc).__name__}: {str(exc)[:200]}", permanent=False)))
                i += 1
                continue
            delivered_here += 1
            await done(i, SendResult(msg))
            i += 1
    finally:
        if client is not None:
            await _close(client)
    return results  # type: ignore[return-value]

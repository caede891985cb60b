"""Email through aiosmtplib: one connection per batch, HTML and plain-text parts.

Failures say whether they are permanent (a rejected address: stop) or transient (a
timeout, a refused connection, a 4xx reply: try again later).
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

import aiosmtplib

from bot.channels.base import DeliveryError
from bot.settings import Settings

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


async def send_batch(
    settings: Settings, messages: list[EmailMessage], on_result=None
) -> list[SendResult]:
    """Send over one connection; each message gets its own result (and its own timeout).

    `on_result(index, result)`, if given, is awaited as soon as each message is done, so
    that a crash later in the batch cannot make an earlier message go out again.
    """
    results: list[SendResult] = []

    async def done(result: SendResult) -> None:
        results.append(result)
        if on_result is not None:
            await on_result(len(results) - 1, result)

    if not messages:
        return []
    if not settings.smtp_host:
        err = DeliveryError("SMTP_HOST is not set", permanent=False)
        for m in messages:
            await done(SendResult(m, err))
        return results
    client = aiosmtplib.SMTP(
        hostname=settings.smtp_host, port=settings.smtp_port, timeout=settings.smtp_timeout,
        use_tls=settings.smtp_tls, start_tls=settings.smtp_starttls and not settings.smtp_tls,
        cert_bundle=getattr(settings, "smtp_ca_file", "") or None,
    )
    try:
        await client.connect()
        if settings.smtp_username:
            await client.login(settings.smtp_username, settings.smtp_password)
    except (TimeoutError, aiosmtplib.SMTPException, OSError) as exc:
        err = _classify(exc)
        for m in messages:
            await done(SendResult(m, err))
        return results
    try:
        for msg in messages:
            try:
                await asyncio.wait_for(client.send_message(msg), settings.smtp_timeout)
                await done(SendResult(msg))
            except (TimeoutError, aiosmtplib.SMTPException, OSError) as exc:
                await done(SendResult(msg, _classify(exc)))
                if not client.is_connected:
                    lost = DeliveryError("connection lost", permanent=False)
                    for m in messages[len(results):]:
                        await done(SendResult(m, lost))
                    break
    finally:
        if client.is_connected:
            try:
                await client.quit()
            except (TimeoutError, aiosmtplib.SMTPException, OSError):
                client.close()
    return results

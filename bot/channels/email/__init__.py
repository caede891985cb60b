"""Email: one SMTP connection per batch, a plain-text and an HTML part, the quarterly pack
attached to the quarterly reminder.

Templates: templates/email/notice_<rule>.{txt,html}.j2 (the text's first line is the
subject) and escalation.{txt,html}.j2 for `/mappa escalate`.
"""

from __future__ import annotations

import asyncio

from sqlalchemy import select
from sqlmodel import SQLModel

from bot.channels import notice
from bot.channels.base import DeliveryError, OnResult, Rendered, SendContext, Transport
from bot.channels.email.attachments import attachments_for
from bot.channels.email.smtp import build_email, send_batch
from bot.templates import render_text
from mappa_core.rules.addresses import email_problem

__all__ = ["EmailTransport", "DeliveryError", "build_email", "send_batch", "render_email"]


def render_email(rows: list[dict]) -> Rendered:
    rule = notice.rule_of(rows)
    if rule == "urgent_issue":
        p = rows[0]["payload"]
        ctx = {k: p[k] for k in ("raised_by", "area", "at", "issue_id", "text")}
        return Rendered(render_text("email/escalation.txt.j2", **ctx), None,
                        f"URGENT MAPPA issue #{p['issue_id']} ({p['area']})",
                        render_text("email/escalation.html.j2", **ctx))
    ctx = notice.context(rows)
    sections = notice.sections(rule, notice.ordered(rows))
    text = render_text(f"email/notice_{rule}.txt.j2", sections=sections, **ctx)
    subject, _, body = text.partition("\n")
    html = render_text(f"email/notice_{rule}.html.j2", sections=sections, **ctx)
    return Rendered(body.strip() + "\n", None, subject.removeprefix("Subject: ").strip(), html)


def _reply_to(engine) -> dict[str | None, str]:
    """Each area's co-ordinators' addresses (None: the national ones), for Reply-To."""
    person = SQLModel.metadata.tables["person"]
    with engine.connect() as conn:
        people = conn.execute(select(person.c.area, person.c.email, person.c.roles)).all()
    found: dict[str | None, list[str]] = {}
    for area, email, roles in people:
        if "coordinator" in (roles or "").split(";") and email and email_problem(email) is None:
            found.setdefault(area or None, []).append(email)
    return {area: ", ".join(sorted(set(emails))) for area, emails in found.items()}


class EmailTransport(Transport):
    name = "email"
    address_label = "the email address "

    def __init__(self, settings=None):
        self.settings = settings

    @classmethod
    def from_settings(cls, settings) -> EmailTransport:
        return cls(settings)

    def address_problem(self, address: str) -> str | None:
        return email_problem(address)

    @classmethod
    def render(cls, rows: list[dict]) -> Rendered:
        return render_email(rows)

    async def prepare(self, rows: list[dict], message: Rendered, ctx: SendContext):
        first = rows[0]
        if "reply_to" not in ctx.cache:
            ctx.cache["reply_to"] = await asyncio.to_thread(_reply_to, ctx.engine)
        reply_to = ctx.cache["reply_to"]
        files = await asyncio.to_thread(attachments_for, ctx.engine, rows, ctx.now.date())
        # The group key travels in a header so that a message can be traced to its outbox
        # rows (and duplicates counted).
        return build_email(
            self.settings, first["address"], message.subject, message.text, message.html,
            {"X-Mappa-Group": first["group_key"]}, files,
            reply_to=reply_to.get(first.get("area")) or reply_to.get(None),
        )

    async def send(self, address: str, message) -> None:
        results = await send_batch(self.settings, [message])
        if results[0].error is not None:
            raise results[0].error

    async def send_all(self, batch: list[tuple[str, object]], on_result: OnResult) -> None:
        async def done(i: int, result) -> None:
            await on_result(i, result.error)

        await send_batch(self.settings, [m for _, m in batch], done)

"""Email: one SMTP connection per batch, a plain-text and an HTML part, the quarterly pack
attached to the quarterly reminder.

Templates: templates/email/notice_<rule>.{txt,html}.j2 (the text's first line is the
subject) and escalation.{txt,html}.j2 for `/mappa escalate`.
"""

from __future__ import annotations

import asyncio

from bot.channels import escalation, rendering
from bot.channels.base import DeliveryError, OnResult, Rendered, SendContext, Transport
from bot.channels.email.attachments import attachments_for, escalation_csv_name, to_key_csv_name
from bot.channels.email.smtp import build_email, send_batch
from bot.templates import render_text
from mappa_core.rules.addresses import email_problem
from mappa_core.rules.deadlines import MINUTES_WORKING_DAYS
from mappa_core.rules.vocabulary import Channel, Rule
from mappa_core.storage import outbox

__all__ = ["EmailTransport", "DeliveryError", "build_email", "send_batch", "render_email"]


def render_email(rows: list[dict]) -> Rendered:
    rule = rendering.rule_of(rows)
    if rule == Rule.URGENT_ISSUE:
        p = rows[0]["payload"]
        ctx = {k: p[k] for k in ("raised_by", "area", "at", "issue_id", "text")}
        return Rendered(render_text("email/escalation.txt.j2", **ctx), None,
                        f"URGENT MAPPA issue #{p['issue_id']} ({p['area']})",
                        render_text("email/escalation.html.j2", **ctx))
    ctx = rendering.context(rows)
    if rule == "escalation":
        return _render_escalation(rows, ctx)
    if rule == "chaser":
        return _render_chaser(rows, ctx)
    sections = rendering.sections(rule, rendering.ordered(rows))
    if rule == Rule.WEEKLY:
        ctx["to_key_attachment"] = to_key_csv_name(rows)
    text = render_text(f"email/notice_{rule}.txt.j2", sections=sections, **ctx)
    subject, _, body = text.partition("\n")
    html = render_text(f"email/notice_{rule}.html.j2", sections=sections, **ctx)
    return Rendered(body.strip() + "\n", None, subject.removeprefix("Subject: ").strip(), html)


def _render_escalation(rows: list[dict], ctx: dict) -> Rendered:
    """Summary first; every item in the body up to EMAIL_LIST_MAX, else the most overdue
    few and the whole list as an attached CSV (attachments.py), so that no body is long."""
    attachment = escalation_csv_name(rows)
    s = escalation.summarise(rows, escalation.EMAIL_SHOWN if attachment else len(rows))
    sections = rendering.sections("escalation", s.shown)
    text = render_text("email/notice_escalation.txt.j2", s=s, sections=sections,
                       attachment=attachment, **ctx)
    subject, _, body = text.partition("\n")
    html = render_text("email/notice_escalation.html.j2", s=s, sections=sections,
                       attachment=attachment, **ctx)
    return Rendered(body.strip() + "\n", None, subject.removeprefix("Subject: ").strip(), html)


def _render_chaser(rows: list[dict], ctx: dict) -> Rendered:
    """An agency contact's chaser: per meeting its date, level and case ref, the deadline
    in working days and the chair (name, email) to send the contribution to."""
    items = [r["payload"] for r in rendering.ordered(rows)]
    agencies = list(dict.fromkeys(str(i.get("agency_name") or i.get("agency")) for i in items
                                  if i.get("agency_name") or i.get("agency")))
    areas = list(dict.fromkeys(str(r["area"]) for r in rows if r.get("area")))
    ctx = {**ctx, "area": " and ".join(areas) if areas else ctx["area"]}
    m = rendering.macros()
    # Plain strings (not the macros' output), so that the HTML template escapes them.
    lines = [{"meeting": str(m.chaser_meeting(i)),
              "deadline": str(m.chaser_deadline(i, MINUTES_WORKING_DAYS)),
              "send_to": str(m.chaser_send_to(i))} for i in items]
    extra = {"items": lines, "agencies": agencies}
    text = render_text("email/notice_chaser.txt.j2", **extra, **ctx)
    subject, _, body = text.partition("\n")
    html = render_text("email/notice_chaser.html.j2", **extra, **ctx)
    return Rendered(body.strip() + "\n", None, subject.removeprefix("Subject: ").strip(), html)


def reply_to_for(rows: list[dict], by_area: dict[str | None, str]) -> str | None:
    """Reply-To for a group: the co-ordinators of each area its items belong to (an area
    without its own: the national ones), so that a reply reaches whoever can act on it."""
    found: list[str] = []
    for area in dict.fromkeys(r.get("area") for r in rows):
        found += (by_area.get(area) or by_area.get(None) or "").split(", ")
    return ", ".join(dict.fromkeys(a for a in found if a)) or None


class EmailTransport(Transport):
    name = Channel.EMAIL
    address_label = "the email address "

    def __init__(self, settings=None):
        self.settings = settings

    @classmethod
    def from_settings(cls, settings) -> EmailTransport:
        return cls(settings)

    def address_problem(self, address: str) -> str | None:
        return email_problem(address)

    def not_configured(self) -> str | None:
        if self.settings is not None and not self.settings.smtp_host:
            return "SMTP_HOST is not set"
        return None

    @classmethod
    def render(cls, rows: list[dict]) -> Rendered:
        return render_email(rows)

    async def prepare(self, rows: list[dict], message: Rendered, ctx: SendContext):
        first = rows[0]
        if "reply_to" not in ctx.cache:
            ctx.cache["reply_to"] = await asyncio.to_thread(outbox.coordinator_emails, ctx.engine)
        reply_to = ctx.cache["reply_to"]
        files = await asyncio.to_thread(attachments_for, ctx.engine, rows, ctx.now.date())
        # The group key travels in a header so that a message can be traced to its outbox
        # rows (and duplicates counted).
        return build_email(
            self.settings, first["address"], message.subject, message.text, message.html,
            {"X-Mappa-Group": first["group_key"]}, files,
            reply_to=reply_to_for(rows, reply_to),
        )

    async def send(self, address: str, message) -> None:
        results = await send_batch(self.settings, [message])
        if results[0].error is not None:
            raise results[0].error

    async def send_all(self, batch: list[tuple[str, object]], on_result: OnResult) -> None:
        async def done(i: int, result) -> None:
            await on_result(i, result.error)

        await send_batch(self.settings, [m for _, m in batch], done)

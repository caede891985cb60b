"""Turn a group of outbox rows (one recipient, one rule) into one Slack or email message."""

from __future__ import annotations

from dataclasses import dataclass

from bot.slack_app import ack_button, nudge_buttons
from bot.templates import environment, mrkdwn_escape, render_json, render_text

MAX_SLACK_ITEMS = 20  # each item is two blocks; Slack allows 50 a message


@dataclass
class Rendered:
    text: str            # Slack fallback text, or the email's plain-text body
    blocks: list | None  # Slack
    subject: str = ""    # email
    html: str = ""       # email


def _macros():
    return environment().get_template("_items.j2").module


def _sections(rule: str, rows: list[dict], slack: bool) -> list[dict]:
    """One line per row (from templates/_items.j2), with its buttons in Slack."""
    m = _macros()
    out = []
    for r in rows:
        p = r["payload"]
        kind = p.get("kind")
        buttons = None
        if kind == "delivery_problem":
            line = m.problem_line(p)
        elif kind == "audit_reminder":
            line = m.reminder_line(p)
        elif kind == "scr_action":
            line = m.scr_line(p)
        elif kind is not None:
            item = {k: (mrkdwn_escape(v) if slack and isinstance(v, str) else v) for k, v in p.items()}
            line = m.item_line(item, code="`" if slack else "")
            if slack and rule == "digest":
                buttons = nudge_buttons(p["item_key"], kind)[0]["elements"]
        elif rule == "weekly":
            line = m.weekly_line(p)
        elif rule == "quarterly":
            continue  # the reminder is its intro; the pack travels as an attachment
        else:
            line = m.indicator_line(p)
        if slack and rule == "escalation":
            buttons = [ack_button(p.get("item_key") or r["item_key"], r["stage"])]
        out.append({"text": str(line), "buttons": buttons,
                    "block_id": (p.get("item_key") or r["item_key"])[:255]})
    return out


def render_group(rows: list[dict]) -> Rendered:
    first = rows[0]
    # The group decides the message (a digest may carry reminders and delivery problems).
    rule, channel = first["group_key"].split("|", 1)[0], first["channel"]
    items = [r["payload"] for r in rows]
    ctx = {
        "day": first["group_key"].rsplit("|", 1)[-1],
        "area": first.get("area") or "all areas",
        "urgent": any(r["urgency"] == "urgent" for r in rows),
        "count": len(rows),
        "overdue": sum(1 for p in items if p.get("overdue")),
        "upcoming": sum(1 for p in items if p.get("kind") not in (None, "delivery_problem", "audit_reminder", "scr_action") and not p.get("overdue")),
        "problems": sum(1 for p in items if p.get("kind") == "delivery_problem"),
        "quarter": items[0].get("quarter", ""),
    }
    ordered = sorted(rows, key=lambda r: (not r["payload"].get("overdue", False),
                                          r["payload"].get("deadline", "")))
    if channel == "slack":
        sections = _sections(rule, ordered, slack=True)
        shown, rest = sections[:MAX_SLACK_ITEMS], sections[MAX_SLACK_ITEMS:]
        overflow = ""
        if rest:
            overflow = "\n".join(s["text"] for s in rest[:30])[:2800]
            overflow += f"\n_{len(rest)} more without buttons above; `/mappa due` lists them all._"
        blocks = render_json(f"slack/notice_{rule}.json.j2", sections=shown, overflow=overflow, **ctx)
        text = f"{blocks[0]['text']['text']}: {len(rows)} item(s)"
        return Rendered(text, blocks)
    sections = _sections(rule, ordered, slack=False)
    text = render_text(f"email/notice_{rule}.txt.j2", sections=sections, **ctx)
    subject, _, body = text.partition("\n")
    html = render_text(f"email/notice_{rule}.html.j2", sections=sections, **ctx)
    return Rendered(body.strip() + "\n", None, subject.removeprefix("Subject: ").strip(), html)

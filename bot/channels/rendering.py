"""What every channel's rendering of a notice shares: the template context of a group of
outbox rows, their order, and one line per row (from templates/_items.j2). Each
transport (slack/, email/, teams/) builds its message from these."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from jinja2.filters import do_truncate

from bot.templates import environment
from mappa_core.rules.kinds import ITEM_KINDS
from mappa_core.rules.vocabulary import Rule, Urgency

PLAIN_KINDS = (None, "delivery_problem", "audit_reminder", "scr_action")


def rule_of(rows: list[dict]) -> str:
    # The group decides the message (a digest may carry reminders and delivery problems).
    return rows[0]["group_key"].split("|", 1)[0]


def context(rows: list[dict]) -> dict:
    first = rows[0]
    items = [r["payload"] for r in rows]
    return {
        "day": day_of(rows),
        "area": first.get("area") or "all areas",
        "urgent": any(r["urgency"] == Urgency.URGENT for r in rows),
        "count": len(rows),
        "overdue": sum(1 for p in items if p.get("overdue")),
        "upcoming": sum(1 for p in items if p.get("kind") not in PLAIN_KINDS and not p.get("overdue")),
        "problems": sum(1 for p in items if p.get("kind") == "delivery_problem"),
        # [what, how many] of the reminders it holds, as they first come ("meeting audit").
        "reminders": [[what, n] for what, n in Counter(
            p.get("what") or "reminder" for p in items if p.get("kind") == "audit_reminder").items()],
        "quarter": items[0].get("quarter", ""),
    }


def ordered(rows: list[dict]) -> list[dict]:
    return sorted(rows, key=lambda r: (not r["payload"].get("overdue", False),
                                       r["payload"].get("deadline", "")))


def _agency_shown(item: dict) -> str | None:
    """The agency as an item's line names it: its name (cut to 80), else its id."""
    name = do_truncate(environment(), item.get("agency_name") or "", 80, True, "…", 0)
    return name or item["agency"]


def macros():
    return environment().get_template("_items.j2").module


def day_of(rows: list[dict]) -> str | None:
    """The day (ISO) a group of outbox rows was planned for, as its group key ends."""
    key = rows[0].get("group_key") if rows else None
    return key.rsplit("|", 1)[-1] if key else None


def sections(rule: str, rows: list[dict], escape: Callable[[str], str] | None = None,
             code: str = "", buttons: Callable[[str, dict, dict], list | None] | None = None,
             today: str | None = None) -> list[dict]:
    """One line per row, with the buttons `buttons(rule, row, payload)` gives it; a line
    counts its working days from `today` (ISO; by default the day the rows were planned
    for: their working days were counted from it)."""
    m = macros()
    today = today or day_of(rows)
    out = []
    for r in rows:
        p = r["payload"]
        kind = p.get("kind")
        if kind == "delivery_problem":
            line = m.problem_line(p)
        elif kind == "audit_reminder":
            line = m.reminder_line(p)
        elif kind == "scr_action":
            line = m.scr_line(p)
        elif kind is not None:
            item = {k: (escape(v) if escape and isinstance(v, str) else v) for k, v in p.items()}
            spec = ITEM_KINDS[kind]
            what = spec.line_for(item["level"], _agency_shown(item))
            line = (m.escalation_line if rule == Rule.ESCALATION else m.item_line)(
                item, what, spec.line_detail, code=code, today=today)
        elif rule == Rule.WEEKLY:
            line = m.weekly_line(p)
        elif rule == Rule.QUARTERLY:
            continue  # the reminder is its intro; the pack travels as an attachment
        else:
            line = m.indicator_line(p)
        out.append({"text": str(line), "buttons": buttons(rule, r, p) if buttons else None,
                    "block_id": (p.get("item_key") or r["item_key"])[:255]})
    return out

"""A command's answer (bot/commands/answers.py) as Slack shows it: Block Kit from the
templates in templates/slack/ (the words), escaped and fitted (blocks.render_blocks), with
a mrkdwn fallback text, and for a long due list the "Previous" / "Next" buttons
(paging.py) that page_due.py listens for.

`slack_reply(answer)` is the one entry: every Slack listener's reply passes through it
(MappaSlack.respond; the worker processes render there too, so the event loop does not).
A Teams package renders the same answers as Adaptive Cards, an e-mail link page as HTML.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import singledispatch

from bot.channels.slack.blocks import plain_pieces, render_blocks
from bot.channels.slack.paging import page_items
from bot.commands.answers import (
    CaseSummary,
    Comparison,
    DueList,
    Escalated,
    Help,
    Mark,
    Said,
    ScrList,
    Status,
)
from bot.templates import mrkdwn_escape
from mappa_core.rules.indicators import INDICATORS

DUE_NAV = "page_due"  # the due list's Previous / Next buttons (listeners/actions/page_due.py)
MAX_AREAS = 45  # sections of `status compare` in one message (Slack allows 50 blocks)
COMMAND = "/mappa"  # how a person asks in Slack (`narrow` hints name it)
# An indicator met, not met, or with nothing to count yet (as `/mappa status` shows it).
MET_MARKS = {True: ":white_check_mark:", False: ":x:", None: ":heavy_minus_sign:"}
MARKS = {Mark.DONE: ":white_check_mark:", Mark.SNOOZED: ":zzz:", Mark.NOTED: ":memo:",
         Mark.ACKNOWLEDGED: ":ok_hand:"}


@dataclass
class Reply:
    blocks: list
    text: str  # fallback for notifications (Slack reads it as mrkdwn: escaped here)

    def __post_init__(self) -> None:
        self.text = mrkdwn_escape(self.text)


def message(text: str) -> Reply:
    """One section of mrkdwn (escaped)."""
    return Reply(render_blocks("slack/message.json.j2", text=text), text)


@singledispatch
def slack_reply(answer) -> Reply:
    """`answer` as a Slack reply; a Reply passes as it is."""
    raise TypeError(f"no Slack rendering for {type(answer).__name__}")


@slack_reply.register
def _(reply: Reply) -> Reply:
    return reply


@slack_reply.register
def _said(said: Said) -> Reply:
    words = f"{MARKS[said.mark]} {said.words}" if said.mark else said.words
    return message("\n".join((words, *(f"• {p}" for p in said.points))))


@slack_reply.register
def _help(help_: Help) -> Reply:
    return Reply(render_blocks("slack/help.json.j2", problem=help_.problem,
                               due_soon_days=help_.due_soon_days), help_.text)


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}%"


@slack_reply.register
def _status(status: Status) -> Reply:
    indicators = []
    for ind in status.indicators:
        # Per-agency percentages, where an indicator covers more than one agency.
        parts = [f"{b.agency} {_percent(b.percent)}" for b in ind.breakdown]
        indicators.append({
            "title": ind.title, "met": ind.met, "percent": ind.percent,
            "numerator": ind.numerator, "denominator": ind.denominator,
            "target": ind.target, "margin": ind.margin, "pending": ind.pending,
            "breakdown_text": ", ".join(parts) if len(parts) > 1 else "",
            "counts_text": ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in ind.counts),
            "why": ind.why or "",
        })
    blocks = render_blocks("slack/status.json.j2", area_label=status.area_label,
                           period=status.period.to_dict(), as_of=status.as_of.isoformat(),
                           indicators=indicators)
    return Reply(blocks, status.text)


@slack_reply.register
def _comparison(compared: Comparison) -> Reply:
    areas = []
    for a in compared.areas[:MAX_AREAS]:
        met = dict(a.met)
        lines = [f"{MET_MARKS[met.get(i)]} {INDICATORS[i].short if i in INDICATORS else i}: "
                 f"{'no items yet' if p is None else _percent(p)} against "
                 f"{INDICATORS[i].target if i in INDICATORS else '-'}%"
                 for i, p in a.percents]
        areas.append({"area": a.area, "level2": a.level2_cases, "level3": a.level3_cases,
                      "met": sum(1 for v in met.values() if v is True),
                      "counted": sum(1 for v in met.values() if v is not None),
                      "figures": "\n".join(lines)})
    blocks = render_blocks("slack/compare.json.j2", period=compared.period.to_dict(),
                           as_of=compared.as_of.isoformat(), areas=areas)
    return Reply(blocks, compared.text)


@slack_reply.register
def _scr(listed: ScrList) -> Reply:
    rows = [{"id": a.id, "title": a.title, "owner": a.owner, "description": a.description,
             "due": a.due.isoformat(), "overdue": a.overdue} for a in listed.actions]
    blocks = render_blocks("slack/scr.json.j2", actions=rows, area=listed.area_label,
                           overdue=listed.overdue, total=listed.total)
    return Reply(blocks, listed.text)


def _hint(narrow: tuple[str, ...]) -> str:
    """How to narrow a long list, with the commands to type."""
    if not narrow:
        return ""
    shown = [f"`{COMMAND} {n}`" for n in narrow]
    if len(shown) == 1:
        return f"Narrow it by kind, e.g. {shown[0]}."
    return f"Narrow it by kind or area, e.g. {shown[0]} or {shown[1]}."


@slack_reply.register
def _due(listed: DueList) -> Reply:
    p = listed.paging
    filters = {k: v for k, v in (("k", p.kind), ("a", p.area)) if v is not None}
    nav = page_items(range(p.total), p.page, p.per_page, DUE_NAV,
                     {"c": p.command, "d": p.days, **filters}).nav
    items = [{"overdue": i.overdue, "label": i.label, "ref": i.ref,
              "meeting_id": i.meeting_id or "", "agency": i.agency or "",
              "deadline": i.deadline.isoformat(), "days_text": i.when,
              "detail": i.detail or ""} for i in listed.items]
    blocks = render_blocks(
        "slack/due.json.j2", title=listed.title, scope=listed.scope,
        as_of=listed.as_of.isoformat(), overdue=listed.overdue, upcoming=listed.upcoming,
        items=items, nav=nav, hint=_hint(listed.narrow))
    return Reply(blocks, listed.text)


@slack_reply.register
def _case(case: CaseSummary) -> Reply:
    open_lines = [
        f"{'*overdue* ' if d.overdue else ''}{d.label}: {d.deadline}"
        + (f" (meeting {d.meeting_id})" if d.meeting_id is not None else "")
        + (f" {d.agency}" if d.agency is not None else "")
        for d in case.open
    ]
    review_lines = [f"L{r.level} due {r.due}: {r.status}"
                    + (f" (held {r.held})" if r.held is not None else "")
                    for r in case.reviews]
    meeting_lines = [
        f"{m.date} {m.meeting_id} L{m.level}: minutes "
        f"{m.minutes_issued.isoformat() if m.minutes_issued else 'not issued'}, "
        f"RMP {m.rmp_ratified.isoformat() if m.rmp_ratified else 'not ratified'}"
        for m in case.meetings
    ]
    view = {
        "ref": case.ref, "category": case.category, "level": case.level,
        "status": case.status, "area": case.area,
        "chair": case.chair_name or case.chair_id or "",
        "release_date": case.release_date.isoformat() if case.release_date else "",
        "release_level": "" if case.release_level is None else case.release_level,
        "mappa_end": case.mappa_end.isoformat() if case.mappa_end else "",
    }
    blocks = render_blocks("slack/case.json.j2", case=view, open_lines=open_lines,
                           review_lines=review_lines, meeting_lines=meeting_lines)
    return Reply(blocks, case.text)


ESCALATE_AGENCIES = "escalate_agencies"  # listeners/actions/escalate_agencies.py
ESCALATE_CHOOSE = "escalate_choose"      # the agencies menu beside its button


@slack_reply.register
def _escalated(raised: Escalated) -> Reply:
    """Who was told, who was not, and a menu of the agencies with a button to e-mail the
    issue to those chosen; or, when nothing was raised, why, and the text to copy (in
    plain-text sections: shown exactly as typed)."""
    blocks = render_blocks("slack/escalated.json.j2", raised=raised,
                           pieces=plain_pieces(raised.issue_text),
                           choose=ESCALATE_CHOOSE, send=ESCALATE_AGENCIES)
    return Reply(blocks, raised.text)

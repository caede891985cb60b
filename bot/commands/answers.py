"""What a command computes: one typed answer per kind of question, whatever channel carries
it. A channel renders these (Slack: bot/channels/slack/answers.py, as Block Kit from
templates/slack/; a Teams package as Adaptive Cards; an e-mail link page as HTML); nothing
here knows Block Kit, mrkdwn, Slack ids or any other channel's markup.

The rules of the types, so that every renderer is a plain walk over them:

- Values are data, not markup: dates are `datetime.date`, percentages floats (None: no
  denominator), names and references the text as recorded, never escaped. A renderer
  escapes for its own markup (mrkdwn, HTML, a card's markdown).
- Words are whole sentences in plain English (`Said.words`, `Help.problem`,
  `DueItem.when`, `DueList.title`); the one convention inside them is `` `...` `` around
  a name or reference a person typed or can type (a meeting id, a command), which a
  renderer shows as code or drops. Emphasis and icons are the renderer's: an answer says
  what it means (`Said.mark`, `DueItem.overdue`, `Indicator.met`), not how it looks.
- Lists are tuples in the order a person reads them (most urgent first); a list longer
  than one message carries its `Paging` (which page, of how many, and what to ask again
  for another page), and each channel draws its own way to turn pages.
- `text` is the answer in one line of plain words: a notification's fallback, an e-mail
  subject, a card's summary.

The answers:

    Said        a sentence: a confirmation, a refusal, a "busy" (with a Mark)
    Help        the help, with the problem above it when the person made a mistake
    Status      the indicators of a topic for a period: each met or not, its margin
    Comparison  every area side by side, with caseloads
    DueList     a page of the due or overdue items, most urgent first, with its Paging
    CaseSummary one case's deadlines, reviews and meetings
    ScrList     the open Significant Case Review actions
    Escalated   an urgent issue raised: who was told and who was not reached, the agencies
                offered to e-mail it to; or why nothing was raised, with the text to copy
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass

from mappa_core.rules.periods import Period


class Mark(enum.StrEnum):
    """What kind of sentence a `Said` is, for a renderer's icon."""

    DONE = "done"                # recorded, closed
    SNOOZED = "snoozed"
    NOTED = "noted"              # a reason recorded
    ACKNOWLEDGED = "acknowledged"


@dataclass(frozen=True)
class Said:
    """A sentence in words: what was done, or why it was not. `points` follow it as a list
    (each a short sentence)."""

    words: str
    mark: Mark | None = None
    points: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        return "\n".join((self.words, *(f"• {p}" for p in self.points)))


@dataclass(frozen=True)
class Help:
    """The help: the commands and what they take. `problem`: the person's mistake, in
    words, said first (an unknown command, a period that has not started, an unknown
    area, ...)."""

    problem: str | None = None
    due_soon_days: int = 14

    @property
    def text(self) -> str:
        return "mappa-bot help"


@dataclass(frozen=True)
class AgencyFigure:
    agency: str                # its display name (the id where it has none)
    percent: float | None
    numerator: int
    denominator: int
    met: bool | None


@dataclass(frozen=True)
class Indicator:
    """One indicator's standing in the period (SPEC section 3)."""

    id: str
    title: str
    target: int | float
    numerator: int
    denominator: int
    percent: float | None
    met: bool | None           # None: nothing to measure yet
    margin: int | None         # further failures the period can absorb and still meet it
    pending: int
    breakdown: tuple[AgencyFigure, ...] = ()  # per agency, where it covers several
    counts: tuple[tuple[str, int], ...] = ()  # the live counts now ("overdue", 3)
    why: str | None = None     # below target: what drives it (indicators.why)


@dataclass(frozen=True)
class Status:
    """The indicators of a topic for a period, for an area (None: all areas)."""

    area: str | None
    period: Period
    as_of: dt.date
    indicators: tuple[Indicator, ...]

    @property
    def area_label(self) -> str:
        return self.area or "all areas"

    @property
    def text(self) -> str:
        below = sum(1 for i in self.indicators if i.met is False)
        return f"MAPPA indicators for {self.area_label}: {below} below target"


@dataclass(frozen=True)
class AreaFigures:
    area: str
    level2_cases: int
    level3_cases: int
    percents: tuple[tuple[str, float | None], ...]  # (indicator id, percent) in order
    met: tuple[tuple[str, bool | None], ...] = ()   # (indicator id, met; None: no items)


@dataclass(frozen=True)
class Comparison:
    """Every area side by side (aggregates only), with its caseloads."""

    period: Period
    as_of: dt.date
    areas: tuple[AreaFigures, ...]

    @property
    def text(self) -> str:
        return f"MAPPA areas compared, {self.period.label}"


@dataclass(frozen=True)
class DueItem:
    """One open item of a due list."""

    overdue: bool
    kind: str                  # mappa_core.rules.kinds
    label: str                 # the kind as a person reads it ("Level 2 review")
    ref: str                   # the case
    meeting_id: str | None
    agency: str | None         # the agency's display name
    deadline: dt.date
    when: str                  # "3 working days left", "due today", "1 working day overdue"
    detail: str | None


@dataclass(frozen=True)
class Paging:
    """Which page of a list is shown, and what to ask for to show another: the command
    (`due` or `overdue`), its days and filters, and the page wanted."""

    page: int                  # 1-based, within 1..pages
    pages: int
    total: int
    per_page: int
    command: str
    days: int
    kind: str | None = None
    area: str | None = None

    @property
    def first(self) -> int:
        """1-based position of the first item shown (0: none)."""
        return (self.page - 1) * self.per_page + 1 if self.total else 0


@dataclass(frozen=True)
class DueList:
    """A page of what is overdue or falls due soon, most urgent first; the counts are of
    the whole list. `narrow`, under a list of several pages with no filter: what a person
    could ask instead to narrow it (the command's words after the bot's name: the first
    narrows it by kind, the second, if any, by area)."""

    title: str
    scope: str
    as_of: dt.date
    overdue: int
    upcoming: int
    items: tuple[DueItem, ...]
    paging: Paging
    narrow: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        return f"{self.title}: {self.overdue} overdue, {self.upcoming} due soon"


@dataclass(frozen=True)
class OpenDeadline:
    overdue: bool
    label: str
    deadline: dt.date
    meeting_id: str | None
    agency: str | None


@dataclass(frozen=True)
class ReviewLine:
    level: int
    due: dt.date
    status: str
    held: dt.date | None


@dataclass(frozen=True)
class MeetingLine:
    date: dt.date
    meeting_id: str
    level: int
    minutes_issued: dt.date | None
    rmp_ratified: dt.date | None


@dataclass(frozen=True)
class CaseSummary:
    """One case: its standing, open deadlines (soonest first), latest reviews and meetings
    (latest first). Only for the co-ordinator, the SOG chair and the case's chair."""

    ref: str
    category: int
    level: int
    status: str
    area: str
    chair_id: str | None
    release_date: dt.date | None
    release_level: int | None
    mappa_end: dt.date | None
    open: tuple[OpenDeadline, ...]
    reviews: tuple[ReviewLine, ...]
    meetings: tuple[MeetingLine, ...]
    chair_name: str | None = None  # the chair by name (people.csv), as a person reads it

    @property
    def text(self) -> str:
        return f"Case {self.ref}"


@dataclass(frozen=True)
class ScrAction:
    id: int
    title: str
    owner: str
    description: str
    due: dt.date
    overdue: bool


@dataclass(frozen=True)
class ScrList:
    """The open Significant Case Review actions of an area (overdue first), the first
    `len(actions)` of `total`."""

    area_label: str
    total: int
    overdue: int
    actions: tuple[ScrAction, ...]

    @property
    def text(self) -> str:
        return f"{self.total} open SCR action(s)"


@dataclass(frozen=True)
class Escalated:
    """An urgent issue raised: who was told, who was not reached and why, what the raiser
    should know (`notes`), and the agencies offered to e-mail it to as well (`choices`,
    (id, name): none is e-mailed unless the raiser chooses it). When nothing could be
    raised, `issue_id` is None, `problem` says why and `issue_text` is the text as typed,
    to copy (Slack keeps no command's text)."""

    issue_id: int | None
    told: tuple[str, ...]
    not_reached: tuple[str, ...]
    choices: tuple[tuple[str, str], ...] = ()
    notes: tuple[str, ...] = ()
    problem: str | None = None
    issue_text: str = ""

    @property
    def text(self) -> str:
        if self.issue_id is None:
            return f"Nothing was raised: {self.problem}."
        lines = [f"Raised as urgent issue #{self.issue_id}."]
        if self.told:
            lines.append("Told: " + ", ".join(self.told) + ".")
        if self.not_reached:
            lines.append("Not reached: " + "; ".join(self.not_reached)
                         + ". Please phone them and tell your MAPPA Co-ordinator.")
        return " ".join(lines)


Answer = Said | Help | Status | Comparison | DueList | CaseSummary | ScrList | Escalated

"""`/mappa` commands answered: check who asks, call the core, return a typed answer
(bot/commands/answers.py). No rule lives here, and no channel: each channel renders the
answer its own way (Slack: bot/channels/slack/answers.py).

Every function is synchronous (pandas and the database) and runs in a worker thread or
process, so the event loop stays free to acknowledge other requests within Slack's 3
seconds.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field

from typing import TYPE_CHECKING

import pandas as pd

from bot.commands.access import Caller
from bot.commands.answers import (
    AgencyFigure,
    Answer,
    AreaFigures,
    CaseSummary,
    Comparison,
    DueItem,
    DueList,
    Help,
    Indicator,
    Mark,
    MeetingLine,
    OpenDeadline,
    Paging,
    ReviewLine,
    Said,
    ScrAction,
    ScrList,
    Status,
)
from bot.commands.checks import Mistake, area_named, period_asked
from bot.commands.parser import Command
from bot.templates import weekday
from mappa_core.storage import db
from mappa_core.rules.details import agency_names
from mappa_core.rules.due import due_items, open_items
from mappa_core.rules.indicators import (
    Computed, IndicatorResult, compute_deadlines, names_of, why,
)
from mappa_core.rules.kinds import ITEM_KINDS
from mappa_core.rules.periods import PeriodError
from mappa_core.rules.reports import compare_areas
from mappa_core.rules.records import DUE_SOON_DAYS, LOOKBACK_DAYS, window_start
from mappa_core.storage import audits_and_scrs
from mappa_core.storage.queries import known_areas, load_records
from mappa_core.rules.status import TopicError, status_of

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

# A page of a list: what one message shows (Slack allows 50 blocks; a header, a line of
# counts and the page buttons take the rest). A channel with other limits passes its own.
PAGE_SIZE = 40
NOT_AUTHORISED = "You are not authorised to use mappa-bot. Ask your MAPPA Co-ordinator to add your Slack user id to the people list."


def message(words: str, mark: Mark | None = None) -> Said:
    return Said(words, mark)


def help_answer(problem: str | None = None) -> Help:
    return Help(problem, DUE_SOON_DAYS)


class _Bounded:
    """A least-recently-used map with a size bound and an age bound (not thread-safe: the
    owner locks)."""

    def __init__(self, maxsize: int, ttl: float):
        self.maxsize, self.ttl = maxsize, ttl
        self._items: OrderedDict[tuple, tuple[float, object]] = OrderedDict()

    def get(self, key: tuple, now: float):
        hit = self._items.get(key)
        if hit is None:
            return _MISSING
        if now - hit[0] >= self.ttl:
            del self._items[key]
            return _MISSING
        self._items.move_to_end(key)
        return hit[1]

    def put(self, key: tuple, value, now: float) -> None:
        self._items[key] = (now, value)
        self._items.move_to_end(key)
        while len(self._items) > self.maxsize:
            self._items.popitem(last=False)
        # Entries past their age go too, so that an idle bot holds nothing for long.
        while self._items:
            oldest = next(iter(self._items.values()))
            if now - oldest[0] < self.ttl:
                break
            self._items.popitem(last=False)

    def clear(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


_MISSING = object()


class DeadlineCache:
    """Deadline frames per (area, as_of, window) and the answers built from them.

    A status answer must come within Slack's 3 seconds; the records change a few times a
    day (imports, a chair's button). Both maps are bounded in size (a frame of the
    7,000-person region is several MB, and every distinct period asked for makes one) and
    in age (`ttl`), so no sequence of commands can grow the process. Each entry is keyed by
    the database's change stamp, read before serving: an import or a button on any replica
    bumps it in the same transaction, so every replica answers from the new records at once.
    """

    def __init__(self, ttl: float = 60.0, max_frames: int = 4, max_answers: int = 256,
                 lookback_days: int = LOOKBACK_DAYS):
        self.ttl = ttl
        self.lookback_days = lookback_days  # MAPPA_LOOKBACK_DAYS, as the digests use it
        self._frames = _Bounded(max_frames, ttl)
        self._answers = _Bounded(max_answers, ttl)
        self._stamp: dict[str, int] = {}
        self._lock = threading.Lock()
        # One frame computed at a time per key: a burst of the same question computes once.
        self._building: dict[tuple, threading.Lock] = {}

    def sizes(self) -> tuple[int, int]:
        with self._lock:
            return len(self._frames), len(self._answers)

    def _current(self, engine: Engine) -> int:
        """The change stamp now; a new one empties the cache (its entries can never match)."""
        stamp = db.change_stamp(engine)
        url = str(engine.url)
        with self._lock:
            if self._stamp.get(url) != stamp:
                self._stamp[url] = stamp
                self._frames.clear()
                self._answers.clear()
        return stamp

    def get(self, engine: Engine, area: str | None, as_of: dt.date,
            period_start: dt.date | None = None) -> Computed:
        since = window_start(as_of, period_start, self.lookback_days)
        stamp = self._current(engine)  # before loading: a change meanwhile gives a newer stamp
        key = (str(engine.url), stamp, area, as_of, since)
        with self._lock:
            hit = self._frames.get(key, time.monotonic())
            if hit is not _MISSING:
                return hit
            building = self._building.setdefault(key, threading.Lock())
        with building:
            with self._lock:
                hit = self._frames.get(key, time.monotonic())
                if hit is not _MISSING:
                    return hit
            try:
                computed = compute_deadlines(load_records(engine, area, since=since), as_of,
                                             self.lookback_days)
                with self._lock:
                    self._frames.put(key, computed, time.monotonic())
            finally:
                with self._lock:
                    self._building.pop(key, None)
        return computed

    def memo(self, engine: Engine, key: tuple, build):
        """An answer built from the cached frames, itself kept under the same bounds (most
        commands repeat: the same topic, the same chair's list)."""
        key = (str(engine.url), self._current(engine), *key)
        with self._lock:
            hit = self._answers.get(key, time.monotonic())
            if hit is not _MISSING:
                return hit
        value = build()
        with self._lock:
            self._answers.put(key, value, time.monotonic())
        return value

    def clear(self) -> None:
        with self._lock:
            self._frames.clear()
            self._answers.clear()


def answer(ctx: Context, caller: Caller, cmd: Command) -> Answer:
    """The answer to a parsed command (all but `escalate`, which sends as well). A
    person's mistake that only the records or today can show (an area no record has, a
    period that has not started) is answered as one, with the help."""
    try:
        return _answer(ctx, caller, cmd)
    except (Mistake, PeriodError, TopicError) as exc:
        return help_answer(str(exc))


def _answer(ctx: Context, caller: Caller, cmd: Command) -> Answer:
    if cmd.name == "help":
        return help_answer()
    if cmd.name == "status":
        return status_answer(ctx, caller, cmd)
    if cmd.name in ("due", "overdue"):
        return due_answer(ctx, caller, cmd)
    if cmd.name == "case":
        return case_answer(ctx, caller, cmd)
    if cmd.name == "compare":
        return compare_answer(ctx, caller, cmd)
    if cmd.name == "scr":
        return scr_answer(ctx, caller, cmd)
    raise AssertionError(f"no handler for {cmd.name}")


@dataclass
class Context:
    engine: Engine
    today: dt.date
    cache: DeadlineCache = field(default_factory=DeadlineCache)


# --------------------------------------------------------------------------- status


def _indicator(ind: dict, names: tuple[dict, dict] = ({}, {})) -> Indicator:
    """An indicator of `status_of` as the answer carries it: agencies by name, and what
    drives it when below target (`why`, named by `names`: agencies', people's)."""
    agencies = names[0]
    result = IndicatorResult(ind["id"], ind["numerator"], ind["denominator"], ind["pending"],
                             ind["exceptions"], ind.get("breakdown"))
    return Indicator(
        ind["id"], ind["title"], ind["target"], ind["numerator"], ind["denominator"],
        ind["percent"], ind["met"], ind["margin"], ind["pending"],
        tuple(AgencyFigure(agencies.get(b["agency"]) or b["agency"], b["percent"],
                           b["numerator"], b["denominator"], b["met"])
              for b in ind.get("breakdown") or []),
        tuple(ind["counts"].items()), why(result, *names))


def status_answer(ctx: Context, caller: Caller, cmd: Command) -> Status:
    key = ("status", caller.area, ctx.today, cmd.topic, cmd.period)
    return ctx.cache.memo(ctx.engine, key, lambda: _status(ctx, caller, cmd))


def _status(ctx: Context, caller: Caller, cmd: Command) -> Status:
    period = period_asked(cmd.period, ctx.today)
    computed = ctx.cache.get(ctx.engine, caller.area, ctx.today, cmd.period and period.start)
    data = status_of(computed, cmd.topic, period, caller.area)
    names = names_of(computed.records)
    return Status(caller.area, period, computed.as_of,
                  tuple(_indicator(ind, names) for ind in data["indicators"]))


def compare_answer(ctx: Context, caller: Caller, cmd: Command) -> Comparison:
    """Every area side by side (aggregates only), with caseloads beside the figures."""
    period = period_asked(cmd.period, ctx.today)
    computed = ctx.cache.get(ctx.engine, None, ctx.today, period.start)
    table = compare_areas(computed.records, period, ctx.today)
    ids = [c.removesuffix("_percent") for c in table.columns if c.endswith("_percent")]
    areas = []
    for row in table.to_dict("records"):
        percents, met = [], []
        for i in ids:
            pct = row[f"{i}_percent"]
            percents.append((i, None if pct is None or pct != pct else float(pct)))
            met.append((i, row.get(f"{i}_met") if isinstance(row.get(f"{i}_met"), bool) else None))
        areas.append(AreaFigures(row["area"], row["level2_cases"], row["level3_cases"],
                                 tuple(percents), tuple(met)))
    return Comparison(period, ctx.today, tuple(areas))


def scr_answer(ctx: Context, caller: Caller, cmd: Command) -> Said | ScrList:
    """Open SCR actions for the caller's area, or an update to one of them."""
    if cmd.topic in ("update", "done"):
        actions = audits_and_scrs.scr_actions(ctx.engine, ctx.today)
        match = actions[actions["id"] == int(cmd.ref)]
        if match.empty or not caller.covers_area(match.iloc[0]["area"]):
            return message(f"There is no SCR action {int(cmd.ref)} in your area.")
        owner = match.iloc[0]["owner_agency"]
        if not (caller.oversees or ("agency_contact" in caller.roles and caller.agency == owner)):
            return message("Only the co-ordinator, the SOG chair or the owning agency's contact "
                           "can update an SCR action.")
        done = ctx.today if cmd.topic == "done" else None
        audits_and_scrs.add_update(ctx.engine, int(cmd.ref), cmd.text or "marked done",
                                   dt.datetime.now(dt.UTC), caller.person_id, done)
        return message(f"SCR action {int(cmd.ref)} " + ("closed." if done else "updated."),
                       Mark.DONE)
    actions = audits_and_scrs.scr_actions(ctx.engine, ctx.today, caller.area)
    open_ = actions[actions["status"] == "open"].sort_values(["overdue", "due"], ascending=[False, True])
    rows = tuple(ScrAction(int(a.id), a.title, a.owner_agency, a.description,
                           pd.Timestamp(a.due).date(), bool(a.overdue))
                 for a in open_.head(PAGE_SIZE).itertuples(index=False))
    return ScrList(caller.area or "all areas", len(open_), int(open_["overdue"].sum()), rows)


# --------------------------------------------------------------------------- due


def with_agency_names(items: pd.DataFrame, computed: Computed) -> pd.DataFrame:
    """`items` with `agency_name`: what a person reads is the agency's display name (as in
    the digests, chasers and escalations), not its id."""
    return items.assign(agency_name=agency_names(items["agency"], computed.records.agencies))


def _text(value) -> str | None:
    return value if isinstance(value, str) else None


def working_days(n: int) -> str:
    """`1 working day`, `2 working days`."""
    return f"{n:,} working day" + ("" if n == 1 else "s")


def due_items_of(items: pd.DataFrame, today: dt.date) -> tuple[DueItem, ...]:
    """The rows of a due list (with `agency_name`) as a person reads them."""
    rows = []
    for r in items.itertuples(index=False):
        days = int(r.working_days_left)
        # A deadline after today with no working day before it (a weekend, a holiday) is
        # not "today" (as the digest's line says it, templates/_items.j2).
        when = (
            working_days(-days) + " overdue" if days < 0 else
            f"overdue since {weekday(r.deadline.date().isoformat())}" if r.overdue else
            "due today" if r.deadline.date() == today else
            f"a {weekday(r.deadline.date().isoformat())}; no working day left before it"
            if days == 0 else
            working_days(days) + " left"
        )
        agency = (_text(r.agency_name) or r.agency) if isinstance(r.agency, str) else None
        rows.append(DueItem(bool(r.overdue), r.kind, ITEM_KINDS[r.kind].label, r.ref,
                            _text(r.meeting_id), agency, r.deadline.date(), when,
                            _text(r.detail) or None))
    return tuple(rows)


def due_answer(ctx: Context, caller: Caller, cmd: Command, per_page: int = PAGE_SIZE
               ) -> Said | Help | DueList:
    """Page `cmd.page` of the caller's due list (most urgent first; `per_page` a page);
    the counts are of the whole list."""
    # Scope of the list: the area for co-ordinators and SOG chairs, the person for chairs.
    scope = ("area", caller.area) if caller.oversees else ("chair", caller.person_id)
    key = ("due", scope, ctx.today, cmd.name, cmd.days, cmd.kind, cmd.area)
    listed = ctx.cache.memo(ctx.engine, key, lambda: _due_list(ctx, caller, cmd))
    if not isinstance(listed, dict):
        return listed
    items = listed["items"]
    total = len(items)
    pages = max(1, -(-total // per_page))
    page = min(max(1, int(cmd.page)), pages)
    # Paged by position, so that only the page's rows are made (a national list is long).
    shown = items.iloc[(page - 1) * per_page:page * per_page]
    paging = Paging(page, pages, total, per_page, cmd.name, cmd.days, cmd.kind, cmd.area)
    # A list of several pages that could be narrowed: say how.
    narrow: tuple[str, ...] = ()
    if pages > 1 and cmd.kind is None and cmd.area is None:
        days = f"{cmd.days} " if cmd.name == "due" else ""
        narrow = (f"{cmd.name} {days}minutes",) + (
            (f"{cmd.name} {days}{listed['example_area']}",) if listed["example_area"] else ())
    return DueList(listed["title"], listed["scope"], ctx.today, listed["overdue"],
                   listed["upcoming"], due_items_of(shown, ctx.today), paging, narrow)


def _due_list(ctx: Context, caller: Caller, cmd: Command) -> dict | Said | Help:
    """The whole list (a frame, most urgent first) and its counts, narrowed to one kind of
    item and one area where the command names them."""
    area = None
    if cmd.area is not None:
        try:
            area = area_named(cmd.area, known_areas(ctx.engine))
        except Mistake as exc:
            return help_answer(str(exc))
    if caller.oversees:
        if area is not None and not caller.covers_area(area):
            return message(f"You oversee {caller.area}: its due lists only.")
        computed = ctx.cache.get(ctx.engine, area or caller.area, ctx.today)
        items = due_items(computed, cmd.days)
        where = area or caller.area
        scope = f"all cases in {where}" if where else "all cases in every area"
    elif caller.chairs:
        if area is not None and caller.area is not None and area != caller.area:
            # A chair's lists are of their own area's records: "0 in Fife" would not be true.
            return message(f"Your due lists cover the cases you chair in {caller.area}.")
        computed = ctx.cache.get(ctx.engine, caller.area, ctx.today)
        items = due_items(computed, cmd.days, chair=caller.person_id)
        scope = "cases you chair" + (f" in {area}" if area else "")
    else:
        return message("Due lists are for meeting chairs, MAPPA Co-ordinators and SOG chairs. "
                       "`/mappa status` shows the indicators.")
    if area is not None:
        items = items[items["area"] == area]
    if cmd.kind is not None:
        items = items[items["kind"] == cmd.kind]
        scope += f"; {ITEM_KINDS[cmd.kind].label} only"
    items = with_agency_names(items, computed)
    if cmd.name == "overdue":
        items = items[items["overdue"]]
        title = "Overdue MAPPA items"
    else:
        title = f"MAPPA items overdue or due within {cmd.days} days"
    overdue = int(items["overdue"].sum())
    # For the hint under a long national list: an area that has items in it.
    example_area = None if caller.area or area or items.empty else items["area"].iloc[0]
    return {"title": title, "scope": scope, "overdue": overdue,
            "upcoming": len(items) - overdue, "items": items, "example_area": example_area}


# --------------------------------------------------------------------------- case


def _day(value) -> dt.date | None:
    return None if value is None or pd.isna(value) else pd.Timestamp(value).date()


def case_answer(ctx: Context, caller: Caller, cmd: Command) -> Said | CaseSummary:
    computed = ctx.cache.get(ctx.engine, caller.area, ctx.today)
    ind = computed.records.individuals
    match = ind[ind["ref"] == cmd.ref]
    denied = message(
        f"You are not authorised to see case `{cmd.ref}`, or it does not exist. "
        "Case details go only to the co-ordinator, the SOG chair and the case's chair."
    )
    if match.empty:
        return denied
    case = match.iloc[0]
    if not caller.may_see_case(case["area"], case["chair_id"]):
        return denied
    ref = cmd.ref
    opened = open_items(computed)
    opened = opened[opened["ref"] == ref].sort_values("deadline")
    open_ = tuple(OpenDeadline(bool(r.overdue), ITEM_KINDS[r.kind].label, r.deadline.date(),
                               _text(r.meeting_id), _text(r.agency))
                  for r in opened.itertuples(index=False))
    rev = computed.reviews[computed.reviews["ref"] == ref].tail(6)
    reviews = tuple(ReviewLine(r.level, r.due.date(), r.status, _day(r.done))
                    for r in rev.itertuples(index=False))
    meets = computed.meetings[computed.meetings["ref"] == ref].sort_values("date").tail(6)
    meetings = tuple(MeetingLine(r.date.date(), r.meeting_id, r.level, _day(r.minutes_issued),
                                 _day(r.rmp_ratified))
                     for r in meets.iloc[::-1].itertuples(index=False))
    return CaseSummary(
        ref, int(case["category"]), int(case["level"]), case["status"], case["area"],
        _text(case["chair_id"]), _day(case["release_date"]),
        None if pd.isna(case["release_level"]) else int(case["release_level"]),
        _day(case["mappa_end"]), open_, reviews, meetings,
        _person_name(computed.records.people, _text(case["chair_id"])))


def _person_name(people: pd.DataFrame, person_id: str | None) -> str | None:
    """A person's name from the people list; None when there is none."""
    if person_id is None or people.empty or "name" not in people:
        return None
    found = people.loc[people["person_id"] == person_id, "name"]
    return _text(found.iloc[0]) if len(found) else None

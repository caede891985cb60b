"""`/mappa` commands: check who asks, call the core, render a template. No rule lives here.

Every function is synchronous (pandas and the database) and runs in a worker thread, so
the event loop stays free to acknowledge other requests within Slack's 3 seconds.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field

from typing import TYPE_CHECKING

import pandas as pd

from bot.commands.access import Caller
from bot.channels.slack.paging import page_items
from bot.commands.parser import Command
from bot.channels.slack.blocks import render_blocks
from bot.templates import mrkdwn_escape, weekday
from mappa_core.storage import db
from mappa_core.rules import planner
from mappa_core.rules.details import agency_names
from mappa_core.rules.due import due_items, open_items
from mappa_core.rules.indicators import Computed, compute_deadlines
from mappa_core.rules.kinds import ITEM_KINDS
from mappa_core.rules.periods import parse_period, quarter_of
from mappa_core.rules.reports import compare_areas
from mappa_core.rules.records import DUE_SOON_DAYS, LOOKBACK_DAYS, window_start
from mappa_core.storage import audits_and_scrs, people as people_store, urgent_issues
from mappa_core.storage.queries import known_areas, load_records
from mappa_core.rules.status import status_of

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

MAX_ITEMS = 40  # Slack allows 50 blocks a message
DUE_NAV = "page_due"  # the due list's Previous / Next buttons (bot/channels/slack/paging.py)
NOT_AUTHORISED = "You are not authorised to use mappa-bot. Ask your MAPPA Co-ordinator to add your Slack user id to the people list."


@dataclass
class Reply:
    blocks: list
    text: str  # fallback for notifications (Slack reads it as mrkdwn: escaped here)

    def __post_init__(self) -> None:
        self.text = mrkdwn_escape(self.text)


def message(text: str) -> Reply:
    return Reply(render_blocks("slack/message.json.j2", text=text), text)


def help_reply(problem: str | None = None) -> Reply:
    return Reply(render_blocks("slack/help.json.j2", problem=problem, due_soon_days=DUE_SOON_DAYS),
                 "mappa-bot help")


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


def answer(ctx: Context, caller: Caller, cmd: Command) -> Reply:
    """The reply to a parsed command (all but `escalate`, which sends as well)."""
    if cmd.name == "help":
        return help_reply()
    if cmd.name == "status":
        return status_reply(ctx, caller, cmd)
    if cmd.name in ("due", "overdue"):
        return due_reply(ctx, caller, cmd)
    if cmd.name == "case":
        return case_reply(ctx, caller, cmd)
    if cmd.name == "compare":
        return compare_reply(ctx, caller, cmd)
    if cmd.name == "scr":
        return scr_reply(ctx, caller, cmd)
    raise AssertionError(f"no handler for {cmd.name}")


@dataclass
class Context:
    engine: Engine
    today: dt.date
    cache: DeadlineCache = field(default_factory=DeadlineCache)


# --------------------------------------------------------------------------- status


def _breakdown_text(ind: dict) -> str:
    """Per-agency percentages, where an indicator covers more than one agency."""
    parts = []
    for b in ind.get("breakdown") or []:
        pct = "-" if b["percent"] is None else f"{b['percent']:.1f}%"
        parts.append(f"{mrkdwn_escape(b['agency'])} {pct}")
    return ", ".join(parts) if len(parts) > 1 else ""


def status_reply(ctx: Context, caller: Caller, cmd: Command) -> Reply:
    key = ("status", caller.area, ctx.today, cmd.topic, cmd.period)
    return ctx.cache.memo(ctx.engine, key, lambda: _status_reply(ctx, caller, cmd))


def _status_reply(ctx: Context, caller: Caller, cmd: Command) -> Reply:
    start = parse_period(cmd.period).start if cmd.period else None
    computed = ctx.cache.get(ctx.engine, caller.area, ctx.today, start)
    data = status_of(computed, cmd.topic, cmd.period, caller.area)
    indicators = []
    for ind in data["indicators"]:
        counts = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in ind["counts"].items())
        indicators.append({**ind, "breakdown_text": _breakdown_text(ind), "counts_text": counts})
    area_label = caller.area or "all areas"
    blocks = render_blocks(
        "slack/status.json.j2", area_label=area_label, period=data["period"],
        as_of=data["as_of"], indicators=indicators,
    )
    below = [i["id"] for i in data["indicators"] if i["met"] is False]
    text = f"MAPPA indicators for {area_label}: {len(below)} below target"
    return Reply(blocks, text)


def compare_reply(ctx: Context, caller: Caller, cmd: Command) -> Reply:
    """Every area side by side (aggregates only), with caseloads beside the figures."""
    period = parse_period(cmd.period) if cmd.period else quarter_of(ctx.today)
    computed = ctx.cache.get(ctx.engine, None, ctx.today, period.start)
    table = compare_areas(computed.records, period, ctx.today)
    ids = [c.removesuffix("_percent") for c in table.columns if c.endswith("_percent")]
    areas = []
    for row in table.to_dict("records"):
        cells = []
        for i in ids:
            pct = row[f"{i}_percent"]
            cells.append(f"{i} {'-' if pct is None or pct != pct else f'{pct:.1f}%'}")
        areas.append({"area": mrkdwn_escape(row["area"]), "level2": row["level2_cases"],
                      "level3": row["level3_cases"], "figures": ", ".join(cells)})
    blocks = render_blocks("slack/compare.json.j2", period=period.to_dict(),
                           as_of=ctx.today.isoformat(), areas=areas[:45])
    return Reply(blocks, f"MAPPA areas compared, {period.label}")


def scr_reply(ctx: Context, caller: Caller, cmd: Command) -> Reply:
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
        return message(f":white_check_mark: SCR action {int(cmd.ref)} "
                       + ("closed." if done else "updated."))
    actions = audits_and_scrs.scr_actions(ctx.engine, ctx.today, caller.area)
    open_ = actions[actions["status"] == "open"].sort_values(["overdue", "due"], ascending=[False, True])
    rows = [{"id": int(a.id), "title": mrkdwn_escape(a.title), "owner": mrkdwn_escape(a.owner_agency),
             "description": mrkdwn_escape(a.description), "due": pd.Timestamp(a.due).date().isoformat(),
             "overdue": bool(a.overdue)} for a in open_.head(MAX_ITEMS).itertuples(index=False)]
    blocks = render_blocks("slack/scr.json.j2", actions=rows, area=caller.area or "all areas",
                           overdue=int(open_["overdue"].sum()), total=len(open_))
    return Reply(blocks, f"{len(open_)} open SCR action(s)")


# --------------------------------------------------------------------------- due


def with_agency_names(items: pd.DataFrame, computed: Computed) -> pd.DataFrame:
    """`items` with `agency_name`: what a person reads is the agency's display name (as in
    the digests, chasers and escalations), not its id."""
    return items.assign(agency_name=agency_names(items["agency"], computed.records.agencies))


def _item_rows(items: pd.DataFrame, today: dt.date) -> list[dict]:
    rows = []
    for r in items.itertuples(index=False):
        days = int(r.working_days_left)
        # A deadline after today with no working day before it (a weekend, a holiday) is
        # not "today" (as the digest's line says it, templates/_items.j2).
        days_text = (
            f"{-days} working day(s) ago" if days < 0 or r.overdue else
            "today" if r.deadline.date() == today else
            f"a {weekday(r.deadline.date().isoformat())}; no working day left before it"
            if days == 0 else
            f"{days} working day(s) left"
        )
        rows.append({
            "overdue": bool(r.overdue), "label": ITEM_KINDS[r.kind].label, "ref": mrkdwn_escape(r.ref),
            "meeting_id": mrkdwn_escape(r.meeting_id) if isinstance(r.meeting_id, str) else "",
            "agency": mrkdwn_escape(r.agency_name if isinstance(r.agency_name, str) else r.agency)
            if isinstance(r.agency, str) else "",
            "deadline": r.deadline.date().isoformat(), "days_text": days_text,
            "detail": mrkdwn_escape(r.detail) if isinstance(r.detail, str) else "",
        })
    return rows


def due_reply(ctx: Context, caller: Caller, cmd: Command) -> Reply:
    """Page `cmd.page` of the caller's due list (most urgent first), with "Previous" and
    "Next" buttons when it does not fit one message; the header counts the whole list."""
    # Scope of the list: the area for co-ordinators and SOG chairs, the person for chairs.
    scope = ("area", caller.area) if caller.oversees else ("chair", caller.person_id)
    key = ("due", scope, ctx.today, cmd.name, cmd.days, cmd.kind, cmd.area)
    listed = ctx.cache.memo(ctx.engine, key, lambda: _due_list(ctx, caller, cmd))
    if isinstance(listed, Reply):
        return listed
    items = listed["items"]
    # Paged by position, so that only the page's rows are made (a national list is long).
    filters = {k: v for k, v in (("k", cmd.kind), ("a", cmd.area)) if v is not None}
    page = page_items(range(len(items)), cmd.page, MAX_ITEMS, DUE_NAV,
                      {"c": cmd.name, "d": cmd.days, **filters})
    shown = items.iloc[page.items[0]:page.items[-1] + 1] if page.items else items.iloc[:0]
    # A list of several pages that could be narrowed: say how.
    hint = "" if not page.nav or filters else (
        f"Narrow it by kind or area, e.g. `/mappa {cmd.name} {_example(cmd)}minutes` or "
        f"`/mappa {cmd.name} {_example(cmd)}{mrkdwn_escape(listed['example_area'])}`."
        if listed["example_area"] else
        f"Narrow it by kind, e.g. `/mappa {cmd.name} {_example(cmd)}minutes`.")
    blocks = render_blocks(
        "slack/due.json.j2", title=listed["title"], scope=listed["scope"],
        as_of=ctx.today.isoformat(), overdue=listed["overdue"], upcoming=listed["upcoming"],
        items=_item_rows(shown, ctx.today), nav=page.nav, hint=hint,
    )
    return Reply(blocks, f"{listed['title']}: {listed['overdue']} overdue, "
                         f"{listed['upcoming']} due soon")


def _example(cmd: Command) -> str:
    return f"{cmd.days} " if cmd.name == "due" else ""


def areas_named(engine: Engine, typed: str) -> tuple[list[str], list[str]]:
    """(the known areas `typed` may name, every known area): the one with the same name in
    any case, else each whose name starts with it (`lothian`: Lothian and Borders)."""
    areas = known_areas(engine)
    typed = " ".join(typed.split()).casefold()
    exact = [a for a in areas if a.casefold() == typed]
    return exact or [a for a in areas if a.casefold().startswith(typed)], areas


def _due_list(ctx: Context, caller: Caller, cmd: Command) -> dict | Reply:
    """The whole list (a frame, most urgent first) and its counts, narrowed to one kind of
    item and one area where the command names them."""
    area = None
    if cmd.area is not None:
        named, areas = areas_named(ctx.engine, cmd.area)
        if len(named) != 1:
            some = f"Several areas start with '{mrkdwn_escape(cmd.area)}'" if named else \
                f"No area is called '{mrkdwn_escape(cmd.area)}'"
            return help_reply(f"{some}. Areas: "
                              f"{', '.join(mrkdwn_escape(a) for a in named or areas)}.")
        area = named[0]
    if caller.oversees:
        if area is not None and not caller.covers_area(area):
            return message(f"You oversee {mrkdwn_escape(caller.area)}: its due lists only.")
        computed = ctx.cache.get(ctx.engine, area or caller.area, ctx.today)
        items = due_items(computed, cmd.days)
        where = area or caller.area
        scope = f"all cases in {mrkdwn_escape(where)}" if where else "all cases in every area"
    elif caller.chairs:
        if area is not None and caller.area is not None and area != caller.area:
            # A chair's lists are of their own area's records: "0 in Fife" would not be true.
            return message(f"Your due lists cover the cases you chair in "
                           f"{mrkdwn_escape(caller.area)}.")
        computed = ctx.cache.get(ctx.engine, caller.area, ctx.today)
        items = due_items(computed, cmd.days, chair=caller.person_id)
        scope = "cases you chair" + (f" in {mrkdwn_escape(area)}" if area else "")
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


def _iso(value) -> str:
    return "" if value is None or pd.isna(value) else pd.Timestamp(value).date().isoformat()


def case_reply(ctx: Context, caller: Caller, cmd: Command) -> Reply:
    computed = ctx.cache.get(ctx.engine, caller.area, ctx.today)
    ind = computed.records.individuals
    match = ind[ind["ref"] == cmd.ref]
    denied = message(
        f"You are not authorised to see case `{mrkdwn_escape(cmd.ref)}`, or it does not exist. "
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
    open_lines = [
        f"{'*overdue* ' if r.overdue else ''}{ITEM_KINDS[r.kind].label}: {r.deadline.date()}"
        + (f" (meeting {mrkdwn_escape(r.meeting_id)})" if isinstance(r.meeting_id, str) else "")
        + (f" {mrkdwn_escape(r.agency)}" if isinstance(r.agency, str) else "")
        for r in opened.itertuples(index=False)
    ]
    rev = computed.reviews[computed.reviews["ref"] == ref].tail(6)
    review_lines = [
        f"L{r.level} due {r.due.date()}: {r.status}"
        + (f" (held {r.done.date()})" if not pd.isna(r.done) else "")
        for r in rev.itertuples(index=False)
    ]
    meets = computed.meetings[computed.meetings["ref"] == ref].sort_values("date").tail(6)
    meeting_lines = [
        f"{r.date.date()} {mrkdwn_escape(r.meeting_id)} L{r.level}: minutes {_iso(r.minutes_issued) or 'not issued'}, "
        f"RMP {_iso(r.rmp_ratified) or 'not ratified'}"
        for r in meets.iloc[::-1].itertuples(index=False)
    ]
    view = {
        "ref": mrkdwn_escape(ref), "category": int(case["category"]), "level": int(case["level"]),
        "status": case["status"], "area": mrkdwn_escape(case["area"]),
        "chair_id": mrkdwn_escape(case["chair_id"]) if isinstance(case["chair_id"], str) else "",
        "release_date": _iso(case["release_date"]),
        "release_level": "" if pd.isna(case["release_level"]) else int(case["release_level"]),
        "mappa_end": _iso(case["mappa_end"]),
    }
    blocks = render_blocks("slack/case.json.j2", case=view, open_lines=open_lines,
                           review_lines=review_lines, meeting_lines=meeting_lines)
    return Reply(blocks, f"Case {ref}")


# --------------------------------------------------------------------------- escalate


@dataclass
class Escalation:
    issue_id: int
    created: bool  # False when this exact request was already raised (a Slack retry)
    sog_chairs: list[dict]
    agencies: list[dict]


def raise_urgent_issue(
    ctx: Context, caller: Caller, text: str, request_key: str, at: dt.datetime
) -> Escalation:
    """Record the issue once (a retried request finds it) and work out who must be told."""
    dedupe = hashlib.sha256(f"{caller.person_id}\n{request_key}\n{text}".encode()).hexdigest()[:64]
    agencies, everyone, columns = people_store.directory(ctx.engine)
    words = {w.lower() for w in re.findall(r"[A-Za-z0-9_-]+", text)}
    named = [a for a in agencies if a["agency"].lower() in words]
    named_ids = {a["agency"] for a in named}
    contacts = [p for p in everyone if p["agency"] in named_ids]
    for a in named:
        a["contacts"] = sorted({a["email"]} - {None} | {
            c["email"] for c in contacts
            if c["agency"] == a["agency"] and c["email"] and "agency_contact" in (c["roles"] or "")
        })
    people = pd.DataFrame(everyone, columns=columns)
    # The same SOG chairs the planner escalates to (national ones where the area has none).
    chosen = planner.sog_chairs_by_area(people, [caller.area])["person_id"].tolist()
    sog = [p for p in people.astype(object).where(people.notna(), None).to_dict("records")
           if p["person_id"] in chosen]
    issue_id, created = urgent_issues.record(
        ctx.engine, dedupe, at, caller.person_id, caller.area, text, [a["agency"] for a in named])
    return Escalation(issue_id, created, sog, named)

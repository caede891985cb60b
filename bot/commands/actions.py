"""What a person does to an item, whatever carried it (a Slack button or the reason form
today; a Teams card or an e-mail link the same way): minutes issued, RMP ratified, a
contribution received, a snooze, a reason, a SOG chair's acknowledgement. Each checks who
acts, records it through mappa_core.storage.item_actions, and is idempotent (a retried or
double-clicked action finds the work done and says so). They take an item key and what
was chosen, never a channel's payload; the listener reads its payload."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from bot.commands.access import Caller
from bot.commands.answers import Mark, Said
from bot.commands.handlers import Context, message
from mappa_core.rules.calendar import calendar_for
from mappa_core.rules.indicators import INDICATORS
from mappa_core.rules.kinds import ITEM_KINDS, MAX_ITEM_KEY, key_parts, read_key
from mappa_core.rules.planner import ESCALATION_STAGES
from mappa_core.storage import item_actions
from mappa_core.storage.queries import local_holidays
from mappa_core.rules.reports import reason_label
from mappa_core.rules.schema import REASON_CODES
from mappa_core.rules.vocabulary import Rule, Urgency

REASON_LABELS = [(code, reason_label(code)) for code in REASON_CODES]
SNOOZE_CHOICES = {"snooze_1wd": 1, "snooze_3wd": 3}


class ActionError(ValueError):
    """The action cannot apply: the message is safe to show the person. `field`: the part
    of a form it is about (the reason form shows it there)."""

    def __init__(self, message: str, field: str = "reason"):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Item:
    key: str
    kind: str
    ref: str
    area: str
    case_chair: str | None
    meeting_id: str | None = None
    meeting_chair: str | None = None
    agency: str | None = None
    level: int | None = None          # a review's chain
    agency_name: str | None = None    # the agency's display name

    @property
    def label(self) -> str:
        """The item as the digest names it: "Disclosure decision for `SYN-...` (meeting
        M...)", "Written contribution from Police Scotland for ...", "Level 3 review for"."""
        what = ITEM_KINDS[self.kind].line_for(self.level, self.agency_name or self.agency)
        return f"{what} for `{self.ref}`" + (
            f" (meeting {self.meeting_id})" if self.meeting_id else "")


GONE = "That item no longer matches a record: it may have been re-imported."


def check_key(key: str) -> str:
    """Refuse a key no button of ours carries, before it reaches the database."""
    if not key or len(key) > MAX_ITEM_KEY:
        raise ActionError(f"{GONE} (The button's item key is not one this bot made.)")
    return key


def find_item(ctx: Context, key: str) -> Item:
    """The record behind an item key, read back as its kind declares it
    (mappa_core.rules.kinds): a meeting (with an agency, that agency's absence from it),
    or a case."""
    # What a button of ours carries: a declared kind, its parts, a real due date, and a
    # Level 2 or 3 chain.
    read = read_key(check_key(key))
    gone = ActionError(GONE)
    if read is None:
        raise gone
    spec, part = read
    if spec.names_meeting():
        agency = part.get("agency")
        row = item_actions.meeting_item(ctx.engine, part["meeting_id"], agency)
        if row is None:
            raise gone
        name = item_actions.agency_names(ctx.engine).get(agency) if agency else None
        return Item(key, spec.kind, row["ref"], row["area"], row["case_chair"],
                    row["meeting_id"], row["chair_id"], agency, agency_name=name)
    row = item_actions.case_item(ctx.engine, part["ref"])
    if row is None:
        raise gone
    level = int(part["level"][1:]) if part.get("level") else None  # "L3"
    return Item(key, spec.kind, row["ref"], row["area"], row["chair_id"], level=level)


def check_may_act(caller: Caller, item: Item) -> None:
    if caller.may_see_case(item.area, item.case_chair) or (
        caller.chairs and item.meeting_chair == caller.person_id
    ):
        return
    raise ActionError("Only the case's chair, the meeting's chair, the co-ordinator or the "
                      "SOG chair can act on this item.")


def _who(caller: Caller) -> item_actions.Who:
    return item_actions.Who(caller.person_id, caller.slack_user_id)


def _set_meeting_date(ctx: Context, caller: Caller, item: Item, column: str, what: str) -> Said:
    if item.kind != "minutes":
        raise ActionError(f"{what} applies to minutes items only.")
    current = item_actions.set_meeting_date(ctx.engine, item.meeting_id, column, ctx.today,
                                            _who(caller), dt.datetime.now(dt.UTC))
    where = f"`{item.ref}` (meeting {item.meeting_id})"
    if current is not None:
        return message(f"{what} for {where} was already recorded on {current.isoformat()}; "
                       "nothing changed.")
    ctx.cache.clear()
    return message(f"{what} for {where}: recorded on {ctx.today.isoformat()}.", Mark.DONE)


def minutes_issued(ctx: Context, caller: Caller, key: str) -> Said:
    item = find_item(ctx, key)
    check_may_act(caller, item)
    return _set_meeting_date(ctx, caller, item, "minutes_issued", "Minutes issued")


def rmp_ratified(ctx: Context, caller: Caller, key: str) -> Said:
    item = find_item(ctx, key)
    check_may_act(caller, item)
    return _set_meeting_date(ctx, caller, item, "rmp_ratified", "RMP ratified")


def contribution_received(ctx: Context, caller: Caller, key: str) -> Said:
    item = find_item(ctx, key)
    check_may_act(caller, item)
    if item.kind != "contribution":
        raise ActionError("Contribution received applies to written-contribution items only.")
    # Named as every notice names it: by its display name, the id when it has none.
    name, already = item_actions.record_contribution(ctx.engine, item.meeting_id, item.agency,
                                                     _who(caller), dt.datetime.now(dt.UTC))
    where = f"`{item.ref}` (meeting {item.meeting_id})"
    if already:
        return message(f"The written contribution from {name} for {where} was already "
                       "recorded; nothing changed.")
    ctx.cache.clear()
    return message(f"Written contribution from {name} for {where}: recorded.", Mark.DONE)


def snooze_until(ctx: Context, item: Item, choice: str, picked: str | None) -> dt.date:
    if choice in SNOOZE_CHOICES:
        cal = calendar_for(item.area, local_holidays(ctx.engine))  # the case's area's days
        return cal.add_working_days(ctx.today, SNOOZE_CHOICES[choice])
    try:
        until = dt.date.fromisoformat(picked or "")
    except ValueError:
        raise ActionError("Pick a date to snooze until.") from None
    if until <= ctx.today:
        raise ActionError("A snooze must end after today.")
    if until > ctx.today + dt.timedelta(days=90):
        raise ActionError("A snooze can last at most 90 days.")
    return until


def snooze(ctx: Context, caller: Caller, key: str, choice: str, picked: str | None = None) -> Said:
    item = find_item(ctx, key)
    check_may_act(caller, item)
    until = snooze_until(ctx, item, choice, picked)
    item_actions.snooze(ctx.engine, key, caller.person_id, until, dt.datetime.now(dt.UTC))
    return message(f"Snoozed {item.label} until {until.isoformat()}. "
                   "Escalations to the SOG chair are not silenced by a snooze.", Mark.SNOOZED)


MAX_FORM_AGENCIES = 100  # a Slack menu's options


def form_agencies(ctx: Context, item: Item) -> list[tuple[str, str]]:
    """The agencies the reason form offers as the one behind the item, (id, name) by name:
    for a review (the guidance asks whether repeated late reviews are "due to a specific
    agency"); none for an item that names its own agency or a meeting."""
    if item.kind != "review":
        return []
    return list(item_actions.agency_names(ctx.engine).items())[:MAX_FORM_AGENCIES]


def record_reason(ctx: Context, caller: Caller, key: str, code: str, text: str,
                  agency: str | None = None) -> Said:
    """The reason (and note) for the item; for a review, the agency behind it if named."""
    item = find_item(ctx, key)
    check_may_act(caller, item)
    if code not in REASON_CODES:
        raise ActionError("Choose one of the listed reasons.")
    agency = (agency or "").strip() or None
    if agency is not None:
        if item.kind != "review":
            raise ActionError("An agency can be named behind a review only.", "agency")
        if agency not in item_actions.agency_names(ctx.engine):
            raise ActionError("That agency is not in the agencies list: pick one from the "
                              "list, or leave it blank.", "agency")
    text = (text or "").strip()[:2000]
    item_actions.record_reason(
        ctx.engine, key, _who(caller), code, text, dt.datetime.now(dt.UTC),
        on=("invitation", (item.meeting_id, item.agency)) if item.kind == "contribution"
        else ("meeting", (item.meeting_id,)) if item.meeting_id else None, agency=agency)
    ctx.cache.clear()
    return message(f"Reason \"{reason_label(code)}\" recorded for {item.label}.", Mark.NOTED)


def _scr_action_area(ctx: Context, key: str) -> str | None:
    """The area of the SCR behind `scr:<action id>` (None: national)."""
    parts = key_parts(key)
    if len(parts) != 2 or not parts[1].isdigit() or len(parts[1]) > 18:
        raise ActionError("That escalation no longer matches a record.")
    try:
        return item_actions.scr_action_area(ctx.engine, int(parts[1]))
    except KeyError:
        raise ActionError("That escalation no longer matches a record.") from None


def _check_ack(ctx: Context, caller: Caller, key: str, stage: str) -> None:
    """Refuse an acknowledgement the caller may not make (ActionError says why)."""
    if not key or stage not in ESCALATION_STAGES:
        raise ActionError("That escalation no longer matches a record.")
    check_key(key)
    if "sog_chair" not in caller.roles:
        raise ActionError("Only a SOG chair can acknowledge an escalation.")
    if key.startswith("scr:"):
        area = _scr_action_area(ctx, key)
        if area is not None and not caller.covers_area(area):
            raise ActionError("That escalation belongs to another area.")
    elif not key.startswith("indicator:"):
        item = find_item(ctx, key)
        if not caller.covers_area(item.area):
            raise ActionError("That escalation belongs to another area.")


# The outbox rules whose rows a SOG chair acknowledges (their Acknowledge buttons).
ACK_RULES = (Rule.ESCALATION.value, Rule.BELOW_TARGET.value)
NOT_ESCALATED = "That escalation was not sent to you."
URGENT_ALONE = "It is urgent: acknowledge it on its own."


def _escalated(ctx: Context, caller: Caller, pairs: list[tuple[str, str]]) -> dict:
    """{(key, stage): urgent?} for the pairs that were escalated to the caller (an outbox
    row of an escalation or below-target alert with them as its recipient); a pair that
    is not a key is absent."""
    keys = sorted({key for key, _ in pairs})
    found: dict = {}
    for key, stage, urgency in item_actions.escalations_to(ctx.engine, caller.person_id,
                                                           keys, ACK_RULES):
        found[(key, stage)] = found.get((key, stage), False) or urgency == Urgency.URGENT
    return found


def acknowledge(ctx: Context, caller: Caller, key: str, stage: str) -> Said:
    """A SOG chair acknowledges an escalation of `key` at `stage`: it stops repeating at
    that stage. Only one that was escalated to them (an item they were sent, at that
    stage)."""
    _check_ack(ctx, caller, key, stage)
    if (key, stage) not in _escalated(ctx, caller, [(key, stage)]):
        raise ActionError(NOT_ESCALATED)
    item_actions.acknowledge(ctx.engine, [(key, stage)], caller.person_id,
                             dt.datetime.now(dt.UTC))
    return message(f"Acknowledged: {escalated_label(ctx, key, stage)}. It will not be "
                   "repeated at this stage.", Mark.ACKNOWLEDGED)


# What each stage an escalation is acknowledged at means, as its reader says it.
STAGE_WORDS = {"breach": "deadline breached", "five_weeks": "5 weeks before release",
               "below_target": "below target", "scr_overdue": "past its due date"}


def escalated_label(ctx: Context, key: str, stage: str | None = None) -> str:
    """An escalated item as its escalation names it (an item as the digest does, an
    indicator by its title, an SCR action by its number), with its stage in words; the
    key itself (as code) only when it names nothing we know."""
    parts = key_parts(key)
    if parts[0] == "indicator" and len(parts) >= 3 and parts[1] in INDICATORS:
        label = f"{INDICATORS[parts[1]].title}, {parts[2]}" + (
            f" {parts[3]}" if len(parts) > 3 else "")
    elif parts[0] == "scr" and len(parts) == 2:
        label = f"Significant Case Review action {parts[1]}"
    else:
        try:
            label = find_item(ctx, key).label
        except ActionError:
            label = f"`{key}`"
    words = STAGE_WORDS.get(stage or "")
    return f"{label} ({words})" if words else label


MAX_ACK_SHOWN = 10  # an escalation shows a few items (bot/channels/escalation.py)


def acknowledge_shown(ctx: Context, caller: Caller, shown: list[tuple[str, str]]
                      ) -> tuple[Said, str]:
    """"Acknowledge all shown" on an escalation: the (key, stage) pairs of the items the
    SOG chair had in front of them, each checked as if acknowledged alone, and each one
    that was escalated to them and is not urgent (an urgent one needs its own look: the
    button never carries one). Those refused are named with why; the others are
    recorded. Returns the reply and the audit outcome: "ok" when all were acknowledged,
    "partial" when some were refused, "refused" when none were acknowledged."""
    if "sog_chair" not in caller.roles:
        raise ActionError("Only a SOG chair can acknowledge an escalation.")
    pairs = list(dict.fromkeys(shown))
    if not pairs or len(pairs) > MAX_ACK_SHOWN:
        raise ActionError("That button no longer matches a record.")
    done, refused = [], []
    for key, stage in pairs:
        try:
            _check_ack(ctx, caller, key, stage)
        except ActionError as exc:
            refused.append((key, str(exc)))
            continue
        done.append((key, stage))
    escalated = _escalated(ctx, caller, done) if done else {}
    checked = []
    for key, stage in done:
        if (key, stage) not in escalated:
            refused.append((key, NOT_ESCALATED))
        elif escalated[(key, stage)]:
            refused.append((key, URGENT_ALONE))
        else:
            checked.append((key, stage))
    done = checked
    if done:
        item_actions.acknowledge(ctx.engine, done, caller.person_id, dt.datetime.now(dt.UTC))
    points = tuple(f"{escalated_label(ctx, key)}: {why}" for key, why in refused)
    outcome = "ok" if not refused else "partial" if done else "refused"
    if not done:
        return Said("Nothing acknowledged.", None, points), outcome
    return Said(f"Acknowledged {len(done)} of {len(pairs)}; they will not be repeated at this "
                "stage.", Mark.ACKNOWLEDGED, points), outcome

"""The words a notice is filed under (its rule, its stage, its channel and its urgency),
and the topics `status` asks about.

One home for each: the planner writes them, the outbox stores them as the plain strings
they are, and the bot's channels and buttons compare against them. Each is a `StrEnum`,
so a member is equal to its string (`Rule.DIGEST == "digest"`) and formats as it
(`f"{Rule.DIGEST}|..."` is `"digest|..."`); what is stored never changes. Kinds of due
item are declared with the items themselves, not here.
"""

from __future__ import annotations

from enum import StrEnum


class Rule(StrEnum):
    """Why a notice is sent (the outbox's `rule` column)."""

    DIGEST = "digest"                      # a chair's daily digest
    CHASER = "chaser"                      # an agency contact's email about a contribution
    ESCALATION = "escalation"              # a breach, to the area's SOG chair
    BELOW_TARGET = "below_target"          # an indicator fell below target this quarter
    WEEKLY = "weekly"                      # Monday's summary of the indicators
    DATA_QUALITY = "data_quality"          # Monday's records to correct, to co-ordinators
    QUARTERLY = "quarterly"                # the SOG's review of last quarter is due
    AUDIT_REMINDER = "audit_reminder"      # a case or meeting audit not yet done
    SCR = "scr"                            # an overdue SCR action, to its owner agency
    DELIVERY_PROBLEM = "delivery_problem"  # a message that could not be delivered
    URGENT_ISSUE = "urgent_issue"          # raised by a person with /mappa escalate


class Stage(StrEnum):
    """Where an item stands when it is told (part of the dedupe key)."""

    DUE = "due"
    OVERDUE = "overdue"
    MISSING = "missing"                    # a written contribution not yet received
    BREACH = "breach"
    FIVE_WEEKS = "five_weeks"              # five weeks before a release with no L3 meeting
    BELOW_TARGET = "below_target"
    SUMMARY = "summary"
    REVIEW_DUE = "review_due"
    SCR_OVERDUE = "scr_overdue"
    FAILED = "failed"
    RAISED = "raised"


class Channel(StrEnum):
    """How a notice reaches its recipient (the names the bot's transports register under)."""

    SLACK = "slack"
    EMAIL = "email"
    TEAMS = "teams"
    CONSOLE = "console"
    NONE = "none"                          # no Slack user id and no email address


class Urgency(StrEnum):
    """Urgent notices go out at once; normal ones wait for working hours."""

    NORMAL = "normal"
    URGENT = "urgent"


class Topic(StrEnum):
    """What `status <topic>` asks about; `all` is every indicator. Here, not beside the
    indicators, so that `mappa status --help` lists the topics without loading pandas."""

    ALL = "all"
    LEVEL2 = "level2"
    LEVEL3 = "level3"
    ATTENDANCE = "attendance"
    CONTRIBUTIONS = "contributions"
    CUSTODY = "custody"
    MINUTES = "minutes"
    DISCLOSURE = "disclosure"

"""The planner's settings: every threshold of SPEC section 4, as one frozen object."""

from __future__ import annotations

from dataclasses import dataclass

from ..records import LOOKBACK_DAYS


@dataclass(frozen=True)
class NudgeRules:
    """Every threshold of SPEC section 4 (working days unless named `_days`).

    Each can be set per deployment as MAPPA_<NAME in capitals>: the bot's settings
    (bot/settings.py) read and check them and build this object; the core never reads
    the environment. `work_start` and `work_end` are the working hours that
    `calendar.release_time` holds non-urgent messages to.
    """

    review_nudge_wd: int = 10              # chair: from N working days before a review is due
    l3_review_escalate_days: int = 1       # SOG chair: N calendar days after an L3 due date
    l2_review_escalate_wd: int = 5         # SOG chair: N working days after an L2 due date
    minutes_nudge_wd: int = 7              # chair: from working day N after the meeting
    minutes_escalate_wd: int = 11          # SOG chair: on working day N (the breach)
    contribution_nudge_wd: int = 1         # chair + agency chaser: N working days after
    contribution_escalate_wd: int = 5
    disclosure_nudge_wd: int = 1
    disclosure_escalate_wd: int = 5
    pre_release_nudge_days: int = 84       # chair: from 12 weeks before release
    pre_release_escalate_days: int = 35    # SOG chair: 5 weeks before release
    escalation_repeat_wd: int = 5          # an unacknowledged escalation repeats this often
    lookback_days: int = LOOKBACK_DAYS     # paperwork older than this is no longer chased
    work_start: str = "08:30"              # digests and non-urgent messages go out from ...
    work_end: str = "17:30"                # ... until (Europe/London)

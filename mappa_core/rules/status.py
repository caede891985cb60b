"""The `status` answer (SPEC section 6): indicators for a topic, period and area as JSON data."""

from __future__ import annotations

import datetime as dt

from .indicators import INDICATORS, TOPICS, Computed, compute_indicators, data_quality
from .periods import Period, PeriodError, parse_period, quarter_of

# Shown with every topic; an indicator's declaration adds its own (seniority: attendance).
CASE_CHECKS = ("no_entry_date", "status_custody_mismatch")


class TopicError(ValueError):
    pass


def resolve(topic: str, period: str | None, as_of: dt.date) -> tuple[tuple[str, ...], Period]:
    """The indicator ids of a topic and the period (default: the quarter containing as_of)."""
    if topic not in TOPICS:
        raise TopicError(f"unknown topic {topic!r}: use one of {', '.join(TOPICS)}")
    per = parse_period(period) if period else quarter_of(as_of)
    if per.start > as_of:  # all zeros would look like an answer
        raise PeriodError(f"period {per.label} starts after {as_of.isoformat()}, the date the "
                          "answer is as of: nothing in it has happened yet")
    return TOPICS[topic], per


def status_of(
    computed: Computed, topic: str = "all", period: str | None = None, area: str | None = None
) -> dict:
    """The documented `status --json` shape from already computed deadlines, with the
    data-quality rows of SPEC section 3 (they name cases: never for a channel)."""
    ids, per = resolve(topic, period, computed.as_of)
    results = compute_indicators(computed, per, ids)
    checks = CASE_CHECKS + tuple(dict.fromkeys(
        check for i in ids for check in INDICATORS[i].data_quality))
    return {
        "period": per.to_dict(),
        "area": area,
        "as_of": computed.as_of.isoformat(),
        "indicators": [r.to_dict() for r in results],
        "data_quality": data_quality(computed, per, checks),
    }

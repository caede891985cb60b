"""The `status` answer (SPEC section 6): indicators for a topic, period and area as JSON data."""

from __future__ import annotations

import datetime as dt

from .indicators import INDICATORS, TOPICS, Computed, compute_indicators, data_quality
from .periods import Period, asked

# Shown with every topic; an indicator's declaration adds its own (seniority: attendance).
CASE_CHECKS = ("no_entry_date", "status_custody_mismatch")


class TopicError(ValueError):
    pass


def resolve(topic: str, period: Period | None, as_of: dt.date) -> tuple[tuple[str, ...], Period]:
    """The indicator ids of a topic and the period (periods.asked: default the quarter
    containing as_of; PeriodError for one that has not started)."""
    if topic not in TOPICS:
        raise TopicError(f"unknown topic {topic!r}: use one of {', '.join(TOPICS)}")
    return TOPICS[topic], asked(period, as_of)


def status_of(
    computed: Computed, topic: str = "all", period: Period | None = None, area: str | None = None
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

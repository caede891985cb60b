# ruff: noqa: F811  (the `slack` fixture is imported from tests.channels.slack.test_commands_and_buttons)
"""The reason form names the agency behind a late review (issue 23.5): optional, offered
for reviews only, checked against the agencies list, stored with the note (migration 0012),
and the review's exception then groups by agency in the indicators and the pack."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import select
from sqlmodel import SQLModel

from bot.channels.slack.limits import problems
from mappa_core.rules.indicators import (
    compute_deadlines, compute_indicators, group_exceptions,
)
from mappa_core.rules.periods import parse_period
from mappa_core.storage.queries import load_records
from tests.channels.slack.test_commands_and_buttons import CHAIR1, TODAY, slack  # noqa: F401
from tests.slack_harness import post, sign, view_body

LATE_REVIEW = "review:GRA-0103:L2:2026-11-12"  # GRA-0103's L2 review, late on 26 November


def _notes(engine) -> list[tuple]:
    note = SQLModel.metadata.tables["item_note"]
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(note.c.item_key, note.c.reason,
                                                       note.c.agency))]


def _l2_review_exception(engine) -> dict:
    c = compute_deadlines(load_records(engine), TODAY)
    (res,) = compute_indicators(c, parse_period("2026-27-Q3"), ("l2-reviews",))
    return next(e for e in res.exceptions if e["ref"] == "GRA-0103"), res


@pytest.mark.http
def test_the_reason_form_of_a_late_review_names_the_agency_and_it_groups_by_agency(slack):
    before, _ = _l2_review_exception(slack.engine)
    assert (before["due"], before["agency"], before["reason"]) == ("2026-11-12", None, None)
    slack.act(CHAIR1, "record_reason", LATE_REVIEW)
    view = slack.stand_in.wait_for("/api/views.open")[0]["body"]["view"]
    if isinstance(view, str):
        view = json.loads(view)
    assert problems(view) == []  # slack_sdk's View accepts it
    menu = next(b for b in view["blocks"] if b.get("block_id") == "agency")
    assert menu["optional"] is True
    assert {"text": {"type": "plain_text", "text": "Police Scotland"}, "value": "police"} in \
        menu["element"]["options"]

    body = view_body(CHAIR1, LATE_REVIEW, "information_late", "", agency="police")
    status, out, _ = post(slack.server.url + "/slack/events", body, sign(body))
    assert status == 200 and out == ""
    assert _notes(slack.engine) == [(LATE_REVIEW, "information_late", "police")]
    after, res = _l2_review_exception(slack.engine)
    assert (after["agency"], after["reason"]) == ("police", "information_late")
    # Before: "by agency: (none)" for the review exceptions.
    assert group_exceptions([res])["by_agency"] == {"police": 1}


@pytest.mark.http
def test_an_unknown_agency_or_one_on_an_item_that_names_its_own_is_refused_in_the_form(slack):
    for key, agency in ((LATE_REVIEW, "no-such-agency"), ("minutes:G8", "police")):
        body = view_body(CHAIR1, key, "information_late", "a note", agency=agency)
        status, out, _ = post(slack.server.url + "/slack/events", body, sign(body))
        answer = json.loads(out)
        assert status == 200 and answer["response_action"] == "errors"
        assert set(answer["errors"]) == {"agency"}
    assert _notes(slack.engine) == []  # nothing written, not even the reason


@pytest.mark.http
def test_an_item_with_its_own_agency_or_a_meeting_offers_no_agency(slack):
    slack.act(CHAIR1, "record_reason", "minutes:G8")
    view = slack.stand_in.wait_for("/api/views.open")[0]["body"]["view"]
    if isinstance(view, str):
        view = json.loads(view)
    assert "agency" not in {b.get("block_id") for b in view["blocks"]}


def test_a_note_applies_to_its_run_of_late_due_dates_and_the_latest_wins():
    import pandas as pd

    from tests.frames import records

    # A: L2, met 2026-04-01, then none: due 24 June, 16 September, 9 December (late); B
    # the same, reviewed late on 1 October (24 June and 16 September: one run, which that
    # meeting closed), and due again (late) on 24 December.
    rec = records(individuals=[{"ref": "A"}, {"ref": "B"}],
                  meetings=[{"meeting_id": "M1", "ref": "A", "date": "2026-04-01"},
                            {"meeting_id": "M2", "ref": "B", "date": "2026-04-01"},
                            {"meeting_id": "M3", "ref": "B", "date": "2026-10-01"}])
    at = dt.datetime(2026, 7, 1, 10, tzinfo=dt.UTC)
    rec.review_notes = pd.DataFrame([
        {"item_key": "review:A:L2:2026-06-24", "reason": "other", "agency": None, "at": at},
        {"item_key": "review:A:L2:2026-06-24", "reason": "agency_unavailable",
         "agency": "housing", "at": at + dt.timedelta(days=1)},
        {"item_key": "review:B:L2:2026-09-16", "reason": "rescheduled", "agency": "nhs", "at": at},
        {"item_key": "review:Z:L2:2026-09-16", "reason": "other", "agency": "nhs", "at": at},
        {"item_key": "not a key", "reason": "other", "agency": "nhs", "at": at}])
    c = compute_deadlines(rec, dt.date(2026, 12, 31))
    (res,) = compute_indicators(c, parse_period("2026-27"), ("l2-reviews",))
    assert [(e["ref"], e["due"], e["agency"], e["reason"]) for e in res.exceptions] == [
        ("A", "2026-06-24", "housing", "agency_unavailable"),
        ("A", "2026-09-16", "housing", "agency_unavailable"),
        ("A", "2026-12-09", "housing", "agency_unavailable"),
        # B's note names its second due date: the first, before it, keeps none.
        ("B", "2026-06-24", None, None),
        ("B", "2026-09-16", "nhs", "rescheduled"),
        ("B", "2026-12-24", None, None)]  # the next run (after the October meeting): none

"""Who is told what and when (SPEC section 4), with hand-computed working days."""

import datetime as dt
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from mappa_core.rules.indicators import compute_deadlines
from mappa_core.rules.calendar import release_time
from mappa_core.rules.planner import (
    NudgeRules, plan_agency_chasers, plan_below_target, plan_chair_digests, plan_escalations,
)
from tests.frames import records as frames

RULES = NudgeRules()
LONDON = ZoneInfo("Europe/London")
PEOPLE = [
    {"person_id": "chair-1", "name": "Chair One", "email": "c1@example.org",
     "slack_user_id": "UCHAIR1", "roles": "chair", "area": "Testshire"},
    {"person_id": "sog", "name": "SOG Chair", "email": "sog@example.org",
     "slack_user_id": "USOG", "roles": "sog_chair", "area": "Testshire"},
    {"person_id": "coord", "name": "Co-ordinator", "email": "coord@example.org",
     "roles": "coordinator", "area": "Testshire"},
    {"person_id": "housing-contact", "name": "Housing Contact", "email": "hc@example.org",
     "roles": "agency_contact", "area": "Testshire", "agency": "housing"},
]


def _state(records, day):
    return records, compute_deadlines(records, dt.date.fromisoformat(day))


def digest_keys(rec, day, snoozes=None):
    records, c = _state(rec, day)
    out = plan_chair_digests(c, records.people, RULES, snoozes)
    return sorted(out["item_key"] + "@" + out["recipient_id"])


def escalations(rec, day, acks=None):
    records, c = _state(rec, day)
    return plan_escalations(c, records.people, RULES, acks)


def _l2(**meeting):
    return frames(people=PEOPLE, individuals=[{"ref": "A"}],
                  meetings=[{"meeting_id": "M1", "ref": "A", "date": "2026-09-01",
                             "minutes_issued": "2026-09-02", "rmp_ratified": "2026-09-02",
                             "disclosure_considered": "yes", **meeting}])


def test_review_enters_the_digest_10_working_days_before_it_is_due():
    # Due 2026-11-24 (2026-09-01 + 84). Ten working days before: 2026-11-10.
    rec = _l2()
    assert digest_keys(rec, "2026-11-09") == []
    assert digest_keys(rec, "2026-11-10") == ["review:A:L2:2026-11-24@chair-1"]


def test_l2_review_escalates_5_working_days_after_the_due_date():
    # 25, 26, 27 Nov, (30 Nov St Andrew's Day), 1, 2 Dec: the 5th working day is 2 Dec.
    rec = _l2()
    assert escalations(rec, "2026-12-01").empty
    esc = escalations(rec, "2026-12-02")
    assert list(esc["item_key"]) == ["review:A:L2:2026-11-24"]
    assert list(esc["recipient_id"]) == ["sog"] and list(esc["urgency"]) == ["normal"]


def test_l3_review_escalates_the_day_after_the_due_date():
    rec = frames(people=PEOPLE, individuals=[{"ref": "A", "level": "3"}],
                 meetings=[{"meeting_id": "M1", "ref": "A", "date": "2026-10-26", "level": "3",
                            "minutes_issued": "2026-10-27", "rmp_ratified": "2026-10-27",
                            "disclosure_considered": "yes"}])
    assert escalations(rec, "2026-12-07").empty          # due today: not yet
    assert list(escalations(rec, "2026-12-08")["item_key"]) == ["review:A:L3:2026-12-07"]


def test_escalation_repeats_every_5_working_days_until_acknowledged():
    rec = _l2()
    first = escalations(rec, "2026-12-02")["dedupe_key"].item()
    assert escalations(rec, "2026-12-08")["dedupe_key"].item() == first   # same cycle
    again = escalations(rec, "2026-12-09")["dedupe_key"].item()          # 10 WD after due
    assert again != first
    acks = pd.DataFrame([{"item_key": "review:A:L2:2026-11-24", "stage": "breach",
                          "person_id": "sog", "at": None}])
    assert escalations(rec, "2026-12-09", acks).empty


def test_minutes_nudged_from_working_day_7_escalated_on_working_day_11():
    # Meeting Mon 2026-10-05: WD7 = 14 Oct, WD11 = 20 Oct.
    rec = frames(people=PEOPLE, individuals=[{"ref": "A"}], meetings=[
        {"meeting_id": "M1", "ref": "A", "date": "2026-10-05", "minutes_issued": "2026-10-07",
         "disclosure_considered": "yes"}])
    assert "minutes:M1@chair-1" not in digest_keys(rec, "2026-10-13")
    assert "minutes:M1@chair-1" in digest_keys(rec, "2026-10-14")
    assert "minutes:M1" not in set(escalations(rec, "2026-10-19")["item_key"])
    assert "minutes:M1" in set(escalations(rec, "2026-10-20")["item_key"])


def test_minutes_due_on_a_thursday_escalate_on_the_friday():
    # Meeting Thu 2026-10-01: WD7 = Mon 12 Oct, WD10 (the deadline) = Thu 15 Oct, WD11 =
    # Fri 16 Oct. The escalation had waited for Monday 19th.
    rec = frames(people=PEOPLE, individuals=[{"ref": "A"}], meetings=[
        {"meeting_id": "M1", "ref": "A", "date": "2026-10-01", "minutes_issued": "2026-10-02",
         "disclosure_considered": "yes"}])
    assert "minutes:M1@chair-1" not in digest_keys(rec, "2026-10-09")
    assert "minutes:M1@chair-1" in digest_keys(rec, "2026-10-12")
    assert "minutes:M1" not in set(escalations(rec, "2026-10-15")["item_key"])
    assert "minutes:M1" in set(escalations(rec, "2026-10-16")["item_key"])


def test_l2_review_due_on_a_friday_escalates_the_next_friday():
    # Meeting Fri 2026-07-10, review due Fri 2 Oct (+84 days). Five working days after:
    # 5, 6, 7, 8, 9 Oct. It had escalated on Thursday 8th, a day early.
    rec = _l2(date="2026-07-10", minutes_issued="2026-07-13", rmp_ratified="2026-07-13")
    assert escalations(rec, "2026-10-08").empty
    assert list(escalations(rec, "2026-10-09")["item_key"]) == ["review:A:L2:2026-10-02"]


def test_resolved_item_stops_at_once():
    rec = frames(people=PEOPLE, individuals=[{"ref": "A"}], meetings=[
        {"meeting_id": "M1", "ref": "A", "date": "2026-10-05", "minutes_issued": "2026-10-07",
         "rmp_ratified": "2026-10-14", "disclosure_considered": "yes"}])
    assert "minutes:M1@chair-1" not in digest_keys(rec, "2026-10-15")


def test_missing_contribution_chases_the_agency_by_email_the_day_after():
    rec = frames(people=PEOPLE, individuals=[{"ref": "A"}], meetings=[
        {"meeting_id": "M1", "ref": "A", "date": "2026-10-05", "minutes_issued": "2026-10-06",
         "rmp_ratified": "2026-10-06", "disclosure_considered": "yes"}],
        invitations=[{"meeting_id": "M1", "agency": "housing", "attendance": "absent"}])
    records, c = _state(rec, "2026-10-05")
    assert plan_agency_chasers(c, records.people, records.agencies, RULES).empty
    records, c = _state(rec, "2026-10-06")
    chasers = plan_agency_chasers(c, records.people, records.agencies, RULES)
    # One e-mail per agency: its own address, not its contact person's as well.
    assert list(chasers["address"]) == ["housing@example.org"]
    from mappa_core.rules.planner.directory import agency_addresses
    no_own = records.agencies.assign(email=None)
    assert agency_addresses(records.people, no_own).values.tolist() == [
        ["housing", "hc@example.org"]]
    assert set(chasers["channel"]) == {"email"} and set(chasers["stage"]) == {"missing"}
    assert "contribution:M1:housing@chair-1" in digest_keys(rec, "2026-10-06")
    # Escalated 5 working days after the meeting: 12 Oct.
    assert escalations(rec, "2026-10-09").empty
    assert list(escalations(rec, "2026-10-12")["item_key"]) == ["contribution:M1:housing"]


def test_pre_release_nudge_escalation_and_urgent_breach():
    # Release 2027-03-01 at Level 3: nudge from 12 weeks before (2026-12-07), escalate at
    # 5 weeks (2027-01-25), urgent breach once the 4-week deadline (2027-02-01) has passed.
    rec = frames(people=PEOPLE, individuals=[{
        "ref": "A", "level": "3", "status": "custody", "custody_from": "2025-01-01",
        "release_date": "2027-03-01", "release_level": "3"}])
    assert digest_keys(rec, "2026-12-06") == []
    assert digest_keys(rec, "2026-12-07") == ["pre_release:A:2027-02-01@chair-1"]
    assert escalations(rec, "2027-01-24").empty
    warn = escalations(rec, "2027-01-25")
    assert list(zip(warn["stage"], warn["urgency"])) == [("five_weeks", "normal")]
    assert list(zip(escalations(rec, "2027-02-01")["stage"], escalations(rec, "2027-02-01")["urgency"])) == [("five_weeks", "normal")]
    breach = escalations(rec, "2027-02-02")
    assert list(zip(breach["stage"], breach["urgency"])) == [("breach", "urgent")]


def test_snooze_hides_the_item_from_the_digest_but_never_the_escalation():
    rec = _l2()
    snoozes = pd.DataFrame([{"item_key": "review:A:L2:2026-11-24", "person_id": "chair-1",
                             "until": dt.date(2026, 12, 4), "created_at": None}])
    assert digest_keys(rec, "2026-12-02", snoozes) == []
    assert digest_keys(rec, "2026-12-04", snoozes) == ["review:A:L2:2026-11-24@chair-1"]
    assert not escalations(rec, "2026-12-02").empty


def test_below_target_is_planned_once_per_indicator_per_quarter():
    rec = _l2()
    records, c = _state(rec, "2026-12-02")
    first = plan_below_target(c, records.people)
    records, c = _state(rec, "2026-12-10")
    later = plan_below_target(c, records.people)
    assert "indicator:l2-reviews:Testshire:2026-27-Q3" in set(first["item_key"])
    assert set(first["dedupe_key"]) <= set(later["dedupe_key"])  # same keys: sent once


@pytest.mark.parametrize("now, urgent, expected", [
    ("2026-11-26T10:00", False, "2026-11-26T10:00"),   # Thursday, working hours
    ("2026-11-26T07:00", False, "2026-11-26T08:30"),   # before hours: later that day
    ("2026-11-26T18:00", False, "2026-11-27T08:30"),   # after hours: next working day
    ("2026-11-28T10:00", False, "2026-12-01T08:30"),   # Saturday: Tuesday (Monday is St Andrew's Day)
    ("2026-11-28T10:00", True, "2026-11-28T10:00"),    # urgent: at once
])
def test_release_time_keeps_non_urgent_messages_to_working_hours(now, urgent, expected):
    when = dt.datetime.fromisoformat(now).replace(tzinfo=LONDON)
    assert release_time(when, urgent, RULES) == dt.datetime.fromisoformat(expected).replace(tzinfo=LONDON)


def test_rules_come_from_the_settings():
    from bot.settings import load

    rules = load(environ={"MAPPA_REVIEW_NUDGE_WD": "5", "MAPPA_WORK_START": "09:00"}).settings.nudge_rules()
    assert (rules.review_nudge_wd, rules.work_start) == (5, "09:00")
    assert rules.minutes_escalate_wd == NudgeRules().minutes_escalate_wd
    with pytest.raises(ValueError, match="MAPPA_MINUTES_ESCALATE_WD=eleven: expected a whole number"):
        load(environ={"MAPPA_MINUTES_ESCALATE_WD": "eleven"})


# ------------------------------------------------- issue 14: entry points, deadline day


def test_entry_point_with_no_meeting_is_nudged_and_escalated_like_a_review():
    # Level 2 since 2026-09-01, never reviewed: due 2026-11-24 (+ 84), in the digest from
    # 2026-11-10 (10 working days before), escalated 2026-12-02 (5 working days after).
    rec = frames(people=PEOPLE,
                 individuals=[{"ref": "A", "level": "2", "level_from": "2026-09-01"}])
    assert digest_keys(rec, "2026-11-09") == []
    assert digest_keys(rec, "2026-11-10") == ["review:A:L2:2026-11-24@chair-1"]
    assert escalations(rec, "2026-12-01").empty
    assert list(escalations(rec, "2026-12-02")["item_key"]) == ["review:A:L2:2026-11-24"]


def test_below_target_waits_until_the_day_after_a_level3_due_date():
    # 2026-10-26 + 42 = 2026-12-07, no meeting: pending on the day, missed from 2026-12-08.
    rec = frames(people=PEOPLE, individuals=[{"ref": "A", "level": "3"}],
                 meetings=[{"meeting_id": "M1", "ref": "A", "date": "2026-10-26", "level": "3",
                            "minutes_issued": "2026-10-27", "rmp_ratified": "2026-10-27",
                            "disclosure_considered": "yes"}])
    records, c = _state(rec, "2026-12-07")
    assert "indicator:l3-reviews:Testshire:2026-27-Q3" not in set(
        plan_below_target(c, records.people)["item_key"])
    records, c = _state(rec, "2026-12-08")
    assert "indicator:l3-reviews:Testshire:2026-27-Q3" in set(
        plan_below_target(c, records.people)["item_key"])


def test_review_due_today_is_labelled_due_today_not_missed():
    from mappa_core.rules.due import due_items

    rec = frames(people=PEOPLE, individuals=[{"ref": "A", "level": "3"}],
                 meetings=[{"meeting_id": "M1", "ref": "A", "date": "2026-10-26", "level": "3"}])
    _records, c = _state(rec, "2026-12-07")
    review = due_items(c).query("kind == 'review'")
    assert list(zip(review["deadline"].dt.strftime("%Y-%m-%d"), review["overdue"],
                    review["working_days_left"], review["detail"])) == [
        ("2026-12-07", False, 0, "Level 3 review; due today")]
    _records, c = _state(rec, "2026-12-08")
    review = due_items(c).query("kind == 'review'")
    assert list(zip(review["overdue"], review["detail"])) == [
        (True, "Level 3 review; 1 due date(s) missed")]


def test_weekly_summary_gives_the_coordinator_the_data_quality_cases_apart():
    from bot.channels import render as render_group
    from mappa_core.rules.planner import plan_area_channels, plan_weekly_summary

    # B is open at Level 2 with neither a meeting nor a level_from (no_entry_date); A is
    # fine. The co-ordinator gets the SOG chair's summary and, as a message of its own, the
    # records to correct, which name B; the SOG chair's has the indicators only.
    rec = frames(people=PEOPLE, individuals=[{"ref": "A"}, {"ref": "B"}],
                 meetings=[{"meeting_id": "M1", "ref": "A", "date": "2026-10-05"}])
    records, c = _state(rec, "2026-11-30")
    week_ago = compute_deadlines(records, dt.date(2026, 11, 23))
    plan = plan_weekly_summary(c, week_ago, records.people)
    dq = plan[plan["item_key"].str.startswith("data_quality:")]
    assert [(k.rsplit(":", 1)[0], r) for k, r in zip(dq["item_key"], dq["recipient_id"])] == [
        ("data_quality:no_entry_date:B", "coord")]
    assert set(dq["rule"]) == {"data_quality"} and set(dq["group_key"].str.split("|").str[0]) == {
        "data_quality"}
    indicators = {f"indicator:{i}:Testshire" for i in (
        "l3-reviews", "l2-reviews", "dtc-attendance", "police-attendance", "cbsw-attendance",
        "ra-written", "dtc-written", "custody-initial-l3", "minutes-10wd", "disclosure")}
    for who in ("sog", "coord"):
        mine = plan[(plan["recipient_id"] == who) & (plan["rule"] == "weekly")]
        assert set(mine["item_key"]) == indicators
    rows = plan.to_dict("records")
    summary = render_group([r for r in rows if r["recipient_id"] == "coord" and r["rule"] == "weekly"])
    assert "B" not in {line.split(":")[0] for line in summary.text.splitlines()}
    assert "no_entry_date" not in summary.text and "records to correct" not in summary.text
    mail = render_group([r for r in rows if r["rule"] == "data_quality"])
    assert mail.subject == "MAPPA records to correct, Testshire, 2026-11-30"
    assert "B: open at Level 2 with no Level 2/3 meeting and no level_from: its reviews " \
        "cannot be tracked (no_entry_date)" in mail.text
    assert "1 record of Testshire to correct" in mail.text
    sog = render_group([r for r in rows if r["recipient_id"] == "sog"])
    assert "no_entry_date" not in str(sog.blocks) and "records to correct" not in str(sog.blocks)
    # The records to correct name cases: never copied to an area's shared channel.
    shared = plan_area_channels(plan, {"teams": {"Testshire"}})
    assert set(shared.loc[shared["channel"] == "teams", "rule"]) == {"weekly"}


def test_weekly_summary_keeps_each_data_quality_finding_of_one_case():
    from mappa_core.rules.planner import plan_weekly_summary

    # Two agencies attended A's meeting with seniority_ok blank: two seniority_unknown
    # findings for one case, and the co-ordinator is told of both.
    rec = frames(people=PEOPLE, individuals=[{"ref": "A", "level_from": "2026-10-01"}],
                 meetings=[{"meeting_id": "M1", "ref": "A", "date": "2026-10-05"}],
                 invitations=[{"meeting_id": "M1", "agency": "police", "attendance": "in_person"},
                              {"meeting_id": "M1", "agency": "housing", "attendance": "video"}])
    records, c = _state(rec, "2026-11-30")
    plan = plan_weekly_summary(c, compute_deadlines(records, dt.date(2026, 11, 23)), records.people)
    dq = plan[plan["item_key"].str.startswith("data_quality:seniority_unknown:A:")]
    assert len(dq) == 2 and dq["item_key"].nunique() == 2


# ------------------------------------------------- issue 15.5: the typed notice, one entry


def test_planned_notices_reach_the_outbox_as_plain_strings_with_their_keys():
    from mappa_core.rules.planner import NOTIFICATION_COLUMNS, Inputs, plan
    from mappa_core.storage import outbox  # noqa: F401 (registers the outbox table)
    from sqlmodel import SQLModel

    people = pd.DataFrame(PEOPLE)
    today = dt.date(2026, 10, 5)
    out = plan("quarterly-review", Inputs(today, people, areas=["Testshire"]), RULES)
    # The SOG chair on Slack, the co-ordinator (no Slack id) by email.
    assert out[["recipient_id", "channel", "address"]].values.tolist() == [
        ["sog", "slack", "USOG"], ["coord", "email", "coord@example.org"]]
    sog = out.iloc[0]
    assert sog["dedupe_key"] == "quarterly|quarterly:Testshire:2026-27-Q2|review_due|sog|2026-27-Q2"
    assert sog["group_key"] == "quarterly|sog|2026-10-05"
    assert sog["payload"] == {"quarter": "2026-27-Q2", "area": "Testshire"}
    # The vocabulary is stored as the plain strings it stands for, never as enum members.
    for col in ("rule", "stage", "channel", "urgency"):
        assert {type(v) for v in out[col]} == {str}, col
    assert list(out.columns) == NOTIFICATION_COLUMNS
    assert set(NOTIFICATION_COLUMNS) <= set(SQLModel.metadata.tables["outbox"].columns.keys())


def test_plan_names_the_jobs_it_knows():
    from mappa_core.rules.planner import Inputs, plan

    with pytest.raises(ValueError, match="unknown job 'deliver': use one of digest, escalations"):
        plan("deliver", Inputs(dt.date(2026, 10, 5), pd.DataFrame(PEOPLE)), RULES)

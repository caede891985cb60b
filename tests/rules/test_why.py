"""Every "below target" says why (issue 23.5): an indicator below target names what drives
it, from its exceptions, as its declaration says (`driver`): the agencies below target for
attendance and written contributions, the chairs and reasons behind most misses otherwise.
The below-target alert and the weekly summary carry it."""

from __future__ import annotations

import datetime as dt

from mappa_core.rules.indicators import (
    INDICATORS, Driver, compute_deadlines, compute_indicators, contributors, why,
)
from mappa_core.rules.periods import parse_period
from tests.frames import records

Q3 = parse_period("2026-27-Q3")
AS_OF = dt.date(2026, 12, 31)
PEOPLE = [
    {"person_id": "chair-1", "name": "Ailsa Chair", "roles": "chair", "area": "Testshire"},
    {"person_id": "chair-2", "name": "Calum Chair", "roles": "chair", "area": "Testshire"},
    {"person_id": "sog", "name": "SOG Chair", "email": "sog@example.org",
     "slack_user_id": "USOG", "roles": "sog_chair", "area": "Testshire"},
]
NAMES = ({"housing": "Housing", "nhs": "NHS Testshire", "police": "Police Scotland"},
         {"chair-1": "Ailsa Chair", "chair-2": "Calum Chair"})


def _meeting(mid, date="2026-10-05", chair="chair-1", **kw):
    return {"meeting_id": mid, "ref": "A", "date": date, "minutes_issued": date,
            "rmp_ratified": date, "disclosure_considered": "yes", "chair_id": chair, **kw}


def _result(rec, ind_id):
    c = compute_deadlines(rec, AS_OF)
    (res,) = compute_indicators(c, Q3, (ind_id,))
    return res


def test_dtc_attendance_names_the_agency_below_target_not_the_ones_above():
    # NHS attends 9 of 10 (90%: met); Housing 7 of 10 (70%); SCRA 10 of 10. The whole is
    # 26 of 30 (86.7%), below 90%, because of Housing alone.
    meetings = [_meeting(f"M{i}") for i in range(10)]
    invitations = []
    for i in range(10):
        invitations.append({"meeting_id": f"M{i}", "agency": "nhs", "seniority_ok": "yes",
                            "attendance": "absent" if i == 0 else "in_person"})
        invitations.append({"meeting_id": f"M{i}", "agency": "housing", "seniority_ok": "yes",
                            "attendance": "absent" if i < 3 else "in_person",
                            "reason": "agency_unavailable" if i == 0 else ""})
        invitations.append({"meeting_id": f"M{i}", "agency": "scra", "seniority_ok": "yes",
                            "attendance": "in_person"})
    res = _result(records(individuals=[{"ref": "A"}], meetings=meetings,
                          invitations=invitations), "dtc-attendance")
    assert res.met is False and INDICATORS["dtc-attendance"].driver is Driver.AGENCY
    assert [(c["key"], c["count"], c["percent"]) for c in contributors(res)] == [("housing", 3, 70.0)]
    assert why(res, *NAMES) == ("Below target: Housing 70.0% (7/10); reason given for 1 of 4: "
                                "agency unavailable 1.")
    # Without the names, the ids: never a blank.
    assert why(res).startswith("Below target: housing 70.0% (7/10)")


def test_written_contributions_name_the_agencies_that_did_not_send_them():
    meetings = [_meeting(f"M{i}") for i in range(4)]
    invitations = [{"meeting_id": f"M{i}", "agency": "police", "attendance": "absent",
                    "written_contribution": "no"} for i in range(3)]
    invitations += [{"meeting_id": "M3", "agency": "cbsw-a", "attendance": "absent",
                     "written_contribution": "no", "reason": "information_late"}]
    res = _result(records(individuals=[{"ref": "A"}], meetings=meetings,
                          invitations=invitations), "ra-written")
    assert why(res, *NAMES) == ("Missing from Police Scotland 3 of 4, cbsw-a 1; reason given "
                                "for 1 of 4: information late 1.")


def test_other_indicators_name_the_chairs_behind_most_misses_and_the_reasons():
    # Minutes late at three of Ailsa's meetings and one of Calum's; one reason recorded.
    late = {"minutes_issued": "2026-12-20", "rmp_ratified": "2026-12-20"}
    meetings = [_meeting("M1", **late), _meeting("M2", **late),
                _meeting("M3", **late, reason="chair_unavailable"),
                _meeting("M4", chair="chair-2", **late), _meeting("M5", chair="chair-2")]
    res = _result(records(individuals=[{"ref": "A"}], meetings=meetings), "minutes-10wd")
    assert res.met is False and INDICATORS["minutes-10wd"].driver is Driver.CHAIR
    assert why(res, *NAMES) == ("Chairs with most misses: Ailsa Chair 3 of 4, Calum Chair 1; "
                                "reason given for 1 of 4: chair unavailable 1.")
    # One chair only; then misses one each over two chairs, none with a reason.
    res = _result(records(individuals=[{"ref": "A"}], meetings=meetings[:2]), "minutes-10wd")
    assert why(res, *NAMES) == "All 2 chaired by Ailsa Chair; no reason recorded."
    res = _result(records(individuals=[{"ref": "A"}], meetings=[meetings[0], meetings[3]]),
                  "minutes-10wd")
    assert why(res, *NAMES) == "Spread over 2 chairs, one each; no reason recorded."


def test_a_result_met_or_without_items_has_no_why():
    res = _result(records(individuals=[{"ref": "A"}], meetings=[_meeting("M1")]), "minutes-10wd")
    assert res.met is True and why(res, *NAMES) is None
    res = _result(records(individuals=[{"ref": "A"}]), "minutes-10wd")
    assert res.met is None and why(res, *NAMES) is None


def test_the_below_target_alert_and_the_weekly_summary_say_why():
    from bot.channels import render
    from mappa_core.rules.planner import plan_below_target, plan_weekly_summary

    late = {"minutes_issued": "2026-12-20", "rmp_ratified": "2026-12-20"}
    rec = records(people=PEOPLE, individuals=[{"ref": "A"}],
                  meetings=[_meeting("M1", **late), _meeting("M2", **late),
                            _meeting("M3", chair="chair-2")])
    c = compute_deadlines(rec, dt.date(2026, 12, 21))
    alert = plan_below_target(c, rec.people).to_dict("records")
    minutes = [r for r in alert if r["payload"]["indicator"] == "minutes-10wd"]
    expected = "All 2 chaired by Ailsa Chair; no reason recorded."
    assert minutes and minutes[0]["payload"]["why"] == expected
    slack = render(alert)
    line = next(b["text"]["text"] for b in slack.blocks
                if b["type"] == "section" and b["text"]["text"].startswith("Minutes issued"))
    assert line.endswith("pending. " + expected)
    # What the lock screen shows: what it holds, not "1 item(s)".
    assert slack.text == "1 indicator below target in Testshire: Minutes and RMP in 10 working days"
    summary = plan_weekly_summary(c, compute_deadlines(rec, dt.date(2026, 12, 14)), rec.people)
    weekly = render([r for r in summary.to_dict("records") if r["rule"] == "weekly"])
    assert expected in str(weekly.blocks)
    assert weekly.text == "MAPPA weekly summary, Testshire: 1 of 10 indicators below target"


def test_one_miss_and_misses_with_no_chair_are_said_as_they_are():
    late = {"minutes_issued": "2026-12-20", "rmp_ratified": "2026-12-20"}
    one = _result(records(individuals=[{"ref": "A"}], meetings=[_meeting("M1", **late)]),
                  "minutes-10wd")
    assert why(one, *NAMES) == "Chaired by Ailsa Chair; no reason recorded."
    # A late review of a case with no chair recorded is not counted against anyone.
    rec = records(individuals=[{"ref": "A"}, {"ref": "B", "chair_id": ""}],
                  meetings=[{"meeting_id": "M1", "ref": "A", "date": "2026-04-01"},
                            {"meeting_id": "M2", "ref": "B", "date": "2026-04-01"}])
    res = _result(rec, "l2-reviews")
    assert why(res, *NAMES) == ("Chaired by Ailsa Chair 1 of 2; 1 with no chair recorded; no "
                                "reason recorded.")

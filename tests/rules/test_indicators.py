"""The eight meeting-based indicators of SPEC section 3 on hand-computed tables."""

from mappa_core.rules.indicators import margin, percent, target_met
from tests.frames import records
from tests.helpers import indicators

CAT1 = {"ref": "A", "category": "1"}
CAT2 = {"ref": "P", "category": "2", "status": "hospital"}


def _meeting(mid, ref="A", date="2026-10-05", **kw):
    return {"meeting_id": mid, "ref": ref, "date": date, "minutes_issued": date,
            "rmp_ratified": date, "disclosure_considered": "yes", **kw}


def _inv(mid, agency, attendance="in_person", seniority="yes", written="", reason=""):
    return {"meeting_id": mid, "agency": agency, "attendance": attendance,
            "seniority_ok": seniority, "written_contribution": written, "reason": reason}


# ----------------------------------------------------------------------- attendance


def test_police_attendance_needs_attendance_with_seniority():
    rec = records(
        individuals=[CAT1],
        meetings=[_meeting(f"M{i}") for i in range(1, 6)],
        invitations=[
            _inv("M1", "police", "in_person", "yes"),
            _inv("M2", "police", "phone", "yes"),
            _inv("M3", "police", "video", "no"),          # not senior enough
            _inv("M4", "police", "in_person", ""),        # unknown seniority: not met
            _inv("M5", "police", "absent", "", "yes"),    # a written report is not attendance
        ],
    )
    res = indicators(rec, "2026-27-Q3", "2026-12-31")["police-attendance"]
    assert (res["numerator"], res["denominator"], res["percent"], res["met"]) == (2, 5, 40.0, False)
    assert sorted(e["meeting_id"] for e in res["exceptions"]) == ["M3", "M4", "M5"]
    assert all(e["agency"] == "police" for e in res["exceptions"])
    assert res["breakdown"] == [
        {"agency": "police", "numerator": 2, "denominator": 5, "percent": 40.0, "met": False}
    ]


def test_cbsw_attendance_counts_every_social_work_agency_with_a_breakdown():
    rec = records(
        individuals=[CAT1],
        meetings=[_meeting(f"M{i}") for i in range(1, 4)],
        invitations=[
            _inv("M1", "cbsw-a"), _inv("M2", "cbsw-a"), _inv("M3", "cbsw-b", "absent", "", "yes"),
            _inv("M1", "police"),
        ],
    )
    res = indicators(rec, "2026-27-Q3", "2026-12-31")["cbsw-attendance"]
    assert (res["numerator"], res["denominator"]) == (2, 3)
    assert [(b["agency"], b["numerator"], b["denominator"], b["met"]) for b in res["breakdown"]] == [
        ("cbsw-a", 2, 2, True), ("cbsw-b", 0, 1, False),
    ]


def test_dtc_attendance_is_met_only_when_every_dtc_agency_meets_90_percent():
    # housing 10/10, scra 9/10 (90%: met), nhs 1/2 for a Category 1 case (DTC): not met.
    meetings = [_meeting(f"M{i}") for i in range(1, 11)]
    invitations = [_inv(f"M{i}", "housing") for i in range(1, 11)]
    invitations += [_inv(f"M{i}", "scra") for i in range(1, 10)]
    invitations += [_inv("M10", "scra", "absent", "", "no", "information_late")]
    invitations += [_inv("M1", "nhs"), _inv("M2", "nhs", "absent", "", "")]
    rec = records(individuals=[CAT1], meetings=meetings, invitations=invitations)
    res = indicators(rec, "2026-27-Q3", "2026-12-31")["dtc-attendance"]
    assert (res["numerator"], res["denominator"]) == (20, 22)
    assert res["percent"] == 90.9  # overall above target ...
    assert res["met"] is False      # ... but NHS is at 50%
    assert {b["agency"]: (b["numerator"], b["denominator"], b["met"]) for b in res["breakdown"]} == {
        "housing": (10, 10, True), "nhs": (1, 2, False), "scra": (9, 10, True),
    }
    scra = [e for e in res["exceptions"] if e["agency"] == "scra"]
    assert scra[0]["reason"] == "information_late"


def test_dtc_absent_with_written_report_counts_as_attended():
    rec = records(individuals=[CAT1], meetings=[_meeting("M1")],
                  invitations=[_inv("M1", "housing", "absent", "", "yes")])
    res = indicators(rec, "2026-27-Q3", "2026-12-31")["dtc-attendance"]
    assert (res["numerator"], res["denominator"], res["met"]) == (1, 1, True)


def test_health_board_is_ra_for_category_2_and_dtc_for_everyone_else():
    # `nhs` is listed dtc and `nhs-ra` listed ra: the role decides, not the kind.
    rec = records(
        individuals=[CAT1, CAT2],
        meetings=[_meeting("M1", "A"), _meeting("M2", "P")],
        invitations=[
            _inv("M1", "nhs", "absent", "", "no"), _inv("M1", "nhs-ra", "absent", "", "yes"),
            _inv("M2", "nhs", "absent", "", "no"), _inv("M2", "nhs-ra", "in_person"),
        ],
    )
    res = indicators(rec, "2026-27-Q3", "2026-12-31")
    dtc = res["dtc-attendance"]
    assert {b["agency"]: (b["numerator"], b["denominator"]) for b in dtc["breakdown"]} == {
        "nhs": (0, 1), "nhs-ra": (1, 1),   # both from M1, the Category 1 case
    }
    assert [(e["meeting_id"], e["agency"]) for e in res["dtc-written"]["exceptions"]] == [("M1", "nhs")]
    assert res["dtc-written"]["denominator"] == 2
    assert [(e["meeting_id"], e["agency"]) for e in res["ra-written"]["exceptions"]] == [("M2", "nhs")]
    assert res["ra-written"]["denominator"] == 1


# ------------------------------------------------------------ written contributions


def test_missing_written_contribution_is_pending_until_the_10th_working_day():
    # Meeting Mon 2026-10-05: 10th working day is Mon 2026-10-19. On that day it is still
    # pending (SPEC 2026-11-26); from Tue 2026-10-20 it counts as not met.
    rec = records(individuals=[CAT1], meetings=[_meeting("M1")],
                  invitations=[_inv("M1", "police", "absent", "", "no"),
                               _inv("M1", "cbsw-a", "absent", "", "yes")])
    on = indicators(rec, "2026-27-Q3", "2026-10-19")["ra-written"]
    after = indicators(rec, "2026-27-Q3", "2026-10-20")["ra-written"]
    assert (on["numerator"], on["denominator"], on["pending"]) == (1, 1, 1)
    assert (after["numerator"], after["denominator"], after["pending"]) == (1, 2, 0)
    assert after["exceptions"][0]["due"] == "2026-10-19"
    assert after["met"] is False and after["percent"] == 50.0


def test_blank_written_contribution_is_not_met():
    rec = records(individuals=[CAT1], meetings=[_meeting("M1")],
                  invitations=[_inv("M1", "scra", "absent", "", "")])
    res = indicators(rec, "2026-27-Q3", "2026-12-31")["dtc-written"]
    assert (res["numerator"], res["denominator"]) == (0, 1)


# ----------------------------------------------------------------------- minutes


def test_minutes_deadline_crosses_the_summer_bank_holiday():
    # Meeting Mon 2026-07-27: 28, 29, 30, 31 Jul, (3 Aug holiday), 4, 5, 6, 7, 10, 11 Aug
    # -> the 10th working day is 2026-08-11.
    rec = records(individuals=[CAT1], meetings=[
        _meeting("M1", date="2026-07-27", minutes_issued="2026-08-11", rmp_ratified="2026-08-11"),
        _meeting("M2", date="2026-07-27", minutes_issued="2026-08-12", rmp_ratified="2026-08-03"),
    ])
    res = indicators(rec, "2026-27-Q2", "2026-09-30")["minutes-10wd"]
    assert (res["numerator"], res["denominator"]) == (1, 2)
    assert res["exceptions"] == [{
        "ref": "A", "meeting_id": "M2", "agency": None, "due": "2026-08-11",
        "done": "2026-08-12", "reason": None, "chair_id": "chair-1",
    }]


def test_meeting_on_a_holiday_counts_from_that_day_as_day_0():
    # St Andrew's Day, Mon 2026-11-30, is day 0: 1-4, 7-11, 14 Dec -> 2026-12-14.
    rec = records(individuals=[CAT1], meetings=[
        _meeting("M1", date="2026-11-30", minutes_issued="2026-12-14", rmp_ratified="2026-12-14"),
        _meeting("M2", date="2026-11-30", minutes_issued="2026-12-15", rmp_ratified="2026-12-14"),
    ])
    res = indicators(rec, "2026-27-Q3", "2026-12-31")["minutes-10wd"]
    assert (res["numerator"], res["denominator"]) == (1, 2)


def test_minutes_over_christmas_and_new_year():
    # Mon 2026-12-21: 22, 23, 24, (25, 28 holidays), 29, 30, 31, (1, 4 Jan holidays),
    # 5, 6, 7, 8 Jan -> 2027-01-08.
    rec = records(individuals=[CAT1], meetings=[
        _meeting("M1", date="2026-12-21", minutes_issued="2027-01-08", rmp_ratified="2027-01-08"),
    ])
    assert indicators(rec, "2026-27-Q3", "2027-01-31")["minutes-10wd"]["met"] is True


def test_local_holiday_of_an_area_extends_its_deadline():
    # Testshire observes 2026-10-06 locally: the 10th working day moves to 2026-10-20.
    rec = records(
        individuals=[CAT1],
        meetings=[_meeting("M1", minutes_issued="2026-10-20", rmp_ratified="2026-10-20")],
        local_holidays=[{"area": "Testshire", "date": "2026-10-06", "name": "Local day"}],
    )
    assert indicators(rec, "2026-27-Q3", "2026-12-31")["minutes-10wd"]["met"] is True


def test_minutes_missing_either_date_are_pending_then_failed():
    rec = records(individuals=[CAT1], meetings=[
        _meeting("M1", minutes_issued="2026-10-07", rmp_ratified=""),
        _meeting("M2", minutes_issued="2026-10-07", rmp_ratified="2026-10-08"),
    ])
    # Meeting 2026-10-05: the 10th working day, 2026-10-19, is still pending (SPEC
    # 2026-11-26); the minutes missing an RMP count as failed from 2026-10-20.
    before = indicators(rec, "2026-27-Q3", "2026-10-16")["minutes-10wd"]
    on_day = indicators(rec, "2026-27-Q3", "2026-10-19")["minutes-10wd"]
    after = indicators(rec, "2026-27-Q3", "2026-10-20")["minutes-10wd"]
    assert (before["numerator"], before["denominator"], before["pending"]) == (1, 1, 1)
    assert (on_day["numerator"], on_day["denominator"], on_day["pending"]) == (1, 1, 1)
    assert (after["numerator"], after["denominator"], after["pending"]) == (1, 2, 0)


def test_minutes_dated_after_as_of_are_not_yet_issued():
    rec = records(individuals=[CAT1], meetings=[
        _meeting("M1", minutes_issued="2026-10-15", rmp_ratified="2026-10-15"),
    ])
    res = indicators(rec, "2026-27-Q3", "2026-10-14")["minutes-10wd"]
    assert (res["denominator"], res["pending"]) == (0, 1)


# ----------------------------------------------------------------------- disclosure


def test_disclosure_no_counts_at_once_and_a_blank_fails_after_the_10th_working_day():
    # Meetings on 2026-10-05 (10th working day 2026-10-19): yes is met; a recorded no
    # counts the day after the meeting as not met (SPEC 2026-11-26); a blank is pending
    # up to and on 2026-10-19 and not met from 2026-10-20.
    rec = records(individuals=[CAT1], meetings=[
        _meeting("M1"), _meeting("M2", disclosure_considered="no"),
        _meeting("M3", disclosure_considered=""),
    ])
    res = indicators(rec, "2026-27-Q3", "2026-12-31")["disclosure"]
    assert (res["numerator"], res["denominator"], res["percent"]) == (1, 3, 33.3)
    day_after = indicators(rec, "2026-27-Q3", "2026-10-06")["disclosure"]
    assert (day_after["numerator"], day_after["denominator"], day_after["pending"]) == (1, 2, 1)
    assert [e["meeting_id"] for e in day_after["exceptions"]] == ["M2"]
    on_day = indicators(rec, "2026-27-Q3", "2026-10-19")["disclosure"]
    assert (on_day["numerator"], on_day["denominator"], on_day["pending"]) == (1, 2, 1)
    after = indicators(rec, "2026-27-Q3", "2026-10-20")["disclosure"]
    assert (after["numerator"], after["denominator"], after["pending"]) == (1, 3, 0)


# ------------------------------------------------------------- custody-initial-l3


def _released(ref, release, **kw):
    return {"ref": ref, "category": "1", "level": "3", "status": "custody",
            "custody_from": "2024-01-01", "release_date": release, "release_level": "3", **kw}


def test_initial_l3_meeting_exactly_28_days_before_release_is_on_time():
    init = {"level": "3", "kind": "initial", "setting": "community"}
    rec = records(
        individuals=[_released("A", "2026-12-14"), _released("B", "2026-12-14"),
                     _released("C", "2026-12-14"), _released("D", "2026-12-14"),
                     _released("E", "2027-01-11")],
        meetings=[
            _meeting("M1", "A", "2026-11-16", **init),                        # 28 days: met
            _meeting("M2", "B", "2026-11-17", **init, reason="referral_late"),  # 27 days: late
            _meeting("M3", "C", "2026-11-01", **{**init, "setting": "custody"}),  # in prison
            _meeting("M4", "D", "2026-11-01", **{**init, "level": "2"}),      # Level 2
        ],
    )
    res = indicators(rec, "2026-27-Q3", "2026-12-31")["custody-initial-l3"]
    assert (res["numerator"], res["denominator"], res["pending"]) == (1, 4, 0)  # E: Q4
    assert [(e["ref"], e["due"], e["meeting_id"], e["reason"]) for e in res["exceptions"]] == [
        ("B", "2026-11-16", "M2", "referral_late"), ("C", "2026-11-16", None, None),
        ("D", "2026-11-16", None, None),
    ]


def test_pre_release_meeting_is_pending_before_its_deadline():
    rec = records(individuals=[_released("A", "2026-12-14")], meetings=[])
    res = indicators(rec, "2026-27-Q3", "2026-11-15")["custody-initial-l3"]
    assert (res["denominator"], res["pending"], res["margin"]) == (0, 1, 0)


def test_release_at_level_2_is_not_counted():
    rec = records(individuals=[_released("A", "2026-12-14", release_level="2")])
    res = indicators(rec, "2026-27-Q3", "2026-12-31")["custody-initial-l3"]
    assert (res["denominator"], res["pending"]) == (0, 0)


# ------------------------------------------------------------------ empty + numbers


def test_empty_quarter_has_null_percent_and_met():
    rec = records(individuals=[CAT1], meetings=[_meeting("M1")])
    for res in indicators(rec, "2025-26-Q1", "2026-12-31").values():
        assert (res["numerator"], res["denominator"], res["percent"], res["met"]) == (0, 0, None, None)
        assert res["exceptions"] == []


def test_percent_rounds_half_up_to_one_decimal():
    assert percent(1, 16) == 6.3     # 6.25
    assert percent(2, 3) == 66.7
    assert percent(1, 8) == 12.5
    assert percent(0, 5) == 0.0
    assert percent(0, 0) is None


def test_met_uses_the_unrounded_fraction():
    # 189/199 = 94.97...%, shown as 95.0 but below a 95% target.
    assert percent(189, 199) == 95.0
    assert target_met(189, 199, 95) is False
    assert target_met(19, 20, 95) is True
    assert target_met(0, 0, 95) is None


def test_margin_counts_failures_still_absorbable():
    # 20 items at 95%: one failure allowed.
    assert margin(19, 19, 1, 95) == 1     # none failed yet
    assert margin(18, 19, 1, 95) == 0     # the one allowed failure is used
    assert margin(10, 10, 10, 90) == 2    # 20 items at 90%: 2 allowed, none used
    assert margin(3, 4, 0, 100) == -1
    assert margin(0, 0, 0, 90) is None

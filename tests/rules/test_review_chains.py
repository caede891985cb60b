"""Review chain rules of SPEC section 3 (l2-reviews, l3-reviews), one scenario per rule.

Every date below is worked out by hand: Level 2 reviews every 84 days, Level 3 every 42.
"""

from tests.frames import records
from tests.helpers import indicators, reviews

ONE = [{"ref": "A"}]


def _ind(meetings, individuals=ONE, **kw):
    return records(individuals=individuals, meetings=meetings, **kw)


def test_review_held_on_due_date_is_on_time():
    # 2026-07-06 + 84 days = 2026-09-28
    rec = _ind([
        {"meeting_id": "M1", "ref": "A", "date": "2026-07-06"},
        {"meeting_id": "M2", "ref": "A", "date": "2026-09-28"},
    ])
    res = indicators(rec, "2026-27-Q2", "2026-10-15")["l2-reviews"]
    assert (res["numerator"], res["denominator"], res["pending"]) == (1, 1, 0)
    assert res["met"] is True and res["percent"] == 100.0


def test_review_a_day_late_is_an_exception_naming_the_late_meeting():
    rec = _ind([
        {"meeting_id": "M1", "ref": "A", "date": "2026-07-06"},
        {"meeting_id": "M2", "ref": "A", "date": "2026-09-29", "reason": "chair_unavailable"},
    ])
    res = indicators(rec, "2026-27-Q2", "2026-10-15")["l2-reviews"]
    assert (res["numerator"], res["denominator"]) == (0, 1)
    assert res["exceptions"] == [{
        "ref": "A", "meeting_id": "M2", "agency": None, "due": "2026-09-28",
        "done": "2026-09-29", "reason": "chair_unavailable", "chair_id": "chair-1",
    }]


def test_due_date_on_a_bank_holiday_is_not_moved():
    # 2026-05-11 + 84 = 2026-08-03, the Summer Bank Holiday: a review is due on the
    # calendar date, so a meeting the next working day is late.
    rec = _ind([
        {"meeting_id": "M1", "ref": "A", "date": "2026-05-11"},
        {"meeting_id": "M2", "ref": "A", "date": "2026-08-04"},
    ])
    assert reviews(rec, "2026-08-31")[0] == (2, "2026-08-03", "late")


def test_level3_interval_is_six_weeks():
    rec = _ind([
        {"meeting_id": "M1", "ref": "A", "date": "2026-09-14", "level": "3"},
        {"meeting_id": "M2", "ref": "A", "date": "2026-10-26", "level": "3"},
    ], individuals=[{"ref": "A", "level": "3"}])
    assert reviews(rec, "2026-11-01") == [
        (3, "2026-10-26", "met"), (3, "2026-12-07", "pending"),
    ]


def test_case_unreviewed_for_three_intervals_has_three_late_due_dates():
    # 2025-01-06 + 84 = 03-31, + 84 = 06-23, + 84 = 09-15, + 84 = 12-08 (after as_of)
    rec = _ind([{"meeting_id": "M1", "ref": "A", "date": "2025-01-06"}])
    assert reviews(rec, "2025-11-30") == [
        (2, "2025-03-31", "late"), (2, "2025-06-23", "late"), (2, "2025-09-15", "late"),
        (2, "2025-12-08", "pending"),
    ]
    res = indicators(rec, "2025-01-01..2025-12-31", "2025-11-30")["l2-reviews"]
    assert (res["numerator"], res["denominator"], res["pending"]) == (0, 3, 1)
    assert [e["done"] for e in res["exceptions"]] == [None, None, None]


def test_meeting_after_misses_restarts_chain_and_drops_the_generated_due_date():
    # Misses 03-31 and 06-23; 09-15 would come next but M2 on 07-01 precedes it, so it
    # is dropped (neither met nor late); the chain restarts: 07-01 + 84 = 09-23, met by M3.
    rec = _ind([
        {"meeting_id": "M1", "ref": "A", "date": "2025-01-06"},
        {"meeting_id": "M2", "ref": "A", "date": "2025-07-01"},
        {"meeting_id": "M3", "ref": "A", "date": "2025-09-20"},
    ])
    assert reviews(rec, "2025-11-30") == [
        (2, "2025-03-31", "late"), (2, "2025-06-23", "late"), (2, "2025-09-23", "met"),
        (2, "2025-12-13", "pending"),
    ]
    res = indicators(rec, "2025-01-01..2025-12-31", "2025-11-30")["l2-reviews"]
    assert [(e["due"], e["meeting_id"], e["done"]) for e in res["exceptions"]] == [
        ("2025-03-31", "M2", "2025-07-01"), ("2025-06-23", "M2", "2025-07-01"),
    ]


def test_outcome_level_sets_the_next_interval_and_chain():
    # A Level 2 meeting raising the case to Level 3: next review 42 days later, on L3.
    rec = _ind([
        {"meeting_id": "M1", "ref": "A", "date": "2026-09-01", "outcome_level": "3"},
    ])
    assert reviews(rec, "2026-09-02") == [(3, "2026-10-13", "pending")]


def test_outcome_level_defaults_to_the_meeting_level():
    rec = _ind([{"meeting_id": "M1", "ref": "A", "date": "2026-09-01", "level": "3"}])
    assert reviews(rec, "2026-09-02") == [(3, "2026-10-13", "pending")]


def test_outcome_exit_or_level1_means_no_further_review():
    rec = _ind([
        {"meeting_id": "M1", "ref": "A", "date": "2026-01-05", "outcome_level": "exit"},
    ], individuals=[{"ref": "A"}, {"ref": "B"}])
    rec2 = _ind([
        {"meeting_id": "M1", "ref": "B", "date": "2026-01-05", "outcome_level": "1"},
    ], individuals=[{"ref": "B"}])
    assert reviews(rec, "2026-12-31") == []
    assert reviews(rec2, "2026-12-31") == []


def test_case_archived_before_the_due_date_has_no_review_due():
    # Due 2026-11-23; archived 2026-11-20.
    rec = _ind([{"meeting_id": "M1", "ref": "A", "date": "2026-08-31"}],
               individuals=[{"ref": "A", "mappa_end": "2026-11-20"}])
    assert reviews(rec, "2026-12-31") == []


def test_case_archived_on_the_due_date_has_no_review_due():
    rec = _ind([{"meeting_id": "M1", "ref": "A", "date": "2026-08-31"}],
               individuals=[{"ref": "A", "mappa_end": "2026-11-23"}])
    assert reviews(rec, "2026-12-31") == []


def test_archive_after_as_of_is_not_yet_known():
    rec = _ind([{"meeting_id": "M1", "ref": "A", "date": "2026-08-31"}],
               individuals=[{"ref": "A", "mappa_end": "2026-11-20"}])
    assert reviews(rec, "2026-11-10") == [(2, "2026-11-23", "pending")]


def test_custody_pauses_the_chain_and_it_resumes_after_release():
    # Due 2025-03-31 falls in custody (2025-03-01 .. 2025-06-02): it falls away.
    # Next: release 2025-06-02 + 84 = 08-25 (late), 11-17 (late), 2026-02-09 (pending).
    rec = _ind([{"meeting_id": "M1", "ref": "A", "date": "2025-01-06"}],
               individuals=[{"ref": "A", "custody_from": "2025-03-01",
                             "release_date": "2025-06-02", "release_level": "2"}])
    assert reviews(rec, "2025-12-31") == [
        (2, "2025-08-25", "late"), (2, "2025-11-17", "late"), (2, "2026-02-09", "pending"),
    ]


def test_meeting_after_release_meets_the_post_release_due_date():
    rec = _ind([
        {"meeting_id": "M1", "ref": "A", "date": "2025-01-06"},
        {"meeting_id": "M2", "ref": "A", "date": "2025-08-01"},
    ], individuals=[{"ref": "A", "custody_from": "2025-03-01", "release_date": "2025-06-02"}])
    # 2025-08-01 + 84 = 10-24
    assert reviews(rec, "2025-09-30") == [(2, "2025-08-25", "met"), (2, "2025-10-24", "pending")]


def test_meeting_in_custody_restarts_the_chain():
    # M2 (an SPS RMT meeting) on 2025-05-01 restarts: 05-01 + 84 = 07-24, after release.
    rec = _ind([
        {"meeting_id": "M1", "ref": "A", "date": "2025-01-06"},
        {"meeting_id": "M2", "ref": "A", "date": "2025-05-01", "setting": "custody"},
        {"meeting_id": "M3", "ref": "A", "date": "2025-07-20"},
    ], individuals=[{"ref": "A", "custody_from": "2025-03-01", "release_date": "2025-06-02"}])
    assert reviews(rec, "2025-08-31") == [(2, "2025-07-24", "met"), (2, "2025-10-12", "pending")]


def test_due_date_on_the_release_date_is_not_paused():
    # 2025-01-06 + 84 = 2025-03-31 = release date: custody is custody_from <= due < release.
    rec = _ind([{"meeting_id": "M1", "ref": "A", "date": "2025-01-06"}],
               individuals=[{"ref": "A", "custody_from": "2025-02-01", "release_date": "2025-03-31"}])
    assert reviews(rec, "2025-04-30")[0] == (2, "2025-03-31", "late")


def test_custody_with_no_release_date_stops_the_chain():
    rec = _ind([{"meeting_id": "M1", "ref": "A", "date": "2025-01-06"}],
               individuals=[{"ref": "A", "status": "custody", "custody_from": "2025-02-01"}])
    assert reviews(rec, "2026-04-30") == []


def test_meetings_after_as_of_are_not_yet_held():
    rec = _ind([
        {"meeting_id": "M1", "ref": "A", "date": "2026-07-06"},
        {"meeting_id": "M2", "ref": "A", "date": "2026-09-28"},
    ])
    assert reviews(rec, "2026-09-27") == [(2, "2026-09-28", "pending")]


def test_review_due_on_as_of_with_no_meeting_is_pending_and_late_the_day_after():
    # SPEC (2026-11-26): on its due day a review is still pending; it is late from the
    # next day. 2026-07-06 + 84 = 2026-09-28; + 84 = 2026-12-21.
    rec = _ind([{"meeting_id": "M1", "ref": "A", "date": "2026-07-06"}])
    assert reviews(rec, "2026-09-28") == [(2, "2026-09-28", "pending")]
    on_day = indicators(rec, "2026-27-Q2", "2026-09-28")["l2-reviews"]
    assert (on_day["numerator"], on_day["denominator"], on_day["pending"]) == (0, 0, 1)
    assert on_day["exceptions"] == [] and on_day["met"] is None
    assert reviews(rec, "2026-09-29") == [(2, "2026-09-28", "late"), (2, "2026-12-21", "pending")]
    next_day = indicators(rec, "2026-27-Q2", "2026-09-29")["l2-reviews"]
    assert (next_day["numerator"], next_day["denominator"], next_day["pending"]) == (0, 1, 0)


def test_quarter_and_year_boundaries():
    # 2026-01-06 + 84 = 2026-03-31 (2025-26 Q4); 2026-01-07 + 84 = 2026-04-01 (2026-27 Q1)
    rec = _ind([
        {"meeting_id": "M1", "ref": "A", "date": "2026-01-06"},
        {"meeting_id": "M2", "ref": "B", "date": "2026-01-07"},
    ], individuals=[{"ref": "A"}, {"ref": "B"}])
    q4 = indicators(rec, "2025-26-Q4", "2026-06-30")["l2-reviews"]
    q1 = indicators(rec, "2026-27-Q1", "2026-06-30")["l2-reviews"]
    year = indicators(rec, "2025-26", "2026-06-30")["l2-reviews"]
    assert [e["ref"] for e in q4["exceptions"]] == ["A"] and q4["denominator"] == 1
    # Q1: B's 04-01, A's 06-23 and B's 06-24, all late.
    assert [(e["ref"], e["due"]) for e in q1["exceptions"]] == [
        ("A", "2026-06-23"), ("B", "2026-04-01"), ("B", "2026-06-24"),
    ]
    assert year["denominator"] == 1


def test_no_meetings_means_no_chain():
    rec = _ind([], individuals=[{"ref": "A", "level": "3"}])
    res = indicators(rec, "2026-27", "2027-03-31")["l3-reviews"]
    assert (res["denominator"], res["pending"], res["percent"], res["met"]) == (0, 0, None, None)


# ----------------------------------------- entry points and custody history (issue 14)


def test_entry_with_no_meeting_for_three_intervals_has_three_late_due_dates_in_their_quarters():
    # At Level 2 since 2025-01-06, never reviewed: 2025-01-06 + 84 = 03-31 (2024-25 Q4),
    # + 84 = 06-23 (2025-26 Q1), + 84 = 09-15 (Q2), + 84 = 12-08 (pending on 2025-11-30).
    rec = records(individuals=[{"ref": "A", "level": "2", "level_from": "2025-01-06"}],
                  meetings=[])
    assert reviews(rec, "2025-11-30") == [
        (2, "2025-03-31", "late"), (2, "2025-06-23", "late"), (2, "2025-09-15", "late"),
        (2, "2025-12-08", "pending"),
    ]
    for quarter, due in (("2024-25-Q4", "2025-03-31"), ("2025-26-Q1", "2025-06-23"),
                         ("2025-26-Q2", "2025-09-15")):
        res = indicators(rec, quarter, "2025-11-30")["l2-reviews"]
        assert (res["numerator"], res["denominator"], res["pending"]) == (0, 1, 0), quarter
        assert [(e["due"], e["done"], e["meeting_id"]) for e in res["exceptions"]] == [
            (due, None, None)]
    q3 = indicators(rec, "2025-26-Q3", "2025-11-30")["l2-reviews"]
    assert (q3["numerator"], q3["denominator"], q3["pending"]) == (0, 0, 1)
    assert q3["counts"] == {"open_cases": 1, "overdue": 1, "due_14_days": 1}


def test_entry_before_as_of_only_when_level_from_is_on_or_before_it():
    rec = records(individuals=[{"ref": "A", "level": "2", "level_from": "2025-01-06"}],
                  meetings=[])
    assert reviews(rec, "2025-01-05") == []
    assert reviews(rec, "2025-01-06") == [(2, "2025-03-31", "pending")]


def test_entry_met_by_a_meeting_on_the_entry_day_is_that_meetings_chain():
    # Level 3 decided at M1 on 2026-07-06: no separate entry point, so nothing is met by
    # M1 itself; 07-06 + 42 = 08-17, met by M2 (08-10); 08-10 + 42 = 09-21 pending.
    rec = records(individuals=[{"ref": "A", "level": "3", "level_from": "2026-07-06"}],
                  meetings=[{"meeting_id": "M1", "ref": "A", "date": "2026-07-06", "level": "3"},
                            {"meeting_id": "M2", "ref": "A", "date": "2026-08-10", "level": "3"}])
    assert reviews(rec, "2026-09-01") == [(3, "2026-08-17", "met"), (3, "2026-09-21", "pending")]
    res = indicators(rec, "2026-27-Q2", "2026-09-01")["l3-reviews"]
    assert (res["numerator"], res["denominator"], res["pending"]) == (1, 1, 1)


def test_entry_cuts_an_earlier_level2_chain_when_the_case_goes_to_level3_without_a_meeting():
    # Level 2 meeting M1 2026-01-05: due 03-30 (missed, late), then 06-22. Moved to Level 3
    # on 2026-06-15 with no meeting: the Level 2 due date 06-22 (after the entry) is
    # dropped; the Level 3 chain starts at 06-15: 07-27 late, 09-07 late, 10-19 pending.
    rec = records(individuals=[{"ref": "A", "level": "3", "level_from": "2026-06-15"}],
                  meetings=[{"meeting_id": "M1", "ref": "A", "date": "2026-01-05"}])
    assert reviews(rec, "2026-09-30") == [
        (2, "2026-03-30", "late"), (3, "2026-07-27", "late"), (3, "2026-09-07", "late"),
        (3, "2026-10-19", "pending"),
    ]
    l2 = indicators(rec, "2026-27-Q1", "2026-09-30")["l2-reviews"]
    assert (l2["numerator"], l2["denominator"], l2["pending"]) == (0, 0, 0)
    l3 = indicators(rec, "2026-27-Q2", "2026-09-30")["l3-reviews"]
    assert (l3["numerator"], l3["denominator"]) == (0, 2)
    # The missed Level 2 review is no longer open: the entry point restarted the chain.
    assert indicators(rec, "2026-27-Q2", "2026-09-30")["l2-reviews"]["counts"]["overdue"] == 0
    assert l3["counts"]["overdue"] == 1


def test_entry_point_inside_a_custody_period_pauses_until_release():
    # Level 2 from 2026-02-02 while in custody 2026-01-05 .. 2026-05-04: the first due date,
    # 02-02 + 84 = 04-27, falls in custody and falls away; next 05-04 + 84 = 07-27 (late
    # on 2026-09-30), then 10-19 pending.
    rec = records(individuals=[{
        "ref": "A", "level": "2", "level_from": "2026-02-02", "custody_from": "2026-01-05",
        "release_date": "2026-05-04", "release_level": "2"}], meetings=[])
    assert reviews(rec, "2026-09-30") == [(2, "2026-07-27", "late"), (2, "2026-10-19", "pending")]


def test_second_custody_period_after_a_first_pauses_the_chain_in_each():
    # M1 2025-01-06: due 03-31 falls in the past period 03-01 .. 05-01 (custody.csv); next
    # 05-01 + 84 = 07-24 falls in the current period 07-01 .. 10-01; next 10-01 + 84 =
    # 12-24, late on 2025-12-31; then 2026-03-18 pending.
    rec = records(individuals=[{
        "ref": "A", "custody_from": "2025-07-01", "release_date": "2025-10-01",
        "release_level": "2"}],
        meetings=[{"meeting_id": "M1", "ref": "A", "date": "2025-01-06"}],
        custody=[{"ref": "A", "custody_from": "2025-03-01", "release_date": "2025-05-01",
                  "release_level": "2"}])
    assert reviews(rec, "2025-12-31") == [(2, "2025-12-24", "late"), (2, "2026-03-18", "pending")]


def test_meeting_after_release_meets_the_due_date_after_a_past_custody_period():
    # M1 2025-01-06: due 03-31 falls in the past period 03-01 .. 05-01; next 05-01 + 84 =
    # 07-24, met by M2 on 2025-07-20 (after the release). M2's own chain: 07-20 + 84 =
    # 10-12, after the current period 08-01 .. 10-01, so pending on 2025-10-01.
    rec = records(individuals=[{
        "ref": "A", "custody_from": "2025-08-01", "release_date": "2025-10-01",
        "release_level": "2"}],
        meetings=[{"meeting_id": "M1", "ref": "A", "date": "2025-01-06"},
                  {"meeting_id": "M2", "ref": "A", "date": "2025-07-20"}],
        custody=[{"ref": "A", "custody_from": "2025-03-01", "release_date": "2025-05-01",
                  "release_level": "2"}])
    assert reviews(rec, "2025-10-01") == [(2, "2025-07-24", "met"), (2, "2025-10-12", "pending")]

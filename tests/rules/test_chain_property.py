"""The vectorised review chain agrees with a plain loop written straight from SPEC section 3.

The loop below is the rule as the SPEC words it, one due date at a time; the product
computes whole regions at once with numpy. Hypothesis looks for any history where they
differ (meetings, outcome levels, custody spells, archives and as_of dates).
"""

import datetime as dt

import pandas as pd
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from mappa_core.rules.deadlines import as_stood, review_items
from mappa_core.rules.records import Records
from tests import frames

BASE = dt.date(2024, 1, 1)
INTERVAL = {"2": 84, "3": 42, "1": None, "exit": None}


def reference(meetings, periods, end, as_of, level=2, level_from=None):
    """[(level, due, status)] for one individual, by the SPEC's words (2026-11-26).

    `periods`: every custody period as (custody_from, release or None), past and current.
    """
    meetings = sorted((d, o, False) for d, o in meetings if d <= as_of)
    # Entry point: a case now at Level 2/3 restarts its chain on level_from, as if a
    # meeting with outcome_level = level were held, unless a meeting is held that day.
    if level_from is not None and level_from <= as_of and level in (2, 3) \
            and level_from not in {d for d, _, _ in meetings}:
        meetings = sorted(meetings + [(level_from, str(level), True)])
    periods = [(f, r) for f, r in periods if f <= as_of]
    end = end if end is not None and end <= as_of else None
    out = []
    for i, (held, outcome, _entry) in enumerate(meetings):
        iv = INTERVAL[outcome]
        if iv is None:
            continue
        chain = 3 if iv == 42 else 2
        nxt, nxt_entry = meetings[i + 1][::2] if i + 1 < len(meetings) else (None, False)
        due, first, released = held + dt.timedelta(iv), True, None
        while True:
            if end is not None and end <= due:
                break  # archived: the chain ends
            period = next(((f, r) for f, r in periods if f <= due and (r is None or due < r)), None)
            if period is not None:
                if period[1] is None:
                    break  # in custody with no release date: nothing more falls due
                due, first, released = period[1] + dt.timedelta(iv), True, period[1]
                continue  # this due date falls away
            if nxt is not None and nxt <= due:
                # An entry point meets nothing; a meeting still in custody meets nothing.
                if first and not nxt_entry and (released is None or nxt >= released):
                    out.append((chain, due, "met"))
                break  # the meeting (or entry point) restarts the chain
            if due < as_of:
                out.append((chain, due, "late"))
                due, first = due + dt.timedelta(iv), False
                continue
            out.append((chain, due, "pending"))  # on its own day a due date is pending
            break
    return sorted(out, key=lambda x: (x[1], x[0], x[2]))


def _records(meetings, periods, end, level=2, level_from=None):
    ts = lambda d: pd.Timestamp(d) if d is not None else pd.NaT
    current = periods[-1] if periods else (None, None)
    ind = pd.DataFrame({
        "ref": ["A"], "area": ["X"], "category": [1], "level": [level], "chair_id": ["c"],
        "mappa_end": pd.Series([ts(end)], dtype="datetime64[s]"),
        "level_from": pd.Series([ts(level_from)], dtype="datetime64[s]"),
        "custody_from": pd.Series([ts(current[0])], dtype="datetime64[s]"),
        "release_date": pd.Series([ts(current[1])], dtype="datetime64[s]"),
        "release_level": [None],
    })
    past = periods[:-1]
    custody = pd.DataFrame({
        "ref": ["A"] * len(past),
        "custody_from": pd.Series([ts(f) for f, _ in past], dtype="datetime64[s]"),
        "release_date": pd.Series([ts(r) for _, r in past], dtype="datetime64[s]"),
        "release_level": [None] * len(past),
    })
    m = pd.DataFrame({
        "meeting_id": [f"M{i}" for i in range(len(meetings))],
        "ref": ["A"] * len(meetings),
        "date": pd.Series([ts(d) for d, _ in meetings], dtype="datetime64[s]"),
        "level": [2] * len(meetings),
        "outcome_level": [o for _, o in meetings],
        "minutes_issued": pd.Series([pd.NaT] * len(meetings), dtype="datetime64[s]"),
        "rmp_ratified": pd.Series([pd.NaT] * len(meetings), dtype="datetime64[s]"),
        "reason": [None] * len(meetings),
    })
    inv = pd.DataFrame({"meeting_id": pd.Series([], dtype=str)})
    return Records(ind, m, inv, pd.DataFrame(), custody=custody)


days = st.integers(min_value=0, max_value=900)
history = st.fixed_dictionaries({
    "meetings": st.lists(
        st.tuples(days, st.sampled_from(["2", "3", "2", "3", "1", "exit"])),
        max_size=8, unique_by=lambda x: x[0],
    ),
    # Up to three custody periods, one after another: (gap before it, length or None for
    # no release date yet: only the last, current one can be open).
    "custody": st.lists(st.tuples(st.integers(0, 300), st.integers(1, 400)), max_size=3),
    "open_custody": st.booleans(),
    "end": st.one_of(st.none(), days),
    "level": st.sampled_from([1, 2, 3]),
    "level_from": st.one_of(st.none(), days),
    "as_of": st.integers(min_value=0, max_value=1100),
})


def _h(meetings=(), custody=(), open_custody=False, end=None, level=2, level_from=None,
       as_of=0):
    return {"meetings": list(meetings), "custody": list(custody), "open_custody": open_custody,
            "end": end, "level": level, "level_from": level_from, "as_of": as_of}


def _history(h):
    """(meetings, custody periods, archive date, level, level_from, as_of) as dates."""
    at = lambda n: BASE + dt.timedelta(days=n)
    meetings = [(at(d), o) for d, o in h["meetings"]]
    periods, day = [], 0
    for gap, length in h["custody"]:
        day += gap
        periods.append((at(day), at(day + length)))
        day += length
    if periods and h["open_custody"]:
        periods[-1] = (periods[-1][0], None)
    end = at(h["end"]) if h["end"] is not None else None
    level_from = at(h["level_from"]) if h["level_from"] is not None else None
    return meetings, periods, end, h["level"], level_from, at(h["as_of"])


@settings(max_examples=600, deadline=None)
@given(history)
# Hand-picked edges that random dates rarely hit: a due date on as_of itself; an entry
# point on a meeting day; an entry inside a custody period; two periods in a row.
@example(_h(meetings=[(0, "2")], as_of=84))
@example(_h(meetings=[(0, "2")], as_of=85))
@example(_h(meetings=[(10, "3")], level=3, level_from=10, as_of=200))
@example(_h(meetings=[(0, "2")], level=3, level_from=50, as_of=300))
@example(_h(level=2, level_from=20, custody=[(0, 100)], as_of=400))
@example(_h(meetings=[(0, "3")], level=3, custody=[(10, 50), (20, 60)], as_of=500))
def test_vectorised_chain_matches_the_spec_loop(h):
    meetings, periods, end, level, level_from, as_of = _history(h)

    expected = reference(meetings, periods, end, as_of, level, level_from)
    records = as_stood(_records(meetings, periods, end, level, level_from), as_of)
    got = review_items(records, as_of)
    actual = sorted(
        ((int(lv), d.date(), s) for lv, d, s in zip(got["level"], got["due"], got["status"])),
        key=lambda x: (x[1], x[0], x[2]),
    )
    assert actual == expected


@pytest.mark.parametrize("h", [
    _h(meetings=[(0, "2"), (90, "3"), (200, "exit")], custody=[(10, 30), (40, 50)], end=700,
       level=3, level_from=150, as_of=800),
    _h(meetings=[(5, "1")], custody=[(0, 20), (30, 40)], open_custody=True, as_of=300),
    _h(level=2, level_from=20, as_of=400),
])
def test_the_hand_built_frames_are_what_the_loader_gives(h):
    """The property test builds its frames by hand: tests/frames.py costs about 15 ms a
    build (nine seconds over 600 examples). Each column it builds has the loader's dtype
    and values (tests/frames.py equals the loader: tests/storage/test_frames.py)."""
    meetings, periods, end, level, level_from, _as_of = _history(h)
    hand = _records(meetings, periods, end, level, level_from)
    iso = lambda d: d.isoformat() if d is not None else ""
    current = periods[-1] if periods else (None, None)
    loaded = frames.records(
        individuals=[{"ref": "A", "area": "X", "category": "1", "level": str(level),
                      "chair_id": "c", "mappa_end": iso(end), "level_from": iso(level_from),
                      "custody_from": iso(current[0]), "release_date": iso(current[1])}],
        custody=[{"ref": "A", "custody_from": iso(f), "release_date": iso(r)}
                 for f, r in periods[:-1]],
        meetings=[{"meeting_id": f"M{i}", "ref": "A", "date": iso(d), "outcome_level": o}
                  for i, (d, o) in enumerate(meetings)],
    )
    for name in ("individuals", "meetings", "custody"):
        mine = getattr(hand, name)
        # With no rows, a column's dtype is pandas' guess (float64 here, object from the
        # database) and no rule reads a value: the columns and the date dtypes must agree.
        pd.testing.assert_frame_equal(mine, getattr(loaded, name)[list(mine.columns)],
                                      check_dtype=not mine.empty, obj=name)
        assert mine.select_dtypes("datetime").columns.equals(
            getattr(loaded, name)[list(mine.columns)].select_dtypes("datetime").columns), name

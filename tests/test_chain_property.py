"""The vectorised review chain agrees with a plain loop written straight from SPEC section 3.

The loop below is the rule as the SPEC words it, one due date at a time; the product
computes whole regions at once with numpy. Hypothesis looks for any history where they
differ (meetings, outcome levels, custody spells, archives and as_of dates).
"""

import datetime as dt

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from mappa_core.deadlines import as_stood, review_items
from mappa_core.queries import Records

BASE = dt.date(2024, 1, 1)
INTERVAL = {"2": 84, "3": 42, "1": None, "exit": None}


def reference(meetings, custody_from, release, end, as_of):
    """[(level, due, status)] for one individual, by the SPEC's words."""
    meetings = sorted((d, o) for d, o in meetings if d <= as_of)
    end = end if end is not None and end <= as_of else None
    out = []
    for i, (held, outcome) in enumerate(meetings):
        iv = INTERVAL[outcome]
        if iv is None:
            continue
        level = 3 if iv == 42 else 2
        nxt = meetings[i + 1][0] if i + 1 < len(meetings) else None
        due, first, after_release = held + dt.timedelta(iv), True, False
        while True:
            if end is not None and end <= due:
                break  # archived: the chain ends
            if custody_from is not None and custody_from <= due and (release is None or due < release):
                if release is None:
                    break  # in custody with no release date: nothing more falls due
                due, first, after_release = release + dt.timedelta(iv), True, True
                continue  # this due date falls away
            if nxt is not None and nxt <= due:
                if first and (not after_release or nxt >= release):
                    out.append((level, due, "met"))
                break  # the meeting restarts the chain
            if due <= as_of:
                out.append((level, due, "late"))
                due, first = due + dt.timedelta(iv), False
                continue
            out.append((level, due, "pending"))
            break
    return sorted(out, key=lambda x: (x[1], x[0], x[2]))


def _records(meetings, custody_from, release, end):
    ts = lambda d: pd.Timestamp(d) if d is not None else pd.NaT
    ind = pd.DataFrame({
        "ref": ["A"], "area": ["X"], "category": [1], "level": [2], "chair_id": ["c"],
        "mappa_end": pd.Series([ts(end)], dtype="datetime64[s]"),
        "custody_from": pd.Series([ts(custody_from)], dtype="datetime64[s]"),
        "release_date": pd.Series([ts(release)], dtype="datetime64[s]"),
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
    return Records(ind, m, inv, pd.DataFrame())


days = st.integers(min_value=0, max_value=900)
history = st.fixed_dictionaries({
    "meetings": st.lists(
        st.tuples(days, st.sampled_from(["2", "3", "2", "3", "1", "exit"])),
        max_size=8, unique_by=lambda x: x[0],
    ),
    "custody": st.one_of(st.none(), st.tuples(days, st.one_of(st.none(), st.integers(1, 400)))),
    "end": st.one_of(st.none(), days),
    "as_of": st.integers(min_value=0, max_value=1100),
})


@settings(max_examples=400, deadline=None)
@given(history)
def test_vectorised_chain_matches_the_spec_loop(h):
    at = lambda n: BASE + dt.timedelta(days=n)
    meetings = [(at(d), o) for d, o in h["meetings"]]
    custody_from = release = None
    if h["custody"] is not None:
        custody_from = at(h["custody"][0])
        release = custody_from + dt.timedelta(h["custody"][1]) if h["custody"][1] else None
    end = at(h["end"]) if h["end"] is not None else None
    as_of = at(h["as_of"])

    expected = reference(meetings, custody_from, release, end, as_of)
    records = as_stood(_records(meetings, custody_from, release, end), as_of)
    got = review_items(records, as_of)
    actual = sorted(
        ((int(lv), d.date(), s) for lv, d, s in zip(got["level"], got["due"], got["status"])),
        key=lambda x: (x[1], x[0], x[2]),
    )
    assert actual == expected

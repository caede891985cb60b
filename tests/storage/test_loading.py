"""Loading only what the rules need (load_records(since=...)) gives the same answers as
loading everything, on a synthetic region with five years of history."""

import datetime as dt

import pytest

from mappa_core.synthetic_region import write_demo_data
from mappa_core.rules.due import due_items
from mappa_core.storage.importer import import_directory
from mappa_core.rules.indicators import compute_deadlines, compute_indicators
from mappa_core.rules.periods import parse_period
from mappa_core.rules.records import window_start
from mappa_core.storage.queries import load_records

UNTIL = dt.date(2026, 11, 26)


@pytest.fixture(scope="module")
def region(tmp_path_factory):
    from mappa_core.storage import db

    path = tmp_path_factory.mktemp("region")
    write_demo_data(path / "csv", individuals=4000, years=5, seed=11, until=UNTIL)
    engine = db.make_engine(f"sqlite:///{path / 'r.db'}")
    db.ensure_schema(engine)
    assert import_directory(engine, path / "csv").ok
    return engine


@pytest.mark.parametrize("period, as_of", [
    ("2026-27-Q3", "2026-11-26"), ("2026-27", "2026-11-26"), ("2025-26-Q2", "2026-11-26"),
    ("2024-25", "2025-06-30"), ("2026-01-01..2026-01-31", "2026-03-01"),
])
def test_pruned_load_gives_the_same_indicators_and_due_items(region, period, as_of):
    as_of = dt.date.fromisoformat(as_of)
    per = parse_period(period)
    full = compute_deadlines(load_records(region), as_of)
    pruned_records = load_records(region, since=window_start(as_of, per.start))
    pruned = compute_deadlines(pruned_records, as_of)
    assert len(pruned_records.meetings) < len(load_records(region).meetings)
    a = [r.to_dict() for r in compute_indicators(full, per)]
    b = [r.to_dict() for r in compute_indicators(pruned, per)]
    assert a == b
    assert any(r["denominator"] for r in a)  # the comparison is not between empty answers
    cols = ["kind", "ref", "meeting_id", "agency", "deadline", "item_key"]
    assert due_items(full, 30)[cols].equals(due_items(pruned, 30)[cols])


@pytest.mark.parametrize("topic", ["level2", "level3", "attendance", "contributions", "custody",
                                   "minutes", "disclosure"])
def test_each_topic_alone_gives_the_same_answers_as_all(region, topic):
    """A topic loads only the tables it needs (no invitations for reviews); same answers."""
    from mappa_core.answers import status

    as_of = dt.date(2026, 11, 26)
    everything = {i["id"]: i for i in status(region, as_of)["indicators"]}
    for ind in status(region, as_of, topic)["indicators"]:
        assert ind == everything[ind["id"]]


def test_deadline_frames_are_built_when_first_read_and_once_across_threads(region):
    """`status level2` pays for the review chains only; a frame shared by the Slack
    handlers' threads is built once, and an area's frames are cut from the whole."""
    from concurrent.futures import ThreadPoolExecutor

    from mappa_core.rules import deadlines
    from mappa_core.rules.indicators import restrict
    from mappa_core.rules.status import status_of

    as_of = dt.date(2026, 11, 26)
    records = load_records(region, since=window_start(as_of, dt.date(2026, 10, 1)))
    c = compute_deadlines(records, as_of)
    status_of(c, "level2")
    assert set(c._frames) == {"reviews"}

    with ThreadPoolExecutor(8) as pool:
        frames = list(pool.map(lambda _: c.invitations, range(16)))
    assert all(f is frames[0] for f in frames)  # built once, not once per thread
    eager = deadlines.invitation_items(c.records, deadlines.meeting_items(c.records, as_of))
    assert frames[0].equals(eager)

    area = sorted(set(records.individuals["area"]))[0]
    part = restrict(c, area)
    assert part.meetings.equals(c.meetings[c.meetings["area"] == area])
    assert len(part.releases) <= len(c.releases)


def test_a_level_1_case_in_the_community_while_in_custody_is_loaded_for_its_check(scenario, tmp_path):
    """SPEC section 3: status_custody_mismatch is of any individual. A Level 1 case with no
    meeting was left out of the pruned load (every answer loads with `since`), so the check
    never saw it (issue 23.7)."""
    from mappa_core.answers import status

    engine = scenario(tmp_path, individuals=[
        {"ref": "L1", "level": "1", "status": "community", "custody_from": "2026-10-20"},
        {"ref": "L1-FINE", "level": "1", "status": "custody", "custody_from": "2026-10-20"},
        {"ref": "L2", "level": "2", "level_from": "2026-09-01"}])
    as_of = dt.date(2026, 11, 26)
    pruned = load_records(engine, since=window_start(as_of, parse_period("2026-27-Q3").start))
    assert "L1" in set(pruned.individuals["ref"])
    rows = status(engine, as_of)["data_quality"]
    assert rows == [{"check": "status_custody_mismatch", "ref": "L1",
                     "detail": "status community but in custody since 2026-10-20 with no "
                               "release date"}]

"""Audits (reproducible stratified samples, findings, reminders) and Significant Case Review
actions (recording, overdue chasers and escalations)."""

import datetime as dt

import pandas as pd
import pytest

from bot.cli import main
from mappa_core.storage import audits_and_scrs
from mappa_core.storage.importer import import_directory
from mappa_core.rules.periods import parse_period
from mappa_core.rules.planner import NudgeRules, plan_audit_reminders, plan_scr_overdue
from mappa_core.storage.queries import load_people, load_records
from tests.conftest import GRAMPIAN

YEAR = parse_period("2026-27")


@pytest.fixture
def grampian(engine):
    assert import_directory(engine, GRAMPIAN).ok
    return engine


def test_audit_population_and_reproducible_stratified_sample(grampian):
    # Level 2 meetings in 2026-27: 0101, 0103, 0104, 0107, 0109; Level 3: 0102, 0104,
    # 0105, 0106, 0110. Level 1 open in the year: 0108.
    assert audits_and_scrs.audit_population(grampian, YEAR, 2) == ["GRA-0101", "GRA-0103", "GRA-0104", "GRA-0107", "GRA-0109"]
    assert audits_and_scrs.audit_population(grampian, YEAR, 3) == ["GRA-0102", "GRA-0104", "GRA-0105", "GRA-0106", "GRA-0110"]
    assert audits_and_scrs.audit_population(grampian, YEAR, 1) == ["GRA-0108"]
    a = audits_and_scrs.sample_cases(grampian, YEAR, [2, 3], 3, seed=42)
    b = audits_and_scrs.sample_cases(grampian, YEAR, [2, 3], 3, seed=42)
    assert a.equals(b) and list(a["level"]) == [2, 2, 2, 3, 3, 3]
    others = {tuple(audits_and_scrs.sample_cases(grampian, YEAR, [2, 3], 3, seed=s)["ref"]) for s in range(10)}
    assert len(others) > 1  # the seed matters
    assert len(audits_and_scrs.sample_cases(grampian, YEAR, [1], 10, seed=1)) == 1  # all, when fewer


def test_findings_recorded_only_for_sampled_cases(grampian):
    sample = audits_and_scrs.sample_cases(grampian, YEAR, [3], 2, seed=1)
    assert audits_and_scrs.save_sample(grampian, "2026-27", sample, 1, dt.datetime.now(dt.UTC)) == 2
    assert audits_and_scrs.save_sample(grampian, "2026-27", sample, 1, dt.datetime.now(dt.UTC)) == 0
    ref = sample["ref"].iloc[0]
    audits_and_scrs.record_case_audit(grampian, "2026-27", ref, {"referral_reviewed": True, "rmp_quality": "good",
                                      "improvements": "Earlier police checks"}, dt.date(2027, 1, 10))
    with pytest.raises(audits_and_scrs.OversightError, match="not in the 2026-27 audit sample"):
        audits_and_scrs.record_case_audit(grampian, "2026-27", "GRA-0108", {}, dt.date(2027, 1, 10))
    with pytest.raises(audits_and_scrs.OversightError, match="rmp quality"):
        audits_and_scrs.record_case_audit(grampian, "2026-27", ref, {"rmp_quality": "superb"}, dt.date(2027, 1, 10))
    cases, _ = audits_and_scrs.audits_frames(grampian)
    done = cases[cases["completed_on"].notna()]
    assert list(done["ref"]) == [ref] and done["rmp_quality"].item() == "good"


def test_audit_reminders_until_done(grampian):
    people = load_people(grampian)
    empty = pd.DataFrame(columns=["year", "completed_on"]), pd.DataFrame(columns=["quarter", "chair_id"])
    q3 = plan_audit_reminders(dt.date(2026, 11, 26), *empty, people, ["Grampian"])
    # In Q3: meeting audits of Q2 for both chairs; the case audit is not yet due.
    assert sorted(q3["item_key"]) == ["audit:meeting:2026-27-Q2:g-chair-1", "audit:meeting:2026-27-Q2:g-chair-2"]
    assert set(q3["recipient_id"]) == {"g-coord"} and set(q3["group_key"]) == {"digest|g-coord|2026-11-26"}
    q4 = plan_audit_reminders(dt.date(2027, 1, 12), *empty, people, ["Grampian"])
    assert "audit:case:2026-27" in set(q4["item_key"])
    done = (pd.DataFrame([{"year": "2026-27", "completed_on": dt.date(2027, 1, 11)}]),
            pd.DataFrame([{"quarter": "2026-27-Q3", "chair_id": "g-chair-1"}]))
    after = plan_audit_reminders(dt.date(2027, 1, 12), *done, people, ["Grampian"])
    assert list(after["item_key"]) == ["audit:meeting:2026-27-Q3:g-chair-2"]


def test_overdue_scr_action_chases_the_owner_and_escalates(grampian):
    scr = audits_and_scrs.add_scr(grampian, "Review A", "Grampian", dt.date(2026, 6, 1))
    rec = audits_and_scrs.add_recommendation(grampian, scr, "Share information sooner")
    late = audits_and_scrs.add_action(grampian, rec, "em-provider", dt.date(2026, 11, 20), "Protocol")
    audits_and_scrs.add_action(grampian, rec, "police", dt.date(2026, 12, 20), "Training")
    with pytest.raises(audits_and_scrs.OversightError, match="unknown agency"):
        audits_and_scrs.add_action(grampian, rec, "nobody", dt.date(2026, 12, 20), "x")
    records = load_records(grampian)
    actions = audits_and_scrs.scr_actions(grampian, dt.date(2026, 11, 26))
    assert list(actions["overdue"]) == [True, False]
    notes = plan_scr_overdue(dt.date(2026, 11, 26), actions, records.people, records.agencies, NudgeRules())
    chasers = notes[notes["rule"] == "scr"]
    assert list(chasers["address"]) == ["ops@em.example"]  # one e-mail per agency
    esc = notes[notes["rule"] == "escalation"]
    assert list(esc["recipient_id"]) == ["g-sog"] and list(esc["stage"]) == ["scr_overdue"]
    audits_and_scrs.add_update(grampian, late, "Protocol signed", dt.datetime.now(dt.UTC), done_on=dt.date(2026, 11, 26))
    actions = audits_and_scrs.scr_actions(grampian, dt.date(2026, 11, 27))
    assert not actions["overdue"].any()


def test_audit_and_scr_commands(sqlite_url, monkeypatch, capsys):
    monkeypatch.setenv("MAPPA_DATABASE_URL", sqlite_url)
    assert main(["import", str(GRAMPIAN)]) == 0
    assert main(["audit", "sample", "--year", "2026-27", "--levels", "2,3", "--n", "2", "--seed", "3", "--save"]) == 0
    out = capsys.readouterr().out
    assert "Level 2: 2 of 5" in out and "saved 4 new case(s)" in out
    assert main(["scr", "add", "Review B", "--area", "Grampian"]) == 0
    assert main(["scr", "recommend", "1", "Do better"]) == 0
    assert main(["scr", "action", "1", "Act", "--owner", "police", "--due", "2026-10-01"]) == 0
    capsys.readouterr()
    assert main(["scr", "list", "--overdue", "--as-of", "2026-11-26"]) == 0
    assert "OVERDUE #1 Review B | police" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["scr", "action", "9", "Act", "--owner", "police", "--due", "2026-10-01"])
    assert "no recommendation 9" in capsys.readouterr().err

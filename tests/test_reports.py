"""SOG reports: statistics and annual tables on hand-made records, the quarterly pack on
the Grampian example, CSV exports that spreadsheets cannot execute."""

import datetime as dt
import io
import json

import pandas as pd
import pytest

from bot.cli import main
from bot.exports import neutralise, quarterly_html, write_csv
from mappa_core.rules.periods import parse_period, previous_quarters
from mappa_core.rules.records import window_start
from mappa_core.storage.queries import load_records
from mappa_core.rules.reports import annual_tables, quarterly_pack, statistics
from tests.conftest import GRAMPIAN

D = dt.date.fromisoformat

INDIVIDUALS = [
    {"ref": "A", "category": "1", "level": "1", "mappa_start": "2020-01-01", "birth_year": "1980", "gender": "male"},
    {"ref": "B", "category": "1", "level": "2", "mappa_start": "2026-05-01", "birth_year": "2001", "gender": "male"},
    {"ref": "C", "category": "1", "level": "1", "status": "custody", "mappa_start": "2019-01-01"},
    {"ref": "D", "category": "3", "level": "2", "mappa_start": "2018-01-01"},
    {"ref": "E", "category": "3", "level": "3", "mappa_start": "2018-01-01", "mappa_end": "2026-06-15"},
    {"ref": "F", "category": "2", "level": "2", "status": "hospital", "mappa_start": "2017-01-01"},
]
EVENTS = [
    {"ref": "A", "date": "2026-05-10", "event": "missing"},
    {"ref": "A", "date": "2026-05-20", "event": "located"},
    {"ref": "B", "date": "2026-06-01", "event": "wanted"},
    {"ref": "A", "date": "2026-07-01", "event": "notification_breach"},
    {"ref": "C", "date": "2026-05-05", "event": "order_applied", "order_type": "SHPO"},
    {"ref": "C", "date": "2026-06-01", "event": "order_granted", "order_type": "SHPO"},
    {"ref": "D", "date": "2026-08-01", "event": "further_violent_offence"},
    {"ref": "F", "date": "2026-04-20", "event": "licence_recall"},
    {"ref": "A", "date": "2026-09-01", "event": "order_breach"},
]


@pytest.fixture
def stats_db(scenario, tmp_path):
    return scenario(tmp_path, individuals=INDIVIDUALS, events=EVENTS,
                    areas=[{"area": "Testshire", "population": "100000"}])


def _rows(df):
    return sorted(tuple(r) for r in df.itertuples(index=False))


def test_statistics_by_hand(stats_db):
    t = statistics(load_records(stats_db, with_events=True), D("2026-04-01"), D("2026-09-30"))
    assert _rows(t["individuals_by_category_level"]) == [(1, 1, 2), (1, 2, 1), (2, 2, 1), (3, 2, 1)]
    assert _rows(t["community_by_category_level"]) == [(1, 1, 1), (1, 2, 1), (3, 2, 1)]
    assert t["rso_in_community"].iloc[0, 0] == 2
    assert _rows(t["category3_level2_3_in_community"]) == [(2, 1)]
    assert _rows(t["new_cases"]) == [(1, 2, 1)]
    assert _rows(t["archived_cases"]) == [(3, 3, 1)]
    assert _rows(t["further_offences"]) == [("further_violent_offence", 3, 2, 1)]
    assert _rows(t["preventative_orders"]) == [("order_applied", "SHPO", 1), ("order_granted", "SHPO", 1)]
    assert _rows(t["order_breaches"]) == [(1, 1, 1)]
    assert _rows(t["licence_recalls"]) == [(2, 2, 1)]
    wm = t["wanted_missing"].set_index("event")
    assert wm.loc["wanted"].to_dict() == {"episodes": 1, "located": 0, "still_outstanding": 1, "median_days": 121.0}
    assert wm.loc["missing"].to_dict() == {"episodes": 1, "located": 1, "still_outstanding": 0, "median_days": 10.0}


def test_statistics_broken_down_by_age_band_and_gender(stats_db):
    t = statistics(load_records(stats_db, with_events=True), D("2026-04-01"), D("2026-09-30"),
                   by=("age_band", "gender"))
    rows = _rows(t["community_by_category_level"])
    assert (1, 1, "45-54", "male", 1) in rows and (1, 2, "25-34", "male", 1) in rows


def test_annual_tables_by_hand(stats_db):
    t = annual_tables(load_records(stats_db, with_events=True), parse_period("2026-27"), {"Testshire": 100000})
    t1 = t["table1"].set_index("area").loc["Testshire"].to_dict()
    assert t1 == {"rso_at_liberty_31_march": 2, "per_100000_population": 2.0,
                  "notification_breaches": 1, "wanted_31_march": 1, "missing_31_march": 0}
    t2 = t["table2"].set_index("area").loc["Testshire"].to_dict()
    assert t2 == {"orders_in_force_31_march": 1, "orders_imposed_in_year": 1, "breach_charges_in_year": 1}
    assert list(t["table1"]["area"]) == ["Testshire", "Total"]


def _grampian_pack(engine):
    from mappa_core.storage.importer import import_directory

    assert import_directory(engine, GRAMPIAN).ok
    period, as_of = parse_period("2026-27-Q3"), D("2027-01-31")
    records = load_records(engine, since=window_start(as_of, previous_quarters(period, 8)[0].start))
    return quarterly_pack(records, period, as_of)


def test_quarterly_pack_on_grampian(engine):
    pack = _grampian_pack(engine)
    expected = json.loads((GRAMPIAN / "expected.json").read_text())["queries"][0]["indicators"]
    got = {i["id"]: i for i in pack.indicators}
    for ind_id, exp in expected.items():
        assert (got[ind_id]["numerator"], got[ind_id]["denominator"]) == (exp["numerator"], exp["denominator"])
    assert pack.trend[-1]["label"] == "2026-27-Q3" and len(pack.trend) == 8
    assert pack.trend[-1]["l3-reviews"] == 40.0
    # Cases with a meeting at each level: Q2 L2 0101, 0103, 0104, 0107, 0109; L3 0102, 0110.
    # Q3 L2 0101, 0103, 0104; L3 0102, 0104, 0105, 0106, 0110.
    assert pack.caseload[-2:] == [{"quarter": "2026-27-Q2", "level2": 5, "level3": 2},
                                  {"quarter": "2026-27-Q3", "level2": 3, "level3": 5}]
    assert [(c["what"], c["kind"]) for c in pack.changes] == [
        ("Level 2 cases managed", "fall"), ("Level 3 cases managed", "rise")]
    dq = {d["check"]: d["count"] for d in pack.data_quality}
    assert dq["seniority_unknown"] == 1                                           # G14 cbsw-moray
    assert (dq["no_entry_date"], dq["status_custody_mismatch"]) == (0, 1)          # GRA-0109
    assert [(d["check"], d["ref"]) for d in pack.data_quality_cases] == [
        ("status_custody_mismatch", "GRA-0109"), ("seniority_unknown", "GRA-0106")]
    assert dq["Meetings with the disclosure decision left blank"] == 1            # G8
    assert dq["Meetings with no invitations recorded"] == 1                       # G3
    assert len(pack.exceptions) == sum(len(i["exceptions"]) for i in pack.indicators)


def test_quarterly_pack_html_is_self_contained_with_charts(engine):
    html = quarterly_html(_grampian_pack(engine), {"police": "Police Scotland"})
    assert html.count("<svg") == 10
    assert "src=" not in html and "href=" not in html and "<script" not in html
    assert "Questions for the SOG" in html and "Data quality" in html
    assert "<td>status_custody_mismatch</td><td>GRA-0109</td>" in html


def test_csv_export_neutralises_formulas():
    assert neutralise("=HYPERLINK(\"http://x\")") == "'=HYPERLINK(\"http://x\")"
    assert neutralise("+1") == "'+1" and neutralise("@SUM(A1)") == "'@SUM(A1)"
    assert neutralise("GRA-0101") == "GRA-0101" and neutralise(5) == 5
    buf = io.StringIO()
    write_csv(pd.DataFrame({"ref": ["=cmd|' /C calc'!A0", "ok"], "n": [1, 2]}), buf)
    assert buf.getvalue().splitlines()[1].startswith("'=cmd")


def test_report_commands(sqlite_url, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MAPPA_DATABASE_URL", sqlite_url)
    assert main(["import", str(GRAMPIAN)]) == 0
    out = tmp_path / "pack.html"
    assert main(["report", "quarterly", "--period", "2026-27-Q3", "--area", "Grampian",
                 "--as-of", "2027-01-31", "--out", str(out)]) == 0
    assert out.read_text().startswith("<!doctype html>")
    assert main(["report", "quarterly", "--period", "2026-27-Q3", "--as-of", "2027-01-31",
                 "--format", "csv", "--out", str(tmp_path / "csv")]) == 0
    # 3 l3 + 1 l2 + 2 police + 2 cbsw + 2 ra-written + 1 custody + 1 minutes + 2 disclosure
    assert (tmp_path / "csv" / "exceptions.csv").read_text().count("GRA-") == 14
    capsys.readouterr()
    assert main(["report", "compare", "--period", "2026-27-Q3", "--as-of", "2027-01-31"]) == 0
    assert "l3-reviews            40.0% (2/5)" in capsys.readouterr().out
    assert main(["report", "annual", "--year", "2026-27", "--out", str(tmp_path / "annual")]) == 0
    assert (tmp_path / "annual" / "annual.html").exists()
    assert main(["report", "stats", "--from", "2026-04-01", "--to", "2026-12-31"]) == 0
    assert "notification" not in capsys.readouterr().err

"""SOG reports: statistics and annual tables on hand-made records, the quarterly pack on
the Grampian example, CSV exports that spreadsheets cannot execute."""

import datetime as dt
import io
import json

import pandas as pd
import pytest

from bot.cli import main
from bot.exports import neutralise, quarterly_html, write_csv
from mappa_core.rules import reports
from mappa_core.rules.periods import parse_period
from mappa_core.rules.records import window_start
from mappa_core.storage.queries import load_records
from mappa_core.rules.reports import annual_tables, axis_label, quarterly_pack, statistics
from tests.conftest import GRAMPIAN
from tests.frames import records

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
def stats_records():
    """The records above with their events (as load_records(..., with_events=True)); the
    population is the annual tables' argument (areas.csv is read only by the CLI)."""
    return records(individuals=INDIVIDUALS, events=EVENTS)


def _rows(df):
    return sorted(tuple(r) for r in df.itertuples(index=False))


def test_statistics_by_hand(stats_records):
    t = statistics(stats_records, D("2026-04-01"), D("2026-09-30"))
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


def test_statistics_broken_down_by_age_band_and_gender(stats_records):
    t = statistics(stats_records, D("2026-04-01"), D("2026-09-30"),
                   by=("age_band", "gender"))
    rows = _rows(t["community_by_category_level"])
    assert (1, 1, "45-54", "male", 1) in rows and (1, 2, "25-34", "male", 1) in rows


def test_annual_tables_by_hand(stats_records):
    t = annual_tables(stats_records, parse_period("2026-27"), {"Testshire": 100000})
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
    records = load_records(engine, since=reports.pack_since(period, as_of))
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


# ----------------------------------------------------------- the pack an SOG chair reads (13.7)


def test_axis_labels_carry_the_quarter_and_its_year():
    assert axis_label("2025-26-Q3") == "Q3 25-26"
    assert axis_label("2099-00-Q4") == "Q4 99-00"
    assert axis_label("2026-27") == "2026-27"  # not a quarter: as it is


def test_pack_compares_with_the_previous_quarter_and_groups_exceptions(engine):
    pack = _grampian_pack(engine)
    prev = pack.previous
    assert prev["label"] == "2026-27-Q2" and prev["axis_label"] == "Q2 26-27"
    for ind in pack.indicators:  # the comparison is the trend's previous quarter
        assert prev["indicators"][ind["id"]]["percent"] == pack.trend[-2][ind["id"]]
    # Q2: 2/2 L2 reviews met; Q3: 2/3. Q2: the one DTC invitation failed; Q3: all attended.
    assert (prev["indicators"]["l2-reviews"]["points"], prev["indicators"]["l2-reviews"]["now"]) == (
        -33.3, "no longer met")
    # 1 review in Q2, 3 in Q3: too few to judge a change. Disclosure: 5 and 10 meetings.
    assert prev["indicators"]["l2-reviews"]["few"] is True
    assert (prev["indicators"]["disclosure"]["points"], prev["indicators"]["disclosure"]["few"]) == (
        -20.0, False)
    assert prev["indicators"]["dtc-attendance"]["now"] == "now met"
    assert prev["indicators"]["l3-reviews"]["points"] is None  # no Level 3 review fell due in Q2
    assert prev["exceptions"] == 2

    pat = pack.patterns
    assert (pat["total"], pat["cases"], pat["unrecorded"]) == (14, 6, 10)
    assert [(r["label"], r["count"], r["share"]) for r in pat["by_reason"]] == [
        ("Not recorded", 10, 71), ("Rescheduled", 2, 14), ("Information late", 1, 7),
        ("Referral late", 1, 7)]
    assert pat["by_reason"][0]["indicators"][0] == {"name": "Level 3 reviews", "count": 3}
    assert [(a["agency"], a["count"]) for a in pat["by_agency"]] == [
        ("police", 2), ("cbsw-aberdeen", 1), ("cbsw-moray", 1), ("nhs-grampian", 1), ("sps", 1)]
    assert [(c["name"], c["count"], c["cases"]) for c in pat["by_chair"]] == [
        ("Calum Chair", 10, 4), ("Ailsa Chair", 4, 2)]
    # The same repeats as the commonality table (and exceptions.csv) counts.
    assert {c["ref"]: c["count"] for c in pat["repeated"]["top"]} == pack.commonality["by_case"]
    assert pat["repeated"]["by_count"] == [{"exceptions": 4, "cases": 1}, {"exceptions": 3, "cases": 2},
                                           {"exceptions": 2, "cases": 1}]
    assert [i["name"] for i in pat["repeated"]["top"][0]["indicators"]] == [
        "Police attendance", "Social work attendance", "RA written contributions",
        "Pre-release Level 3 meetings"]


def test_pack_opens_with_indicators_then_changes_then_commonalities_rows_last(engine):
    html = quarterly_html(_grampian_pack(engine), {"police": "Police Scotland"})
    order = [html.index(s) for s in (
        '<table id="indicators">', "<h2>2. What changed since 2026-27-Q2</h2>",
        "<h2>3. Exceptions and their reasons</h2>", "<h3>By reason</h3>", "<h3>By agency</h3>",
        "<h3>By chair</h3>", "<h3>Repeated cases</h3>", "<h2>4. Trends",
        "<h2>6. Data quality</h2>", "<h2>7. For the SOG: what the data points to</h2>",
        "<h2>Appendix: every exception</h2>")]
    assert order == sorted(order)
    indicators = html.split('<table id="indicators">')[1].split("</table>")[0]
    assert "<th class=\"num\" style=\"white-space: nowrap\">2026-27-Q2</th>" in indicators
    # Level 2 reviews: 1 of 1 to 2 of 3 is not a fall of 33.3 points worth reading.
    assert "&minus;33.3 points" not in indicators and "&minus;20.0 points" in indicators
    assert indicators.count("too few to judge a change") == 5
    changed = html.split("<h2>2. What changed")[1].split("<h2>")[0]
    assert ("No longer met:</span> Level 2 cases reviewed at least every 12 weeks, 66.7% (was "
            "100.0%) (1 item in 2026-27-Q2, 3 now: too few to judge a change).") in changed
    assert ("Largest moves: Disclosure recorded &minus;20.0 points (to 80.0%); Minutes and RMP in "
            "10 working days &minus;10.0 points (to 90.0%).") in changed
    assert "14 exceptions this quarter, 2 in 2026-27-Q2." in changed
    # Row by row only in the appendix: the first exception row comes after its heading.
    assert html.index("<td>GRA-0105</td>") > html.index("<h2>Appendix: every exception</h2>")
    assert "<td>Police Scotland</td><td class=\"num\">2</td><td class=\"num\">14%</td>" in html
    # Data quality says what each check is, in words, beside its id.
    assert "Attended invitations with seniority_ok left blank (counted as not met) <code>seniority_unknown</code>" in html


def _hex(colour: str) -> tuple[int, int, int]:
    c = colour.lstrip("#")
    c = "".join(ch * 2 for ch in c) if len(c) == 3 else c
    return tuple(int(c[i:i + 2], 16) for i in (0, 2, 4))


def _luminance(colour: str) -> float:
    def channel(v: int) -> float:
        s = v / 255
        return s / 12.92 if s <= 0.03928 else ((s + 0.055) / 1.055) ** 2.4
    r, g, b = (channel(v) for v in _hex(colour))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: str, b: str) -> float:
    """WCAG 2 contrast ratio of two sRGB colours."""
    hi, lo = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_contrast_arithmetic():
    assert round(contrast("#000000", "#ffffff"), 1) == 21.0
    assert round(contrast("#777777", "#ffffff"), 2) == 4.48   # the old axis grey: below AA
    assert contrast("#777", "#fafafa") < 4.5


def test_every_text_colour_of_the_pack_meets_wcag_aa_on_every_background(engine):
    import re

    html = quarterly_html(_grampian_pack(engine), {})
    # Text: CSS colour declarations (style sheet and inline) and SVG text fills.
    declared = re.findall(r"(?<![-\w])color:\s*([^;}\"]+)", html)
    text = [c.strip() for c in declared] + re.findall(r"<text\b[^>]*\bfill=\"([^\"]+)\"", html)
    # Backgrounds: CSS backgrounds, the charts' rectangles, and the page (white).
    backgrounds = [c.strip() for c in re.findall(r"background(?:-color)?:\s*([^;}\"]+)", html)]
    backgrounds += re.findall(r"<rect\b[^>]*\bfill=\"([^\"]+)\"", html) + ["#ffffff"]
    assert len(set(text)) >= 5 and len(set(backgrounds)) >= 2
    for colour in text + backgrounds:
        assert re.fullmatch(r"#[0-9a-fA-F]{3}|#[0-9a-fA-F]{6}", colour), f"not a colour to check: {colour}"
    low = [(t, b, round(contrast(t, b), 2)) for t in set(text) for b in set(backgrounds)
           if contrast(t, b) < 4.5]
    assert not low, low
    # No tiny chart text: every SVG font size is at least 10 units (the old axes were 8).
    sizes = [float(s) for s in re.findall(r"font-size=\"([\d.]+)\"", html)]
    assert sizes and min(sizes) >= 10
    assert not re.search(r"font-size:\s*[0-9](\.\d+)?px", html)
    # The axes name the quarter and its year.
    assert "<tspan" in html and ">Q2</tspan> <tspan" in html and ">26-27</tspan>" in html


def test_pack_prints_on_a4_with_every_table_repeating_its_header(engine):
    import re

    html = quarterly_html(_grampian_pack(engine), {})
    style = html.split("<style>")[1].split("</style>")[0]
    assert re.search(r"@page\s*\{\s*size:\s*A4\b", style)
    assert re.search(r"thead\s*\{\s*display:\s*table-header-group", style)
    tables = re.findall(r"<table\b.*?</table>", html, flags=re.S)
    assert len(tables) >= 8
    for t in tables:
        assert re.search(r"<table[^>]*>\s*<thead>\s*<tr>(<th\b[^>]*>[^<]*</th>)+</tr>\s*</thead>", t), t[:200]


def test_pack_csv_columns_stay_as_they_were(sqlite_url, tmp_path, monkeypatch):
    monkeypatch.setenv("MAPPA_DATABASE_URL", sqlite_url)
    assert main(["import", str(GRAMPIAN)]) == 0
    out = tmp_path / "csv"
    assert main(["report", "quarterly", "--period", "2026-27-Q3", "--as-of", "2027-01-31",
                 "--format", "csv", "--out", str(out)]) == 0
    header = (out / "exceptions.csv").read_text().splitlines()[0]
    # SPEC section 3: ref, meeting_id, agency, due, done, reason; with the indicator and chair.
    assert header == "indicator,ref,meeting_id,agency,due,done,reason,chair_id"
    assert (out / "commonality.csv").read_text().splitlines()[0] == "group,name,count"
    assert sorted(p.name for p in out.glob("*.csv")) == sorted(
        f"{n}.csv" for n in ("indicators", "trend", "exceptions", "commonality", "caseload", "changes",
                             "data_quality", "data_quality_cases"))


def test_a_year_compares_with_the_year_before_and_a_date_range_with_nothing(engine):
    from mappa_core.storage.importer import import_directory

    assert import_directory(engine, GRAMPIAN).ok
    as_of = D("2027-01-31")
    records = load_records(engine, since=window_start(as_of, D("2024-04-01")))
    year = quarterly_pack(records, parse_period("2026-27"), as_of)
    assert year.previous["label"] == "2025-26"
    html = quarterly_html(year, {})
    # On 31 January the year has two months to run, and the pack says so. 2026-27 has 261
    # weekdays, 218 of them by 31 January; less 11 Scottish bank holidays on weekdays (10 by
    # then: 3 April, 4 and 25 May, 15 June, 3 August, 30 November, 25 and 28 December, 1 and
    # 4 January; then 26 March).
    assert "<h2>2. What changed since 2025-26</h2>" in html and "exceptions in 2026-27 so far," in html
    assert "<strong>Year in progress: 208 of 250 working days.</strong>" in html
    span = quarterly_pack(records, parse_period("2026-10-01..2026-11-30"), as_of)
    assert span.previous is None
    html = quarterly_html(span, {})
    assert "<h2>2. What changed</h2>" in html and "no previous period to compare with" in html
    assert "<th class=\"num\">Change</th>" not in html


# ------------------------------------------------- a quarter in progress (issue: false alarms)


PACK_Q3_FINISHED = GRAMPIAN.parent / "pack-grampian-2026-27-Q3.html"


def test_a_finished_quarters_pack_is_byte_for_byte_as_before(engine):
    """The Grampian pack of 2026-27-Q3 as of 2027-01-31 (a finished quarter), as written before
    the pack learnt about quarters in progress: nothing of that may show in a finished one.
    After a deliberate change to the pack, write the file again from this test's html."""
    from mappa_core.storage.importer import import_directory

    assert import_directory(engine, GRAMPIAN).ok
    period, as_of = parse_period("2026-27-Q3"), D("2027-01-31")
    records = load_records(engine, since=reports.pack_since(period, as_of))
    pack = quarterly_pack(records, period, as_of)
    assert pack.in_progress is None and pack.caseload_so_far is None
    html = quarterly_html(pack, dict(zip(records.agencies["agency"], records.agencies["name"])))
    assert html == PACK_Q3_FINISHED.read_text(encoding="utf-8")


AS_OF_IN_Q3 = D("2026-11-27")  # a Friday, day 57 of 2026-27-Q3 (from 1 October)


def test_working_days_of_a_quarter_in_progress_and_none_once_it_has_ended():
    q3 = parse_period("2026-27-Q3")
    # October 2026: 22 weekdays; 2 to 27 November: 20. The quarter: 66 weekdays less St
    # Andrew's Day (Monday 30 November), Christmas (Friday 25 December) and Boxing Day's
    # substitute (Monday 28 December).
    assert reports.period_progress(q3, AS_OF_IN_Q3) == {
        "to": AS_OF_IN_Q3, "done": 42, "total": 63, "kind": "quarter"}
    # An area's local holiday in the part gone counts out of both.
    local = reports.period_progress(q3, AS_OF_IN_Q3, {"X": [D("2026-10-12")]}, "X")
    assert (local["done"], local["total"]) == (41, 62)
    assert reports.period_progress(q3, q3.end) is None  # the last day's records: finished
    assert reports.period_progress(parse_period("2026-27"), AS_OF_IN_Q3)["kind"] == "year"


def _caseload_records():
    """Level 2 cases A-E meet every 12 weeks: A and B in July and October, C, D and E in
    mid-September, so none of theirs is due before 27 November. Level 3 cases G-K all met in
    July; only G has met this quarter."""
    l2 = [{"ref": r, "level": "2"} for r in "ABCDE"]
    l3 = [{"ref": r, "category": "3", "level": "3"} for r in "GHIJK"]
    meetings = [{"meeting_id": f"{r}-jul", "ref": r, "date": "2026-07-10"} for r in "AB"]
    meetings += [{"meeting_id": f"{r}-sep", "ref": r, "date": "2026-09-15"} for r in "CDE"]
    meetings += [{"meeting_id": f"{r}-oct", "ref": r, "date": "2026-10-05"} for r in "AB"]
    meetings += [{"meeting_id": f"{r}-jul", "ref": r, "date": "2026-07-06", "level": "3"} for r in "GHIJK"]
    meetings += [{"meeting_id": "G-oct", "ref": "G", "date": "2026-10-12", "level": "3"}]
    return records(individuals=l2 + l3, meetings=meetings)


def test_cases_managed_in_a_quarter_in_progress_are_compared_to_the_same_day():
    pack = quarterly_pack(_caseload_records(), parse_period("2026-27-Q3"), AS_OF_IN_Q3)
    # The whole quarters stay in the table: Q2 had 5 Level 2 cases, Q3 has 2 so far.
    assert pack.caseload[-2:] == [{"quarter": "2026-27-Q2", "level2": 5, "level3": 5},
                                  {"quarter": "2026-27-Q3", "level2": 2, "level3": 1}]
    # Day 57 of Q2 is 27 August: A and B had met by then (C, D, E met in September).
    assert pack.caseload_so_far == {
        "before": {"quarter": "2026-27-Q2", "level2": 2, "level3": 5, "to": D("2026-08-27")},
        "now": {"quarter": "2026-27-Q3", "level2": 2, "level3": 1, "to": AS_OF_IN_Q3}}
    # So Level 2 has not fallen (2 and 2; the whole of Q2 against Q3 so far was 5 to 2, -60%);
    # Level 3 has, like for like (5 to 1), and keeps its questions.
    assert [(c["what"], c["kind"], c["before"], c["after"]) for c in pack.changes] == [
        ("Level 3 cases managed", "fall", 5, 1)]
    html = quarterly_html(pack, {})
    changed = html.split("<h2>2. What changed")[1].split("<h2>")[0]
    assert "Level 2 cases managed" not in changed
    assert ("Level 3 cases managed to 27 November 2026: a marked fall from 5 (2026-27-Q2 to the "
            "same day, 27 August 2026) to 1") in changed
    caseload = html.split("<h2>5. Caseload")[1].split("<h2>")[0]
    assert ("<tr><td>2026-27-Q2 to 27 August 2026 (the same day)</td><td class=\"num\">2</td>"
            "<td class=\"num\">5</td></tr><tr><td>2026-27-Q3 to 27 November 2026 (in progress)</td>"
            "<td class=\"num\">2</td><td class=\"num\">1</td></tr>") in caseload
    assert caseload.count("Questions for the SOG") == 1

    # The same records once Q3 has ended: whole quarters, as before.
    done = quarterly_pack(_caseload_records(), parse_period("2026-27-Q3"), D("2027-01-08"))
    assert done.in_progress is None and done.caseload_so_far is None
    assert [(c["what"], c["before"], c["after"]) for c in done.changes] == [
        ("Level 2 cases managed", 5, 2), ("Level 3 cases managed", 5, 1)]


def _reviews_records(waiting: int):
    """P1 entered Level 2 on 1 July (review due 23 September, met on 18 September; next due
    11 December). P2 entered on 15 July: due 7 October, missed (next due 30 December).
    `waiting` more entered on 15 September: their first reviews are due 8 December."""
    individuals = [{"ref": "P1", "level": "2", "level_from": "2026-07-01"},
                   {"ref": "P2", "level": "2", "level_from": "2026-07-15"}]
    individuals += [{"ref": f"W{i:02d}", "level": "2", "level_from": "2026-09-15"} for i in range(waiting)]
    return records(individuals=individuals,
                   meetings=[{"meeting_id": "M1", "ref": "P1", "date": "2026-09-18"}])


def test_an_indicator_below_target_in_a_quarter_in_progress_shows_its_margin_and_pending():
    q3 = parse_period("2026-27-Q3")
    # 0 of 1 so far, 22 pending: of 23 reviews 5% (1) may fail, and 1 has: margin 0.
    pack = quarterly_pack(_reviews_records(waiting=20), q3, AS_OF_IN_Q3)
    l2 = next(i for i in pack.indicators if i["id"] == "l2-reviews")
    assert (l2["numerator"], l2["denominator"], l2["pending"], l2["met"], l2["margin"]) == (0, 1, 22, False, 0)
    assert pack.previous["indicators"]["l2-reviews"]["now"] == "not met so far"  # Q2: 1 of 1
    html = quarterly_html(pack, {})
    assert ("<title>MAPPA quarterly pack: all areas, 2026-27-Q3, to 27 November 2026 "
            "(quarter in progress: 42 of 63 working days)</title>") in html
    assert "<h1>MAPPA quarterly pack: all areas, 2026-27-Q3, to 27 November 2026 (in progress)</h1>" in html
    assert "<strong>Quarter in progress: 42 of 63 working days.</strong>" in html
    changed = html.split("<h2>2. What changed")[1].split("<h2>")[0]
    assert "No longer met" not in changed
    assert ("Not met so far:</span> Level 2 cases reviewed at least every 12 weeks, 0.0% (was 100.0%) "
            "(1 item in 2026-27-Q2, 1 now: too few to judge a change); "
            "22 pending, margin 0: it still meets the target if none of them fails.") in changed
    indicators = html.split('<table id="indicators">')[1].split("</table>")[0]
    assert "Pending (margin)</th>" in indicators and '<td class="num">22 (0)</td>' in indicators
    # Q2's two: M1's minutes and disclosure, never recorded.
    assert "<li>1 exception so far this quarter, 2 in 2026-27-Q2 (the whole quarter).</li>" in changed

    # With no one waiting, 0 of 1 and 2 pending: of 3 none may fail: it cannot be met now.
    pack = quarterly_pack(_reviews_records(waiting=0), q3, AS_OF_IN_Q3)
    l2 = next(i for i in pack.indicators if i["id"] == "l2-reviews")
    assert (l2["pending"], l2["margin"]) == (2, -1)
    changed = quarterly_html(pack, {}).split("<h2>2. What changed")[1].split("<h2>")[0]
    assert ("No longer met:</span> Level 2 cases reviewed at least every 12 weeks, 0.0% (was 100.0%) "
            "(1 item in 2026-27-Q2, 1 now: too few to judge a change); "
            "2 pending, margin &minus;1: below target even if every pending item is met.") in changed


def test_annual_tables_of_a_year_in_progress_count_to_as_of(stats_records):
    # On 30 April 2026: B (mappa_start 1 May) is not yet under MAPPA, and none of the events
    # (May to September) has happened: A alone is an RSO at liberty.
    t = annual_tables(stats_records, parse_period("2026-27"), {"Testshire": 100000}, D("2026-04-30"))
    assert t["table1"].set_index("area").loc["Testshire"].to_dict() == {
        "rso_at_liberty_31_march": 1, "per_100000_population": 1.0,
        "notification_breaches": 0, "wanted_31_march": 0, "missing_31_march": 0}
    assert t["table2"].set_index("area").loc["Testshire"].to_dict() == {
        "orders_in_force_31_march": 0, "orders_imposed_in_year": 0, "breach_charges_in_year": 0}
    # After 31 March, as_of changes nothing.
    year = annual_tables(stats_records, parse_period("2026-27"), {"Testshire": 100000})
    later = annual_tables(stats_records, parse_period("2026-27"), {"Testshire": 100000}, D("2027-06-01"))
    assert all(year[n].equals(later[n]) for n in ("table1", "table2"))


def test_annual_report_of_a_year_in_progress_says_so(grampian_cli, tmp_path, capsys):
    out = tmp_path / "annual"
    assert main(["report", "annual", "--year", "2026-27", "--as-of", "2026-11-27", "--out", str(out)]) == 0
    assert "year in progress: figures to 2026-11-27" in capsys.readouterr().out
    html = (out / "annual.html").read_text()
    assert "<strong>Year in progress: figures to Friday 27 November 2026.</strong>" in html
    assert "<th>RSOs at liberty on Friday 27 November 2026</th>" in html
    assert "31 March" not in html.replace("after 31 March", "").replace("ends on 31 March", "")
    # Once the year has ended: 31 March, and no word of progress.
    assert main(["report", "annual", "--year", "2026-27", "--as-of", "2027-04-01", "--out", str(out)]) == 0
    assert "in progress" not in capsys.readouterr().out
    html = (out / "annual.html").read_text()
    assert "<th>RSOs at liberty on 31 March</th>" in html and "progress" not in html


def test_a_result_that_rounds_up_to_its_target_but_falls_short_is_explained(engine):
    """SPEC 3: `percent` is rounded to one decimal, `met` is decided unrounded, so 246/259
    (94.98%) reads "95.0%" beside "not met" against 95%. The pack says why, for that
    indicator only; a pack with no such result carries no such note."""
    import dataclasses

    from mappa_core.storage.importer import import_directory

    assert import_directory(engine, GRAMPIAN).ok
    period, as_of = parse_period("2026-27-Q3"), D("2027-01-31")
    records = load_records(engine, since=reports.pack_since(period, as_of))
    pack = quarterly_pack(records, period, as_of)
    names = dict(zip(records.agencies["agency"], records.agencies["name"]))
    assert "Results are shown to one decimal" not in quarterly_html(pack, names)
    l2 = next(i for i in pack.indicators if i["id"] == "l2-reviews")
    shy = {**l2, "numerator": 246, "denominator": 259, "percent": 95.0, "met": False}
    html = quarterly_html(dataclasses.replace(pack, indicators=[
        shy if i is l2 else i for i in pack.indicators]), names)
    assert (f"So {l2['title']} shows the target but falls just short of it.") in html


# ------------------------------------------- issue 23.5: small numbers, and a list for the SOG


def test_the_pack_ends_with_a_list_for_the_sog_built_from_the_data(engine):
    pack = _grampian_pack(engine)
    sog = pack.for_sog
    # Each indicator not met, with its largest contributor (contributors(): the chair with
    # most exceptions; the agency below target or missing most).
    assert [(n["id"], n["top"]["key"] if n["top"] else None, n["spread"]) for n in sog["not_met"]] == [
        ("l3-reviews", "g-chair-2", False), ("l2-reviews", "g-chair-1", False),
        ("police-attendance", "g-chair-1", True), ("cbsw-attendance", "g-chair-2", False),
        ("ra-written", "nhs-grampian", True), ("custody-initial-l3", "g-chair-2", False),
        ("disclosure", "g-chair-1", True)]
    assert (sog["exceptions"], sog["unrecorded"], sog["unrecorded_share"]) == (14, 10, 71)
    assert sog["repeated"]["cases"] == 4
    html = quarterly_html(pack, {"police": "Police Scotland"})
    listed = html.split("<h2>7. For the SOG")[1].split("<section")[0]
    assert ("Level 3 cases reviewed at least every 6 weeks</span>: 40.0% (2/5) against 95%, 3 "
            "exceptions; largest contributor: Calum Chair (chair), all 3.") in listed
    assert ("Level 2 cases reviewed at least every 12 weeks</span>: 66.7% (2/3: few items) against "
            "95%, 1 exception; largest contributor: Ailsa Chair (chair), the only one.") in listed
    assert "largest contributor: none larger than the others (2 agencies, one each)" in listed
    assert "10 of 14 exceptions (71%) have no reason recorded" in listed
    assert "4 cases were an exception more than once (12 exceptions between them)" in listed


def test_a_change_over_few_items_is_not_read_as_a_trend():
    # Q2: the one disclosure decision recorded; Q3: one of two. "-50.0 points" says nothing.
    rec = records(individuals=[{"ref": "A"}], meetings=[
        {"meeting_id": "M1", "ref": "A", "date": "2026-09-01", "disclosure_considered": "yes"},
        {"meeting_id": "M2", "ref": "A", "date": "2026-10-05", "disclosure_considered": "yes"},
        {"meeting_id": "M3", "ref": "A", "date": "2026-11-02", "disclosure_considered": "no"}])
    pack = quarterly_pack(rec, parse_period("2026-27-Q3"), D("2027-01-31"))
    before = pack.previous["indicators"]["disclosure"]
    assert (before["points"], before["few"], before["now"]) == (-50.0, True, "no longer met")
    html = quarterly_html(pack, {})
    row = html.split("<td>Disclosure considered and decision recorded</td>")[1].split("</tr>")[0]
    assert "too few to judge a change" in row and "points" not in row
    assert "Largest moves" not in html and "-50.0" not in html and "&minus;50.0" not in html
    # Minutes: the same three meetings, all on time: 100% then and now, but as few.
    assert "Too few to judge a change (fewer than 5 items in 2026-27-Q2 or this quarter): " \
        "Minutes and RMP in 10 working days, Disclosure recorded." in html

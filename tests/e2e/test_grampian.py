"""The worked Grampian example (shared/examples): hand-computed answers through the CLI."""

import json

import pytest

from bot.cli import main
from tests.conftest import GRAMPIAN

EXPECTED = json.loads((GRAMPIAN / "expected.json").read_text())


def _run(capsys, monkeypatch, url, *args):
    monkeypatch.setenv("MAPPA_DATABASE_URL", url)
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("query", EXPECTED["queries"], ids=lambda q: q["name"])
def test_grampian_status_matches_hand_computed_answers(query, db_url, capsys, monkeypatch):
    code, _, err = _run(capsys, monkeypatch, db_url, "import", str(GRAMPIAN))
    assert code == 0, err
    code, out, err = _run(capsys, monkeypatch, db_url, *query["args"])
    assert code == 0, err
    data = json.loads(out)
    got = {ind["id"]: ind for ind in data["indicators"]}
    assert set(got) == set(query["indicators"])
    for ind_id, expected in query["indicators"].items():
        for field, value in expected.items():
            if field == "exception_refs":
                actual = sorted(e["ref"] for e in got[ind_id]["exceptions"])
                value = sorted(value)
            elif field == "breakdown":
                actual = {
                    b["agency"]: [b["numerator"], b["denominator"]]
                    for b in got[ind_id]["breakdown"]
                }
            else:
                actual = got[ind_id][field]
            assert actual == value, f"{ind_id}.{field}"


def test_status_json_has_the_documented_shape(sqlite_url, capsys, monkeypatch):
    _run(capsys, monkeypatch, sqlite_url, "import", str(GRAMPIAN))
    code, out, _ = _run(
        capsys, monkeypatch, sqlite_url, "status", "--period", "2026-27-Q3",
        "--area", "Grampian", "--as-of", "2027-01-31", "--json",
    )
    data = json.loads(out)
    assert data["period"] == {"start": "2026-10-01", "end": "2026-12-31"}
    assert data["area"] == "Grampian"
    assert data["as_of"] == "2027-01-31"
    assert [i["id"] for i in data["indicators"]] == [
        "l3-reviews", "l2-reviews", "dtc-attendance", "police-attendance", "cbsw-attendance",
        "ra-written", "dtc-written", "custody-initial-l3", "minutes-10wd", "disclosure",
    ]
    for ind in data["indicators"]:
        for key in ("id", "title", "target", "numerator", "denominator", "percent", "met",
                    "pending", "exceptions"):
            assert key in ind
        for exc in ind["exceptions"]:
            assert {"ref", "meeting_id", "agency", "due", "done", "reason"} <= set(exc)
        if ind["id"].endswith("attendance"):
            for b in ind["breakdown"]:
                assert set(b) == {"agency", "numerator", "denominator", "percent", "met"}
    l3 = data["indicators"][0]
    late = next(e for e in l3["exceptions"] if e["ref"] == "GRA-0102")
    # GRA-0102: due 2026-12-07 (G5 + 42 days), held a day late at G6.
    assert late == {
        "ref": "GRA-0102", "meeting_id": "G6", "agency": None, "due": "2026-12-07",
        "done": "2026-12-08", "reason": None, "chair_id": "g-chair-2",
    }
    minutes = data["indicators"][8]
    assert [(e["meeting_id"], e["due"], e["done"]) for e in minutes["exceptions"]] == [
        ("G6", "2026-12-22", None)
    ]
    # Data quality (SPEC section 3): GRA-0109 is recorded in the community while its
    # custody period (from 2026-10-20) runs to 2027-03-01, after as_of; at G14 cbsw-moray
    # attended with seniority_ok blank. Every open Level 2/3 case has a meeting.
    assert data["data_quality"] == [
        {"check": "status_custody_mismatch", "ref": "GRA-0109",
         "detail": "status community but in custody since 2026-10-20 until 2027-03-01"},
        {"check": "seniority_unknown", "ref": "GRA-0106",
         "detail": "meeting G14 on 2026-11-23: cbsw-moray attended, seniority_ok blank"},
    ]
    _code, human, _ = _run(
        capsys, monkeypatch, sqlite_url, "status", "--period", "2026-27-Q3",
        "--area", "Grampian", "--as-of", "2027-01-31",
    )
    assert "data quality: no_entry_date 0, status_custody_mismatch 1, seniority_unknown 1" in human


def test_other_area_sees_nothing_of_grampian(sqlite_url, capsys, monkeypatch, tmp_path):
    # Fife must be a known area (an unknown one is an error since issue 11): one Level 1 case.
    import shutil

    data = tmp_path / "data"
    shutil.copytree(GRAMPIAN, data)
    with open(data / "individuals.csv", "a", encoding="utf-8") as f:
        f.write("FIF-0001,Fife,1,1,community,2025-01-06,,,,,,1980,male,White Scottish,low\n")
    code, _, err = _run(capsys, monkeypatch, sqlite_url, "import", str(data))
    assert code == 0, err
    code, out, _ = _run(
        capsys, monkeypatch, sqlite_url, "status", "--period", "2026-27", "--area", "Fife",
        "--as-of", "2027-01-31", "--json",
    )
    for ind in json.loads(out)["indicators"]:
        assert (ind["denominator"], ind["percent"], ind["met"], ind["exceptions"]) == (0, None, None, [])

"""A value recorded through the bot stands until the system of record changes (issue 26,
item 1).

When a chair records a value (a button, the reason form: real signed requests to the served
endpoint), the export's value at that moment is kept beside it (its base). A real
re-import (`mappa import`) whose cell still says the base keeps the recorded value (the
export has not caught up); one that says the recorded value has caught up; one that says
anything else wins, and the recorded value goes to the audit log with who recorded it and
when; a blank cell keeps it, as before. `mappa import` counts kept, caught up and replaced;
`mappa recorded --pending` lists what the latest export does not show yet. Each on SQLite
and PostgreSQL.

The first case is the one found on the Tayside scenario: ViSOR writes a contribution not
received as `no`, the chair presses "Contribution received" (ra-written 2/4 -> 3/4), and
the next morning's import of the same export put it back to 2/4.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re

import pytest
from sqlalchemy import select
from sqlmodel import SQLModel

from bot.cli import main
from tests.helpers import indicators, write_files
from tests.slack_harness import Bot

TODAY = dt.date(2026, 11, 26)
CHAIR = "U1TAYCH1"
AGENCIES = [
    {"agency": "police", "name": "Police Scotland", "kind": "ra", "role": "police"},
    {"agency": "cjsw-dundee", "name": "Dundee Justice Social Work", "kind": "ra",
     "role": "social_work"},
]
PEOPLE = [
    {"person_id": "t-chair", "name": "Morag Chair", "slack_user_id": CHAIR, "roles": "chair",
     "area": "Tayside"},
    {"person_id": "t-coord", "name": "Iain Coordinator", "email": "iain@tayside.example",
     "roles": "coordinator", "area": "Tayside"},
    {"person_id": "t-coord-2", "name": "Aileen Coordinator", "slack_user_id": "U1TAYCO2",
     "roles": "coordinator", "area": "Tayside"},
]
INDIVIDUALS = [{"ref": f"TAY-000{i}", "area": "Tayside", "chair_id": "t-chair"}
               for i in (1, 2)]
# Four Level 2 meetings early in November, each with an absent RA: two contributions
# received, M3 and M4 recorded `no` (ra-written 2/4, every deadline passed by the 26th).
MEETINGS = [
    {"meeting_id": f"M{i}", "ref": "TAY-0001" if i < 3 else "TAY-0002",
     "date": f"2026-11-0{i + 1}", "chair_id": "t-chair", "minutes_issued": f"2026-11-0{i + 2}",
     "rmp_ratified": f"2026-11-0{i + 2}", "disclosure_considered": "yes"}
    for i in (1, 2, 3, 4)
]


def _invitations(m4: str = "no", m3_reason: str = "agency_unavailable") -> list[dict]:
    rows = []
    for i in (1, 2, 3, 4):
        rows.append({"meeting_id": f"M{i}", "agency": "cjsw-dundee", "attendance": "in_person",
                     "seniority_ok": "yes"})
        rows.append({"meeting_id": f"M{i}", "agency": "police", "attendance": "absent",
                     "written_contribution": {1: "yes", 2: "yes", 3: "no", 4: m4}[i],
                     "reason": m3_reason if i == 3 else ""})
    return rows


def _export(tmp_path, name: str, **invitations) -> object:
    """The unit's export as CSV files, with M4's police contribution and M3's reason."""
    return write_files(tmp_path / name, agencies=AGENCIES, people=PEOPLE,
                       individuals=INDIVIDUALS, meetings=MEETINGS,
                       invitations=_invitations(**invitations))


@pytest.fixture
def tayside(engine, tmp_path, monkeypatch, capsys):
    """The Tayside records imported by `mappa import`, and the bot serving them."""
    monkeypatch.setenv("MAPPA_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    first = _export(tmp_path, "monday")
    assert main(["import", str(first)]) == 0
    capsys.readouterr()
    bot = Bot(engine, TODAY)
    bot.engine = engine
    yield bot
    bot.close()


def _import(directory, capsys, *extra) -> dict[str, int]:
    """`mappa import DIR`: the summary's counts of values recorded through the bot."""
    assert main(["import", str(directory), *extra]) == 0
    out = capsys.readouterr().out
    m = re.search(r"values recorded through the bot: (\d+) kept .*?, (\d+) caught up .*?, "
                  r"(\d+) replaced", out)
    assert m, out
    return {"kept": int(m[1]), "caught_up": int(m[2]), "replaced": int(m[3])}


def _ra_written(engine) -> tuple[int, int]:
    r = indicators(engine, "2026-27-Q3", TODAY.isoformat())["ra-written"]
    return r["numerator"], r["denominator"]


def _cell(engine, table: str, column: str, **key):
    t = SQLModel.metadata.tables[table]
    with engine.connect() as conn:
        return conn.execute(select(t.c[column]).where(
            *[t.c[k] == v for k, v in key.items()])).scalar_one()


def _audit(engine) -> list[dict]:
    audit = SQLModel.metadata.tables["audit_log"]
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(
            select(audit).where(audit.c.action == "import:replaced_recorded")).mappings()]


def _pending(capsys, as_csv: bool = True):
    assert main(["recorded", "--pending", *(["--csv"] if as_csv else [])]) == 0
    out = capsys.readouterr().out
    return list(csv.DictReader(io.StringIO(out))) if as_csv else out


def _press_received(bot) -> None:
    reply = bot.act(CHAIR, "contribution_received", "contribution:M4:police")
    assert "Written contribution from Police Scotland" in str(reply), reply


def test_tayside_a_contribution_recorded_against_an_export_saying_no_survives_its_reimport(
        tayside, tmp_path, capsys):
    engine = tayside.engine
    assert _ra_written(engine) == (2, 4)
    _press_received(tayside)
    assert _ra_written(engine) == (3, 4)
    # The next morning: the same export, still saying `no` (it lags the bot).
    same = _export(tmp_path, "tuesday")
    assert _import(same, capsys, "--dry-run") == {"kept": 1, "caught_up": 0, "replaced": 0}
    assert _import(same, capsys) == {"kept": 1, "caught_up": 0, "replaced": 0}
    assert _cell(engine, "invitation", "written_contribution", meeting_id="M4",
                 agency="police") is True
    assert _ra_written(engine) == (3, 4)
    assert _audit(engine) == []
    # ...and it waits to be keyed into ViSOR, once.
    [row] = _pending(capsys)
    assert (row["ref"], row["meeting_id"], row["meeting_date"], row["agency"], row["column"],
            row["value"], row["export_value"], row["recorded_by"]) == (
        "TAY-0002", "M4", "2026-11-05", "police", "written_contribution", "yes", "no",
        "Morag Chair")
    text = _pending(capsys, as_csv=False)
    assert "to key into ViSOR: 1 value(s)" in text and "\nTAY-0002\n  meeting M4 on 2026-11-05\n" \
        "    written contribution received (Police Scotland): yes (the export says no); " \
        "recorded by Morag Chair at " in text
    # Imported again and again, it stands.
    assert _import(same, capsys)["kept"] == 1
    assert _ra_written(engine) == (3, 4)


def test_the_export_catching_up_clears_the_value_from_the_list_to_key(tayside, tmp_path, capsys):
    engine = tayside.engine
    _press_received(tayside)
    keyed = _export(tmp_path, "keyed", m4="yes")  # the co-ordinator keyed it into ViSOR
    assert _import(keyed, capsys) == {"kept": 0, "caught_up": 1, "replaced": 0}
    assert _pending(capsys) == []
    assert "to key into ViSOR: nothing" in _pending(capsys, as_csv=False)
    assert _ra_written(engine) == (3, 4)
    # The export agreeing again is neither kept nor caught up a second time...
    assert _import(keyed, capsys) == {"kept": 0, "caught_up": 0, "replaced": 0}
    # ...and who recorded it is still known (the row stays, its base now the value).
    assert main(["recorded"]) == 0
    listed = capsys.readouterr().out
    assert "values recorded through the bot: 1\n" in listed and "Morag Chair" in listed
    assert "not in the latest export yet" not in listed
    # Now the export changes (someone corrected ViSOR back to no): the export wins.
    back = _export(tmp_path, "corrected", m4="no")
    assert _import(back, capsys) == {"kept": 0, "caught_up": 0, "replaced": 1}
    assert _ra_written(engine) == (2, 4)
    [row] = _audit(engine)
    assert "written_contribution: yes recorded by t-chair" in row["detail"]
    assert row["detail"].endswith("replaced by the export's no")


def test_an_export_that_changed_since_the_value_was_recorded_wins(tayside, tmp_path, capsys):
    """M3's reason: the export says agency_unavailable; the chair records information_late
    in the reason form; the export keeps saying agency_unavailable (stands), until someone
    changes ViSOR to rescheduled: the export wins, the chair's value goes to the audit log
    with who recorded it and when."""
    engine = tayside.engine
    tayside.reason(CHAIR, "contribution:M3:police", "the report came after the meeting")
    assert _cell(engine, "invitation", "reason", meeting_id="M3",
                 agency="police") == "information_late"
    same = _export(tmp_path, "same")
    assert _import(same, capsys) == {"kept": 1, "caught_up": 0, "replaced": 0}
    assert _cell(engine, "invitation", "reason", meeting_id="M3",
                 agency="police") == "information_late"
    [row] = _pending(capsys)
    assert (row["meeting_id"], row["column"], row["value"], row["export_value"]) == (
        "M3", "reason", "information_late", "agency_unavailable")
    changed = _export(tmp_path, "changed", m3_reason="rescheduled")
    assert _import(changed, capsys, "--dry-run") == {"kept": 0, "caught_up": 0, "replaced": 1}
    assert _audit(engine) == []  # a dry run writes nothing
    assert _import(changed, capsys) == {"kept": 0, "caught_up": 0, "replaced": 1}
    assert _cell(engine, "invitation", "reason", meeting_id="M3",
                 agency="police") == "rescheduled"
    [audit] = _audit(engine)
    assert audit["person_id"] == "t-chair" and audit["slack_user_id"] == CHAIR
    assert re.search(r"reason: information_late recorded by t-chair at 20\d\d-\d\d-\d\d "
                     r"\d\d:\d\d:\d\d UTC replaced by the export's rescheduled$", audit["detail"])
    assert _pending(capsys) == []
    assert _import(changed, capsys) == {"kept": 0, "caught_up": 0, "replaced": 0}


def test_a_blank_cell_keeps_the_recorded_value_as_before(tayside, tmp_path, capsys):
    engine = tayside.engine
    _press_received(tayside)
    blank = _export(tmp_path, "blank", m4="")
    assert _import(blank, capsys) == {"kept": 1, "caught_up": 0, "replaced": 0}
    assert _cell(engine, "invitation", "written_contribution", meeting_id="M4",
                 agency="police") is True
    assert len(_pending(capsys)) == 1
    # The base is still the export's `no` of the day it was recorded: `no` again stands.
    assert _import(_export(tmp_path, "no-again"), capsys)["kept"] == 1
    assert _ra_written(engine) == (3, 4)


def test_a_value_recorded_twice_keeps_the_base_of_the_first(tayside, tmp_path, capsys):
    """The reason form used twice on M3: the base stays the export's, not the first
    recorded reason (which the second replaced in the bot, not in ViSOR)."""
    tayside.reason(CHAIR, "contribution:M3:police", "first")
    tayside.reason(CHAIR, "contribution:M3:police", "second thoughts")
    [row] = _pending(capsys)
    assert (row["value"], row["export_value"]) == ("information_late", "agency_unavailable")
    assert _import(_export(tmp_path, "same"), capsys)["kept"] == 1

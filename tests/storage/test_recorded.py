# ruff: noqa: F811  (the `slack` fixture is imported from tests.channels.slack.test_commands_and_buttons)
"""Nothing a person recorded through the bot is lost on re-import (issue 12, finding 3).

A value recorded with a button or the reason modal (by a real signed request to the served
endpoint) survives an import whose cell is blank; an export carrying a different value
wins, and the recorded one goes to the audit log with who recorded it and when. `mappa
import` (and its --dry-run) says how many recorded values were kept and replaced.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
import shutil

import pytest
from sqlalchemy import select
from sqlmodel import SQLModel

from bot.cli import main
from tests.conftest import GRAMPIAN
from tests.slack_harness import post, sign, view_body
from tests.channels.slack.test_commands_and_buttons import CHAIR1, CHAIR2, TODAY, slack, text_of  # noqa: F401  (fixture)


def _export(tmp_path, name: str, file: str, key: dict, column: str, value: str):
    """A copy of the Grampian export with one cell changed."""
    out = tmp_path / name
    shutil.copytree(GRAMPIAN, out)
    path = out / file
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
        columns = list(rows[0].keys())
    hits = 0
    for row in rows:
        if all(row[k] == v for k, v in key.items()):
            row[column] = value
            hits += 1
    assert hits == 1
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=columns)
        w.writeheader()
        w.writerows(rows)
    return out


def _import(engine, directory, monkeypatch, capsys, *extra) -> tuple[int, int, str]:
    """`mappa import DIR` on the test database: (kept, replaced, stdout)."""
    monkeypatch.setenv("MAPPA_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    assert main(["import", str(directory), *extra]) == 0
    out = capsys.readouterr().out
    m = re.search(r"values recorded through the bot: (\d+) kept .*?, (\d+) replaced", out)
    assert m, out
    return int(m[1]), int(m[2]), out


def _cell(engine, table: str, key: dict, column: str):
    t = SQLModel.metadata.tables[table]
    where = [t.c[k] == v for k, v in key.items()]
    with engine.connect() as conn:
        return conn.execute(select(t.c[column]).where(*where)).scalar_one()


def _replaced_rows(engine) -> list[dict]:
    audit = SQLModel.metadata.tables["audit_log"]
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(
            select(audit).where(audit.c.action == "import:replaced_recorded")).mappings()]


def _recorded_rows(engine) -> list[dict]:
    t = SQLModel.metadata.tables["recorded_value"]
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(t)).mappings()]


def _recorded_cli(engine, monkeypatch, capsys) -> str:
    """What `mappa recorded` prints for the test database."""
    monkeypatch.setenv("MAPPA_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    assert main(["recorded"]) == 0
    return capsys.readouterr().out


def _name(engine, person_id: str) -> str:
    t = SQLModel.metadata.tables["person"]
    with engine.connect() as conn:
        return conn.execute(select(t.c.name).where(t.c.person_id == person_id)).scalar_one()


def _press(slack, user, action_id, key, expect):
    r = slack.act(user, action_id, key)
    assert expect in text_of(slack.stand_in.wait_for(f"/response/{r}")[0]["body"])


def _submit_reason(slack, user, key, code, note=""):
    body = view_body(user, key, code, note)
    status, out, _ = post(slack.server.url + "/slack/events", body, sign(body))
    assert status == 200 and out == ""


def _check_kept_then_replaced(slack, tmp_path, monkeypatch, capsys, *, table, file, key,
                              column, blank_export, recorded, export_value, export_text,
                              person, slack_user):
    engine = slack.engine
    rec = _recorded_rows(engine)
    assert [(r["target_table"], r["target_column"], r["person_id"], r["slack_user_id"])
            for r in rec] == [(table, column, person, slack_user)]
    recorded_at = rec[0]["recorded_at"]
    # `mappa recorded` shows it: what, by whom (by name), when.
    listed = _recorded_cli(engine, monkeypatch, capsys)
    assert "values recorded through the bot: 1\n" in listed
    assert f"{recorded_at:%Y-%m-%d %H:%M} {table}" in listed and column in listed
    assert _name(engine, person) in listed
    assert "replaced by an import (from the audit log): 0" in listed

    # The same export with the cell blank: the recorded value stays, and the import says so.
    assert _import(engine, blank_export, monkeypatch, capsys, "--dry-run")[:2] == (1, 0)
    kept, replaced, out = _import(engine, blank_export, monkeypatch, capsys)
    assert (kept, replaced) == (1, 0), out
    assert _cell(engine, table, key, column) == recorded
    assert _replaced_rows(engine) == []
    # ...and again: still kept (a blank never erases it, however often it comes).
    assert _import(engine, blank_export, monkeypatch, capsys)[:2] == (1, 0)
    assert _cell(engine, table, key, column) == recorded

    # An export with a different value: the export wins; the recorded one is in the audit log.
    other = _export(tmp_path, f"other-{column}", file, key, column, export_text)
    assert _import(engine, other, monkeypatch, capsys, "--dry-run")[:2] == (0, 1)
    assert _cell(engine, table, key, column) == recorded  # a dry run writes nothing
    assert _replaced_rows(engine) == []
    kept, replaced, out = _import(engine, other, monkeypatch, capsys)
    assert (kept, replaced) == (0, 1), out
    assert _cell(engine, table, key, column) == export_value
    [row] = _replaced_rows(engine)
    assert row["person_id"] == person and row["slack_user_id"] == slack_user
    shown = recorded.isoformat() if isinstance(recorded, dt.date) else (
        ("yes" if recorded else "no") if isinstance(recorded, bool) else recorded)
    assert f"{column}: {shown} recorded by {person}" in row["detail"]
    assert recorded_at.strftime("%Y-%m-%d %H:%M:%S") in row["detail"]
    assert row["detail"].endswith(f"replaced by the export's {export_text}")
    assert _recorded_rows(engine) == []
    listed = _recorded_cli(engine, monkeypatch, capsys)
    assert "values recorded through the bot: 0\n" in listed
    assert "replaced by an import (from the audit log): 1\n" in listed
    assert row["detail"] in listed
    # The export's value now stands: a later blank is the export's own (nothing recorded).
    assert _import(engine, other, monkeypatch, capsys)[:2] == (0, 0)


@pytest.mark.http
def test_minutes_date_recorded_by_button_survives_a_blank_reimport(slack, tmp_path,
                                                                     monkeypatch, capsys):
    key = {"meeting_id": "G12"}
    blank = _export(tmp_path, "blank", "meetings.csv", key, "minutes_issued", "")
    # The export has no minutes date for G12 yet; the chair presses "Minutes issued".
    assert _import(slack.engine, blank, monkeypatch, capsys)[:2] == (0, 0)
    assert _cell(slack.engine, "meeting", key, "minutes_issued") is None
    _press(slack, CHAIR2, "minutes_issued", "minutes:G12",
           "Minutes issued for `GRA-0105` (meeting G12): recorded on 2026-11-26")
    _check_kept_then_replaced(
        slack, tmp_path, monkeypatch, capsys, table="meeting", file="meetings.csv", key=key,
        column="minutes_issued", blank_export=blank, recorded=TODAY,
        export_value=dt.date(2026, 11, 30), export_text="2026-11-30",
        person="g-chair-2", slack_user=CHAIR2)


@pytest.mark.http
def test_contribution_received_by_button_survives_a_blank_reimport(slack, tmp_path,
                                                                     monkeypatch, capsys):
    key = {"meeting_id": "G2", "agency": "em-provider"}
    blank = _export(tmp_path, "blank", "invitations.csv", key, "written_contribution", "")
    assert _import(slack.engine, blank, monkeypatch, capsys)[:2] == (0, 0)
    assert _cell(slack.engine, "invitation", key, "written_contribution") is None
    _press(slack, CHAIR1, "contribution_received", "contribution:G2:em-provider",
           "Written contribution from Electronic Monitoring Scotland")
    _check_kept_then_replaced(
        slack, tmp_path, monkeypatch, capsys, table="invitation", file="invitations.csv",
        key=key, column="written_contribution", blank_export=blank, recorded=True,
        export_value=False, export_text="no", person="g-chair-1", slack_user=CHAIR1)


@pytest.mark.http
def test_reason_recorded_in_the_modal_survives_a_blank_reimport(slack, tmp_path,
                                                                 monkeypatch, capsys):
    key = {"meeting_id": "G8"}
    blank = _export(tmp_path, "blank", "meetings.csv", key, "reason", "")
    assert _import(slack.engine, blank, monkeypatch, capsys)[:2] == (0, 0)
    _submit_reason(slack, CHAIR1, "minutes:G8", "information_late", "Police report late")
    assert _cell(slack.engine, "meeting", key, "reason") == "information_late"
    _check_kept_then_replaced(
        slack, tmp_path, monkeypatch, capsys, table="meeting", file="meetings.csv", key=key,
        column="reason", blank_export=blank, recorded="information_late",
        export_value="rescheduled", export_text="rescheduled", person="g-chair-1",
        slack_user=CHAIR1)


@pytest.mark.http
def test_contribution_reason_recorded_in_the_modal_survives_a_blank_reimport(
        slack, tmp_path, monkeypatch, capsys):
    key = {"meeting_id": "G2", "agency": "em-provider"}
    blank = _export(tmp_path, "blank", "invitations.csv", key, "reason", "")
    assert _import(slack.engine, blank, monkeypatch, capsys)[:2] == (0, 0)
    _submit_reason(slack, CHAIR1, "contribution:G2:em-provider", "information_late")
    _check_kept_then_replaced(
        slack, tmp_path, monkeypatch, capsys, table="invitation", file="invitations.csv",
        key=key, column="reason", blank_export=blank, recorded="information_late",
        export_value="agency_unavailable", export_text="agency_unavailable",
        person="g-chair-1", slack_user=CHAIR1)


@pytest.mark.http
def test_export_agreeing_with_a_recorded_value_changes_nothing(slack, tmp_path, monkeypatch,
                                                              capsys):
    """The export catching up with the chair's date is neither kept nor replaced, and the
    value stays protected against a later blank."""
    key = {"meeting_id": "G12"}
    blank = _export(tmp_path, "blank", "meetings.csv", key, "minutes_issued", "")
    _import(slack.engine, blank, monkeypatch, capsys)
    _press(slack, CHAIR2, "minutes_issued", "minutes:G12", "recorded on 2026-11-26")
    same = _export(tmp_path, "same", "meetings.csv", key, "minutes_issued", "2026-11-26")
    kept, replaced, out = _import(slack.engine, same, monkeypatch, capsys)
    assert (kept, replaced) == (0, 0)
    assert re.search(r"meetings\.csv\s+\d+\s+0\s+0\s+\d+", out), out  # nothing updated
    assert _import(slack.engine, blank, monkeypatch, capsys)[:2] == (1, 0)
    assert _cell(slack.engine, "meeting", key, "minutes_issued") == TODAY


@pytest.mark.parametrize("meeting_id", ["T1:9", "M|1 ü"])
def test_provenance_keys_round_trip_any_id(sqlite_engine, meeting_id):
    from mappa_core.storage import recorded

    now = dt.datetime(2026, 11, 26, 10, 0, tzinfo=dt.UTC)
    with sqlite_engine.begin() as conn:
        recorded.record(conn, "invitation", (meeting_id, "a:b"), "reason", "other",
                        person_id="p1", slack_user_id="U1", at=now)
        recorded.record(conn, "invitation", (meeting_id, "a:b"), "reason", "rescheduled",
                        person_id="p2", slack_user_id="U2", at=now)  # re-recorded: one row
        got = recorded.load(conn, "invitation")
    assert list(got) == [(meeting_id, "a:b")]
    [rec] = got[(meeting_id, "a:b")]
    assert (rec.column, rec.value, rec.person_id) == ("reason", "rescheduled", "p2")

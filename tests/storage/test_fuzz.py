"""Bad input, fuzzed (hypothesis): the importer and the slash-command parser end every input
in success or a clear error, never a traceback and never a partial write."""

from __future__ import annotations

import re
import shutil
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlmodel import SQLModel

from bot.commands.parser import Command, ParseError, parse
from mappa_core.storage import db
from mappa_core.storage.importer import import_directory
from mappa_core.rules.schema import FILES
from tests.conftest import GRAMPIAN

ERROR_LINE = re.compile(r"^[\w.]+\.csv:\d+: [\w,\-]+: .+|^.+: (not a directory|none of the import files).*")
TABLES = [s.table for s in FILES]
SETTINGS = settings(max_examples=100, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def _import_all_or_nothing(directory):
    """Import `directory` into a fresh SQLite file: success with every row written, or
    well-formed errors with nothing written."""
    engine = db.make_engine(f"sqlite:///{directory / 'fuzz.db'}")
    db.ensure_schema(engine)
    report = import_directory(engine, directory / "csv" if (directory / "csv").is_dir() else directory)
    if report.ok:
        assert sum(_counts(engine)) == sum(f.rows for f in report.files)
    else:
        assert all(ERROR_LINE.match(e) for e in report.errors), report.errors
        assert sum(_counts(engine)) == 0
    engine.dispose()


def _counts(engine):
    with engine.connect() as conn:
        return tuple(conn.execute(select(func.count()).select_from(SQLModel.metadata.tables[t])).scalar()
                     for t in TABLES)


@SETTINGS
@given(text=st.text(max_size=300))
def test_any_command_text_parses_or_gets_a_clear_error(text):
    try:
        cmd = parse(text)
    except ParseError as exc:
        assert str(exc) and "Traceback" not in str(exc)
        return
    assert isinstance(cmd, Command)


@SETTINGS
@given(words=st.lists(st.sampled_from(["status", "due", "case", "escalate", "scr", "update", "done",
                                       "level2", "2026-27", "2026-27-Q3", "compare", "7", "999",
                                       "²", "GRA-0101", "..", "all", "help", "overdue", "\n", "\t"]),
                      max_size=6))
def test_near_valid_commands_parse_or_get_a_clear_error(words):
    try:
        parse(" ".join(words))
    except ParseError:
        pass


MUTATIONS = st.sampled_from([
    ("", ""),                                    # the file as it is
    ("2026-07-06", "2026-13-06"), ("2026-07-06", "06/07/2026"), ("2026-07-06", "07/31/2026"),
    ("G1,", "G2,"), ("GRA-0101", "=HYPERLINK(\"http://evil\")"), ("GRA-0101", "GRA-0101\ufeff"),
    ("review", "REVIEW"), ("community", "moon"), ("yes", "maybe"), (",2,", ",,"),
    ("police", "police" * 40), ("\n", "\r\n"), ("meeting_id", "meeting"), ("2026", "1066"),
])


@pytest.mark.slow
@SETTINGS
@given(data=st.data())
def test_mutated_files_import_completely_or_not_at_all(tmp_path_factory, data):
    work = tmp_path_factory.mktemp("fuzz")
    shutil.copytree(GRAMPIAN, work / "csv")
    (work / "csv" / "expected.json").unlink()
    for _ in range(data.draw(st.integers(0, 3))):
        name = data.draw(st.sampled_from(sorted(p.name for p in (work / "csv").glob("*.csv"))))
        old, new = data.draw(MUTATIONS)
        path = work / "csv" / name
        text = path.read_text(encoding="utf-8")
        if old and old in text:
            nth = data.draw(st.integers(0, text.count(old) - 1))
            parts = text.split(old)
            text = old.join(parts[: nth + 1]) + new + old.join(parts[nth + 1:])
            path.write_text(text, encoding="utf-8")
    _import_all_or_nothing(work)


@pytest.mark.slow
@SETTINGS
@given(raw=st.binary(max_size=400), name=st.sampled_from([s.filename for s in FILES]))
def test_arbitrary_bytes_as_a_csv_file_never_crash(tmp_path_factory, raw, name):
    work = tmp_path_factory.mktemp("bytes")
    (work / name).write_bytes(raw)
    _import_all_or_nothing(work)


@pytest.mark.slow
@SETTINGS
@given(rows=st.lists(st.lists(st.text(alphabet=string.printable, max_size=30), min_size=1, max_size=16),
                     max_size=8))
def test_ragged_printable_rows_under_a_real_header(tmp_path_factory, rows):
    import csv

    work = tmp_path_factory.mktemp("rows")
    with (work / "individuals.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["ref", "area", "category", "level", "status", "mappa_start", "mappa_end",
                    "custody_from", "release_date", "release_level"])
        w.writerows(rows)
    _import_all_or_nothing(work)

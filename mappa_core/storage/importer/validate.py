"""Validating an import: each cell against its column, each row against the rules within
it, and the rules across files (references, duplicate keys, Slack ids, custody periods).

Every error is reported as `file:line: column: reason`, all of them at once.
"""

from __future__ import annotations

import csv
import functools
import re
import sys
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

from .. import models  # noqa: F401  (models registers the tables)
from ...rules.addresses import email_problem, slack_user_problem
from ...rules.schema import Column, FileSpec
from ...rules.values import parse_date, parse_yes_no
from ...rules.values import shown as _show
from .read import bad_utf8

INT_COLUMNS = {"category", "level", "release_level", "birth_year", "population"}
# Line breaks (CR, LF, NEL, U+2028/9), the other control characters but tab, and the
# bidirectional overrides and isolates (U+202A-E, U+2066-9), which reverse how the rest of a
# line reads (a name in a Slack header, an email subject); right-to-left text itself is fine.
_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f\x85\u2028\u2029\u202a-\u202e\u2066-\u2069]")
# Errors kept word for word; the rest are counted ("... and N more errors"), so that a huge
# file of bad rows cannot fill memory with messages nobody reads.
MAX_ERRORS = 1000



@dataclass
class Parsed:
    spec: FileSpec
    rows: list[tuple]  # typed values in spec.column_names order (tuples: a million rows fit)
    lines: array  # file line of each row (4 bytes each, not an int object)

    def index(self, column: str) -> int:
        return self.spec.column_names.index(column)


class Errors:
    def __init__(self, limit: int = MAX_ERRORS) -> None:
        self.items: list[str] = []
        self.count = 0
        self.limit = limit

    def add(self, filename: str, line: int, column: str, reason: str) -> None:
        self.count += 1
        if self.count <= self.limit:
            self.items.append(f"{filename}:{line}: {column}: {reason}")

    def report(self) -> list[str]:
        if self.count <= self.limit:
            return self.items
        return [*self.items, f"... and {self.count - self.limit} more errors"]


def converter(col: Column) -> Callable[[str], object]:
    if col.kind == "date":
        # A file of a million rows holds a few thousand distinct dates: parse each once
        # and share the object (less time, and tens of bytes less per row).
        return functools.lru_cache(maxsize=65536)(parse_date)
    if col.kind == "bool":
        return parse_yes_no
    if col.kind in ("enum", "roles"):
        canonical = {v.lower(): v for v in col.values}
        allowed = ", ".join(col.values)

        def to_enum(text: str) -> str:
            try:
                return canonical[text.lower()]
            except KeyError:
                raise ValueError(f"{_show(text)} is not one of: {allowed}") from None

        if col.kind == "roles":
            def to_roles(text: str) -> str:
                parts = [p.strip() for p in text.split(";") if p.strip()]
                if not parts:
                    raise ValueError("no role given")
                return ";".join(to_enum(p) for p in parts)
            return to_roles
        if col.name in INT_COLUMNS:
            return lambda text: int(to_enum(text))
        return to_enum
    if col.kind == "int" and col.name == "population":
        def to_count(text: str) -> int:
            if not re.fullmatch(r"[0-9]{1,10}", text):
                raise ValueError(f"{_show(text)} is not a whole number")
            return int(text)
        return to_count
    if col.kind == "int":
        def to_int(text: str) -> int:
            if not re.fullmatch(r"\d{4}", text) or not 1900 <= int(text) <= 2100:
                raise ValueError(f"{_show(text)} is not a year between 1900 and 2100")
            return int(text)
        return to_int
    if col.name == "email":
        def to_email(text: str) -> str:
            if problem := email_problem(text):
                raise ValueError(f"{_show(text)} {problem}")
            return text
        return to_email
    if col.name == "slack_user_id":
        def to_slack_user(text: str) -> str:
            if problem := slack_user_problem(text):
                raise ValueError(f"{_show(text)} {problem}")
            return text
        return to_slack_user

    # Identifiers repeat across rows and files (an agency or meeting id on every
    # invitation): one shared string each keeps a million-case import within memory.
    def to_text(text: str) -> str:
        if "\x00" in text:  # PostgreSQL cannot store it
            raise ValueError(f"{_show(text)} contains a NUL byte")
        return sys.intern(text)
    return to_text


def parse_file(path: Path, spec: FileSpec, errors: Errors) -> Parsed | None:
    # Read as a stream: a file of any size costs memory only for its valid rows.
    try:
        handle = path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        errors.add(spec.filename, 1, "-", f"cannot be read ({exc.strerror or exc})")
        return None
    with handle:
        try:
            return parse_rows(csv.reader(handle), spec, errors)
        except UnicodeDecodeError:
            line, byte = bad_utf8(path)
            with path.open("rb") as raw:
                utf16 = raw.read(2) in (b"\xff\xfe", b"\xfe\xff")
            errors.add(path.name, line, "-", "UTF-16 text: save it as CSV UTF-8" if utf16 else
                       f"not UTF-8 text (byte {byte:#04x})")
            return None


def parse_rows(reader, spec: FileSpec, errors: Errors) -> Parsed | None:
    try:
        header = next(reader)
    except StopIteration:
        errors.add(spec.filename, 1, "-", "the file is empty (a header row is required)")
        return None
    except csv.Error as exc:
        errors.add(spec.filename, 1, "-", f"not a readable CSV header ({exc})")
        return None
    header = [h.strip().lstrip("\ufeff").lower() for h in header]
    positions = {}
    for i, name in enumerate(header):
        if name in spec.column_names and name in positions:
            errors.add(spec.filename, 1, name, "the column appears twice in the header")
        positions.setdefault(name, i)
    missing = [c.name for c in spec.columns if c.required and c.name not in positions]
    for name in missing:
        errors.add(spec.filename, 1, name, "required column is missing from the header")
    if missing:
        return None

    columns = [(c, positions.get(c.name), converter(c)) for c in spec.columns]
    width = len(header)
    rows: list[tuple] = []
    lines = array("I")
    # Keys seen so far: a set (no line number per row); where each key first came is
    # worked out only once a duplicate turns up. A one-column key is its value.
    seen: set = set()
    first_line: dict | None = None
    key_idx = [spec.column_names.index(k) for k in spec.key]
    line = reader.line_num
    while True:
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            errors.add(spec.filename, reader.line_num, "-", (
                f"a cell longer than {csv.field_size_limit():,} characters (no column of a MAPPA "
                "export is near that; an unclosed quote can make one)"
                if "field larger than field limit" in str(exc) else
                f"not readable as CSV ({exc})"))
            break
        line_start = line + 1
        line = reader.line_num
        if not record or all(not v.strip() for v in record):
            continue
        if len(record) != width:
            errors.add(
                spec.filename, line_start, "-",
                f"has {len(record)} fields but the header has {width}",
            )
            continue
        row: dict = {}
        ok = True
        for col, pos, convert in columns:
            raw = record[pos].strip() if pos is not None else ""
            if not raw:
                if col.required:
                    errors.add(spec.filename, line_start, col.name, "a value is required")
                    ok = False
                row[col.name] = col.blank
                continue
            if len(raw) > col.max_length:
                errors.add(
                    spec.filename, line_start, col.name,
                    f"longer than {col.max_length} characters",
                )
                ok = False
                continue
            try:
                row[col.name] = convert(raw)
            except ValueError as exc:
                errors.add(spec.filename, line_start, col.name, str(exc))
                ok = False
                continue
            if bad := _CONTROL.search(raw):
                # A line break in a name would end an email's subject early or add lines
                # to a message; no column of SPEC section 5 holds more than one line.
                errors.add(spec.filename, line_start, col.name,
                           f"contains a line break or control character (U+{ord(bad[0]):04X})"
                           if bad[0] < "\u202a" else
                           f"contains a bidirectional override (U+{ord(bad[0]):04X}), which "
                           "would reverse how the rest of a message reads")
                ok = False
        if not ok:
            continue
        row = tuple(row[c] for c in spec.column_names)
        key = _key(row, key_idx)
        if key in seen:
            if first_line is None:
                first_line = {}
                for r, n in zip(rows, lines):
                    first_line.setdefault(_key(r, key_idx), n)
            shown = key if isinstance(key, tuple) else (key,)
            errors.add(
                spec.filename, line_start, ",".join(spec.key),
                f"duplicate key {_show('/'.join(map(str, shown)))} "
                f"(first on line {first_line[key]})",
            )
            continue
        seen.add(key)
        if first_line is not None:
            first_line[key] = line_start
        rows.append(row)
        lines.append(line_start)
    return Parsed(spec, rows, lines)


def _key(row: tuple, key_idx: list[int]):
    return row[key_idx[0]] if len(key_idx) == 1 else tuple(row[i] for i in key_idx)


def row_rules(parsed: Parsed, errors: Errors) -> None:
    """Rules within one row that no single column can check."""
    name = parsed.spec.filename
    for values, line in zip(parsed.rows, parsed.lines):
        row = dict(zip(parsed.spec.column_names, values))
        if name == "individuals.csv":
            if row["category"] == 3 and row["level"] == 1:
                errors.add(name, line, "level", "a Category 3 individual is managed at Level 2 or 3, never Level 1")
            if row["release_date"] and row["custody_from"] and row["release_date"] < row["custody_from"]:
                errors.add(name, line, "release_date", "the release date is before custody_from")
            if row["mappa_end"] and row["mappa_end"] < row["mappa_start"]:
                errors.add(name, line, "mappa_end", "the case was archived before it started (mappa_start)")
        elif name == "custody.csv":
            if row["release_date"] < row["custody_from"]:
                errors.add(name, line, "release_date", "the release date is before custody_from")
        elif name == "meetings.csv":
            for col in ("minutes_issued", "rmp_ratified"):
                if row[col] and row[col] < row["date"]:
                    errors.add(name, line, col, f"{col} is before the meeting date {row['date']}")


def unique_slack_ids(parsed: dict[str, Parsed], conn: Connection, errors: Errors) -> None:
    """A Slack user is one person: the bot looks callers up by Slack id."""
    p = parsed.get("people.csv")
    if p is None:
        return
    person, slack = p.index("person_id"), p.index("slack_user_id")
    in_file = {row[person] for row in p.rows}
    tbl = SQLModel.metadata.tables["person"]
    owner: dict[str, str] = {
        sid: pid for pid, sid in conn.execute(
            select(tbl.c.person_id, tbl.c.slack_user_id).where(tbl.c.slack_user_id.is_not(None)))
        if pid not in in_file
    }
    where = {sid: "already in the database" for sid in owner}
    for row, line in zip(p.rows, p.lines):
        sid = row[slack]
        if sid is None:
            continue
        if sid in owner:
            errors.add("people.csv", line, "slack_user_id",
                       f"{_show(sid)} is also person {_show(owner[sid])}'s ({where[sid]}); "
                       "each Slack user is one person")
            continue
        owner[sid], where[sid] = row[person], f"line {line}"


def _existing_keys(conn: Connection, table: str, column: str) -> set:
    tbl = SQLModel.metadata.tables[table]
    return set(conn.execute(select(tbl.c[column])).scalars())


def reference_rules(parsed: dict[str, Parsed], conn: Connection, errors: Errors) -> None:
    key_of = {"individual": "ref", "meeting": "meeting_id", "agency": "agency"}
    known: dict[str, set] = {}
    for spec_name, p in parsed.items():
        for column, table in p.spec.references.items():
            if table not in known:
                known[table] = _existing_keys(conn, table, key_of[table])
                for other in parsed.values():
                    if other.spec.table == table:
                        i = other.index(key_of[table])
                        known[table] |= {r[i] for r in other.rows}
            names = known[table]
            col = p.index(column)
            for row, line in zip(p.rows, p.lines):
                value = row[col]
                if value is not None and value not in names:
                    errors.add(spec_name, line, column, f"unknown {table} {_show(value)}")


# ----------------------------------------------------------------- custody periods
# A period is [custody_from, release_date): the day of release is not in custody, so a
# period may begin on the day the one before ended. No release date: still in custody.


def overlap(a_from, a_rel, b_from, b_rel) -> bool:
    return (a_rel is None or b_from < a_rel) and (b_rel is None or a_from < b_rel)


def stored_periods(conn: Connection) -> tuple[dict, dict]:
    """(current period by ref, past periods by ref) as stored."""
    ind = SQLModel.metadata.tables["individual"]
    cust = SQLModel.metadata.tables["custody_period"]
    current = {r: (cf, rel, lvl) for r, cf, rel, lvl in conn.execute(
        select(ind.c.ref, ind.c.custody_from, ind.c.release_date, ind.c.release_level)
        .where(ind.c.custody_from.is_not(None)))}
    past: dict[str, list] = {}
    for r, cf, rel, lvl in conn.execute(
            select(cust.c.ref, cust.c.custody_from, cust.c.release_date, cust.c.release_level)):
        past.setdefault(r, []).append((cf, rel, lvl))
    return current, past


def custody_rules(parsed: dict[str, Parsed], conn: Connection, errors: Errors) -> None:
    """No two custody periods of one individual overlap: the past ones of custody.csv with
    each other and with the current one (of individuals.csv in this import, else stored),
    and the current one with the stored past ones custody.csv does not replace."""
    ind_p, cust_p = parsed.get("individuals.csv"), parsed.get("custody.csv")
    if ind_p is None and cust_p is None:
        return
    stored_current, stored_past = stored_periods(conn)
    current = {r: (cf, rel, None) for r, (cf, rel, _lvl) in stored_current.items()}
    if ind_p is not None:
        i_ref, i_cf, i_rel = (ind_p.index(c) for c in ("ref", "custody_from", "release_date"))
        current = {**current}
        for row, line in zip(ind_p.rows, ind_p.lines):
            current[row[i_ref]] = (row[i_cf], row[i_rel], line) if row[i_cf] else None
        current = {r: v for r, v in current.items() if v is not None}
    file_past: dict[str, list] = {}
    if cust_p is not None:
        c_ref, c_cf, c_rel = (cust_p.index(c) for c in ("ref", "custody_from", "release_date"))
        for row, line in zip(cust_p.rows, cust_p.lines):
            file_past.setdefault(row[c_ref], []).append((row[c_cf], row[c_rel], line))
        for ref, periods in file_past.items():
            periods.sort()
            for (a_cf, a_rel, a_line), (b_cf, b_rel, b_line) in zip(periods, periods[1:]):
                if overlap(a_cf, a_rel, b_cf, b_rel):
                    errors.add("custody.csv", b_line, "custody_from",
                               f"the period from {b_cf} overlaps the one from {a_cf} to "
                               f"{a_rel} (line {a_line})")
            cur = current.get(ref)
            for cf, rel, line in periods:
                if cur is not None and overlap(cf, rel, cur[0], cur[1]):
                    until = f" to {cur[1]}" if cur[1] else " (no release date)"
                    errors.add("custody.csv", line, "custody_from",
                               f"the period from {cf} to {rel} overlaps the current custody "
                               f"period from {cur[0]}{until} in individuals.csv")
    if ind_p is None:
        return
    for ref, (cf, rel, line) in current.items():
        if line is None:
            continue
        replaced = file_past.get(ref, [])
        keep = [p for p in stored_past.get(ref, [])
                if not any(p[0] == q[0] or overlap(p[0], p[1], q[0], q[1]) for q in replaced)]
        for p_cf, p_rel, _lvl in keep:
            if overlap(cf, rel, p_cf, p_rel):
                errors.add("individuals.csv", line, "custody_from",
                           f"the current custody period from {cf} overlaps a past one from "
                           f"{p_cf} to {p_rel}")


def people_in_no_area(conn: Connection) -> list[str]:
    """A person whose area no case has (a misspelt `Grampain`): their lists would say
    "nothing overdue" for ever. One line per such area, with the area probably meant."""
    import difflib

    person, ind = SQLModel.metadata.tables["person"], SQLModel.metadata.tables["individual"]
    areas = set(conn.execute(select(ind.c.area).distinct()).scalars())
    if not areas:  # no case imported yet: every area would be named
        return []
    out = []
    rows = conn.execute(select(person.c.area, person.c.person_id)
                        .where(person.c.area.is_not(None), person.c.area.not_in(areas))
                        .order_by(person.c.area, person.c.person_id)).all()
    by_area: dict[str, list[str]] = {}
    for area, person_id in rows:
        by_area.setdefault(area, []).append(person_id)
    for area, ids in by_area.items():
        close = difflib.get_close_matches(area, sorted(areas), n=1)
        out.append(f"people.csv: area {area!r} of {ids[0]}"
                   + (f" and {len(ids) - 1} more" if len(ids) > 1 else "")
                   + " is no case's area, so they will see no cases"
                   + (f" (did you mean {close[0]!r}?)" if close else ""))
    return out



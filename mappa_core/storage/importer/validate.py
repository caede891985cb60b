"""Validating an import, file by file and batch by batch: each cell against its column,
each row against the rules within it, keys against duplicates, references against the
files before it and the database, and at the end the rules that need a whole file
(custody periods, Slack ids).

Every error is reported as `file:line: column: reason`, all of them at once. A file is
never held whole: what outlives a batch is the keys other files refer to (agencies,
individuals, meetings), a 64-bit hash of every other key, and the custody periods.
"""

from __future__ import annotations

import functools
from collections import Counter
import re
import sys
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from operator import itemgetter

import numpy as np
from sqlalchemy import select
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

from .. import models  # noqa: F401  (models registers the tables)
from ...rules.addresses import email_problem, slack_user_problem
from ...rules.schema import Column, FileSpec
from ...rules.values import parse_date, parse_yes_no
from ...rules.values import shown as _show
from .read import BATCH, RowsSource, Source

INT_COLUMNS = {"category", "level", "release_level", "birth_year", "population"}
# Line breaks (CR, LF, NEL, U+2028/9), the other control characters but tab, and the
# bidirectional overrides and isolates (U+202A-E, U+2066-9), which reverse how the rest of a
# line reads (a name in a Slack header, an email subject); right-to-left text itself is fine.
_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f\x85\u2028\u2029\u202a-\u202e\u2066-\u2069]")
# Errors kept word for word; the rest are counted ("... and N more errors"), so that a huge
# file of bad rows cannot fill memory with messages nobody reads.
MAX_ERRORS = 1000
# The tables other files refer to: their keys are kept exactly (for the references, and
# they tell a duplicate at once). Other files' keys are kept as hashes (HashedKeys).
REFERENCED = {"agency": "agency", "individual": "ref", "meeting": "meeting_id"}
# Distinct cells remembered per column (dates, enumerations, yes/no): a million-row file
# holds a few thousand, and each is then read once.
MEMO_LIMIT = 100_000


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


class _Ignored(Errors):
    """Errors nobody reads: a file read a second time (duplicate keys' first lines)."""

    def add(self, filename: str, line: int, column: str, reason: str) -> None:
        self.count += 1


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

    def to_text(text: str) -> str:
        if "\x00" in text:  # PostgreSQL cannot store it
            raise ValueError(f"{_show(text)} contains a NUL byte")
        return sys.intern(text)
    return to_text


class Cells:
    """How the cells of one column become values: cell by cell (`careful`, which says
    what is wrong), or a batch at a time where nothing is (`column`)."""

    def __init__(self, col: Column, source: Source) -> None:
        self.col = col
        self.label = source.column_label(col.name)
        self.convert = converter(col)
        self.translate = {k.strip().lower(): v for k, v in source.values.get(col.name, {}).items()}
        # How many cells each of the unit's spellings turned into ours (mappa import
        # --dry-run --mapping shows it).
        self.translated = source.translated.setdefault(col.name, {}) if self.translate else None
        # Identifiers and names are nearly all different: checked a batch at a time.
        # Everything else has few distinct cells: each is read once and remembered.
        plain = col.kind == "text" and col.name not in ("email", "slack_user_id")
        self.memo: dict | None = None if plain and not self.translate else {}

    def careful(self, text: str) -> tuple[bool, object]:
        """(True, value) or (False, what is wrong with the cell)."""
        col = self.col
        raw = text.strip()
        if self.translate:
            raw = self.translate.get(raw.lower(), raw)
        if not raw:
            if col.required:
                return False, "a value is required"
            return True, col.blank
        if len(raw) > col.max_length:
            return False, f"longer than {col.max_length} characters"
        try:
            value = self.convert(raw)
        except ValueError as exc:
            return False, str(exc)
        if bad := _CONTROL.search(raw):
            # A line break in a name would end an email's subject early or add lines to a
            # message; no column of SPEC section 5 holds more than one line.
            return False, (f"contains a line break or control character (U+{ord(bad[0]):04X})"
                           if bad[0] < "\u202a" else
                           f"contains a bidirectional override (U+{ord(bad[0]):04X}), which "
                           "would reverse how the rest of a message reads")
        return True, value

    def column(self, texts) -> tuple[list, dict[int, str]]:
        """The values of a batch of cells, and what is wrong by position (None where wrong)."""
        memo = self.memo
        if self.translated is not None:
            for text, n in Counter(texts).items():
                key = text.strip().lower()
                if key in self.translate:
                    self.translated[key] = self.translated.get(key, 0) + n
        if memo is not None:
            try:
                return list(map(memo.__getitem__, texts)), {}
            except KeyError:
                pass
            bad = {}
            for text in set(texts).difference(memo):
                ok, value = self.careful(text)
                if ok:
                    memo[text] = value
                else:
                    bad[text] = value
            if bad:
                values = [memo.get(t) for t in texts]
                problems = {i: bad[t] for i, t in enumerate(texts) if t in bad}
            else:
                values, problems = list(map(memo.__getitem__, texts)), {}
            if len(memo) > MEMO_LIMIT:
                memo.clear()
            return values, problems
        stripped = list(map(str.strip, texts))
        if stripped and max(map(len, stripped)) <= self.col.max_length and \
                not _CONTROL.search("\t".join(stripped)):
            if all(stripped):
                return stripped, {}
            if not self.col.required:
                blank = self.col.blank
                return [s or blank for s in stripped], {}
        values, problems = [], {}
        for i, text in enumerate(texts):
            ok, value = self.careful(text)
            if ok:
                values.append(value)
            else:
                values.append(None)
                problems[i] = value
        return values, problems


# ----------------------------------------------------------------- keys


def _key_of(key_idx: list[int]) -> Callable[[tuple], object]:
    """A row's key: its value for a one-column key, else a tuple."""
    return itemgetter(*key_idx)


class ExactKeys:
    """Every key of the file so far (for a table other files refer to)."""

    exact = True

    def __init__(self) -> None:
        self.keys: set = set()

    def repeated(self, keys: list) -> list[int]:
        """Positions in `keys` of keys seen before (in earlier batches or this one)."""
        fresh = set(keys)
        if len(fresh) == len(keys) and self.keys.isdisjoint(fresh):
            self.keys |= fresh
            return []
        out = []
        for i, key in enumerate(keys):
            if key in self.keys:
                out.append(i)
            else:
                self.keys.add(key)
        return out


class HashedKeys:
    """A 64-bit hash of every key of the file so far, in an open-addressing table held in
    a numpy array: 8 bytes a key (the table at most 70% full), so the 4 million
    invitations of ten times Scotland's cases take 64 MB where a set of their keys took
    400, and a batch is checked in a few vectorised steps. A repeated hash marks a suspect,
    which the file's second reading tells from two keys that merely share a hash
    (FileCheck.finish)."""

    exact = False
    _MIX = np.uint64(0x9E3779B97F4A7C15)  # Fibonacci hashing spreads the slots

    def __init__(self) -> None:
        self.bits = 16
        self.table = np.zeros(1 << self.bits, dtype=np.uint64)  # 0: an empty slot
        self.count = 0

    def repeated(self, keys: list) -> list[int]:
        """Positions in `keys` of keys whose hash came before (in earlier batches or this
        one)."""
        n = len(keys)
        if not n:
            return []
        h = np.fromiter(map(hash, keys), dtype=np.int64, count=n).view(np.uint64)
        h[h == 0] = 1
        order = np.argsort(h, kind="stable")
        ordered = h[order]
        seen = np.zeros(n, dtype=bool)
        seen[order[1:][ordered[1:] == ordered[:-1]]] = True  # the later of two in this batch
        todo = np.flatnonzero(~seen)
        while (self.count + len(todo)) * 10 > len(self.table) * 7:
            self._grow()
        found = self._insert(h[todo])
        seen[todo[found]] = True
        return np.flatnonzero(seen).tolist()

    def _insert(self, values: np.ndarray) -> np.ndarray:
        """Put distinct hashes in the table; True where one was there already."""
        table, mask = self.table, np.uint64(len(self.table) - 1)
        with np.errstate(over="ignore"):
            slot = (values * self._MIX) >> np.uint64(64 - self.bits)
        found = np.zeros(len(values), dtype=bool)
        pending = np.arange(len(values))
        while len(pending):
            current = table[slot]
            hit = current == values
            empty = current == 0
            table[slot[empty]] = values[empty]  # of two claiming one slot, one wins
            won = empty & (table[slot] == values)
            found[pending[hit]] = True
            self.count += int(won.sum())
            rest = ~(hit | won)
            pending, values, slot = pending[rest], values[rest], (slot[rest] + 1) & mask
        return found

    def _grow(self) -> None:
        old = self.table[self.table != 0]
        self.bits += 1
        self.table = np.zeros(1 << self.bits, dtype=np.uint64)
        self.count = 0
        self._insert(old)


# ----------------------------------------------------------------- one file


class FileCheck:
    """One file checked batch by batch: `batches()` yields (rows, lines) of the rows that
    read correctly, as typed tuples in the spec's column order; `finish()` then reports
    duplicate keys (reading the file a second time only if there are any) and gives back
    rows held back on a shared hash that turned out not to be duplicates."""

    def __init__(self, source: Source, errors: Errors, refs: References | None = None,
                 rules: bool = True) -> None:
        self.source, self.spec, self.errors, self.refs = source, source.spec, errors, refs
        self.rules = rules
        spec = self.spec
        self.key_idx = [spec.column_names.index(k) for k in spec.key]
        self.key = _key_of(self.key_idx)
        self.keys = ExactKeys() if spec.table in REFERENCED else HashedKeys()
        if refs is not None and isinstance(self.keys, ExactKeys):
            refs.file_keys[spec.table] = self.keys.keys
        self.suspects: list[tuple[int, tuple]] = []  # (line, row) held back as repeats
        self.read = False  # the header was usable
        self.cells: list[tuple[Cells, int | None]] = []

    def _header(self, header: list[str], errors: Errors) -> bool:
        spec, label = self.spec, self.source.label
        positions: dict[str, int] = {}
        for i, name in enumerate(header):
            if name in spec.column_names and name in positions:
                errors.add(label, self.source.header_line, self.source.column_label(name),
                           "the column appears twice in the header")
            positions.setdefault(name, i)
        missing = [c.name for c in spec.columns if c.required and c.name not in positions]
        for name in missing:
            errors.add(label, self.source.header_line, self.source.column_label(name),
                       "required column is missing from the header")
        if missing:
            return False
        self.cells = [(Cells(c, self.source), positions.get(c.name)) for c in spec.columns]
        return True

    def _convert(self, lines, records: list) -> tuple[list[tuple], list[int], list[tuple]]:
        """Typed rows and their lines, and the problems (line, order, column, reason) of
        the rows left out. A row of blank cells is no row at all."""
        lines = list(lines)
        n = len(records)
        if not n:
            return [], [], []
        columns = list(zip(*records))
        values, problems = [], {}
        for order, (cells, pos) in enumerate(self.cells):
            if pos is None:
                values.append([cells.col.blank] * n)
                continue
            vals, probs = cells.column(columns[pos])
            values.append(vals)
            for i, reason in probs.items():
                problems.setdefault(i, []).append((order, cells.label, reason))
        rows = list(zip(*values))
        if not problems:
            return rows, lines, []
        out = []
        for i in sorted(problems):
            if not any(v.strip() for v in records[i]):
                continue
            out += [(lines[i], order, label, reason) for order, label, reason in problems[i]]
        keep = [i for i in range(n) if i not in problems]
        return [rows[i] for i in keep], [lines[i] for i in keep], out

    def batches(self, batch: int = BATCH) -> Iterator[tuple[list[tuple], list[int]]]:
        source, errors = self.source, self.errors
        records = source.records(errors, batch)
        header = next(records, None)
        if header is None or not self._header(header, errors):
            records.close()
            if self.refs is not None:  # its rows are unknown, not missing: not an error each
                self.refs.unreadable.add(self.spec.table)
            return
        self.read = True
        for chunk in records:
            rows, lines, problems = self._convert(*chunk)
            rows, lines = self._drop_repeats(rows, lines)
            if self.rules:
                problems += rule_problems(self.spec, rows, lines)
            if self.refs is not None:
                problems += self.refs.problems(source, rows, lines)
            if problems:
                problems.sort(key=lambda p: (p[0], p[1]))  # by line, then column
                for line, _order, column, reason in problems:
                    errors.add(source.label, line, column, reason)
            if rows:
                yield rows, lines

    def _drop_repeats(self, rows: list, lines: list) -> tuple[list, list]:
        again = self.keys.repeated(list(map(self.key, rows)))
        if not again:
            return rows, lines
        held = set(again)
        self.suspects += [(lines[i], rows[i]) for i in again]
        return ([r for i, r in enumerate(rows) if i not in held],
                [n for i, n in enumerate(lines) if i not in held])

    def finish(self) -> tuple[list[tuple], list[int]]:
        """Report each duplicate key with the line it first came on; return the rows held
        back that are not duplicates after all (two keys with one hash), checked."""
        if not self.suspects:
            return [], []
        spec, key = self.spec, self.key
        if self.keys.exact:
            wanted = {key(row) for _line, row in self.suspects}
            match = wanted.__contains__
        else:
            hashes = {hash(key(row)) for _line, row in self.suspects}
            match = lambda k: hash(k) in hashes  # noqa: E731
        first: dict = {}
        again = RowsAgain(self)
        for rows, lines in again.batches():
            for row, line in zip(rows, lines):
                k = key(row)
                if match(k):
                    first.setdefault(k, line)
        label = ",".join(self.source.column_label(k) for k in spec.key)
        released_rows, released_lines = [], []
        for line, row in sorted(self.suspects, key=lambda s: s[0]):
            k = key(row)
            if first.get(k, line) < line:
                shown = k if isinstance(k, tuple) else (k,)
                self.errors.add(self.source.label, line, label,
                                f"duplicate key {_show('/'.join(map(str, shown)))} "
                                f"(first on line {first[k]})")
            else:
                released_rows.append(row)
                released_lines.append(line)
        if released_rows:
            problems = rule_problems(spec, released_rows, released_lines) if self.rules else []
            if self.refs is not None:
                problems += self.refs.problems(self.source, released_rows, released_lines)
            for line, _order, column, reason in sorted(problems, key=lambda p: (p[0], p[1])):
                self.errors.add(self.source.label, line, column, reason)
        return released_rows, released_lines


class RowsAgain(FileCheck):
    """A second reading of a file, for the lines its duplicate keys first came on: the
    same cells, no errors, no keys kept."""

    def __init__(self, first: FileCheck) -> None:
        super().__init__(first.source, _Ignored(), refs=None, rules=False)

    def _drop_repeats(self, rows: list, lines: list) -> tuple[list, list]:
        return rows, lines


# ----------------------------------------------------------------- rules within a row


def rule_problems(spec: FileSpec, rows: list[tuple], lines: list[int]) -> list[tuple]:
    """Rules within one row that no single column can check: (line, order, column, reason)."""
    if spec.filename not in _RULES or not rows:
        return []
    return _RULES[spec.filename](spec.column_names, rows, lines)


def _individual_rules(names, rows, lines) -> list[tuple]:
    cat, lvl, cf, rel, start, end = (names.index(c) for c in (
        "category", "level", "custody_from", "release_date", "mappa_start", "mappa_end"))
    out = []
    order = 100  # after the columns' own problems on the same line
    for row, line in zip(rows, lines):
        if row[cat] == 3 and row[lvl] == 1:
            out.append((line, order, "level",
                        "a Category 3 individual is managed at Level 2 or 3, never Level 1"))
        if row[rel] and row[cf] and row[rel] < row[cf]:
            out.append((line, order + 1, "release_date", "the release date is before custody_from"))
        if row[end] and row[end] < row[start]:
            out.append((line, order + 2, "mappa_end",
                        "the case was archived before it started (mappa_start)"))
    return out


def _custody_row_rules(names, rows, lines) -> list[tuple]:
    cf, rel = names.index("custody_from"), names.index("release_date")
    return [(line, 100, "release_date", "the release date is before custody_from")
            for row, line in zip(rows, lines) if row[rel] < row[cf]]


def _meeting_rules(names, rows, lines) -> list[tuple]:
    date = names.index("date")
    out = []
    for n, col in enumerate(("minutes_issued", "rmp_ratified")):
        i = names.index(col)
        out += [(line, 100 + n, col, f"{col} is before the meeting date {row[date]}")
                for row, line in zip(rows, lines) if row[i] and row[i] < row[date]]
    return out


_RULES = {"individuals.csv": _individual_rules, "custody.csv": _custody_row_rules,
          "meetings.csv": _meeting_rules}


# ----------------------------------------------------------------- across files


class References:
    """A reference must name a row of a file earlier in the import or of the database.
    The earlier files' keys are those their checks keep (ExactKeys); a value they do not
    hold is looked for in the database, a batch's worth in one query."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.file_keys: dict[str, set] = {}
        # Tables whose file of this import could not be read at all (its header, or the
        # whole sheet refused): that error is reported once, not again for every reference.
        self.unreadable: set[str] = set()

    def problems(self, source: Source, rows: list[tuple], lines: list[int]) -> list[tuple]:
        if not rows:
            return []
        names = source.spec.column_names
        out = []
        for n, (column, table) in enumerate(source.spec.references.items()):
            if table in self.unreadable:
                continue
            i = names.index(column)
            values = [r[i] for r in rows]
            missing = set(values)
            missing.discard(None)
            missing -= self.file_keys.get(table, set())
            if missing:
                missing -= self.in_database(table, missing)
            if missing:
                label = source.column_label(column)
                out += [(line, 200 + n, label, f"unknown {table} {_show(v)}")
                        for v, line in zip(values, lines) if v in missing]
        return out

    def in_database(self, table: str, values: set) -> set:
        tbl = SQLModel.metadata.tables[table]
        col = tbl.c[REFERENCED[table]]
        found: set = set()
        values = list(values)
        for i in range(0, len(values), 1000):
            found.update(self.conn.execute(select(col).where(col.in_(values[i:i + 1000])))
                         .scalars())
        return found


class SlackIds:
    """A Slack user is one person: the bot looks callers up by Slack id. people.csv is
    staff, a few hundred rows: its ids are kept to the end of the file."""

    def __init__(self, source: Source) -> None:
        self.source = source
        names = source.spec.column_names
        self.person, self.slack = names.index("person_id"), names.index("slack_user_id")
        self.in_file: set = set()
        self.ids: list[tuple[str, str, int]] = []

    def add(self, rows: list[tuple], lines: list[int]) -> None:
        for row, line in zip(rows, lines):
            self.in_file.add(row[self.person])
            if row[self.slack] is not None:
                self.ids.append((row[self.slack], row[self.person], line))

    def check(self, conn: Connection, errors: Errors) -> None:
        tbl = SQLModel.metadata.tables["person"]
        owner: dict[str, str] = {
            sid: pid for pid, sid in conn.execute(
                select(tbl.c.person_id, tbl.c.slack_user_id).where(tbl.c.slack_user_id.is_not(None)))
            if pid not in self.in_file
        }
        where = {sid: "already in the database" for sid in owner}
        label = self.source.column_label("slack_user_id")
        for sid, pid, line in sorted(self.ids, key=lambda t: t[2]):
            if sid in owner:
                errors.add(self.source.label, line, label,
                           f"{_show(sid)} is also person {_show(owner[sid])}'s ({where[sid]}); "
                           "each Slack user is one person")
                continue
            owner[sid], where[sid] = pid, f"line {line}"


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


class Custody:
    """No two custody periods of one individual overlap: the past ones of custody.csv with
    each other and with the current one (of individuals.csv in this import, else stored),
    and the current one with the stored past ones custody.csv does not replace. The stored
    periods are read once, before the import writes anything; of the files, only the
    periods are kept (a fraction of the rows)."""

    def __init__(self, conn: Connection) -> None:
        self.stored_current, self.stored_past = stored_periods(conn)
        self.file_current: dict = {}  # ref -> (custody_from, release_date, line)
        self.cleared: set = set()  # refs the import gives no current period
        self.file_past: dict[str, list] = {}  # ref -> [(custody_from, release_date, line)]
        self.individuals: Source | None = None
        self.custody: Source | None = None

    def add_individuals(self, source: Source, rows: list[tuple], lines: list[int]) -> None:
        self.individuals = source
        names = source.spec.column_names
        i_ref, i_cf, i_rel = (names.index(c) for c in ("ref", "custody_from", "release_date"))
        for row, line in zip(rows, lines):
            if row[i_cf]:
                self.file_current[row[i_ref]] = (row[i_cf], row[i_rel], line)
            elif row[i_ref] in self.stored_current:
                self.cleared.add(row[i_ref])

    def add_custody(self, source: Source, rows: list[tuple], lines: list[int]) -> None:
        self.custody = source
        names = source.spec.column_names
        c_ref, c_cf, c_rel = (names.index(c) for c in ("ref", "custody_from", "release_date"))
        for row, line in zip(rows, lines):
            self.file_past.setdefault(row[c_ref], []).append((row[c_cf], row[c_rel], line))

    def check(self, errors: Errors) -> None:
        file_current = self.file_current

        def current(ref):
            if ref in file_current:
                return file_current[ref]
            if ref in self.cleared or ref not in self.stored_current:
                return None
            cf, rel, _lvl = self.stored_current[ref]
            return cf, rel, None

        if self.custody is not None:
            label = self.custody.label
            column = self.custody.column_label("custody_from")
            for ref, periods in self.file_past.items():
                periods.sort()
                for (a_cf, a_rel, a_line), (b_cf, b_rel, b_line) in zip(periods, periods[1:]):
                    if overlap(a_cf, a_rel, b_cf, b_rel):
                        errors.add(label, b_line, column,
                                   f"the period from {b_cf} overlaps the one from {a_cf} to "
                                   f"{a_rel} (line {a_line})")
                cur = current(ref)
                for cf, rel, line in periods:
                    if cur is not None and overlap(cf, rel, cur[0], cur[1]):
                        until = f" to {cur[1]}" if cur[1] else " (no release date)"
                        errors.add(label, line, column,
                                   f"the period from {cf} to {rel} overlaps the current custody "
                                   f"period from {cur[0]}{until} in individuals.csv")
        if self.individuals is None:
            return
        label = self.individuals.label
        column = self.individuals.column_label("custody_from")
        found = []
        for ref, (cf, rel, line) in file_current.items():
            replaced = self.file_past.get(ref, [])
            keep = [p for p in self.stored_past.get(ref, [])
                    if not any(p[0] == q[0] or overlap(p[0], p[1], q[0], q[1]) for q in replaced)]
            for p_cf, p_rel, _lvl in keep:
                if overlap(cf, rel, p_cf, p_rel):
                    found.append((line, f"the current custody period from {cf} overlaps a "
                                        f"past one from {p_cf} to {p_rel}"))
        for line, reason in sorted(found, key=lambda f: f[0]):
            errors.add(label, line, column, reason)


# ----------------------------------------------------------------- after the write


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


# ----------------------------------------------------------------- rows in memory


@dataclass
class Parsed:
    """A file's rows held whole (tests/frames.py reads rows as the importer does)."""

    spec: FileSpec
    rows: list[tuple]  # typed values in spec.column_names order
    lines: array  # file line of each row

    def index(self, column: str) -> int:
        return self.spec.column_names.index(column)


def parse_rows(reader, spec: FileSpec, errors: Errors) -> Parsed | None:
    """Every row of a CSV reader, checked cell by cell and for duplicate keys, held in
    memory (no row rules: row_rules; no references)."""
    check = FileCheck(RowsSource(spec, list(reader)), errors, refs=None, rules=False)
    rows: list[tuple] = []
    lines = array("I")
    for r, n in check.batches():
        rows += r
        lines.extend(n)
    late_rows, late_lines = check.finish()
    rows += late_rows
    lines.extend(late_lines)
    return Parsed(spec, rows, lines) if check.read else None


def row_rules(parsed: Parsed, errors: Errors) -> None:
    for line, _order, column, reason in sorted(
            rule_problems(parsed.spec, parsed.rows, list(parsed.lines)), key=lambda p: p[:2]):
        errors.add(parsed.spec.filename, line, column, reason)

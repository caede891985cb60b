"""Reading an import: which files of a directory are read, and the cells of each.

A `Source` is one file of SPEC section 5 as the unit gave it (a CSV file, or later a
workbook's sheet), under its own name and, with a mapping file, its own column names and
spellings. It hands validate.py the header (in our column names) and then the records in
batches, each record's cells as text with the line (or sheet row) it starts on. What the
cells say is checked in validate.py; here only what makes a file unreadable: not UTF-8, not
CSV, a row with more or fewer fields than the header.
"""

from __future__ import annotations

import csv
import io
import re
import sys
from collections.abc import Iterator
from itertools import islice
from pathlib import Path

from ...rules.schema import FILES, FileSpec

# Records per batch: validated, counted and written together (a few MB at most).
BATCH = 5000
_BREAK = re.compile(r"\r\n|\r|\n")


class Source:
    """One file of the import. `label` names it in errors; `columns` maps our column to
    the unit's (from a mapping file: errors then name both); `values` maps, per our
    column, the unit's spelling (lower case) to ours."""

    def __init__(self, spec: FileSpec, label: str, columns: dict[str, str] | None = None,
                 values: dict[str, dict[str, str]] | None = None) -> None:
        self.spec = spec
        self.label = label
        self.columns = columns or {}
        self.values = values or {}

    def column_label(self, name: str) -> str:
        """Our column as errors name it: with the unit's own name beside it when mapped."""
        theirs = self.columns.get(name)
        return f"{name} ({theirs})" if theirs else name

    def rename(self, header: list[str]) -> list[str]:
        """The header in our column names: the unit's mapped names become ours; a column
        that has our name but is not the one the mapping names is ignored, as extra
        columns are."""
        header = [h.strip().lstrip("\ufeff").lower() for h in header]
        if not self.columns:
            return header
        ours = {theirs.strip().lower(): name for name, theirs in self.columns.items()}
        return [ours.get(h, "" if h in self.columns else h) for h in header]

    def records(self, errors, batch: int = BATCH) -> Iterator:
        """First the header (our names), then batches (lines, records): each record a
        list of cells as text, as many as the header's, and the line it starts on;
        reports what cannot be read (errors.add) and stops there. Empty if the file has
        no header row."""
        raise NotImplementedError

    def progress(self) -> float | None:
        """How much of the file has been read (0 to 1), when that is known."""
        return None


class _Counting(io.RawIOBase):
    """A binary file that counts the bytes read from it (the progress bar's measure)."""

    def __init__(self, raw) -> None:
        self.raw, self.done = raw, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = self.raw.readinto(buffer)
        self.done += n or 0
        return n

    def close(self) -> None:
        self.raw.close()
        super().close()


class CsvSource(Source):
    """A UTF-8 CSV file (a byte-order mark is accepted)."""

    def __init__(self, path: Path, spec: FileSpec, label: str | None = None, **mapping) -> None:
        super().__init__(spec, label or path.name, **mapping)
        self.path = path
        self._counter: _Counting | None = None
        self._size = 0

    def progress(self) -> float | None:
        if self._counter is None or self._size < 2_000_000:  # done in a moment
            return None
        return min(1.0, self._counter.done / self._size)

    def records(self, errors, batch: int = BATCH) -> Iterator:
        label = self.label
        try:
            raw = self.path.open("rb", buffering=0)
            self._size = self.path.stat().st_size
        except OSError as exc:
            errors.add(label, 1, "-", f"cannot be read ({exc.strerror or exc})")
            return
        self._counter = _Counting(raw)
        handle = io.TextIOWrapper(io.BufferedReader(self._counter, 1 << 16),
                                  encoding="utf-8-sig", newline="")
        with handle:
            reader = csv.reader(handle)
            try:
                yield from self._rows(reader, errors, batch)
            except UnicodeDecodeError:
                line, byte = bad_utf8(self.path)
                with self.path.open("rb") as f:
                    utf16 = f.read(2) in (b"\xff\xfe", b"\xfe\xff")
                errors.add(label, line, "-", "UTF-16 text: save it as CSV UTF-8" if utf16 else
                           f"not UTF-8 text (byte {byte:#04x})")

    def _rows(self, reader, errors, batch: int) -> Iterator:
        label = self.label
        try:
            header = next(reader)
        except StopIteration:
            errors.add(label, 1, "-", "the file is empty (a header row is required)")
            return
        except csv.Error as exc:
            errors.add(label, 1, "-", f"not a readable CSV header ({exc})")
            return
        yield self.rename(header)
        width = len(header)
        line = reader.line_num
        broken = False
        while not broken:
            records: list[list[str]] = []
            try:
                records.extend(islice(reader, batch))  # keeps what it read before an error
                end = reader.line_num
            except csv.Error as exc:
                broken = True
                errors.add(label, reader.line_num, "-", (
                    f"a cell longer than {csv.field_size_limit():,} characters (no column of a "
                    "MAPPA export is near that; an unclosed quote can make one)"
                    if "field larger than field limit" in str(exc) else
                    f"not readable as CSV ({exc})"))
                end = None
            if not records:
                return
            if end is not None and end - line == len(records):  # no line break in a cell
                lines = range(line + 1, end + 1)
            else:
                lines = _start_lines(records, line)
            line = lines[-1] if end is None else end
            yield _of_width(label, width, lines, records, errors)


def _start_lines(records: list[list[str]], before: int) -> list[int]:
    """The line each record starts on, when some cell holds a line break (quoted)."""
    out = []
    line = before + 1
    for record in records:
        out.append(line)
        line += 1 + sum(len(_BREAK.findall(cell)) for cell in record if "\n" in cell or "\r" in cell)
    return out


def _of_width(label: str, width: int, lines, records: list, errors) -> tuple[list, list]:
    """The records with as many cells as the header has columns (the others are errors,
    unless blank)."""
    if all(map(width.__eq__, map(len, records))):
        return lines, records
    keep_lines, keep = [], []
    for line, record in zip(lines, records):
        if len(record) == width:
            keep_lines.append(line)
            keep.append(record)
        elif record and any(v.strip() for v in record):
            errors.add(label, line, "-", f"has {len(record)} fields but the header has {width}")
    return keep_lines, keep


class RowsSource(Source):
    """Records already in memory: a header and rows (tests/frames.py reads its rows as the
    importer does through this)."""

    def __init__(self, spec: FileSpec, rows: list[list[str]], label: str | None = None) -> None:
        super().__init__(spec, label or spec.filename)
        self.rows = rows

    def records(self, errors, batch: int = BATCH) -> Iterator:
        if not self.rows:
            errors.add(self.label, 1, "-", "the file is empty (a header row is required)")
            return
        header = self.rows[0]
        yield self.rename(header)
        for start in range(1, len(self.rows), batch):
            records = self.rows[start:start + batch]
            yield _of_width(self.label, len(header), range(start + 1, start + 1 + len(records)),
                            records, errors)


def bad_utf8(path: Path) -> tuple[int, int]:
    """The line and value of the first byte that is not UTF-8, reading in chunks."""
    import codecs

    decoder = codecs.getincrementaldecoder("utf-8")()
    line = 1
    with path.open("rb") as f:
        while chunk := f.read(1 << 16):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                pending = exc.object  # the undecoded tail of earlier chunks and this one
                return line + pending[: exc.start].count(b"\n"), pending[exc.start]
            line += chunk.count(b"\n")
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError as exc:
            return line, exc.object[exc.start]
    return line, 0


def find_files(directory: Path) -> list[tuple[FileSpec, Path]]:
    found = []
    for spec in FILES:
        path = directory / spec.filename
        if path.is_file():
            found.append((spec, path))
    return found


def not_files(directory: Path, names: dict[str, str] | None = None) -> list[tuple[str, str]]:
    """(file name, reason) for each expected file name that is there but not a file."""
    out = []
    for spec in FILES:
        name = (names or {}).get(spec.filename, spec.filename)
        path = directory / name
        if (path.exists() or path.is_symlink()) and not path.is_file():
            kind = "a directory" if path.is_dir() else "not a regular file"
            out.append((name, f"is {kind}, not a CSV file"))
    return out


def unread_files(directory: Path, expected: set[str] | None = None) -> list[str]:
    """A warning for each CSV file in `directory` that is not one of SPEC section 5's (and
    so is skipped), with the name it probably meant: "Meetings.csv" beside the others
    imported everything but the meetings, without a word."""
    import difflib

    # By stem: with ".csv" on both sides every name looks like some file's (notes/areas).
    names = {spec.filename.lower().removesuffix(".csv"): spec.filename for spec in FILES}
    read = set(names.values()) | (expected or set())
    out = []
    for path in sorted(directory.iterdir()):
        if path.suffix.lower() != ".csv" or path.name in read or not path.is_file():
            continue
        close = difflib.get_close_matches(path.stem.lower(), list(names), n=1)
        shown = path.name if path.name.isprintable() else ascii(path.name)
        out.append(f"{shown}: not a file mappa reads"
                   + (f" (did you mean {names[close[0]]}?)" if close else "") + "; skipped")
    return out


def show_progress(label: str, fraction: float | None, done: bool = False) -> None:
    """A progress bar on a terminal (nothing otherwise): a million-case import takes a
    minute."""
    if fraction is None or not sys.stderr.isatty():
        return
    width = 30
    filled = int(width * fraction)
    sys.stderr.write(f"\r{label[:18]:18} [{'#' * filled}{'.' * (width - filled)}] "
                     f"{fraction:4.0%}")
    if done:
        sys.stderr.write("\n")
    sys.stderr.flush()

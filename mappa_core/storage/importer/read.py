"""Reading an import: which files of a directory are read, and the cells of each.

A `Source` is one file of SPEC section 5 as the unit gave it (a CSV file, or a sheet of
an Excel workbook), under its own name and, with a mapping file, its own column names and
spellings. It hands validate.py the header (in our column names) and then the records in
batches, each record's cells as text with the line (or sheet row) it starts on. What the
cells say is checked in validate.py; here only what makes a file unreadable: not UTF-8, not
CSV, a row with more or fewer fields than the header; for a workbook, not an .xlsx, a
password, a sheet too big or too wide, formulas, merged cells.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import sys
import zipfile
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from xml.etree import ElementTree

from ...rules.schema import FILES, FileSpec

# Records per batch: validated, counted and written together (a few MB at most).
BATCH = 5000
_BREAK = re.compile(r"\r\n|\r|\n")


class Source:
    """One file of the import. `label` names it in errors; `columns` maps our column to
    the unit's (from a mapping file: errors then name both); `values` maps, per our
    column, the unit's spelling (lower case) to ours."""

    header_line = 1  # the line (sheet row) the header is on, once read

    def __init__(self, spec: FileSpec, label: str, columns: dict[str, str] | None = None,
                 values: dict[str, dict[str, str]] | None = None) -> None:
        self.spec = spec
        self.label = label
        self.columns = columns or {}
        self.values = values or {}
        self.headings: list[str] = []  # the header as the file has it
        self.translated: dict[str, dict[str, int]] = {}  # ours -> {their spelling: cells}

    def column_label(self, name: str) -> str:
        """Our column as errors name it: with the unit's own name beside it when mapped."""
        theirs = self.columns.get(name)
        return f"{name} ({theirs})" if theirs else name

    def rename(self, header: list[str]) -> list[str]:
        """The header in our column names: the unit's mapped names become ours; a column
        that has our name but is not the one the mapping names is ignored, as extra
        columns are."""
        self.headings = [h.strip().lstrip("\ufeff") for h in header]
        header = [h.lower() for h in self.headings]
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


# ----------------------------------------------------------------- Excel workbooks
# Read with python-calamine (Rust's calamine): it reads an .xlsx several times faster than
# openpyxl, in a fraction of its memory, turns cells formatted as dates into dates, knows
# merged ranges and password-protected files. It reads the values Excel cached, not the
# formulas: those are found in the sheet's XML (formula_cells) and refused.

SHEET_XML_LIMIT = 100 * 1024 * 1024  # uncompressed bytes of one sheet's XML
COLUMN_LIMIT = 256  # no file of SPEC section 5 has a twentieth of that
_CFB = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # an OLE file: .xls, or an encrypted .xlsx


def column_letters(index: int) -> str:
    """0 -> A, 25 -> Z, 26 -> AA, 16383 -> XFD."""
    out = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        out = chr(65 + rest) + out
    return out


def cell_text(value) -> str:
    """A cell as text, as a CSV export would have written it: a date as YYYY-MM-DD, a whole
    number without its ".0" (an id Excel made a number of: 00123 -> 123), TRUE/FALSE as
    yes/no."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time(0) else \
            value.isoformat(sep=" ", timespec="minutes")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


class Workbook:
    """An .xlsx file, opened once for its sheets. `problem` says why it cannot be read (not
    a workbook, an .xls, a password) and is then the import's one error."""

    def __init__(self, path: Path) -> None:
        self.path, self.label = path, path.name
        self.problem: str | None = None
        self.book = None
        self.parts: dict[str, str] = {}  # sheet name -> its XML part in the zip
        self.sizes: dict[str, int] = {}
        try:
            with path.open("rb") as f:
                head = f.read(8)
        except OSError as exc:
            self.problem = f"cannot be read ({exc.strerror or exc})"
            return
        if head.startswith(_CFB):
            self.problem = self._ole_problem()
            return
        if not head.startswith(b"PK"):
            self.problem = ("not an Excel workbook (.xlsx)" + (
                ": it is text (a CSV file renamed?); import CSV files from a folder"
                if _looks_like_text(head) else ""))
            return
        try:
            self._read_parts()
        except (zipfile.BadZipFile, KeyError, ElementTree.ParseError, OSError):
            self.problem = "not an Excel workbook (.xlsx): a zip file without a workbook in it"
            return
        from python_calamine import CalamineError, CalamineWorkbook

        try:
            self.book = CalamineWorkbook.from_path(str(path))
        except CalamineError as exc:
            self.problem = f"not a readable Excel workbook ({exc})"
        except Exception as exc:  # noqa: BLE001 (calamine's error classes vary by version)
            self.problem = f"not a readable Excel workbook ({type(exc).__name__}: {exc})"

    def _ole_problem(self) -> str:
        from python_calamine import CalamineWorkbook, PasswordError

        try:
            CalamineWorkbook.from_path(str(self.path)).close()
        except PasswordError:
            return ("password-protected: save a copy without a password (File, Info, Protect "
                    "Workbook, Encrypt with Password: clear it) and import that")
        except Exception:  # noqa: BLE001 (any other OLE file is no .xlsx either)
            pass
        return ("an Excel 97-2003 workbook (.xls) or another Office file, not an .xlsx: open "
                "it in Excel and save it as Excel Workbook (.xlsx)")

    def _read_parts(self) -> None:
        """Each sheet's XML part and its uncompressed size, from the zip's directory: a
        sheet too big is refused before anything is read."""
        ns = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main",
              "r": "http://schemas.openxmlformats.org/officeDocument/2006/relationships"}
        with zipfile.ZipFile(self.path) as z:
            sizes = {i.filename: i.file_size for i in z.infolist()}
            book = ElementTree.fromstring(z.read("xl/workbook.xml"))
            rels = ElementTree.fromstring(z.read("xl/_rels/workbook.xml.rels"))
        targets = {r.get("Id"): r.get("Target", "") for r in rels}
        for sheet in book.iterfind("m:sheets/m:sheet", ns):
            target = targets.get(sheet.get(f"{{{ns['r']}}}id"), "")
            part = target.lstrip("/") if target.startswith("/") else "xl/" + target
            self.parts[sheet.get("name")] = part
            self.sizes[sheet.get("name")] = sizes.get(part, 0)

    def sheet_names(self) -> list[str]:
        return list(self.parts) if self.book is not None else []

    def formula_cells(self, name: str, limit: int = 1000) -> list[str]:
        """The cells of sheet `name` that hold a formula (A1 references, at most `limit`),
        from its XML: calamine reads only the values Excel cached."""
        part = self.parts.get(name)
        if not part:
            return []
        found: list[str] = []
        tail = b""
        with zipfile.ZipFile(self.path) as z, z.open(part) as f:
            while len(found) < limit and (chunk := f.read(1 << 20)):
                text = tail + chunk
                for m in _FORMULA.finditer(text):
                    found.append(m[1].decode())
                # A cell cut at the chunk's end is read again with the next chunk.
                cut = text.rfind(b"<c ")
                tail = text[cut:] if cut >= 0 and text.find(b"</c>", cut) < 0 else b""
        return list(dict.fromkeys(found))[:limit]

    def close(self) -> None:
        if self.book is not None:
            self.book.close()


# A cell with a formula: <c r="D5" ...><f>...</f> (any namespace prefix), up to its end.
_FORMULA = re.compile(rb"<(?:\w+:)?c\s[^>]*?\br=\"([A-Z]+[0-9]+)\"[^>]*(?<!/)>(?:(?!</(?:\w+:)?c>).)*?"
                      rb"<(?:\w+:)?f[\s>/]", re.S)


def _looks_like_text(head: bytes) -> bool:
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(c >= 32 or c in (9, 10, 13) for c in head)


class SheetSource(Source):
    """A sheet of an Excel workbook: errors say `book.xlsx[sheet]:row: column: reason`, the
    row being the sheet's own row number. The header is the sheet's first row that is not
    empty; empty rows and columns around the table are ignored."""

    def __init__(self, book: Workbook, sheet: str, spec: FileSpec, **mapping) -> None:
        super().__init__(spec, f"{book.label}[{sheet}]", **mapping)
        self.book, self.sheet = book, sheet
        self._done = 0
        self._rows = 0

    def progress(self) -> float | None:
        return self._done / self._rows if self._rows > 20_000 else None

    def records(self, errors, batch: int = BATCH) -> Iterator:
        label, book = self.label, self.book
        size = book.sizes.get(self.sheet, 0)
        if size > SHEET_XML_LIMIT:
            errors.add(label, 1, "-", (
                f"the sheet is {size / 2**20:,.0f} MB of XML, more than the "
                f"{SHEET_XML_LIMIT // 2**20} MB a workbook's sheet may be: save it as CSV UTF-8 "
                "and import the folder (CSV files of any size are read a batch at a time)"))
            return
        from python_calamine import CalamineError

        try:
            sheet = book.book.get_sheet_by_name(self.sheet)
        except CalamineError as exc:
            errors.add(label, 1, "-", f"cannot be read ({exc})")
            return
        if sheet.width > COLUMN_LIMIT:
            last = column_letters(sheet.start[1] + sheet.width - 1)
            errors.add(label, 1, "-", (
                f"has {sheet.width:,} columns (to column {last}): a cell far right of the "
                f"table; delete the columns after it (mappa's files have at most "
                f"{max(len(s.columns) for s in FILES)})"))
            return
        if formulas := book.formula_cells(self.sheet):
            more = f" (and {len(formulas) - 1:,} more)" if len(formulas) > 1 else ""
            row = int(re.sub("[A-Z]", "", formulas[0]))
            errors.add(label, row, "-", (
                f"cell {formulas[0]}{more} holds a formula: mappa reads values, not "
                "formulas (copy the sheet and paste it as values)"))
            return
        merged = sorted(sheet.merged_cell_ranges or [])
        if merged:
            (r1, c1), (r2, c2) = merged[0]
            cells = f"{column_letters(c1)}{r1 + 1}:{column_letters(c2)}{r2 + 1}"
            more = f" (and {len(merged) - 1} more ranges)" if len(merged) > 1 else ""
            errors.add(label, r1 + 1, "-", (
                f"merged cells {cells}{more}: each cell must hold its own value (the header "
                "one column name a cell, each row its own values); unmerge them"))
            return
        self._rows = sheet.height
        first = 1  # iter_rows starts at the sheet's first row (from the used range's column)
        rows = sheet.iter_rows()
        header = None
        for n, row in enumerate(rows, start=first):
            if any(v != "" for v in row):
                header, line = row, n
                break
        if header is None:
            errors.add(label, 1, "-", "the sheet is empty (a header row is required)")
            return
        self.header_line = line
        yield self.rename([cell_text(v) for v in header])
        out_lines: list[int] = []
        out: list[list[str]] = []
        for n, row in enumerate(rows, start=line + 1):
            out_lines.append(n)
            out.append([v if isinstance(v, str) else cell_text(v) for v in row])
            if len(out) >= batch:
                self._done = n - first
                yield out_lines, out
                out_lines, out = [], []
        if out:
            yield out_lines, out


def workbook_sources(book: Workbook, mapping=None) -> tuple[list[Source], list[str]]:
    """The sheets of `book` that are files of SPEC section 5 (their names without .csv, in
    any letter case, or as `mapping` names them), and a warning for each other sheet."""
    import difflib

    names = {spec.filename.removesuffix(".csv"): spec for spec in FILES}
    wanted = {(mapping.sheet_of(spec) if mapping else spec.filename.removesuffix(".csv"))
              .strip().lower(): spec for spec in FILES}
    sources: list[Source] = []
    warnings = []
    for sheet in book.sheet_names():
        spec = wanted.get(sheet.strip().lower())
        if spec is not None:
            source = SheetSource(book, sheet, spec, **(mapping.for_spec(spec) if mapping else {}))
            if mapping:
                source.label = mapping.label(spec, source.label)
            sources.append(source)
            continue
        close = difflib.get_close_matches(sheet.strip().lower(), list(names), n=1)
        warnings.append(f"{book.label}[{sheet}]: not a sheet mappa reads"
                        + (f" (did you mean {close[0]}?)" if close else "") + "; skipped")
    return sources, warnings


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


def find_files(directory: Path, names: dict[str, str] | None = None
               ) -> list[tuple[FileSpec, Path]]:
    """Each file of SPEC section 5 in `directory` (`names`: our file -> the unit's name)."""
    found = []
    for spec in FILES:
        path = directory / (names or {}).get(spec.filename, spec.filename)
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

"""Import: validate a whole file set and upsert it in one transaction, or write nothing.

Every error is reported as `file:line: column: reason`, all of them at once. The work is
in three rooms: read.py (which files, and their cells), validate.py (every check, every
error) and write.py (the upsert, the values recorded through the bot, the custody
history). Files are taken one at a time in SPEC order, a batch of rows at a time: each
batch is checked, then counted and written, in the one transaction; once any error is
found nothing more is written, the rest is still checked (so every error is reported),
and the transaction is rolled back. Memory stays bounded at any size: what outlives a
batch is the keys later files refer to, a hash of every other key, and custody periods.
"""

from __future__ import annotations

import contextlib
import gc
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import Engine

from .. import db
from ...rules.schema import CUSTODY, FILES, INDIVIDUALS, PEOPLE
from .read import (
    BATCH, CsvSource, Source, Workbook, find_files, not_files, show_progress, unread_files,
    workbook_sources,
)
from .validate import (
    MAX_ERRORS, Custody, Errors, FileCheck, References, SlackIds, converter, parse_rows,
    people_in_no_area, row_rules,
)
from .mapping import Mapping, MappingError, load as load_mapping, template as mapping_template
from .write import FileReport, Pipe, Writer, drop_replaced_periods, keep_custody_history

__all__ = ["BATCH", "MAX_ERRORS", "FileReport", "ImportReport", "Source", "find_files",
           "import_directory", "import_sources", "import_workbook", "people_in_no_area",
           "unread_files", "MappingError", "load_mapping", "mapping_template",
           "describe_mapping", "write_template"]

# SQLite's page cache during an import, in KiB (see _bigger_sqlite_cache).
SQLITE_CACHE_KB = 196_608


# The parser's own names, for the tests that read rows as the importer does
# (tests/frames.py, tests/test_cli.py).
_Errors, _converter, _parse_rows, _row_rules = Errors, converter, parse_rows, row_rules


@dataclass
class ImportReport:
    files: list[FileReport] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    dry_run: bool = False
    error_count: int = 0  # every error found, including those past MAX_ERRORS
    # Nothing wrong with what was imported, but worth a look: each CSV file in the
    # directory that is not read (a misnamed meetings file would otherwise go unseen).
    warnings: list[str] = field(default_factory=list)
    sources: list[Source] = field(default_factory=list, repr=False)  # what was read

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def kept(self) -> int:
        return sum(f.kept for f in self.files)

    @property
    def caught_up(self) -> int:
        return sum(f.caught_up for f in self.files)

    @property
    def replaced(self) -> int:
        return sum(f.replaced for f in self.files)


def import_directory(engine: Engine, directory: Path | str, dry_run: bool = False,
                     mapping: Mapping | None = None) -> ImportReport:
    """Validate every CSV file of SPEC section 5 in `directory` (under the names `mapping`
    gives them), then upsert them all or none."""
    directory = Path(directory)
    report = ImportReport(dry_run=dry_run)
    if not directory.is_dir():
        report.errors.append(f"{directory}: not a directory")
        return report
    names = {spec.filename: mapping.name_of(spec) for spec in FILES} if mapping else None
    report.warnings = unread_files(directory, set((names or {}).values()))
    errors = Errors()
    for name, reason in not_files(directory, names):
        errors.add(name, 1, "-", reason)
    sources: list[Source] = []
    for spec, path in find_files(directory, names):
        source = CsvSource(path, spec, **(mapping.for_spec(spec) if mapping else {}))
        if mapping:
            source.label = mapping.label(spec, path.name)
        sources.append(source)
    if mapping:
        report.warnings += _mapped_but_absent(mapping, {s.spec.filename for s in sources},
                                              f"in {directory}")
    if not sources and not errors.count:
        names_ = ", ".join((names or {}).get(s.filename, s.filename) for s in FILES)
        report.errors.append(f"{directory}: none of the import files is there ({names_})")
        return report
    report.sources = sources
    return import_sources(engine, sources, report, errors)


def import_workbook(engine: Engine, path: Path | str, dry_run: bool = False,
                    mapping: Mapping | None = None) -> ImportReport:
    """Validate the sheets of an Excel workbook named like the files of SPEC section 5
    (`meetings` for meetings.csv, or as `mapping` names them), then upsert them all or
    none."""
    path = Path(path)
    report = ImportReport(dry_run=dry_run)
    book = Workbook(path)
    try:
        if book.problem:
            report.errors, report.error_count = [f"{book.label}:1: -: {book.problem}"], 1
            return report
        sources, report.warnings = workbook_sources(book, mapping)
        if mapping:
            report.warnings += _mapped_but_absent(mapping, {s.spec.filename for s in sources},
                                                  f"a sheet of {book.label}")
        if not sources:
            names = ", ".join(mapping.sheet_of(s) if mapping else s.filename.removesuffix(".csv")
                              for s in FILES)
            report.errors = [f"{book.label}:1: -: none of its sheets is one mappa reads ({names})"]
            report.error_count = 1
            return report
        report.sources = sources
        return import_sources(engine, sources, report)
    finally:
        book.close()


def _mapped_but_absent(mapping: Mapping, found: set[str], where: str) -> list[str]:
    """A warning for each file the mapping names that is not there."""
    return [f"{mapping.path.name}: [{name.removesuffix('.csv')}] file = {m.file!r} is not "
            f"{where}; nothing of {name} is imported"
            for name, m in mapping.files.items() if m.file and name not in found]


def describe_mapping(report: ImportReport) -> list[str]:
    """What maps to what, file by file, for `mappa import --dry-run --mapping`: the unit's
    file, each of our columns and the heading it is read from (mapped, or our own name),
    the spellings turned into ours and how many cells each, and the unit's columns not read."""
    lines = []
    for source in report.sources:
        spec = source.spec
        lines.append(f"{spec.filename} <- {source.label}")
        headings = {h.lower(): h for h in source.headings}
        mapped = []
        for col in spec.columns:
            theirs = source.columns.get(col.name)
            if theirs is not None:
                shown = headings.get(theirs.lower())
                mapped.append(f"{col.name} <- {theirs!r}" + ("" if shown else " (not in the file)"))
        if mapped:
            lines.append("  columns: " + "; ".join(mapped))
        own = [c.name for c in spec.columns
               if c.name not in source.columns and c.name in headings]
        if own:
            lines.append("  by our own name: " + ", ".join(own))
        absent = [c.name for c in spec.columns if c.name not in source.columns
                  and c.name not in headings]
        if absent:
            lines.append("  not in the file (blank): " + ", ".join(absent))
        used = {v.lower() for v in source.columns.values()} | {c.name for c in spec.columns}
        unread = [h for h in source.headings if h and h.lower() not in used]
        if unread:
            lines.append("  not read: " + ", ".join(repr(h) for h in unread))
        for col, spellings in source.values.items():
            counts = source.translated.get(col, {})
            shown = [f"{theirs!r} -> {ours or '(blank)'!s}: {counts.get(theirs.strip().lower(), 0):,}"
                     for theirs, ours in spellings.items()]
            lines.append(f"  {col} values: " + "; ".join(shown))
    return lines


def import_sources(engine: Engine, sources: list[Source], report: ImportReport,
                   errors: Errors | None = None) -> ImportReport:
    """Check and write `sources` (in SPEC order) in one transaction; nothing is written if
    any error is found."""
    errors = errors or Errors()
    order = {spec.filename: i for i, spec in enumerate(FILES)}
    sources = sorted(sources, key=lambda s: order[s.spec.filename])
    # The checks' reads of what is already stored (committed rows, as before this import)
    # go through a second connection while the writes go on in the first, on the Pipe's
    # thread. An in-memory SQLite database is one connection's own: one thread does all.
    memory = engine.dialect.name == "sqlite" and engine.url.database in (None, "", ":memory:")
    with engine.begin() as conn, \
            (contextlib.nullcontext(conn) if memory else engine.connect()) as reads:
        # Read before anything is written: the stored periods the custody rules compare with.
        specs = {s.spec.filename for s in sources}
        custody = Custody(conn) if specs & {INDIVIDUALS.filename, CUSTODY.filename} else None
        collecting = gc.isenabled()
        # The import makes no reference cycles, but millions of short-lived rows; the
        # collector would walk the kept key sets each time (a third of a 1,000,000-case
        # import's time). It runs again as soon as the import ends.
        gc.disable()
        cache = _bigger_sqlite_cache(conn)
        pipe = Pipe(threaded=not memory)
        try:
            files = _import_all(conn, reads, pipe, sources, custody, errors, report.dry_run)
            pipe.wait()
        finally:
            pipe.close()
            if collecting:
                gc.enable()
            if cache is not None:
                conn.exec_driver_sql(f"PRAGMA cache_size = {int(cache)}")
        if errors.count:
            conn.rollback()
            report.errors, report.error_count = errors.report(), errors.count
            return report
        report.files = files
        report.warnings += people_in_no_area(conn)
        if report.dry_run:
            conn.rollback()
        else:
            db.bump_change_stamp(conn)  # replicas' answer caches start again
    if not report.dry_run and engine.dialect.name == "postgresql":
        # Fresh statistics, or the planner guesses a few hundred rows where there are
        # thousands and picks slow plans until autovacuum gets round to it.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for source in sources:
                conn.exec_driver_sql(f"ANALYZE {source.spec.table}")
    return report


def _bigger_sqlite_cache(conn) -> int | None:
    """SQLite's page cache raised for the import (2 MB by default): a million cases' rows
    go into B-trees of hundreds of MB, and with the small cache every insert read its
    pages again. Returns the setting to put back (the connection goes back to the pool)."""
    if conn.dialect.name != "sqlite":
        return None
    before = conn.exec_driver_sql("PRAGMA cache_size").scalar()
    conn.exec_driver_sql(f"PRAGMA cache_size = -{SQLITE_CACHE_KB}")
    return before


def _import_all(conn, reads, pipe: Pipe, sources: list[Source], custody: Custody | None,
                errors: Errors, dry_run: bool) -> list[FileReport]:
    refs = References(reads)
    files = []
    last_custody = [s for s in sources if s.spec in (INDIVIDUALS, CUSTODY)][-1:]
    for source in sources:
        file_report, held = _import_file(conn, reads, pipe, source, refs, custody, errors,
                                         dry_run)
        if file_report is not None:
            files.append(file_report)
        if source in last_custody:
            custody.check(errors)
        if held is not None and not errors.count:
            def write_custody(rows=held, file_report=file_report) -> None:
                if not dry_run:
                    drop_replaced_periods(conn, CUSTODY, rows)
                writer = Writer(conn, CUSTODY, file_report)
                writer.add(rows, write=not dry_run)
                writer.close()
            pipe.put(write_custody)
    return files


def _import_file(conn, reads, pipe: Pipe, source: Source, refs: References,
                 custody: Custody | None, errors: Errors,
                 dry_run: bool) -> tuple[FileReport | None, list | None]:
    """One file, batch by batch: each checked here, then counted and written on the Pipe's
    thread. custody.csv's rows are held to the end (a few thousand), for the custody rules
    and because the stored periods the file replaces go before it is written."""
    spec = source.spec
    check = FileCheck(source, errors, refs)
    slack = SlackIds(source) if spec is PEOPLE else None
    file_report = FileReport(source.label)
    writer: list[Writer] = []  # made on the Pipe's thread by the first batch (empty table?)
    held: list[tuple] = []

    def write(rows: list[tuple]) -> None:
        if not writer:
            writer.append(Writer(conn, spec, file_report))
        if spec is INDIVIDUALS and not dry_run:
            keep_custody_history(conn, spec, rows, custody.stored_current, custody.stored_past)
        writer[0].add(rows, write=not dry_run)

    def take(rows: list[tuple], lines: list[int]) -> None:
        if slack is not None:
            slack.add(rows, lines)
        if spec is INDIVIDUALS:
            custody.add_individuals(source, rows, lines)
        if spec is CUSTODY:
            custody.add_custody(source, rows, lines)
            held.extend(rows)
        elif rows and not errors.count:  # after an error, only checking: nothing is written
            pipe.put(lambda: write(rows))

    for rows, lines in check.batches():
        take(rows, lines)
        show_progress(source.label, source.progress())
    take(*check.finish())
    pipe.put(lambda: writer and writer[0].close())
    show_progress(source.label, source.progress(), done=True)
    if slack is not None:
        slack.check(reads, errors)
    if not check.read:
        return None, None
    return file_report, (held if spec is CUSTODY else None)


def write_template(directory: Path | str) -> list[Path]:
    """Empty CSV files (each file's header) and a commented mapping file in `directory`,
    for a unit to start from; refuses (FileExistsError) to write over a file."""
    import csv

    directory = Path(directory)
    paths = [directory / spec.filename for spec in FILES] + [directory / "mapping.toml"]
    there = [p.name for p in paths if p.exists()]
    if there:
        raise FileExistsError(f"{directory}: already holds {', '.join(there)}; nothing written")
    directory.mkdir(parents=True, exist_ok=True)
    for spec in FILES:
        with (directory / spec.filename).open("w", newline="", encoding="utf-8") as fh:
            csv.writer(fh, lineterminator="\n").writerow(spec.column_names)
    (directory / "mapping.toml").write_text(mapping_template(), encoding="utf-8")
    return paths

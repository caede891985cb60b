"""CSV import: validate a whole file set, then upsert it in one transaction or write nothing.

Every error is reported as `file:line: column: reason`, all of them at once. The work is
in three rooms: read.py (which files, their text), validate.py (every check, every error)
and write.py (the upsert, the values recorded through the bot, the custody history).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import Engine

from .. import db
from ...rules.schema import FILES
from .read import find_files, unread_files
from .validate import (
    MAX_ERRORS, Errors, Parsed, converter, custody_rules, parse_file, parse_rows,
    people_in_no_area, reference_rules, row_rules, unique_slack_ids,
)
from .write import BATCH, FileReport, drop_replaced_periods, keep_custody_history, upsert

__all__ = ["BATCH", "MAX_ERRORS", "FileReport", "ImportReport", "find_files", "import_directory",
           "people_in_no_area", "unread_files"]

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

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def kept(self) -> int:
        return sum(f.kept for f in self.files)

    @property
    def replaced(self) -> int:
        return sum(f.replaced for f in self.files)


def import_directory(engine: Engine, directory: Path | str, dry_run: bool = False) -> ImportReport:
    """Validate every CSV file of SPEC section 5 in `directory`, then upsert them all or none."""
    directory = Path(directory)
    report = ImportReport(dry_run=dry_run)
    if not directory.is_dir():
        report.errors.append(f"{directory}: not a directory")
        return report
    report.warnings = unread_files(directory)
    errors = Errors()
    for spec in FILES:
        path = directory / spec.filename
        if (path.exists() or path.is_symlink()) and not path.is_file():
            kind = "a directory" if path.is_dir() else "not a regular file"
            errors.add(spec.filename, 1, "-", f"is {kind}, not a CSV file")
    files = find_files(directory)
    if not files and not errors.count:
        names = ", ".join(s.filename for s in FILES)
        report.errors.append(f"{directory}: none of the import files is there ({names})")
        return report
    parsed: dict[str, Parsed] = {}
    for spec, path in files:
        p = parse_file(path, spec, errors)
        if p is not None:
            row_rules(p, errors)
            parsed[spec.filename] = p
    with engine.begin() as conn:
        reference_rules(parsed, conn, errors)
        unique_slack_ids(parsed, conn, errors)
        custody_rules(parsed, conn, errors)
        if errors.count:
            report.errors, report.error_count = errors.report(), errors.count
            return report
        for spec, _path in files:
            if spec.filename == "individuals.csv" and not dry_run:
                keep_custody_history(conn, parsed[spec.filename])
            if spec.filename == "custody.csv" and not dry_run:
                drop_replaced_periods(conn, parsed[spec.filename])
            report.files.append(upsert(conn, parsed[spec.filename], write=not dry_run))
        report.warnings += people_in_no_area(conn)
        if dry_run:
            conn.rollback()
        else:
            db.bump_change_stamp(conn)  # replicas' answer caches start again
    if not dry_run and engine.dialect.name == "postgresql":
        # Fresh statistics, or the planner guesses a few hundred rows where there are
        # thousands and picks slow plans until autovacuum gets round to it.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for spec, _path in files:
                conn.exec_driver_sql(f"ANALYZE {spec.table}")
    return report


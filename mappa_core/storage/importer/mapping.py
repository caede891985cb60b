"""A unit's own names: the mapping file (TOML) that says, for each of our files, its name in
the unit's export (a CSV file's or a workbook sheet's), which of the unit's columns is each
of ours, and how the unit spells our values.

    [individuals]
    file = "Nominals.csv"          # or the sheet's name in a workbook
    [individuals.columns]          # our column = the unit's column
    ref = "ViSOR Reference"
    status = "Location"
    [individuals.values.status]    # the unit's spelling = our value
    "In Community" = "community"

Everything is checked before anything is read: a file, column or value we do not have, two
of our columns given one of the unit's, a value our column would refuse; each is named in
its own error and the import stops (exit 2). Headings and spellings match in any letter
case, around spaces; a spelling mapped to "" means blank (not recorded).
"""

from __future__ import annotations

import difflib
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from ...rules.schema import FILES, FileSpec
from ...rules.values import shown as _show
from .read import Source

BY_NAME = {spec.filename.removesuffix(".csv"): spec for spec in FILES}


class MappingError(Exception):
    """The mapping file cannot be used; `problems` says each reason, where."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass
class FileMapping:
    spec: FileSpec
    file: str | None = None  # the unit's file (or sheet) name
    columns: dict[str, str] = field(default_factory=dict)  # ours -> the unit's heading
    values: dict[str, dict[str, str]] = field(default_factory=dict)  # ours -> {theirs: ours}

    def source_args(self) -> dict:
        return {"columns": self.columns, "values": self.values}


@dataclass
class Mapping:
    path: Path
    files: dict[str, FileMapping]  # by our file name (individuals.csv)

    def name_of(self, spec: FileSpec) -> str:
        """The unit's name for our file: a CSV file's name, or a sheet's."""
        m = self.files.get(spec.filename)
        return m.file if m is not None and m.file else spec.filename

    def sheet_of(self, spec: FileSpec) -> str:
        m = self.files.get(spec.filename)
        return m.file if m is not None and m.file else spec.filename.removesuffix(".csv")

    def for_spec(self, spec: FileSpec) -> dict:
        m = self.files.get(spec.filename)
        return m.source_args() if m is not None else {}

    def label(self, spec: FileSpec, their_label: str) -> str:
        """A file as errors name it: the unit's name, and ours beside it when they differ."""
        m = self.files.get(spec.filename)
        if m is None or not m.file:
            return their_label
        return f"{their_label} ({spec.filename})"


def _close(word: str, choices) -> str:
    found = difflib.get_close_matches(word.lower(), list(choices), n=1)
    return f" (did you mean {found[0]}?)" if found else ""


def load(path: Path | str) -> Mapping:
    """The mapping in `path`, every part checked; MappingError names every problem."""
    path = Path(path)
    where = path.name
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise MappingError([f"{where}: cannot be read ({exc.strerror or exc})"]) from None
    except UnicodeDecodeError:
        raise MappingError([f"{where}: not UTF-8 text"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise MappingError([f"{where}: not TOML ({exc})"]) from None
    problems: list[str] = []
    files: dict[str, FileMapping] = {}
    unit_files: dict[str, str] = {}
    for name, table in data.items():
        spec = BY_NAME.get(name.removesuffix(".csv"))
        if spec is None:
            problems.append(f"{where}: [{name}]: not a file mappa reads (one of "
                            f"{', '.join(BY_NAME)}){_close(name, BY_NAME)}")
            continue
        if not isinstance(table, dict):
            problems.append(f"{where}: {name}: a table is expected ([{name}] with file, "
                            "columns and values)")
            continue
        files[spec.filename] = _file(where, name, spec, table, problems)
        theirs = files[spec.filename].file
        if theirs:
            key = theirs.strip().lower()
            if key in unit_files:
                problems.append(f"{where}: [{name}] file = {theirs!r}: also the file of "
                                f"[{unit_files[key]}]; each of the unit's files is one of ours")
            unit_files.setdefault(key, name)
    if problems:
        raise MappingError(problems)
    return Mapping(path, files)


def _file(where: str, name: str, spec: FileSpec, table: dict, problems: list[str]) -> FileMapping:
    from .validate import Cells

    out = FileMapping(spec)
    ours = {c.name: c for c in spec.columns}
    for key, value in table.items():
        if key == "file":
            if not isinstance(value, str) or not value.strip():
                problems.append(f"{where}: [{name}] file: the unit's file (or sheet) name, as "
                                "text")
            else:
                out.file = value.strip()
        elif key in ("columns", "values"):
            if not isinstance(value, dict):
                problems.append(f"{where}: [{name}] {key}: a table is expected "
                                f"([{name}.{key}])")
        else:
            problems.append(f"{where}: [{name}] {key}: not a setting of a file (file, columns, "
                            f"values){_close(key, ('file', 'columns', 'values'))}")
    columns = table.get("columns") if isinstance(table.get("columns"), dict) else {}
    heading_of: dict[str, str] = {}
    for column, heading in columns.items():
        if column not in ours:
            problems.append(f"{where}: [{name}.columns] {column}: not a column of "
                            f"{spec.filename}{_close(column, ours)}")
            continue
        if not isinstance(heading, str) or not heading.strip():
            problems.append(f"{where}: [{name}.columns] {column}: the unit's column heading, "
                            "as text")
            continue
        key = heading.strip().lower()
        if key in heading_of:
            problems.append(f"{where}: [{name}.columns]: {heading_of[key]} and {column} both "
                            f"map to {heading.strip()!r}; each of the unit's columns is one of "
                            "ours")
            continue
        heading_of[key] = column
        out.columns[column] = heading.strip()
    values = table.get("values") if isinstance(table.get("values"), dict) else {}
    for column, spellings in values.items():
        if column not in ours:
            problems.append(f"{where}: [{name}.values.{column}]: not a column of "
                            f"{spec.filename}{_close(column, ours)}")
            continue
        if not isinstance(spellings, dict):
            problems.append(f"{where}: [{name}.values] {column}: a table is expected "
                            f"([{name}.values.{column}], the unit's spelling = our value)")
            continue
        check = Cells(ours[column], Source(spec, spec.filename))
        seen: dict[str, str] = {}
        for theirs, value in spellings.items():
            if not isinstance(value, str):
                problems.append(f"{where}: [{name}.values.{column}] {theirs!r}: our value, as "
                                "text (\"\" for blank)")
                continue
            ok, why = check.careful(value)
            if not ok:
                problems.append(f"{where}: [{name}.values.{column}] {theirs!r} = {value!r}: "
                                f"{spec.filename}'s {column} refuses it ({why})")
                continue
            key = theirs.strip().lower()
            if key in seen and seen[key] != value:
                problems.append(f"{where}: [{name}.values.{column}] {_show(theirs)}: given "
                                f"twice ({seen[key]!r} and {value!r})")
                continue
            seen[key] = value
        out.values[column] = dict(spellings)
    return out


# ----------------------------------------------------------------- the template


def template() -> str:
    """A commented mapping file a unit starts from: every file and column of ours."""
    lines = [
        "# mappa import DIR|BOOK.xlsx --mapping mapping.toml",
        "#",
        "# Your export's own names for mappa's files (SPEC section 5, docs/data-contract.md):",
        "# for each file, uncomment what differs in yours. Column headings and spellings",
        "# match in any letter case. Everything left commented is read by mappa's own name.",
        "#",
        "# [individuals]",
        "# file = \"Nominals.csv\"          # or the sheet's name in a workbook",
        "# [individuals.columns]          # our column = your column's heading",
        "# ref = \"ViSOR Reference\"",
        "# [individuals.values.status]    # your spelling = our value (\"\" = blank)",
        "# \"In Community\" = \"community\"",
        "",
    ]
    for spec in FILES:
        name = spec.filename.removesuffix(".csv")
        lines += [f"# [{name}]", f"# file = \"{spec.filename}\"", f"# [{name}.columns]"]
        for col in spec.columns:
            allowed = f"  # {', '.join(col.values)}" if col.values and len(col.values) < 10 \
                else ("  # a date" if col.kind == "date" else
                      "  # yes or no" if col.kind == "bool" else "")
            lines.append(f"# {col.name} = \"{col.name}\"{allowed}")
        lines.append("")
    return "\n".join(lines)

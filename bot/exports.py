"""Report output: HTML from templates/report, and CSV that spreadsheets cannot execute.

Every file and directory a report or export writes holds case data, so each is owner-only
(files 0600, the directories it creates 0700) whatever the umask; a CSV written to standard
output that is a file of ours (`mappa exceptions --csv > x.csv`) is made owner-only too.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pandas as pd

from bot.templates import render_text
from mappa_core.rules.periods import quarter_of
from mappa_core.rules.reports import (
    FEW_TO_JUDGE, SHORT_NAMES, QuarterlyPack, axis_label, reason_label,
)
from mappa_core.rules.schema import REASON_CODES

_FORMULA = re.compile(r"^[=+\-@\t\r]")
_NEGATIVE_NUMBER = re.compile(r"-(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def neutralise(value):
    """A cell a spreadsheet would run as a formula (it begins with `=`, `+`, `-`, `@`, a tab
    or a carriage return) gets a leading apostrophe (OWASP's rule for CSV injection); a
    plain negative number such as `-2.5` stays a number."""
    if isinstance(value, str) and _FORMULA.match(value) and not _NEGATIVE_NUMBER.fullmatch(value):
        return "'" + value
    return value


PRIVATE_FILE, PRIVATE_DIR = 0o600, 0o700


def private_dir(path: Path) -> Path:
    """Make `path` and any missing parents owner-only (0700); one that exists is left as it
    is (the person chose it)."""
    path = Path(path)
    missing = []
    for p in (path, *path.parents):
        if p.exists():
            break
        missing.append(p)
    for p in reversed(missing):
        try:
            p.mkdir(mode=PRIVATE_DIR)
        except FileExistsError:
            continue
        os.chmod(p, PRIVATE_DIR)  # (mkdir's mode passes through the umask)
    if not path.is_dir():
        path.mkdir(parents=True, exist_ok=True)  # a file in the way: its own clear error
    return path


def _private_opener(path, flags):
    fd = os.open(path, flags, PRIVATE_FILE)
    _owner_only(fd)  # a file that was already there keeps its mode otherwise
    return fd


def _owner_only(fd: int) -> None:
    st = os.fstat(fd)
    if stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) & 0o077 and st.st_uid == os.getuid():
        os.fchmod(fd, PRIVATE_FILE)


def open_private(path, mode: str = "w", **kwargs):
    """`open(path, mode)` for a report or export: the file owner-only (0600)."""
    return open(path, mode, opener=_private_opener, **kwargs)  # noqa: SIM115


def write_private_text(path: Path, text: str) -> None:
    with open_private(path, "w", encoding="utf-8") as out:
        out.write(text)


def write_csv(df: pd.DataFrame, path_or_buffer) -> None:
    """Every CSV the product writes goes through here: cells and headers neutralised, the
    file owner-only."""
    if isinstance(path_or_buffer, str | os.PathLike):
        with open_private(path_or_buffer, "w", encoding="utf-8", newline="") as out:
            write_csv(df, out)
        return
    try:
        _owner_only(path_or_buffer.fileno())  # standard output redirected to a file
    except (AttributeError, OSError, ValueError):
        pass  # a buffer in memory, a pipe, a terminal
    df = df.copy()
    for col in df.columns:
        if df[col].dtype == object or str(df[col].dtype).startswith("str"):
            # Not Series.map: it re-infers the dtype, turning [3, None] into [3.0, nan].
            df[col] = pd.Series([neutralise(v) for v in df[col]], index=df.index, dtype=object)
    df.columns = [neutralise(str(c)) for c in df.columns]
    df.to_csv(path_or_buffer, index=False)


def text_table(df: pd.DataFrame) -> str:
    """A table for the terminal: a missing value is a blank, never `None` or `NaN`."""
    return df.astype(object).where(df.notna(), "").to_string(index=False)


def quarterly_html(pack: QuarterlyPack, agency_names: dict[str, str]) -> str:
    trends = {
        ind["id"]: [{"label": row["label"], "axis": axis_label(row["label"]), "value": row.get(ind["id"])}
                    for row in pack.trend]
        for ind in pack.indicators
    }
    # What changed since the previous period: the indicators that moved most, largest first
    # (of those with enough items in both periods to judge a change).
    moves = []
    if pack.previous:
        moves = sorted(
            ({"id": ind["id"], "short": SHORT_NAMES.get(ind["id"], ind["id"]), "percent": ind["percent"],
              "points": pack.previous["indicators"][ind["id"]]["points"]}
             for ind in pack.indicators if pack.previous["indicators"][ind["id"]]["points"] is not None
             and not pack.previous["indicators"][ind["id"]].get("few")),
            key=lambda m: -abs(m["points"]))
    # The charts' floor: low enough for every point and the target, rounded down to 10.
    values = [p["value"] for points in trends.values() for p in points if p["value"] is not None]
    floor = min([50.0, *values])
    floor = float(int(floor // 10 * 10))
    few_ids = [ind["id"] for ind in pack.indicators
               if pack.previous and pack.previous["indicators"][ind["id"]].get("few")]
    exceptions = pack.exceptions.to_dict("records")
    this_period = "this quarter" if pack.period == quarter_of(pack.period.start) else f"in {pack.period.label}"
    if pack.in_progress:
        this_period = "so far this quarter" if this_period == "this quarter" else f"{this_period} so far"
    return render_text(
        "report/quarterly.html.j2", pack=pack, trends=trends, exceptions=exceptions,
        area_label=pack.area or "all areas", agency_names=agency_names, floor=floor, moves=moves,
        this_period=this_period, few_ids=few_ids, few_to_judge=FEW_TO_JUDGE, short_names=SHORT_NAMES,
        chair_names=pack.chair_names, reason_words={code: reason_label(code) for code in REASON_CODES},
    )


def quarterly_csv(pack: QuarterlyPack, directory: Path) -> list[Path]:
    private_dir(directory)
    # dtype=object keeps the rows' own values: a margin of 3 stays 3 beside a None (blank),
    # instead of pandas turning the column into 3.0 and nan.
    table = lambda rows, columns=None: pd.DataFrame(rows, columns=columns, dtype=object)  # noqa: E731
    tables = {
        "indicators": table([{k: v for k, v in i.items()
                              if k not in ("exceptions", "breakdown", "counts")}
                             for i in pack.indicators]),
        "trend": table(pack.trend),
        "exceptions": pack.exceptions,
        "commonality": table([{"group": g, "name": k, "count": n}
                              for g, d in pack.commonality.items() for k, n in d.items()],
                             columns=["group", "name", "count"]),
        "caseload": table(pack.caseload),
        "changes": table([{k: v for k, v in c.items() if k != "questions"} for c in pack.changes],
                         columns=["what", "before", "after", "change_percent", "kind"]),
        "data_quality": table(pack.data_quality),
        "data_quality_cases": table(pack.data_quality_cases, columns=["check", "ref", "detail"]),
    }
    paths = []
    for name, df in tables.items():
        path = directory / f"{name}.csv"
        write_csv(df, path)
        paths.append(path)
    return paths

"""Report output: HTML from templates/report, and CSV that spreadsheets cannot execute."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from bot.templates import render_text
from mappa_core.reports import QuarterlyPack

_FORMULA = re.compile(r"^[=+\-@\t\r]")


def neutralise(value):
    """A cell a spreadsheet would run as a formula gets a leading apostrophe."""
    if isinstance(value, str) and _FORMULA.match(value):
        return "'" + value
    return value


def write_csv(df: pd.DataFrame, path_or_buffer) -> None:
    df = df.copy()
    for col in df.columns:
        if df[col].dtype == object or str(df[col].dtype).startswith("str"):
            df[col] = df[col].map(neutralise)
    df.columns = [neutralise(str(c)) for c in df.columns]
    df.to_csv(path_or_buffer, index=False)


def quarterly_html(pack: QuarterlyPack, agency_names: dict[str, str]) -> str:
    trends = {
        ind["id"]: [{"label": row["label"], "value": row.get(ind["id"])} for row in pack.trend]
        for ind in pack.indicators
    }
    # The charts' floor: low enough for every point and the target, rounded down to 10.
    values = [p["value"] for points in trends.values() for p in points if p["value"] is not None]
    floor = min([50.0, *values])
    floor = float(int(floor // 10 * 10))
    exceptions = pack.exceptions.to_dict("records")
    return render_text(
        "report/quarterly.html.j2", pack=pack, trends=trends, exceptions=exceptions,
        area_label=pack.area or "all areas", agency_names=agency_names, floor=floor,
    )


def quarterly_csv(pack: QuarterlyPack, directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    tables = {
        "indicators": pd.DataFrame([{k: v for k, v in i.items()
                                     if k not in ("exceptions", "breakdown", "counts")}
                                    for i in pack.indicators]),
        "trend": pd.DataFrame(pack.trend),
        "exceptions": pack.exceptions,
        "commonality": pd.DataFrame([{"group": g, "name": k, "count": n}
                                     for g, d in pack.commonality.items() for k, n in d.items()],
                                    columns=["group", "name", "count"]),
        "caseload": pd.DataFrame(pack.caseload),
        "changes": pd.DataFrame([{k: v for k, v in c.items() if k != "questions"}
                                 for c in pack.changes],
                                columns=["what", "before", "after", "change_percent", "kind"]),
        "data_quality": pd.DataFrame(pack.data_quality),
        "data_quality_cases": pd.DataFrame(pack.data_quality_cases,
                                           columns=["check", "ref", "detail"]),
    }
    paths = []
    for name, df in tables.items():
        path = directory / f"{name}.csv"
        write_csv(df, path)
        paths.append(path)
    return paths

"""What a person reads never says `nan`, `NaN`, `NaT`, `None` or a count such as `4251.0`.

A small demo region (mappa_core.synthetic_region) is imported into a real SQLite file; every report is
rendered through the `mappa` command (HTML with its tags stripped, every CSV cell, and what
the report commands print), and every Slack and email notice the planner can produce is
rendered both ways. Whatever pandas the lock picks, none of those strings may appear.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from html.parser import HTMLParser
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from bot.cli import main
from mappa_core.storage import audits_and_scrs, db, outbox
from mappa_core.synthetic_region import write_demo_data
from mappa_core.storage.importer import import_directory
from mappa_core.rules.planner import NudgeRules

LONDON = ZoneInfo("Europe/London")
AS_OF = dt.date(2027, 1, 8)          # the demo's last day of records (a Friday)
MONDAY = dt.datetime(2027, 1, 11, 9, 0, tzinfo=LONDON)  # Q4: audit reminders are due too

WORDS = re.compile(r"\b(nan|NaN|NaT|None)\b")
# A whole number printed as a float: "4251.0" (not "88.0%", not "12.05", not a date).
# "+0.0 points" is a change in a percentage, and may say so.
DOT_ZERO = re.compile(r"(?<![\d.])\d+\.0(?![\d%]| points)")
# Columns (CSV names, HTML headers) that hold a rate or a percentage, where "12.0" is right.
DECIMAL_COLUMN = re.compile(r"percent|per.100.?000|per 100,000|result", re.IGNORECASE)


def problems_in_text(text: str, where: str, decimals_allowed: bool = False) -> list[str]:
    found = [f"{where}: {m.group(0)!r} in {text.strip()[:120]!r}" for m in WORDS.finditer(text)]
    if not decimals_allowed:
        found += [f"{where}: count {m.group(0)!r} in {text.strip()[:120]!r}"
                  for m in DOT_ZERO.finditer(text)]
    return found


class _Reader(HTMLParser):
    """The text a person sees: no tags, no attributes, no <style>; each table cell with its
    column's header, so that a rate column may show 12.0."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[tuple[str, str]] = []   # (text, column header or "")
        self._skip = 0
        self._headers: list[list[str]] = []        # per open table
        self._row: list[str] | None = None
        self._cell: str | None = None
        self._cell_index = -1
        self._in_th = False

    def handle_starttag(self, tag, attrs):
        if tag in ("style", "script"):
            self._skip += 1
        elif tag == "table":
            self._headers.append([])
        elif tag == "tr":
            self._row, self._cell_index = [], -1
        elif tag in ("td", "th"):
            self._cell_index += 1
            self._in_th = tag == "th"
            self._cell = ""

    def handle_endtag(self, tag):
        if tag in ("style", "script"):
            self._skip -= 1
        elif tag == "table" and self._headers:
            self._headers.pop()
        elif tag in ("td", "th") and self._cell is not None:
            if self._in_th and self._headers:
                self._headers[-1].append(self._cell.strip())
            self._cell = None

    def handle_data(self, data):
        if self._skip:
            return
        header = ""
        if self._cell is not None:
            self._cell += data
            if not self._in_th and self._headers and self._cell_index < len(self._headers[-1]):
                header = self._headers[-1][self._cell_index]
        self.chunks.append((data, header))


def problems_in_html(html: str, where: str) -> list[str]:
    reader = _Reader()
    reader.feed(html)
    out = []
    for text, header in reader.chunks:
        out += problems_in_text(text, f"{where} [{header or 'text'}]",
                                decimals_allowed=bool(DECIMAL_COLUMN.search(header)))
    return out


def problems_in_csv(text: str, where: str, all_decimal: bool = False) -> list[str]:
    rows = list(csv.reader(io.StringIO(text)))
    assert rows, f"{where}: empty CSV"
    header, out = rows[0], []
    for line, row in enumerate(rows[1:], start=2):
        for name, cell in zip(header, row):
            out += problems_in_text(cell, f"{where}:{line}: {name}",
                                    decimals_allowed=all_decimal or bool(DECIMAL_COLUMN.search(name)))
    return out


# ------------------------------------------------------------------------------ the region


@pytest.fixture(scope="module")
def region(tmp_path_factory):
    """A small demo region (Grampian, of its real size) in a SQLite file, with an SCR action
    so that every kind of notice exists, and its population left unset (areas.csv not
    imported: the annual rate says so)."""
    base = tmp_path_factory.mktemp("region")
    write_demo_data(base / "data", individuals=750, years=3, seed=3, until=AS_OF,
                    areas=["Grampian"])
    (base / "data" / "areas.csv").unlink()
    url = f"sqlite:///{base / 'mappa.db'}"
    engine = db.make_engine(url)
    db.ensure_schema(engine)
    assert import_directory(engine, base / "data").ok
    area = "Grampian"
    rec = audits_and_scrs.add_recommendation(engine, audits_and_scrs.add_scr(engine, "SCR 1", area, None),
                                             "Share release plans with housing a month ahead")
    audits_and_scrs.add_action(engine, rec, "housing-grampian", dt.date(2026, 12, 1), "Protocol agreed")
    yield {"url": url, "engine": engine, "base": base}
    engine.dispose()


@pytest.fixture
def mappa(region, monkeypatch, capsys, tmp_path):
    """Run `mappa ARGS` against the region from an empty working directory; its stdout."""
    monkeypatch.setenv("MAPPA_DATABASE_URL", region["url"])
    monkeypatch.chdir(tmp_path)

    def run(*args: str) -> str:
        capsys.readouterr()
        assert main(list(args)) == 0, args
        return capsys.readouterr().out

    return run


# ------------------------------------------------------------------------------ reports


def test_quarterly_pack_html_and_csv(mappa, tmp_path):
    problems = []
    for period in ("2026-27-Q3", "2026-27-Q2"):
        out = tmp_path / f"pack-{period}.html"
        problems += problems_in_text(
            mappa("report", "quarterly", "--period", period, "--as-of", str(AS_OF), "--out", str(out)),
            "stdout")
        html = out.read_text()
        assert "<h2>3. Exceptions and their reasons</h2>" in html
        problems += problems_in_html(html, out.name)
        folder = tmp_path / f"csv-{period}"
        mappa("report", "quarterly", "--period", period, "--as-of", str(AS_OF), "--format", "csv",
              "--out", str(folder))
        files = sorted(folder.glob("*.csv"))
        assert len(files) == 8  # with data_quality_cases.csv (issue 14)
        for f in files:
            # trend.csv: one column of percentages per indicator
            problems += problems_in_csv(f.read_text(), f"{period}/{f.name}", f.name == "trend.csv")
    assert not problems, "\n".join(problems[:40])


def test_quarterly_pack_says_not_done_and_not_recorded_in_words(mappa, tmp_path):
    """The exceptions table's blanks are words a person understands, not empty or nan."""
    out = tmp_path / "pack.html"
    mappa("report", "quarterly", "--period", "2026-27-Q3", "--as-of", str(AS_OF), "--out", str(out))
    html = out.read_text()
    table = html.split("<th>Indicator</th><th>Case</th>")[1].split("</table>")[0]
    assert "<td>not done</td>" in table and "<td>not recorded</td>" in table


def test_statistics(mappa, tmp_path):
    problems = []
    for by in ((), ("--by", "gender,age_band,rosh")):
        printed = mappa("report", "stats", "--from", "2026-04-01", "--to", "2026-12-31", *by)
        problems += problems_in_text(printed, f"stats {by} stdout", decimals_allowed=False)
        folder = tmp_path / f"stats{len(by)}"
        mappa("report", "stats", "--from", "2026-04-01", "--to", "2026-12-31", *by, "--out", str(folder))
        files = sorted(folder.glob("*.csv"))
        assert len(files) == 11
        for f in files:
            problems += problems_in_csv(f.read_text(), f"stats/{f.name}")
    assert not problems, "\n".join(problems[:40])


def test_annual_tables(mappa, region, tmp_path):
    problems = []
    for label in ("2025-26", "2026-27"):
        folder = tmp_path / f"annual-{label}"
        printed = mappa("report", "annual", "--year", label, "--out", str(folder))
        problems += problems_in_text(printed, f"annual {label} stdout", decimals_allowed=True)
        html = (folder / "annual.html").read_text()
        problems += problems_in_html(html, f"annual {label}")
        for name in ("table1.csv", "table2.csv"):
            problems += problems_in_csv((folder / name).read_text(), f"annual {label}/{name}")
        # Counts are whole numbers, the total row included.
        rows = list(csv.DictReader(io.StringIO((folder / "table1.csv").read_text())))
        assert rows[-1]["area"] == "Total"
        for row in rows:
            assert row["rso_at_liberty_31_march"].isdigit(), row
            assert row["per_100000_population"] == "", row  # no population set: blank, not nan
        assert "population not set" in html
    assert not problems, "\n".join(problems[:40])


def test_annual_rate_with_a_population(mappa, region, tmp_path):
    """With the area's population recorded the rate is shown, one decimal, total included."""
    from sqlalchemy import text

    areas = tmp_path / "areas"
    areas.mkdir()
    (areas / "areas.csv").write_text("area,population\nGrampian,480000\n")
    assert import_directory(region["engine"], areas).ok
    try:
        folder = tmp_path / "annual"
        mappa("report", "annual", "--year", "2025-26", "--out", str(folder))
        html = (folder / "annual.html").read_text()
        problems = problems_in_html(html, "annual") + problems_in_csv(
            (folder / "table1.csv").read_text(), "table1.csv")
        assert not problems, "\n".join(problems)
        rows = list(csv.DictReader(io.StringIO((folder / "table1.csv").read_text())))
        n = int(rows[0]["rso_at_liberty_31_march"])
        assert rows[0]["per_100000_population"] == rows[1]["per_100000_population"] == \
            str(round(n * 100000 / 480000, 1))
    finally:
        with region["engine"].begin() as conn:
            conn.execute(text("UPDATE area SET population = NULL"))


def test_compare_and_exceptions(mappa):
    problems = problems_in_text(mappa("report", "compare", "--as-of", str(AS_OF)), "compare stdout",
                                decimals_allowed=True)
    problems += problems_in_csv(mappa("report", "compare", "--as-of", str(AS_OF), "--csv"), "compare.csv")
    for period in ("2026-27-Q3", "2026-27-Q2"):
        csv_text = mappa("exceptions", "--period", period, "--as-of", str(AS_OF), "--csv")
        assert csv_text.count("\n") > 5, "the demo region has exceptions to show"
        problems += problems_in_csv(csv_text, f"exceptions {period}")
        problems += problems_in_text(mappa("exceptions", "--period", period, "--as-of", str(AS_OF)),
                                     f"exceptions {period} stdout")
    assert not problems, "\n".join(problems[:40])


# ------------------------------------------------------------------------------ notices


def _slack_texts(value) -> list[str]:
    """Every string in the blocks a person sees (text, not ids or values of buttons)."""
    out = []
    if isinstance(value, dict):
        for key, v in value.items():
            if key in ("text", "alt_text") and isinstance(v, str):
                out.append(v)
            elif key not in ("action_id", "block_id", "value", "url"):
                out += _slack_texts(v)
    elif isinstance(value, list):
        for v in value:
            out += _slack_texts(v)
    return out


def test_every_notice_for_slack_and_email(region):
    """Plan every job on a Monday of Q4 (digests, chasers, escalations, below target, the
    weekly summary, the quarterly reminder, audit reminders, SCR actions), fail one message
    for good so the next digest reports a delivery problem, and render each group both ways."""
    from bot.channels import render as render_group
    from bot.jobs.ticks import run_planning_job

    engine, rules = region["engine"], NudgeRules()
    with engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM outbox")
    for job in ("digest", "escalations", "weekly-summary", "quarterly-review"):
        run_planning_job(engine, job, MONDAY, rules)
    first = outbox.claim(engine, MONDAY + dt.timedelta(hours=1), max_groups=10000)
    groups = dict(first.groups)
    failed_key = sorted(groups)[0]
    outbox.mark_failed(engine, groups[failed_key], MONDAY, "channel_not_found", permanent=True)
    outbox.mark_sent(engine, [r["id"] for k, rows in groups.items() if k != failed_key for r in rows],
                     MONDAY)
    tuesday = MONDAY + dt.timedelta(days=1)
    run_planning_job(engine, "digest", tuesday, rules)
    second = outbox.claim(engine, tuesday + dt.timedelta(hours=1), max_groups=10000)
    groups.update({f"{k}#2": rows for k, rows in second.groups.items()})
    # Seven working days into Q4 nothing is below target yet (a deadline is pending on its
    # own day); five weeks on, with no records after AS_OF, the reviews are.
    later = MONDAY + dt.timedelta(weeks=5)
    run_planning_job(engine, "escalations", later, rules)
    third = outbox.claim(engine, later + dt.timedelta(hours=1), max_groups=10000)
    groups.update({f"{k}#3": rows for k, rows in third.groups.items()})

    rules_seen = {r["rule"] for rows in groups.values() for r in rows}
    kinds_seen = {r["payload"].get("kind") for rows in groups.values() for r in rows}
    assert rules_seen >= {"digest", "chaser", "escalation", "below_target", "weekly", "quarterly",
                          "audit_reminder", "scr", "delivery_problem"}, rules_seen
    assert kinds_seen >= {"delivery_problem", "audit_reminder", "scr_action", "review",
                          "minutes", "contribution"}, kinds_seen

    problems, rendered = [], 0
    for key, rows in groups.items():
        channels = ("email",) if key.startswith("chaser|") else ("slack", "email")
        for channel in channels:
            message = render_group([{**r, "channel": channel} for r in rows])
            rendered += 1
            where = f"{key} by {channel}"
            if channel == "slack":
                for text in [message.text, *_slack_texts(message.blocks)]:
                    problems += problems_in_text(text, where)
            else:
                problems += problems_in_text(message.subject, f"{where} subject")
                problems += problems_in_text(message.text, f"{where} text")
                problems += problems_in_html(message.html, f"{where} html")
    assert rendered > 10
    assert not problems, "\n".join(problems[:40])


def test_the_checks_catch_what_they_should():
    """The checks themselves: each bad string is found, the good ones are not."""
    assert problems_in_text("done: nan", "x") and problems_in_text("NaT", "x")
    assert problems_in_text("reason None", "x") and problems_in_text("4251.0 cases", "x")
    assert not problems_in_text("88.0% on 2026-11-14, 12.05, +0.0 points, 1,200 cases; none", "x")
    assert problems_in_csv("a,count\nx,3.0\n", "f") and not problems_in_csv("a,percent\nx,3.0\n", "f")
    html = ("<style>td{padding:0.0em}</style><table><tr><th>Per 100,000 population</th>"
            "<th>Count</th></tr><tr><td>12.0</td><td>4</td></tr></table>")
    assert not problems_in_html(html, "h")
    assert problems_in_html(html.replace("<td>4</td>", "<td>4.0</td>"), "h")
    assert problems_in_html("<p>done <b>nan</b></p>", "h")


# --------------------------------------------------------------------------- the words on a line

FRIDAY = "2026-11-27"


def _digest_rows(payloads: list[dict], channel: str, recipient: str = "g-chair-2") -> list[dict]:
    return [{"rule": p.get("rule", "digest"), "item_key": p.get("item_key", f"k{n}"),
             "stage": "due", "urgency": "normal", "channel": channel, "area": "Grampian",
             "recipient_id": recipient, "payload": p,
             "group_key": f"digest|{recipient}|{FRIDAY}"} for n, p in enumerate(payloads)]


def _item(kind: str, deadline: str, days: int, **more) -> dict:
    keys = {"minutes": f"minutes:M{deadline}", "review": f"review:SYN-{deadline}:L2:{deadline}"}
    return {"kind": kind, "level": 2 if kind == "review" else None, "ref": f"SYN-{deadline}",
            "meeting_id": f"M{deadline}" if kind == "minutes" else None, "agency": None,
            "deadline": deadline, "overdue": False, "working_days_left": days,
            "detail": "missing: RMP" if kind == "minutes" else "Level 2 review",
            "item_key": keys[kind], "stage": "due", "area": "Grampian", **more}


def test_a_deadline_today_says_due_today_and_one_at_the_weekend_names_its_day(capsys):
    """On Friday 27 November: minutes due that day, a review due on Sunday the 29th, and one
    due on Monday the 30th (St Andrew's Day): none has a working day left, but only the
    first is due today. Slack, email and the dry run say the same."""
    from bot.channels import render
    from bot.channels.console import plain_text
    from bot.cli.jobs import print_messages
    from bot.commands.handlers import due_items_of

    payloads = [_item("minutes", FRIDAY, 0), _item("review", "2026-11-29", 0),
                _item("review", "2026-11-30", 0), _item("review", "2026-12-01", 1)]
    today = "`SYN-2026-11-27` (meeting M2026-11-27): due today; missing: RMP"
    sunday = "`SYN-2026-11-29`: due Sunday 2026-11-29 (no working day left before it)"
    monday = "`SYN-2026-11-30`: due Monday 2026-11-30 (no working day left before it)"
    tuesday = "`SYN-2026-12-01`: due 2026-12-01 (1 working day left)"
    slack = plain_text(render(_digest_rows(payloads, "slack")))
    mail = plain_text(render(_digest_rows(payloads, "email")))
    print_messages({"g": _digest_rows(payloads, "slack"), "e": _digest_rows(payloads, "email")})
    dry = capsys.readouterr().out
    for text, code in ((slack, "`"), (mail, ""), (dry, "`"), (dry, "")):
        for line in (today, sunday, monday, tuesday):
            assert line.replace("`", code) in text
    for text in (slack, mail, dry):
        assert "no working days left" not in text
    # `/mappa due` says the same of each (its own layout).
    items = pd.DataFrame([{**p, "deadline": pd.Timestamp(p["deadline"]), "agency_name": None}
                          for p in payloads])
    assert [r.when for r in due_items_of(items, dt.date(2026, 11, 27))] == [
        "due today", "a Sunday; no working day left before it",
        "a Monday; no working day left before it", "1 working day left"]


def test_a_digest_opens_with_what_it_holds():
    """A co-ordinator's digest of reminders or delivery problems only does not open with
    "0 overdue and 0 coming up"; each count names what it counts."""
    from bot.channels import render

    audits = [{"kind": "audit_reminder", "what": "meeting audit", "period": "2026-27-Q2",
               "detail": f"no audit of Chair {n}'s meetings recorded for 2026-27-Q2",
               "item_key": f"audit:meeting:2026-27-Q2:c{n}"} for n in range(11)]
    problems = [{"kind": "delivery_problem", "rule": "digest", "recipient": f"p{n}",
                 "channel": "slack", "error": "Slack: user_not_found",
                 "item_key": f"problem:{n}"} for n in range(8)]
    case = {"kind": "audit_reminder", "what": "case audit", "period": "2026-27",
            "detail": "no Level 2/3 case audit recorded for 2026-27", "item_key": "audit:case"}
    for payloads, opening in (
            (audits, "Good morning. 11 meeting audits to do."),
            (problems, "Good morning. 8 messages could not be delivered."),
            (audits[:1] + [case] + problems[:1],
             "Good morning. 1 meeting audit and 1 case audit to do. "
             "1 message could not be delivered."),
            ([_item("minutes", FRIDAY, 0)] + audits[:2],
             "Good morning. 0 overdue and 1 coming up. 2 meeting audits to do.")):
        slack = render(_digest_rows(payloads, "slack", "g-coord"))
        mail = render(_digest_rows(payloads, "email", "g-coord"))
        assert slack.blocks[1]["text"]["text"] == opening
        assert mail.text.startswith(opening + "\n") and f"<p>{opening}</p>" in mail.html
    assert render(_digest_rows(audits, "email", "g-coord")).subject == \
        "Your MAPPA items for 2026-11-27: 11 meeting audits to do"

"""Every text from a file or a person is escaped where it is shown (issue 12, findings 6
and 8): hostile values in every text column of every CSV file and in every free-text
command reach no Slack text raw, no email HTML unescaped, and no CSV cell as a formula.

The records are the Grampian worked example with each text rewritten: names, areas,
ethnicity and gender, and the ids (refs, meeting ids, person ids, agency ids) prefixed with
markup. The Slack side runs over real signed HTTP requests to the served endpoint; the
notices are planned by the real jobs and each group rendered for Slack and for email; the
exports are the `mappa` commands' own files.
"""

from __future__ import annotations

import csv
import datetime as dt
import email
import io
import itertools
import json
import re
import shutil
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text as sql_text

from bot.cli import main
from bot.channels import render as render_group
from bot.exports import neutralise
from bot.jobs.ticks import run_planning_job
from bot.server import build_asgi
from bot.settings import Settings
from bot.channels.slack.blocks import slack_safe
from bot.templates import mrkdwn_escape
from mappa_core.rules.kinds import key_part
from mappa_core.storage import outbox
from mappa_core.storage.importer import import_directory
from mappa_core.rules.planner import NudgeRules
from tests.conftest import GRAMPIAN
from tests.slack_harness import (
    SIGNING_SECRET, BotServer, SlackStandIn, SmtpSink, action_body, command_body, post, sign,
    view_body,
)

LONDON = ZoneInfo("Europe/London")
TODAY = dt.date(2026, 11, 26)
STAFF, CHAIR1, CHAIR2, SOG, COORD = "U1STAFF1", "U1CHAIR1", "U1CHAIR2", "U1SOG001", "U1COORD1"

H = "<!channel> <http://evil.example|x> *bold* &amp; =1+1 <script>"
# Names: the same payload, each led by another formula character.
NAMES = [H, "-2+3+cmd|' /C calc'!A0 <!channel> <http://evil.example|x> <script>",
         "@SUM(1+1) <!here> <http://evil.example|Click to verify> <script>",
         "+1 <!everyone> <http://evil.example|x> &amp; <script>",
         "=HYPERLINK(\"http://evil.example\") <!channel> <script>"]
AREA = "=AREA <!channel> <http://evil.example|x> &amp; <script>"
ID = "=1+<!here><https//evil.example|y><script>"  # ids: no spaces or colons (item keys)
SHORT = "<!here><http://e.x|y><script>"  # gender holds 32 characters
KEEP_REF = "GRA-0103"  # `/mappa case REF` takes only plain references
KEEP_AGENCY = "police"  # chosen from `/mappa escalate`'s menu below by its id


def _hostile_id(column: str, value: str) -> str:
    if not value or (column == "ref" and value == KEEP_REF) or (
            column == "agency" and value == KEEP_AGENCY):
        return value
    return ID + value


ID_COLUMNS = {"ref", "meeting_id", "person_id", "chair_id", "agency"}


def hostile_export(tmp_path):
    """The Grampian files with every text column hostile (and local holidays and areas)."""
    out = tmp_path / "hostile"
    shutil.copytree(GRAMPIAN, out)
    names = itertools.cycle(NAMES)
    for path in sorted(out.glob("*.csv")):
        with path.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
            columns = list(rows[0].keys())
        for row in rows:
            for col in columns:
                if col in ID_COLUMNS:
                    row[col] = _hostile_id(col, row[col])
                elif col == "name":
                    row[col] = next(names)
                elif col == "area" and row[col]:
                    row[col] = AREA
                elif col == "gender" and row[col]:
                    row[col] = SHORT
                elif col == "ethnicity" and row[col]:
                    row[col] = "@SUM(1+1) " + SHORT
        with path.open("w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, fieldnames=columns)
            w.writeheader()
            w.writerows(rows)
    (out / "local_holidays.csv").write_text(f'area,date,name\n"{AREA}",2027-03-01,"{H}"\n')
    (out / "areas.csv").write_text(f'area,population\n"{AREA}",300000\n')
    return out


# ------------------------------------------------------------------ the checks

RAW = ("<!", "<http", "<script", "<@")


def slack_texts(obj):
    """Every string Slack shows: the `text` of text objects and the fallback text."""
    if isinstance(obj, list):
        for x in obj:
            yield from slack_texts(x)
    elif isinstance(obj, dict):
        for k, v in obj.items():
            if k == "text" and isinstance(v, str):
                yield v
            else:
                yield from slack_texts(v)


def assert_inert_in_slack(obj, where: str) -> list[str]:
    texts = list(slack_texts(obj))
    for t in texts:
        for raw in RAW:
            assert raw not in t, f"{where}: raw {raw!r} reaches Slack in {t!r}"
        # Only Slack's three entities: anything else would show as typed.
        assert not re.search(r"&(?!(amp|lt|gt);)", t), f"{where}: bare & in {t!r}"
    return texts


def assert_inert_html(html: str, where: str) -> None:
    for raw in ("<!channel", "<!here", "<!everyone", "<http", "<script"):
        assert raw not in html, f"{where}: raw {raw!r} in the HTML"


def assert_no_formula_cells(text: str, where: str) -> int:
    """No cell starts with a formula character, but for a plain negative number; returns
    the number of neutralised cells seen (so a test can tell hostile text got there)."""
    seen = 0
    for row in csv.reader(io.StringIO(text)):
        for cell in row:
            if cell[:1] in ("=", "+", "-", "@", "\t", "\r"):
                assert re.fullmatch(r"-\d+(\.\d+)?", cell), f"{where}: formula cell {cell!r}"
            seen += cell.startswith("'")
    return seen


def test_neutralise_keeps_negative_numbers_and_stops_formulas():
    for formula in ("=HYPERLINK(\"http://x\")", "@SUM(A1)", "-2+3+cmd|' /C calc'!A0",
                    "+1", "\t=1", "\r=1", "-", "-1e", "- 1", "-1-1"):
        assert neutralise(formula) == "'" + formula
    for number in ("-2", "-2.5", "-0.25", "-1e5"):
        assert neutralise(number) == number
    assert neutralise(-3) == -3 and neutralise("GRA-0101") == "GRA-0101"


def test_slack_escaping_is_idempotent_and_covers_every_text_object():
    once = mrkdwn_escape(H)
    assert once == ("&lt;!channel&gt; &lt;http://evil.example|x&gt; *bold* &amp; =1+1 "
                    "&lt;script&gt;")
    assert mrkdwn_escape(once) == once and mrkdwn_escape("a & b") == "a &amp; b"
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "<!here>"},
               "accessory": {"type": "button", "text": {"type": "plain_text", "text": "<b>"},
                             "value": "minutes:<M1>", "action_id": "x"}}]
    safe = slack_safe(blocks)
    assert safe[0]["text"]["text"] == "&lt;!here&gt;"
    assert safe[0]["accessory"]["text"]["text"] == "&lt;b&gt;"
    assert safe[0]["accessory"]["value"] == "minutes:<M1>"  # ids round-trip unchanged


@pytest.fixture
def hostile(engine, tmp_path, monkeypatch):
    directory = hostile_export(tmp_path)
    report = import_directory(engine, directory)
    assert report.ok, report.errors
    monkeypatch.setenv("MAPPA_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    # A Significant Case Review whose texts are hostile, owned by a hostile agency id.
    assert main(["scr", "add", "\t=HYPERLINK(\"http://evil.example\") " + H, "--area", AREA]) == 0
    assert main(["scr", "recommend", "1", "-2+3 " + H]) == 0
    assert main(["scr", "action", "1", "@SUM(1) " + H, "--owner", ID + "em-provider",
                 "--due", "2026-11-01"]) == 0
    assert main(["audit", "meeting", "--quarter", "2026-27-Q2", "--chair", ID + "g-chair-2",
                 "--findings", H]) == 0
    return engine


@pytest.mark.http
def test_hostile_text_is_inert_in_every_slack_reply(hostile, capsys):
    engine = hostile
    stand_in, smtp = SlackStandIn(), SmtpSink()
    settings = Settings(work_processes=0,
        database_url=str(engine.url), slack_bot_token="xoxb-test",
        slack_signing_secret=SIGNING_SECRET, slack_api_url=stand_in.api_url(),
        smtp_host="127.0.0.1", smtp_port=smtp.port, smtp_starttls=False,
        mail_from="mappa-bot@grampian.example", smtp_timeout=5,
    )
    server = BotServer(build_asgi(settings, engine, today=lambda: TODAY))
    n = itertools.count()
    try:
        def send(body_of, *args, **extra):
            name = f"r{next(n)}"
            body = body_of(*args, stand_in.response_url(name), **extra)
            status, out, _ = post(server.url + "/slack/events", body, sign(body))
            assert status == 200, out
            return stand_in.wait_for(f"/response/{name}")[0]["body"]

        def command(user, text_):
            return send(lambda u, t, url: command_body(u, t, url), user, text_)

        def act(user, action_id, value):
            return send(lambda u, a, v, url: action_body(u, a, v, url), user, action_id, value)

        seen = []
        for user, text_ in [
            (COORD, "help"), (COORD, "status"), (COORD, "status compare"), (COORD, "due"),
            (COORD, "overdue"), (CHAIR1, "due"), (COORD, f"case {KEEP_REF}"), (COORD, "scr"),
            (COORD, "scr update 1 " + H), (COORD, H), (COORD, "status " + H),
            (COORD, "case " + H), (COORD, "due " + H),
        ]:
            seen += assert_inert_in_slack(command(user, text_), f"/mappa {text_[:20]}")
        shown = "\n".join(seen)
        # The hostile values did reach the replies, escaped (so the checks above bite).
        assert mrkdwn_escape(ID) + "GRA-0101" in shown  # a ref in the co-ordinator's due list
        assert mrkdwn_escape(AREA) in shown  # the area in status
        assert "&lt;script&gt;" in shown

        # Buttons and the reason modal on items whose ids are hostile.
        key = f"minutes:{key_part(ID + 'G12')}"  # as the bot writes it: "|" encoded
        with engine.begin() as conn:
            conn.execute(sql_text("UPDATE meeting SET minutes_issued = NULL WHERE meeting_id = :m"),
                         {"m": ID + "G12"})
        reply = act(CHAIR2, "minutes_issued", key)
        assert mrkdwn_escape(ID) + "G12" in "".join(assert_inert_in_slack(reply, "button"))
        assert_inert_in_slack(act(CHAIR2, "snooze_1wd", key), "snooze")
        name = f"r{next(n)}"
        body = action_body(CHAIR2, "record_reason", key, stand_in.response_url(name))
        assert post(server.url + "/slack/events", body, sign(body))[0] == 200
        view = stand_in.wait_for("/api/views.open")[0]["body"]["view"]
        assert view["private_metadata"] == key  # the id itself round-trips unescaped
        assert_inert_in_slack(view, "reason modal")
        body = view_body(CHAIR2, key, "information_late", H)
        status, out, _ = post(server.url + "/slack/events", body, sign(body))
        assert status == 200 and out == ""
        confirm = stand_in.wait_for("/api/chat.postMessage")[-1]["body"]
        assert_inert_in_slack(confirm, "reason confirmation")

        # /mappa escalate with hostile text: the SOG chair's DM, the agency's email, the reply.
        before = len(stand_in.posts("/api/chat.postMessage"))
        reply = command(COORD, f"escalate {H} {KEEP_AGENCY} needs to know")
        assert_inert_in_slack(reply, "escalate reply")  # with the agencies' hostile names
        dm = stand_in.wait_for("/api/chat.postMessage", before + 1)[-1]["body"]
        assert "&lt;!channel&gt;" in "".join(assert_inert_in_slack(dm, "escalation DM"))
        assert not smtp.messages, "no agency is e-mailed unless chosen"
        issue = next(e["value"] for b in reply["blocks"] if b["type"] == "actions"
                     for e in b["elements"] if e["type"] == "button")
        state = {f"escalate:{issue}": {"escalate_choose": {
            "type": "multi_static_select", "selected_options": [{"value": KEEP_AGENCY}]}}}
        chosen = send(lambda u, a, v, url: action_body(u, a, v, url, state=state),
                      COORD, "escalate_agencies", issue)
        assert_inert_in_slack(chosen, "escalate agencies reply")
        assert smtp.messages, "the chosen agency gets the escalation by email"
        for m in smtp.messages:
            msg = email.message_from_bytes(m.original_content)
            html = next(p for p in msg.walk() if p.get_content_type() == "text/html")
            page = html.get_payload(decode=True).decode()
            assert_inert_html(page, "escalation email")
            assert "&lt;!channel&gt;" in page
    finally:
        server.close()
        stand_in.close()
        smtp.close()


def test_hostile_text_is_inert_in_every_notice_for_slack_and_email(hostile):
    engine = hostile
    # A message given up on, with a hostile error and recipient: the co-ordinator is told.
    now = dt.datetime(2027, 1, 11, 9, 0, tzinfo=LONDON)
    table = outbox._table()
    with engine.begin() as conn:
        conn.execute(table.insert().values(
            dedupe_key="x", rule="digest", item_key="minutes:" + ID + "G1", stage="due",
            recipient_id=ID + "g-chair-1", channel="slack", address="U1CHAIR1",
            group_key="digest|x|2027-01-08", area=AREA, payload="{}", planned_at=now,
            not_before=now, status="dead", attempts=5, next_attempt_at=now, last_error=H))
    for job in ("digest", "escalations", "weekly-summary", "quarterly-review"):
        run_planning_job(engine, job, now, NudgeRules())
    claimed = outbox.claim(engine, now + dt.timedelta(hours=1), max_groups=1000)
    rules = {r["rule"] for rows in claimed.groups.values() for r in rows}
    assert rules >= {"digest", "chaser", "escalation", "below_target", "weekly", "quarterly",
                     "audit_reminder", "scr", "delivery_problem"}
    kinds = {r["payload"].get("kind") for rows in claimed.groups.values() for r in rows}
    assert kinds >= {"minutes", "contribution", "audit_reminder", "scr_action",
                     "delivery_problem"}
    slack_seen, html_seen = [], []
    for key, rows in claimed.groups.items():
        email_only = key.startswith("chaser|")  # agency contacts are reached by email
        for channel in ("email",) if email_only else ("slack", "email"):
            message = render_group([{**r, "channel": channel} for r in rows])
            if channel == "slack":
                slack_seen += assert_inert_in_slack(
                    {"blocks": message.blocks, "text": message.text}, key)
            else:
                assert_inert_html(message.html, key)
                html_seen.append(message.html)
    shown, html = "\n".join(slack_seen), "\n".join(html_seen)
    for value in (AREA, ID, NAMES[2], H):  # area intros, ids, a chair's name, SCR texts
        assert mrkdwn_escape(value) in shown, value
    assert "&lt;!channel&gt;" in html and "&lt;script&gt;" in html


def test_hostile_text_is_neutralised_in_every_csv_export(hostile, tmp_path, capsys):
    capsys.readouterr()
    neutralised = 0

    def run(*argv) -> str:
        assert main(list(argv)) == 0
        return capsys.readouterr().out

    out = run("exceptions", "--csv", "--period", "2026-27", "--as-of", "2026-11-26")
    neutralised += assert_no_formula_cells(out, "exceptions --csv")
    assert "'=1+<!here>" in out  # a hostile ref or meeting id, neutralised
    out = run("report", "compare", "--csv", "--as-of", "2026-11-26")
    neutralised += assert_no_formula_cells(out, "compare --csv")
    assert "'" + AREA in out
    files = []
    run("report", "quarterly", "--period", "2026-27-Q3", "--as-of", "2027-01-31",
        "--format", "csv", "--out", str(tmp_path / "pack"))
    files += sorted((tmp_path / "pack").glob("*.csv"))
    run("report", "stats", "--from", "2026-04-01", "--to", "2027-03-31",
        "--by", "category,level,gender,ethnicity,age_band,rosh", "--out", str(tmp_path / "stats"))
    files += sorted((tmp_path / "stats").glob("*.csv"))
    run("report", "annual", "--year", "2026-27", "--out", str(tmp_path / "annual"))
    files += sorted((tmp_path / "annual").glob("*.csv"))
    assert len(files) >= 10
    for path in files:
        neutralised += assert_no_formula_cells(path.read_text(encoding="utf-8"), path.name)
    stats = "".join(p.read_text(encoding="utf-8") for p in (tmp_path / "stats").glob("*.csv"))
    assert "'@SUM(1+1)" in stats  # ethnicity
    assert neutralised >= 10
    # The HTML reports escape the same values.
    run("report", "quarterly", "--period", "2026-27-Q3", "--as-of", "2027-01-31",
        "--out", str(tmp_path / "pack.html"))
    assert_inert_html((tmp_path / "pack.html").read_text(encoding="utf-8"), "quarterly html")
    assert_inert_html((tmp_path / "annual" / "annual.html").read_text(encoding="utf-8"),
                      "annual html")


def test_hostile_csv_cells_in_json_status_stay_data(hostile, capsys):
    """`mappa status --json` is data, not a display: the area comes back exactly."""
    capsys.readouterr()
    assert main(["status", "--area", AREA, "--as-of", "2026-11-26", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["area"] == AREA

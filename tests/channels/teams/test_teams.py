"""Microsoft Teams, the fourth channel: case-free notices as Adaptive Cards posted to each
area's Teams Workflows webhook.

The webhook is a local HTTP stand-in that checks each post the way Teams does (the message
envelope, the card's type, version, body elements and their required fields, the 28 KB
limit) and answers 400 to a card it would refuse. No test mocks the project's code.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlmodel import SQLModel

from bot.channels import TRANSPORTS, area_channels, render
from bot.channels.console import ConsoleTransport
from bot.delivery.worker import deliver_pending
from bot.jobs.ticks import plan_job, run_planning_job
from bot.settings import Settings, env_names
from mappa_core.storage import outbox
from mappa_core.synthetic_region import write_demo_data
from mappa_core.storage.importer import import_directory
from mappa_core.rules.planner import CASE_FREE_RULES, NudgeRules
from tests.conftest import GRAMPIAN
from tests.slack_harness import free_port
from tests.helpers import run_cli as _run

LONDON = ZoneInfo("Europe/London")
RULES = NudgeRules()
MONDAY = dt.datetime(2027, 1, 11, 9, 0, tzinfo=LONDON)  # Q4: weekly, below-target, quarterly
JOBS = ("digest", "escalations", "weekly-summary", "quarterly-review")
ELEMENTS = {"TextBlock", "FactSet", "ColumnSet", "Container", "Image", "RichTextBlock",
            "Table", "ActionSet"}


def card_problems(payload) -> list[str]:
    """What Teams would refuse in a Workflows webhook post (an empty list: nothing)."""
    problems = []
    if len(json.dumps(payload).encode()) >= 28 * 1024:
        problems.append("larger than 28 KB")
    if not isinstance(payload, dict) or payload.get("type") != "message":
        return problems + ["the envelope's type is not 'message'"]
    attachments = payload.get("attachments")
    if not isinstance(attachments, list) or not attachments:
        return problems + ["no attachments"]
    for a in attachments:
        if a.get("contentType") != "application/vnd.microsoft.card.adaptive":
            problems.append(f"contentType {a.get('contentType')!r}")
        card = a.get("content") or {}
        if card.get("type") != "AdaptiveCard":
            problems.append("content.type is not AdaptiveCard")
        if card.get("version") != "1.5":
            problems.append(f"version {card.get('version')!r}")
        if card.get("$schema") != "http://adaptivecards.io/schemas/adaptive-card.json":
            problems.append("$schema")
        if not isinstance(card.get("body"), list) or not card["body"]:
            problems.append("body is not a non-empty list")
        else:
            problems += _elements(card["body"])
    return problems


def _elements(elements) -> list[str]:
    problems = []
    for e in elements:
        kind = e.get("type") if isinstance(e, dict) else None
        if kind not in ELEMENTS:
            problems.append(f"unknown element {kind!r}")
        elif kind == "TextBlock" and not (isinstance(e.get("text"), str) and e["text"]):
            problems.append("TextBlock without text")
        elif kind == "FactSet":
            facts = e.get("facts")
            if not isinstance(facts, list) or not facts or not all(
                    isinstance(f, dict) and isinstance(f.get("title"), str)
                    and isinstance(f.get("value"), str) for f in facts):
                problems.append("FactSet without facts of title and value")
        elif kind == "ColumnSet":
            for c in e.get("columns") or []:
                if c.get("type") != "Column":
                    problems.append("ColumnSet holds a non-Column")
                problems += _elements(c.get("items") or [])
        elif kind == "Container":
            problems += _elements(e.get("items") or [])
    return problems


class TeamsStandIn:
    """Teams Workflows webhooks at http://127.0.0.1:PORT/hook/<area>: 202 for a valid card,
    400 for one Teams would refuse, or the statuses queued with `answer`."""

    def __init__(self):
        self.posts: list[dict] = []
        self.refused: list[list[str]] = []
        self.queued: list[tuple[int, dict]] = []
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if stand_in.queued:
                    status, headers = stand_in.queued.pop(0)
                else:
                    problems = card_problems(body)
                    status, headers = (400, {}) if problems else (202, {})
                    if problems:
                        stand_in.refused.append(problems)
                    else:
                        stand_in.posts.append({"path": self.path, "body": body})
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, area: str) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/hook/{area.replace(' ', '-')}"

    def answer(self, status: int, headers: dict | None = None) -> None:
        self.queued.append((status, headers or {}))

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def teams():
    stand_in = TeamsStandIn()
    yield stand_in
    stand_in.close()


def _settings(teams: TeamsStandIn, areas) -> Settings:
    return Settings(teams_webhooks=json.dumps({a: teams.url(a) for a in areas}),
                    smtp_host="", mail_from="mappa-bot@example.org")


def _refs(engine) -> set[str]:
    ind = SQLModel.metadata.tables["individual"]
    with engine.connect() as conn:
        return set(conn.execute(select(ind.c.ref)).scalars())


def _statuses(engine, channel: str) -> dict[str, list[str]]:
    table = SQLModel.metadata.tables["outbox"]
    with engine.connect() as conn:
        rows = conn.execute(select(table.c.group_key, table.c.status)
                            .where(table.c.channel == channel)).all()
    found: dict[str, list[str]] = {}
    for key, status in rows:
        found.setdefault(status, []).append(key)
    return found


@pytest.mark.http
def test_each_case_free_notice_reaches_the_areas_teams_channel_as_a_valid_card(sqlite_engine, teams):
    assert import_directory(sqlite_engine, GRAMPIAN).ok
    settings = _settings(teams, ["Grampian"])
    assert area_channels(settings) == {"teams": {"Grampian": "Grampian"}}
    for job in JOBS:
        run_planning_job(sqlite_engine, job, MONDAY, RULES, area_channels=area_channels(settings))
    report = asyncio.run(deliver_pending(sqlite_engine, settings, ConsoleTransport(open("/dev/null", "w")),
                                         MONDAY + dt.timedelta(hours=1)))
    assert teams.refused == []
    sent = _statuses(sqlite_engine, "teams")
    assert set(sent) == {"sent"}
    # One card per rule: the weekly summary, the below-target alerts, the quarterly reminder.
    assert sorted({k.split("|")[0] for k in sent["sent"]}) == ["below_target", "quarterly", "weekly"]
    assert len(set(sent["sent"])) == 3
    assert report.sent["teams"] == 3 == len(teams.posts)
    assert {p["path"] for p in teams.posts} == {"/hook/Grampian"}
    titles = sorted(p["body"]["attachments"][0]["content"]["body"][0]["text"] for p in teams.posts)
    assert titles == ["MAPPA weekly summary: Grampian",
                      "SOG quarterly review due: 2026-27-Q3, Grampian",
                      "URGENT: MAPPA indicator below target: Grampian"]
    # A second run sends nothing again.
    again = asyncio.run(deliver_pending(sqlite_engine, settings, ConsoleTransport(open("/dev/null", "w")),
                                        MONDAY + dt.timedelta(hours=2)))
    assert again.sent.get("teams", 0) == 0 and len(teams.posts) == 3


@pytest.mark.parametrize("region", ["grampian", "demo"])
def test_no_case_reference_ever_reaches_a_teams_channel(sqlite_engine, tmp_path, region):
    if region == "grampian":
        assert import_directory(sqlite_engine, GRAMPIAN).ok
    else:
        # Grampian at its real size; seed 2 has an indicator below target in Q4's first
        # week, so every kind of channel notice is planned.
        write_demo_data(tmp_path / "demo", individuals=750, years=2, seed=2,
                        until=MONDAY.date(), areas=["Grampian"])
        assert import_directory(sqlite_engine, tmp_path / "demo").ok
    refs = _refs(sqlite_engine)
    assert refs
    ind = SQLModel.metadata.tables["individual"]
    with sqlite_engine.connect() as conn:
        areas = sorted(set(conn.execute(select(ind.c.area)).scalars()))
    channels = {"teams": {a: a for a in areas}}
    kinds, teams_groups = set(), {}
    for job in JOBS:
        notes = plan_job(sqlite_engine, job, MONDAY, RULES, channels)
        kinds |= set(notes["rule"])
        to_teams = notes[notes["channel"] == "teams"]
        # The planner routes only case-free notices to Teams, and every one of them.
        assert set(to_teams["rule"]) <= CASE_FREE_RULES
        free = notes[notes["rule"].isin(CASE_FREE_RULES) & (notes["channel"] != "teams")]
        assert set(zip(free["rule"], free["item_key"])) == set(zip(to_teams["rule"], to_teams["item_key"]))
        for row in to_teams.to_dict("records"):
            teams_groups.setdefault(row["group_key"], []).append(row)
    assert kinds >= {"digest", "escalation", "weekly", "below_target", "quarterly"}, kinds
    assert {k.split("|")[0] for k in teams_groups} == {"weekly", "below_target", "quarterly"}
    for rows in teams_groups.values():
        payload = json.dumps(render(rows).blocks)
        assert card_problems(json.loads(payload)[0]) == []
        leaked = [ref for ref in refs if ref in payload]
        assert leaked == [], leaked
    # Even a case-bearing notice addressed to Teams by mistake is refused, not rendered.
    digest = plan_job(sqlite_engine, "digest", MONDAY, RULES)
    rows = [{**r, "channel": "teams"} for r in digest.to_dict("records")[:1]]
    with pytest.raises(ValueError, match="never sent to Teams"):
        render(rows)


@pytest.mark.parametrize(("status", "headers", "state", "retry_after"), [
    (429, {"Retry-After": "120"}, "pending", 120),
    (503, {}, "pending", 60),       # the first backoff
    (400, {}, "dead", None),
    (404, {}, "dead", None),
])
@pytest.mark.http
def test_teams_errors_say_whether_to_retry(sqlite_engine, teams, status, headers, state, retry_after):
    assert import_directory(sqlite_engine, GRAMPIAN).ok
    settings = _settings(teams, ["Grampian"])
    run_planning_job(sqlite_engine, "quarterly-review", MONDAY, RULES,
                     area_channels=area_channels(settings))
    teams.answer(status, headers)
    now = MONDAY + dt.timedelta(hours=1)
    asyncio.run(deliver_pending(sqlite_engine, settings, ConsoleTransport(open("/dev/null", "w")), now))
    table = SQLModel.metadata.tables["outbox"]
    with sqlite_engine.connect() as conn:
        row = conn.execute(select(table).where(table.c.channel == "teams")).mappings().one()
    assert row["status"] == state and row["last_error"].startswith(f"Teams: HTTP {status}")
    assert "127.0.0.1" not in row["last_error"]  # the webhook URL is a secret
    if retry_after is not None:
        assert row["next_attempt_at"].replace(tzinfo=None) == (
            now + dt.timedelta(seconds=retry_after)).astimezone(dt.UTC).replace(tzinfo=None)


@pytest.mark.http
def test_an_area_without_a_webhook_is_a_permanent_failure_that_names_no_secret(sqlite_engine, teams):
    assert import_directory(sqlite_engine, GRAMPIAN).ok
    planned = Settings(teams_webhooks=json.dumps({"Grampian": teams.url("Grampian")}))
    run_planning_job(sqlite_engine, "quarterly-review", MONDAY, RULES,
                     area_channels=area_channels(planned))
    later = Settings(teams_webhooks=json.dumps({"Highland": teams.url("Highland")}))
    asyncio.run(deliver_pending(sqlite_engine, later, ConsoleTransport(open("/dev/null", "w")),
                                MONDAY + dt.timedelta(hours=1)))
    rows = outbox.list_rows(sqlite_engine, "dead")
    assert [r["channel"] for r in rows] == ["teams"]
    assert "MAPPA_TEAMS_WEBHOOKS" in rows[0]["last_error"] and teams.posts == []


def test_teams_is_registered_and_reaches_nobody_without_the_setting():
    assert "teams" in TRANSPORTS
    assert area_channels(Settings()) == {}


@pytest.mark.parametrize(("value", "why"), [
    ("{Grampian: https://x}", "not valid JSON"),
    ('["https://x.example/hook"]', "not a JSON object"),
    ('{"Grampian": "ftp://x.example/hook"}', "the value for 'Grampian' is not an http(s) URL"),
])
def test_a_bad_teams_setting_is_one_line_and_exit_2(monkeypatch, tmp_path, capsys, value, why):
    for name in env_names():
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MAPPA_TEAMS_WEBHOOKS", value)
    code, out, err = _run(capsys, "config")
    assert code == 2 and out == ""
    assert err == f"mappa: MAPPA_TEAMS_WEBHOOKS=***: {why}; expected a JSON object from area " \
                  'name to a Teams Workflows webhook URL, e.g. {"Grampian": "https://..."} ' \
                  "(set in environment)\n"


def test_the_teams_webhooks_are_a_secret_in_mappa_config(monkeypatch, tmp_path, capsys):
    for name in env_names():
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MAPPA_TEAMS_WEBHOOKS", '{"Grampian": "https://prod.example/hook?sig=SECRETSIG"}')
    code, out, err = _run(capsys, "config")
    assert code == 0, err
    assert "SECRETSIG" not in out
    line = next(x for x in out.splitlines() if x.startswith("MAPPA_TEAMS_WEBHOOKS="))
    assert line.split()[0] == "MAPPA_TEAMS_WEBHOOKS=***"


@pytest.mark.http
def test_teams_notices_wait_uncounted_while_no_webhook_is_set(sqlite_engine, teams):
    """MAPPA_TEAMS_WEBHOOKS emptied after planning: the Teams cards are not attempted (no
    attempt counted, nothing given up) but wait, and go out once it is set again."""
    assert import_directory(sqlite_engine, GRAMPIAN).ok
    settings = _settings(teams, ["Grampian"])
    run_planning_job(sqlite_engine, "weekly-summary", MONDAY, RULES,
                     area_channels=area_channels(settings))
    unset = settings.model_copy(update={"teams_webhooks": ""})
    console = ConsoleTransport(open("/dev/null", "w"))
    report = asyncio.run(deliver_pending(sqlite_engine, unset, console,
                                         MONDAY + dt.timedelta(hours=1)))
    assert report.failed == report.retrying == 0 and teams.posts == []
    assert set(_statuses(sqlite_engine, "teams")) == {"pending"}
    keys = _statuses(sqlite_engine, "teams")["pending"]
    assert report.waiting_lines() == [
        f"{len(set(keys))} Teams message(s) ({len(keys)} item(s)) wait in the outbox: "
        "MAPPA_TEAMS_WEBHOOKS is not set; they go out on the first delivery run after it is set"]
    table = SQLModel.metadata.tables["outbox"]
    with sqlite_engine.connect() as conn:
        assert set(conn.execute(select(table.c.attempts).where(table.c.channel == "teams"))
                   .scalars()) == {0}
    asyncio.run(deliver_pending(sqlite_engine, settings, console, MONDAY + dt.timedelta(hours=2)))
    assert set(_statuses(sqlite_engine, "teams")) == {"sent"} and teams.posts

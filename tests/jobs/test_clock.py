"""The clock at the edges: what the product does when it reads the clock itself (no
--as-of), frozen with freezegun at UTC instants where Europe/London and UTC disagree.

The edges: the clocks going back (BST to GMT, Sunday 2026-10-25 01:00 UTC) and forward
(GMT to BST, Sunday 2027-03-28 01:00 UTC); midnight in London while UTC is still the day
before; a bank holiday Monday; the first working days after Christmas and New Year.

Scottish bank holidays around them, from the `holidays` package (GB, subdiv SCT), which
`test_the_bank_holidays_these_tests_rely_on_are_the_holidays_packages` pins:
2026-08-03 (Mon, Summer Bank Holiday), 2026-12-25 (Fri), 2026-12-28 (Mon, Boxing Day
observed), 2027-01-01 (Fri), 2027-01-04 (Mon, 2 January observed), 2027-03-26 (Good Friday).

Every instant below is UTC (`tz_offset=0`); the London time it stands for is beside it.
"""

from __future__ import annotations

import datetime as dt
import json
from zoneinfo import ZoneInfo

import holidays
import pytest
from freezegun import freeze_time
from sqlalchemy import create_engine, select
from sqlmodel import SQLModel

from bot.cli import main
from bot.jobs.schedule import build_scheduler, next_runs, triggers
from mappa_core.rules.planner import NudgeRules
from tests.slack_harness import SmtpSink

UTC = dt.UTC
LONDON = ZoneInfo("Europe/London")  # the tests' own, so that they check the product's


def utc(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


def frozen(instant: dt.datetime):
    """The clock stopped at a UTC instant; asyncio keeps real time so that the event loop
    (the delivery worker, the served Slack endpoint) still runs."""
    assert instant.tzinfo is UTC
    return freeze_time(instant, tz_offset=0, real_asyncio=True)


def cli(capsys, *argv) -> str:
    assert main(list(argv)) == 0
    return capsys.readouterr().out


def outbox_rows(db_url: str) -> list[dict]:
    engine = create_engine(db_url)
    try:
        table = SQLModel.metadata.tables["outbox"]
        with engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(select(table).order_by(table.c.id))]
    finally:
        engine.dispose()


def by_status(rows: list[dict]) -> dict[tuple[str, str], int]:
    out: dict[tuple[str, str], int] = {}
    for r in rows:
        out[(r["urgency"], r["status"])] = out.get((r["urgency"], r["status"]), 0) + 1
    return out


def fire_times(trigger, after: dt.datetime, n: int) -> list[dt.datetime]:
    """The next n fire times of a real APScheduler trigger, in UTC."""
    out, prev, now = [], None, after
    for _ in range(n):
        nxt = trigger.get_next_fire_time(prev, now)
        out.append(nxt.astimezone(UTC))
        prev, now = nxt, nxt + dt.timedelta(microseconds=1)
    return out


def test_the_bank_holidays_these_tests_rely_on_are_the_holidays_packages():
    sct = holidays.country_holidays("GB", subdiv="SCT", years=[2026, 2027])
    assert {d for d in sct if dt.date(2026, 12, 20) <= d <= dt.date(2027, 1, 10)} == {
        dt.date(2026, 12, 25), dt.date(2026, 12, 26), dt.date(2026, 12, 28),
        dt.date(2027, 1, 1), dt.date(2027, 1, 2), dt.date(2027, 1, 4)}
    assert dt.date(2026, 8, 3) in sct and dt.date(2027, 3, 26) in sct
    assert dt.date(2026, 12, 29) not in sct and dt.date(2027, 1, 5) not in sct


# --------------------------------------------------------------- the scheduler's triggers


def test_the_digest_fires_at_half_past_eight_london_time_on_each_side_of_the_clocks_going_back():
    digest = triggers(NudgeRules())["digest"]
    # From Thursday 22 October 2026, 12:00 BST: Friday in BST, then GMT from Monday.
    assert fire_times(digest, utc(2026, 10, 22, 11, 0), 3) == [
        utc(2026, 10, 23, 7, 30),   # Fri 08:30 BST
        utc(2026, 10, 26, 8, 30),   # Mon 08:30 GMT, the first weekday after the change
        utc(2026, 10, 27, 8, 30),
    ]


def test_the_digest_fires_at_half_past_eight_london_time_on_each_side_of_the_clocks_going_forward():
    digest = triggers(NudgeRules())["digest"]
    # From Thursday 25 March 2027, 12:00 GMT. The trigger fires on Good Friday too (the
    # digest tick then plans nothing: see the bank holiday tests).
    assert fire_times(digest, utc(2027, 3, 25, 12, 0), 3) == [
        utc(2027, 3, 26, 8, 30),    # Fri 08:30 GMT
        utc(2027, 3, 29, 7, 30),    # Mon 08:30 BST
        utc(2027, 3, 30, 7, 30),
    ]


def test_next_runs_across_the_clocks_going_back_are_in_london_time():
    # Saturday 24 October 2026, 17:30 UTC (18:30 BST: after the last escalation tick, 18:05
    # BST); the clocks go back overnight.
    runs = next_runs(NudgeRules(), utc(2026, 10, 24, 17, 30))
    assert {k: v.astimezone(UTC) for k, v in runs.items() if k != "deliver"} == {
        "digest": utc(2026, 10, 26, 8, 30),            # Mon 08:30 GMT
        "escalations": utc(2026, 10, 25, 8, 5),        # Sun 08:05 GMT
        "weekly-summary": utc(2026, 10, 26, 9, 0),     # Mon 09:00 GMT
        "quarterly-review": utc(2026, 10, 25, 9, 15),  # Sun 09:15 GMT
    }


def test_next_runs_across_the_clocks_going_forward_are_in_london_time():
    # Saturday 27 March 2027, 20:00 UTC (20:00 GMT); the clocks go forward overnight.
    runs = next_runs(NudgeRules(), utc(2027, 3, 27, 20, 0))
    assert {k: v.astimezone(UTC) for k, v in runs.items() if k != "deliver"} == {
        "digest": utc(2027, 3, 29, 7, 30),             # Mon 08:30 BST
        "escalations": utc(2027, 3, 28, 7, 5),         # Sun 08:05 BST
        "weekly-summary": utc(2027, 3, 29, 8, 0),      # Mon 09:00 BST
        "quarterly-review": utc(2027, 3, 28, 8, 15),   # Sun 09:15 BST
    }
    # The last escalation tick of the Sunday is 18:05 BST, 17:05 UTC.
    esc = triggers(NudgeRules())["escalations"]
    assert fire_times(esc, utc(2027, 3, 28, 16, 30), 2) == [
        utc(2027, 3, 28, 17, 5), utc(2027, 3, 29, 7, 5)]


@pytest.mark.parametrize(("instant", "digest_at"), [
    (utc(2026, 10, 23, 12, 0), "Mon 2026-10-26 08:30"),  # Fri 13:00 BST
    (utc(2027, 3, 26, 12, 0), "Mon 2027-03-29 08:30"),   # Good Friday 12:00 GMT
])
def test_mappa_jobs_list_without_as_of_shows_the_monday_digest_at_half_past_eight_london_time(
        capsys, instant, digest_at):
    with frozen(instant):
        out = cli(capsys, "jobs", "list")
    assert "next run (Europe/London)" in out
    assert f"digest             {digest_at}" in out


def test_the_running_scheduler_plans_the_monday_digest_in_london_time():
    import asyncio

    async def deliver(now):
        return None

    async def next_digest():
        scheduler = build_scheduler(None, NudgeRules(), deliver)
        scheduler.start(paused=False)
        try:
            return scheduler.get_job("digest").next_run_time
        finally:
            scheduler.shutdown(wait=False)

    with frozen(utc(2026, 10, 24, 12, 0)):   # Saturday 13:00 BST
        after_change = asyncio.run(next_digest())
    with frozen(utc(2027, 3, 27, 12, 0)):    # Saturday 12:00 GMT
        after_forward = asyncio.run(next_digest())
    assert after_change.astimezone(UTC) == utc(2026, 10, 26, 8, 30)
    assert after_forward.astimezone(UTC) == utc(2027, 3, 29, 7, 30)


# --------------------------------------------------- the digest and the working-hours gate


@pytest.fixture
def mail(db_url, monkeypatch, capsys):
    """The Grampian records in a real database (SQLite file; PostgreSQL when set) for
    `mappa`, a real SMTP server for the email half of what `mappa jobs run deliver` sends,
    and a stand-in for Slack's Web API for the Slack half."""
    from tests.conftest import GRAMPIAN
    from tests.slack_harness import SlackStandIn

    monkeypatch.setenv("MAPPA_DATABASE_URL", db_url)
    assert main(["import", str(GRAMPIAN)]) == 0
    capsys.readouterr()
    sink, stand_in = SmtpSink(), SlackStandIn()
    for name, value in {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(sink.port),
                        "SMTP_STARTTLS": "no", "SMTP_TIMEOUT": "10",
                        "MAIL_FROM": "mappa-bot@example.org", "SLACK_BOT_TOKEN": "xoxb-clock",
                        "SLACK_API_URL": stand_in.api_url()}.items():
        monkeypatch.setenv(name, value)
    yield db_url
    sink.close()
    stand_in.close()


def _run(capsys, job: str, instant: dt.datetime, *extra) -> str:
    """`mappa jobs run JOB` without --as-of, at a frozen instant."""
    with frozen(instant):
        return cli(capsys, "jobs", "run", job, *extra)


@pytest.mark.http
def test_the_digest_on_the_monday_after_the_clocks_go_back_plans_at_half_past_eight_gmt(
        mail, capsys):
    out = _run(capsys, "digest", utc(2026, 10, 26, 8, 30))
    assert out.startswith("digest at 2026-10-26 08:30 GMT: planned ")
    rows = outbox_rows(mail)
    assert rows and {r["status"] for r in rows} == {"pending"}
    # Keyed on the London day, sent at once: it is working hours.
    assert all(r["group_key"].endswith("|2026-10-26") for r in rows if r["rule"] == "digest")
    out = _run(capsys, "deliver", utc(2026, 10, 26, 8, 30))
    assert f"delivered {len(rows)} item(s)" in out
    assert {r["status"] for r in outbox_rows(mail)} == {"sent"}


@pytest.mark.http
def test_the_digest_on_the_monday_after_the_clocks_go_forward_plans_at_half_past_eight_bst(
        mail, capsys):
    out = _run(capsys, "digest", utc(2027, 3, 29, 7, 30))
    assert out.startswith("digest at 2027-03-29 08:30 BST: planned ")
    rows = outbox_rows(mail)
    assert rows and all(r["group_key"].endswith("|2027-03-29") for r in rows if r["rule"] == "digest")
    out = _run(capsys, "deliver", utc(2027, 3, 29, 7, 30))
    assert f"delivered {len(rows)} item(s)" in out


@pytest.mark.parametrize(("plan_at", "side"), [
    (utc(2026, 10, 23, 7, 29), "BST"),   # Friday 23 October, 08:29 BST
    (utc(2026, 10, 26, 8, 29), "GMT"),   # Monday 26 October, 08:29 GMT
    (utc(2027, 3, 29, 7, 29), "BST"),    # Monday 29 March, 08:29 BST
])
@pytest.mark.http
def test_a_digest_planned_at_twenty_nine_minutes_past_eight_waits_for_half_past_london_time(
        mail, capsys, plan_at, side):
    out = _run(capsys, "digest", plan_at)
    assert f" 08:29 {side}: planned " in out
    planned = len(outbox_rows(mail))
    assert planned > 0
    assert "delivered 0 item(s)" in _run(capsys, "deliver", plan_at + dt.timedelta(seconds=59))
    assert f"delivered {planned} item(s)" in _run(
        capsys, "deliver", plan_at + dt.timedelta(minutes=1))


@pytest.mark.parametrize(("plan_at", "side", "next_morning"), [
    # Friday 23 October 17:30 BST: the next working day is Monday 26th, 08:30 GMT.
    (utc(2026, 10, 23, 16, 30), "BST", utc(2026, 10, 26, 8, 30)),
    # Friday 26 March 2027 is Good Friday: Thursday 25th 17:30 GMT waits for Monday 29th
    # 08:30 BST.
    (utc(2027, 3, 25, 17, 30), "GMT", utc(2027, 3, 29, 7, 30)),
])
@pytest.mark.http
def test_a_non_urgent_message_planned_at_half_past_five_london_time_waits_for_the_next_working_morning(
        mail, capsys, plan_at, side, next_morning):
    out = _run(capsys, "escalations", plan_at)
    assert f" 17:30 {side}: planned " in out
    rows = outbox_rows(mail)
    normal = sum(1 for r in rows if r["urgency"] == "normal")
    urgent = len(rows) - normal
    assert normal > 0
    # Urgent ones go at once; the rest wait, still at 08:29 on the next working morning.
    out = _run(capsys, "deliver", plan_at)
    assert f"delivered {urgent} item(s)" in out
    assert "delivered 0 item(s)" in _run(capsys, "deliver", next_morning - dt.timedelta(minutes=1))
    assert f"delivered {normal} item(s)" in _run(capsys, "deliver", next_morning)
    assert by_status(outbox_rows(mail)) == {
        k: v for k, v in {("normal", "sent"): normal, ("urgent", "sent"): urgent}.items() if v}


# ------------------------------------------------- midnight in London, UTC still yesterday


def test_mappa_status_without_as_of_just_after_midnight_bst_answers_for_the_new_quarter(
        grampian_cli, capsys):
    # 2026-06-30 23:30 UTC is 2026-07-01 00:30 BST: the first day of 2026-27 Q2.
    with frozen(utc(2026, 6, 30, 23, 30)):
        data = json.loads(cli(capsys, "status", "--json"))
        text = cli(capsys, "status")
    assert data["as_of"] == "2026-07-01"
    assert data["period"] == {"start": "2026-07-01", "end": "2026-09-30"}
    assert text.startswith("MAPPA indicators - all areas - 2026-07-01 to 2026-09-30, "
                           "as of 2026-07-01\n")


def test_mappa_due_without_as_of_just_after_midnight_bst_counts_from_the_london_day(
        grampian_cli, capsys):
    with frozen(utc(2026, 6, 30, 23, 30)):
        assert "as of 2026-07-01" in cli(capsys, "due").splitlines()[-1]
    with frozen(utc(2026, 6, 30, 22, 59)):   # 23:59 BST, still 30 June in London
        assert "as of 2026-06-30" in cli(capsys, "due").splitlines()[-1]


@pytest.mark.http
def test_the_digest_dedupe_day_is_the_london_day_not_the_utc_day(mail, capsys):
    # Wednesday 1 July 08:30 BST: the day's digests.
    first = _run(capsys, "digest", utc(2026, 7, 1, 7, 30))
    assert first.startswith("digest at 2026-07-01 08:30 BST: planned ")
    rows = outbox_rows(mail)
    assert rows and {r["group_key"].rsplit("|", 1)[1] for r in rows} == {"2026-07-01"}
    # 23:59 BST the same London day (22:59 UTC): the same digests, nothing new.
    assert ", 0 new in the outbox" in _run(capsys, "digest", utc(2026, 7, 1, 22, 59))
    # 00:30 BST on Thursday 2 July, while UTC still reads 1 July: a new day's digests.
    again = _run(capsys, "digest", utc(2026, 7, 1, 23, 30))
    assert again.startswith("digest at 2026-07-02 00:30 BST: planned ")
    assert ", 0 new in the outbox" not in again
    assert {r["group_key"].rsplit("|", 1)[1] for r in outbox_rows(mail)[len(rows):]} == {
        "2026-07-02"}


# ------------------------------------------- bank holidays: August, Christmas, New Year


@pytest.mark.parametrize(("holiday", "next_day"), [
    # Scottish Summer Bank Holiday, first Monday in August.
    (utc(2026, 8, 3, 7, 30), utc(2026, 8, 4, 7, 30)),       # 08:30 BST
    # Christmas Day (Fri), Boxing Day observed (Mon 28th): Tuesday 29th is the first
    # working day after Christmas.
    (utc(2026, 12, 25, 8, 30), utc(2026, 12, 29, 8, 30)),   # 08:30 GMT
    (utc(2026, 12, 28, 8, 30), utc(2026, 12, 29, 8, 30)),
    # New Year's Day (Fri), 2 January observed (Mon 4th): Tuesday 5th.
    (utc(2027, 1, 1, 8, 30), utc(2027, 1, 5, 8, 30)),
    (utc(2027, 1, 4, 8, 30), utc(2027, 1, 5, 8, 30)),
])
@pytest.mark.http
def test_no_digest_on_a_bank_holiday_and_the_next_goes_at_half_past_eight_on_the_next_working_day(
        mail, capsys, holiday, next_day):
    # The trigger fires on the holiday (a weekday) ...
    digest = triggers(NudgeRules())["digest"]
    assert fire_times(digest, holiday - dt.timedelta(minutes=1), 1) == [holiday]
    # ... and the tick plans nothing.
    out = _run(capsys, "digest", holiday)
    assert out == (f"digest at {holiday.astimezone(LONDON):%Y-%m-%d %H:%M %Z}: nothing planned "
                   "(not a working day)\n")
    assert outbox_rows(mail) == []
    # The next digest tick that plans is the next working day's 08:30.
    out = _run(capsys, "digest", next_day)
    assert out.startswith(f"digest at {next_day.astimezone(LONDON):%Y-%m-%d} 08:30 ")
    rows = outbox_rows(mail)
    assert rows and {r["group_key"].rsplit("|", 1)[1] for r in rows} == {
        f"{next_day.astimezone(LONDON):%Y-%m-%d}"}
    assert f"delivered {len(rows)} item(s)" in _run(capsys, "deliver", next_day)


@pytest.mark.http
def test_on_a_bank_holiday_monday_urgent_messages_go_and_the_rest_wait_for_tuesday_morning(
        mail, capsys):
    # Monday 28 December 2026 (Boxing Day observed), escalation tick at 09:05 GMT.
    monday = utc(2026, 12, 28, 9, 5)
    # (G18's disclosure is recorded `no`: not escalated as "not recorded".)
    assert "planned 13 notification(s), 13 new" in _run(capsys, "escalations", monday)
    rows = outbox_rows(mail)
    assert by_status(rows) == {("urgent", "pending"): 2, ("normal", "pending"): 11}
    assert "delivered 2 item(s)" in _run(capsys, "deliver", monday)
    # Still waiting on the holiday afternoon and at 08:29 on Tuesday.
    for when in (utc(2026, 12, 28, 14, 0), utc(2026, 12, 29, 8, 29)):
        assert "delivered 0 item(s)" in _run(capsys, "deliver", when)
    assert "delivered 11 item(s)" in _run(capsys, "deliver", utc(2026, 12, 29, 8, 30))
    assert by_status(outbox_rows(mail)) == {("urgent", "sent"): 2, ("normal", "sent"): 11}


@pytest.mark.http
def test_a_non_urgent_message_on_christmas_eve_evening_waits_until_the_twenty_ninth(mail, capsys):
    # Thursday 24 December 2026, 17:30 GMT: the next working morning is Tuesday 29th.
    assert "new in the outbox" in _run(capsys, "escalations", utc(2026, 12, 24, 17, 30))
    counts = by_status(outbox_rows(mail))
    normal, urgent = counts[("normal", "pending")], counts[("urgent", "pending")]
    assert f"delivered {urgent} item(s)" in _run(capsys, "deliver", utc(2026, 12, 24, 17, 30))
    for when in (utc(2026, 12, 25, 8, 30), utc(2026, 12, 28, 8, 30), utc(2026, 12, 29, 8, 29)):
        assert "delivered 0 item(s)" in _run(capsys, "deliver", when)
    assert f"delivered {normal} item(s)" in _run(capsys, "deliver", utc(2026, 12, 29, 8, 30))


@pytest.mark.http
def test_slack_mappa_status_just_after_midnight_bst_answers_for_the_new_quarter(sqlite_engine):
    """The served bot's own today (no `today` passed in: the one `mappa serve` uses)."""
    from bot.server import build_asgi
    from bot.settings import Settings
    from mappa_core.storage.importer import import_directory
    from tests.conftest import GRAMPIAN
    from tests.slack_harness import (
        SIGNING_SECRET, BotServer, SlackStandIn, command_body, post, sign,
    )

    assert import_directory(sqlite_engine, GRAMPIAN).ok
    stand_in = SlackStandIn()
    settings = Settings(work_processes=0, database_url=str(sqlite_engine.url),
                        slack_bot_token="xoxb-test", slack_signing_secret=SIGNING_SECRET,
                        slack_api_url=stand_in.api_url())
    replies = {}
    # tick: the clock moves on from each instant, so that the harness's waits end.
    with freeze_time(utc(2026, 6, 30, 22, 59), tz_offset=0, real_asyncio=True,
                     tick=True) as clock:
        server = BotServer(build_asgi(settings, sqlite_engine))
        try:
            for name, instant in (("before", utc(2026, 6, 30, 22, 59)),   # 23:59 BST, 30 June
                                  ("after", utc(2026, 6, 30, 23, 30))):   # 00:30 BST, 1 July
                clock.move_to(instant)
                body = command_body("U1STAFF1", "status", stand_in.response_url(name))
                status, out, _ = post(server.url + "/slack/events", body, sign(body))
                assert status == 200, out
                reply = stand_in.wait_for(f"/response/{name}")[0]["body"]
                replies[name] = json.dumps(reply.get("blocks", [])) + reply.get("text", "")
        finally:
            server.close()
            stand_in.close()
    assert "2026-07-01 to 2026-09-30, as of 2026-07-01" in replies["after"]
    assert "2026-04-01 to 2026-06-30, as of 2026-06-30" in replies["before"]

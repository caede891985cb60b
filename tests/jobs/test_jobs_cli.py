"""`mappa jobs list|run`, `mappa demo-day`, and the schedule's fixed job ids."""

import datetime as dt
import json

import pytest
from sqlalchemy import text

from bot.cli import main
from bot.jobs.schedule import build_scheduler, next_runs
from bot.jobs.ticks import LONDON, parse_when
from mappa_core.rules.planner import NudgeRules



def _use_slack(monkeypatch, stand_in) -> None:
    """The CLI's Slack: a token and the Web API stand-in."""
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test")
    monkeypatch.setenv("SLACK_API_URL", stand_in.api_url())


def _use_smtp(monkeypatch, smtp) -> None:
    """The CLI's email: the SMTP sink, plain (no STARTTLS)."""
    monkeypatch.setenv("SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("SMTP_PORT", str(smtp.port))
    monkeypatch.setenv("SMTP_STARTTLS", "no")

def test_jobs_list_shows_each_job_and_its_next_run(capsys):
    assert main(["jobs", "list", "--as-of", "2026-11-28T10:00"]) == 0  # a Saturday
    out = capsys.readouterr().out
    # The trigger fires on weekdays; the digest tick itself skips St Andrew's Day.
    assert "digest             Mon 2026-11-30 08:30" in out
    assert "weekly-summary     Mon 2026-11-30 09:00" in out
    for name in ("escalations", "quarterly-review", "deliver"):
        assert name in out


def test_scheduler_has_fixed_job_ids():
    async def deliver(now):
        return None

    scheduler = build_scheduler(None, NudgeRules(), deliver)
    assert sorted(j.id for j in scheduler.get_jobs()) == [
        "deliver", "digest", "escalations", "quarterly-review", "weekly-summary"]
    assert set(next_runs(NudgeRules(), dt.datetime(2026, 11, 26, 9, tzinfo=LONDON))) == {
        "deliver", "digest", "escalations", "quarterly-review", "weekly-summary"}


def test_bare_date_means_nine_in_the_morning_in_london():
    assert parse_when("2026-07-01") == dt.datetime(2026, 7, 1, 9, 0, tzinfo=LONDON)
    assert parse_when("2026-07-01T14:30").hour == 14
    with pytest.raises(ValueError, match="neither a date"):
        parse_when("tomorrow")


def test_jobs_run_dry_run_plans_and_writes_nothing(grampian_cli, capsys):
    assert main(["jobs", "run", "digest", "--as-of", "2026-11-26", "--dry-run"]) == 0
    out = capsys.readouterr().out
    # 7 deadline items + 2 meeting-audit reminders. (G18's disclosure, recorded as no, is
    # a decision counted at once as not met, no longer chased as "not recorded". Electronic
    # Monitoring Scotland is chased once, at its own address, not its contact's as well.)
    assert "would plan 9 notification(s)" in out
    assert "digest           slack  g-chair-2                                    3 item(s)" in out
    assert main(["jobs", "run", "deliver", "--dry-run"]) == 0
    assert "outbox: {}" in capsys.readouterr().out


def test_jobs_run_on_a_weekend_plans_no_digest(grampian_cli, capsys):
    assert main(["jobs", "run", "digest", "--as-of", "2026-11-29"]) == 0
    assert "nothing planned (not a working day)" in capsys.readouterr().out


def test_jobs_run_unknown_job_and_bad_time(grampian_cli, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["jobs", "run", "sweep"])
    assert exc.value.code == 2 and "unknown job 'sweep'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["jobs", "run", "digest", "--as-of", "soon"])
    assert "neither a date" in capsys.readouterr().err


def test_demo_day_prints_slack_messages_and_captures_email(grampian_cli, capsys):
    assert main(["demo-day", "--as-of", "2026-11-26", "--show", "1"]) == 0
    out = capsys.readouterr().out
    assert "--- Slack DM to Ailsa Chair (U1CHAIR1) ---" in out
    assert "--- Email to " in out and "Written contribution" in out
    assert "email(s) to 2 addresses" in out  # one per agency (issue 23.7)


@pytest.mark.parametrize("job", ["digest", "escalations", "weekly-summary", "quarterly-review"])
def test_every_planning_job_on_a_schema_with_no_people_plans_nothing(job, sqlite_url, monkeypatch,
                                                                       capsys):
    # A first start before the first import: the scheduler runs these jobs on an empty
    # database, and an empty people frame once selected no rows but no columns either.
    monkeypatch.setenv("MAPPA_DATABASE_URL", sqlite_url)
    assert main(["db", "upgrade"]) == 0
    assert main(["jobs", "run", job, "--as-of", "2026-12-01", "--dry-run"]) == 0
    assert "would plan 0 notification(s)" in capsys.readouterr().out


def test_deliver_console_previews_every_due_message_and_marks_nothing(grampian_cli, capsys):
    from mappa_core.storage import db, outbox

    assert main(["jobs", "run", "digest", "--as-of", "2026-12-01"]) == 0
    engine = db.make_engine(grampian_cli)
    before = outbox.counts(engine)
    capsys.readouterr()
    assert main(["jobs", "run", "deliver", "--console", "--as-of", "2026-12-01"]) == 0
    out = capsys.readouterr().out
    assert "--- slack to g-chair-1 (digest" in out and "Good morning." in out
    assert "message(s) would be sent; --console sends and marks nothing" in out
    assert outbox.counts(engine) == before == {"pending": before["pending"]}


@pytest.mark.http
def test_deliver_exits_1_when_a_message_is_given_up(grampian_cli, monkeypatch, capsys):
    from sqlalchemy import text

    from mappa_core.storage import db
    from tests.slack_harness import SlackStandIn, SmtpSink

    stand_in, smtp = SlackStandIn(), SmtpSink()
    try:
        _use_slack(monkeypatch, stand_in)
        _use_smtp(monkeypatch, smtp)
        assert main(["jobs", "run", "digest", "--as-of", "2026-12-01"]) == 0
        engine = db.make_engine(grampian_cli)
        with engine.begin() as conn:  # an address the importer would refuse, stored anyway
            conn.execute(text("UPDATE outbox SET address = 'x@y.example\r\nBcc: z@evil.example' "
                              "WHERE channel = 'email'"))
        capsys.readouterr()
        assert main(["jobs", "run", "deliver", "--as-of", "2026-12-01T10:00"]) == 1
        captured = capsys.readouterr()
        assert "given up" in captured.out and "mappa outbox list --state failed" in captured.err
    finally:
        stand_in.close()
        smtp.close()


def test_outbox_retry_sends_to_the_persons_address_as_it_stands_now(grampian_cli, capsys):
    import datetime as dt

    from sqlalchemy import text

    from mappa_core.storage import db, outbox

    assert main(["jobs", "run", "digest", "--as-of", "2026-12-01"]) == 0
    engine = db.make_engine(grampian_cli)
    with engine.begin() as conn:
        row_id = conn.execute(text("SELECT id FROM outbox WHERE recipient_id = 'g-chair-1' "
                                   "AND channel = 'slack'")).scalar()
        conn.execute(text("UPDATE outbox SET status = 'dead', address = 'C0GENERAL' "
                          "WHERE recipient_id = 'g-chair-1'"))
        conn.execute(text("UPDATE person SET slack_user_id = 'U9FIXED1' "
                          "WHERE person_id = 'g-chair-1'"))
    assert outbox.retry(engine, row_id, dt.datetime(2026, 12, 1, 10, tzinfo=LONDON)) >= 1
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT status, address FROM outbox "
                                 "WHERE recipient_id = 'g-chair-1'")).all()
    assert {tuple(r) for r in rows} == {("pending", "U9FIXED1")}


def test_demo_day_runs_each_job_when_the_schedule_would(grampian_cli, capsys):
    # Thursday: no weekly summary (it is a Monday job); Monday: the weekly summary at 09:00,
    # after the 08:30 digest; each in the order it would run.
    assert main(["demo-day", "--as-of", "2026-12-03"]) == 0
    thursday = [line.split()[1] for line in capsys.readouterr().out.splitlines()
                if line[:2].isdigit() and line[2] == ":"]
    assert thursday == ["digest", "escalations", "quarterly-review", "deliver"]
    assert main(["demo-day", "--as-of", "2026-12-07"]) == 0
    monday = [line[:5] + " " + line.split()[1] for line in capsys.readouterr().out.splitlines()
              if line[:2].isdigit() and line[2] == ":"]
    assert monday == ["08:30 digest", "09:00 weekly-summary", "09:05 escalations",
                      "09:15 quarterly-review", "09:30 deliver"]


def test_a_dry_run_shows_each_message_as_it_would_read_and_writes_nothing(grampian_cli, capsys):
    import json

    from mappa_core.storage import db, outbox

    engine = db.make_engine(grampian_cli)
    assert main(["jobs", "run", "digest", "--as-of", "2026-12-01", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "--- slack to g-chair-1 (digest, 3 item(s))" in out
    assert "Good morning. 1 overdue and 2 coming up." in out
    assert "--- email to email:ops@em.example (chaser, 1 item(s))" in out
    # Each as its channel shows it (issue 13.8): a Slack notice with its title, its items'
    # lines and buttons and the Slack footer; an email with its subject, then its text.
    messages = {m.split("\n", 1)[0]: m for m in out.split("\n--- ")[1:]}
    slack = messages["slack to g-chair-1 (digest, 3 item(s))"].splitlines()
    assert slack[1:3] == ["Your MAPPA items for 2026-12-01", "Good morning. 1 overdue and 2 coming up."]
    assert slack[3].startswith("Written contribution from Electronic Monitoring Scotland for `GRA-0101`")
    assert slack[4] == ("    [Contribution received] [Snooze 1 day] [Snooze 3 days] [Record reason] "
                        "[Snooze until]")
    assert slack[-1] == ("  Sent by mappa-bot. Only you can see the case references in this message: "
                         "do not copy them into a channel.")
    assert "do not forward this message" not in "\n".join(slack)
    coordinator = messages["slack to g-coord (audit_reminder, 2 item(s))"].splitlines()
    assert coordinator[2] == "Good morning. 2 meeting audits to do."
    email = messages["email to email:ops@em.example (chaser, 1 item(s))"].splitlines()
    assert email[1:3] == ["Subject: MAPPA: written contribution needed from Electronic "
                          "Monitoring Scotland", ""]
    assert email[-1].endswith("do not forward this message outside your organisation.")
    assert main(["jobs", "run", "digest", "--as-of", "2026-12-01", "--dry-run", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 10 and {r["rule"] for r in rows} == {"digest", "chaser", "audit_reminder"}
    assert all("payload" in r and "dedupe_key" in r for r in rows)
    assert outbox.counts(engine) == {}
    # Without --dry-run the rows are written: stderr says so, stdout stays the JSON alone.
    assert main(["jobs", "run", "digest", "--as-of", "2026-12-01", "--json"]) == 0
    out, err = capsys.readouterr()
    assert len(json.loads(out)) == 10
    assert err == ("digest at 2026-12-01 09:00 GMT: wrote 10 new row(s) to the outbox "
                   "(10 planned; --dry-run writes nothing)\n")
    assert sum(outbox.counts(engine).values()) == 10


def test_no_digest_for_an_area_on_its_local_holiday(sqlite_engine):
    from sqlmodel import SQLModel

    from bot.jobs.ticks import plan_job
    from mappa_core.storage.importer import import_directory
    from tests.conftest import GRAMPIAN

    assert import_directory(sqlite_engine, GRAMPIAN).ok
    now = dt.datetime(2026, 11, 26, 8, 30, tzinfo=LONDON)
    before = plan_job(sqlite_engine, "digest", now, NudgeRules())
    assert (before["area"] == "Grampian").sum() > 0
    with sqlite_engine.begin() as conn:
        conn.execute(SQLModel.metadata.tables["local_holiday"].insert().values(
            area="Grampian", date=dt.date(2026, 11, 26), name="local"))
    after = plan_job(sqlite_engine, "digest", now, NudgeRules())
    assert (after["area"] == "Grampian").sum() == 0
    # What is not Grampian's (a national co-ordinator's rows) still goes out.
    assert after.equals(before[before["area"] != "Grampian"].reset_index(drop=True))


def _outbox_rows(engine, channel):
    from sqlalchemy import text

    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(
            "SELECT status, attempts, last_error FROM outbox WHERE channel = :c"), {"c": channel})]


@pytest.mark.http
def test_email_waits_uncounted_while_smtp_host_is_not_set_then_goes_out(grampian_cli,
                                                                          monkeypatch, capsys):
    """No SMTP_HOST: no email is attempted (no attempt counted, nothing given up, no
    delivery-problem notice), the run says once how many wait and why, and exits 0; the
    first run once SMTP_HOST is set sends them."""
    from mappa_core.storage import db, outbox
    from tests.helpers import run_cli
    from tests.slack_harness import SlackStandIn, SmtpSink

    stand_in, smtp = SlackStandIn(), SmtpSink()
    try:
        _use_slack(monkeypatch, stand_in)
        monkeypatch.delenv("SMTP_HOST", raising=False)
        assert main(["jobs", "run", "digest", "--as-of", "2026-12-01"]) == 0
        engine = db.make_engine(grampian_cli)
        emails = _outbox_rows(engine, "email")
        assert emails, "the Grampian example plans some email"
        for hour in (10, 11, 13):  # long past any backoff: still not attempted
            code, out, err = run_cli(capsys, "jobs", "run", "deliver", "--as-of",
                                     f"2026-12-01T{hour}:00")
            assert code == 0, err
            assert "given up" not in err and "{" not in out
            assert _outbox_rows(engine, "email") == [("pending", 0, None)] * len(emails)
            waiting = [line for line in out.splitlines() if "SMTP_HOST is not set" in line]
            assert len(waiting) == 1 and f"({len(emails)} item(s)) wait" in waiting[0], out
        assert outbox.unreported_failures(engine).empty
        assert smtp.messages == []

        _use_smtp(monkeypatch, smtp)
        code, out, err = run_cli(capsys, "jobs", "run", "deliver", "--as-of", "2026-12-01T14:00")
        assert code == 0, err
        assert "SMTP_HOST" not in out and " by email" in out
        assert {r[0] for r in _outbox_rows(engine, "email")} == {"sent"}
        assert len(smtp.messages) >= 1
    finally:
        stand_in.close()
        smtp.close()


@pytest.mark.http
def test_slack_waits_while_slack_bot_token_is_not_set_and_email_goes_out(grampian_cli,
                                                                          monkeypatch, capsys):
    from mappa_core.storage import db
    from tests.helpers import run_cli
    from tests.slack_harness import SmtpSink

    smtp = SmtpSink()
    try:
        monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
        _use_smtp(monkeypatch, smtp)
        assert main(["jobs", "run", "digest", "--as-of", "2026-12-01"]) == 0
        engine = db.make_engine(grampian_cli)
        slack = _outbox_rows(engine, "slack")
        code, out, err = run_cli(capsys, "jobs", "run", "deliver", "--as-of", "2026-12-01T10:00")
        assert code == 0, err
        assert _outbox_rows(engine, "slack") == [("pending", 0, None)] * len(slack)
        assert "Slack message(s)" in out and "SLACK_BOT_TOKEN is not set" in out
        assert {r[0] for r in _outbox_rows(engine, "email")} == {"sent"}
    finally:
        smtp.close()


@pytest.mark.http
def test_digests_that_waited_days_for_slack_are_replaced_by_the_latest(grampian_cli,
                                                                      monkeypatch, capsys):
    """Slack set up only after three days of digests: each reader gets the latest digest
    (it lists all that is still open), not three at once; the older two are kept as
    superseded, never sent."""
    from mappa_core.storage import db
    from tests.helpers import run_cli
    from tests.slack_harness import SlackStandIn

    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    monkeypatch.delenv("SMTP_HOST", raising=False)
    for day in ("2026-12-01", "2026-12-02", "2026-12-03"):
        assert main(["jobs", "run", "digest", "--as-of", day]) == 0
    engine = db.make_engine(grampian_cli)
    with engine.connect() as conn:
        groups = conn.execute(text(
            "SELECT recipient_id, group_key, status FROM outbox WHERE channel = 'slack' "
            "AND group_key LIKE 'digest|%' ORDER BY group_key")).all()
    readers = {r for r, _g, _s in groups}
    assert {s for *_x, s in groups if "|2026-12-03" in _x[1]} == {"pending"}
    assert {s for *_x, s in groups if "|2026-12-03" not in _x[1]} == {"superseded"}
    stand_in = SlackStandIn()
    try:
        _use_slack(monkeypatch, stand_in)
        code, out, err = run_cli(capsys, "jobs", "run", "deliver", "--as-of", "2026-12-03T10:00")
        assert code == 0, err
        posts = stand_in.posts("/api/chat.postMessage")
        assert sorted(p["body"]["channel"] for p in posts) == sorted(
            {p["body"]["channel"] for p in posts})  # one message per reader
        assert len(posts) == len(readers)
        assert all("2026-12-03" in json.dumps(p["body"]) for p in posts)
        listed = run_cli(capsys, "outbox", "list", "--state", "superseded")[1]
        assert "replaced by a later digest" in listed
    finally:
        stand_in.close()


@pytest.mark.http
def test_deliver_says_in_words_how_messages_went(grampian_cli, monkeypatch, capsys):
    from tests.helpers import run_cli
    from tests.slack_harness import SlackStandIn, SmtpSink

    stand_in, smtp = SlackStandIn(), SmtpSink()
    try:
        _use_slack(monkeypatch, stand_in)
        _use_smtp(monkeypatch, smtp)
        assert main(["jobs", "run", "digest", "--as-of", "2026-12-01"]) == 0
        code, out, err = run_cli(capsys, "jobs", "run", "deliver", "--as-of", "2026-12-01T10:00")
        assert code == 0, err
        line = next(x for x in out.splitlines() if x.startswith("delivered"))
        assert "{" not in line and "'" not in line
        assert f"{len(smtp.messages)} by email" in line and " by Slack, " in line, line
    finally:
        stand_in.close()
        smtp.close()


def test_deliver_console_at_night_says_when_held_items_go_out(grampian_cli, capsys):
    from tests.helpers import run_cli

    assert main(["jobs", "run", "digest", "--as-of", "2026-12-01T03:10"]) == 0
    capsys.readouterr()
    code, out, err = run_cli(capsys, "jobs", "run", "deliver", "--console", "--as-of",
                             "2026-12-01T03:10")
    assert code == 0, err
    assert "0 message(s) would be sent" in out
    assert "item(s) wait for working hours: the first go out at Tue 01 Dec 2026 08:30 GMT" in out, out

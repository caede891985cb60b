"""The addresses a sender looks up as it sends: each area's co-ordinators (an email's
Reply-To), and a person's address as it stands now (a retry after a correction)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

from ...rules.addresses import email_problem
from ...rules.vocabulary import Channel
from .. import models  # noqa: F401  (registers the person table)


def coordinator_emails(engine: Engine) -> dict[str | None, str]:
    """Each area's co-ordinators' addresses, joined by ", " (None: the national ones)."""
    person = SQLModel.metadata.tables["person"]
    with engine.connect() as conn:
        people = conn.execute(select(person.c.area, person.c.email, person.c.roles)).all()
    found: dict[str | None, list[str]] = {}
    for area, email, roles in people:
        if "coordinator" in (roles or "").split(";") and email and email_problem(email) is None:
            found.setdefault(area or None, []).append(email)
    return {area: ", ".join(sorted(set(emails))) for area, emails in found.items()}


def current_address(conn, person_id: str, channel: str) -> str | None:
    """The person's address on `channel` now (inside the caller's transaction); None when
    no such person or no address."""
    person = SQLModel.metadata.tables["person"]
    current = conn.execute(select(person.c.slack_user_id, person.c.email)
                           .where(person.c.person_id == person_id)).first()
    if current is None:
        return None
    return (current.slack_user_id if channel == Channel.SLACK else current.email) or None

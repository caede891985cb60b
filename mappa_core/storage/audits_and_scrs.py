"""Case and meeting audits, and Significant Case Review (SCR) actions: storage and rules.

The audit sample is reproducible: the same year, levels, size and seed draw the same cases.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
from sqlalchemy import and_, select, update
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

from . import models  # noqa: F401
from ..rules.periods import Period

RMP_QUALITY = ("good", "adequate", "poor")
FINDING_FLAGS = ("referral_reviewed", "minutes_reviewed", "all_agencies_present", "actions_on_time")
FINDING_TEXTS = ("effective_practice", "improvements", "feedback_to_sog")


class OversightError(ValueError):
    pass


def _t(name: str):
    return SQLModel.metadata.tables[name]


def audit_population(engine: Engine, year: Period, level: int, area: str | None = None) -> list[str]:
    """Cases managed at `level` during the year: for Level 2/3, those with a meeting at that
    level in the year; for Level 1, cases at Level 1 open at some point in the year."""
    ind, meet = _t("individual"), _t("meeting")
    with engine.connect() as conn:
        if level in (2, 3):
            stmt = (select(meet.c.ref).distinct().join(ind, ind.c.ref == meet.c.ref)
                    .where(and_(meet.c.level == level, meet.c.date >= year.start,
                                meet.c.date <= year.end)))
        else:
            stmt = select(ind.c.ref).where(and_(
                ind.c.level == 1, ind.c.mappa_start <= year.end,
                (ind.c.mappa_end.is_(None)) | (ind.c.mappa_end >= year.start)))
        if area is not None:
            stmt = stmt.where(ind.c.area == area)
        return sorted(conn.execute(stmt).scalars())


def sample_cases(engine: Engine, year: Period, levels: list[int], n: int, seed: int,
                 area: str | None = None) -> pd.DataFrame:
    """A random sample of n cases per level (all of them where fewer), stratified by level."""
    rows = []
    for level in sorted(set(levels)):
        population = audit_population(engine, year, level, area)
        rng = np.random.default_rng([seed, level])
        take = min(n, len(population))
        chosen = sorted(rng.choice(population, size=take, replace=False).tolist()) if take else []
        rows += [{"ref": ref, "level": level, "population": len(population)} for ref in chosen]
    return pd.DataFrame(rows, columns=["ref", "level", "population"])


def save_sample(engine: Engine, year_label: str, sample: pd.DataFrame, seed: int,
                now: dt.datetime) -> int:
    table = _t("case_audit")
    with engine.begin() as conn:
        existing = set(conn.execute(select(table.c.ref).where(table.c.year == year_label)).scalars())
        new = [{"year": year_label, "ref": r.ref, "level": int(r.level), "seed": seed,
                "sampled_at": now} for r in sample.itertuples(index=False) if r.ref not in existing]
        if new:
            conn.execute(table.insert(), new)
    return len(new)


def record_case_audit(engine: Engine, year_label: str, ref: str, findings: dict,
                      completed_on: dt.date, auditor: str | None = None) -> None:
    table = _t("case_audit")
    if findings.get("rmp_quality") not in (None, *RMP_QUALITY):
        raise OversightError(f"rmp quality is one of {', '.join(RMP_QUALITY)}")
    unknown = set(findings) - {*FINDING_FLAGS, *FINDING_TEXTS, "rmp_quality"}
    if unknown:
        raise OversightError(f"unknown findings: {', '.join(sorted(unknown))}")
    with engine.begin() as conn:
        row = conn.execute(select(table.c.id).where(and_(table.c.year == year_label,
                                                         table.c.ref == ref))).first()
        if row is None:
            raise OversightError(f"case {ref} is not in the {year_label} audit sample "
                                 "(run `mappa audit sample ... --save` first)")
        conn.execute(update(table).where(table.c.id == row[0]).values(
            **findings, auditor=auditor, completed_on=completed_on))


def record_meeting_audit(engine: Engine, quarter: str, chair_id: str, findings: str,
                         completed_on: dt.date, meeting_id: str | None = None,
                         auditor: str | None = None) -> None:
    with engine.begin() as conn:
        conn.execute(_t("meeting_audit").insert().values(
            quarter=quarter, chair_id=chair_id, meeting_id=meeting_id, auditor=auditor,
            findings=findings, completed_on=completed_on))


def audits_frames(engine: Engine) -> tuple[pd.DataFrame, pd.DataFrame]:
    with engine.connect() as conn:
        cases = pd.DataFrame(conn.execute(select(_t("case_audit"))).mappings().all(),
                             columns=[c.name for c in _t("case_audit").c])
        meetings = pd.DataFrame(conn.execute(select(_t("meeting_audit"))).mappings().all(),
                                columns=[c.name for c in _t("meeting_audit").c])
    return cases, meetings


# --------------------------------------------------------------------------- SCR


def add_scr(engine: Engine, title: str, area: str | None, published: dt.date | None) -> int:
    with engine.begin() as conn:
        return conn.execute(_t("scr").insert().values(title=title, area=area, published=published)
                            ).inserted_primary_key[0]


def add_recommendation(engine: Engine, scr_id: int, text: str) -> int:
    with engine.begin() as conn:
        if conn.execute(select(_t("scr").c.id).where(_t("scr").c.id == scr_id)).first() is None:
            raise OversightError(f"no SCR {scr_id}")
        return conn.execute(_t("scr_recommendation").insert().values(scr_id=scr_id, text=text)
                            ).inserted_primary_key[0]


def add_action(engine: Engine, recommendation_id: int, owner_agency: str, due: dt.date,
               description: str) -> int:
    rec, agency = _t("scr_recommendation"), _t("agency")
    with engine.begin() as conn:
        if conn.execute(select(rec.c.id).where(rec.c.id == recommendation_id)).first() is None:
            raise OversightError(f"no recommendation {recommendation_id}")
        if conn.execute(select(agency.c.agency).where(agency.c.agency == owner_agency)).first() is None:
            raise OversightError(f"unknown agency {owner_agency!r}")
        return conn.execute(_t("scr_action").insert().values(
            recommendation_id=recommendation_id, owner_agency=owner_agency, due=due,
            description=description, status="open")).inserted_primary_key[0]


def add_update(engine: Engine, action_id: int, text: str, at: dt.datetime,
               person_id: str | None = None, done_on: dt.date | None = None) -> None:
    action = _t("scr_action")
    with engine.begin() as conn:
        if conn.execute(select(action.c.id).where(action.c.id == action_id)).first() is None:
            raise OversightError(f"no SCR action {action_id}")
        conn.execute(_t("scr_update").insert().values(action_id=action_id, at=at,
                                                      person_id=person_id, text=text))
        if done_on is not None:
            conn.execute(update(action).where(action.c.id == action_id)
                         .values(status="done", done_on=done_on))


def scr_actions(engine: Engine, today: dt.date, area: str | None = None) -> pd.DataFrame:
    """Every SCR action with its SCR, recommendation, area, and whether it is overdue."""
    scr, rec, action = _t("scr"), _t("scr_recommendation"), _t("scr_action")
    stmt = (select(action.c.id, action.c.owner_agency, action.c.description, action.c.due,
                   action.c.status, action.c.done_on, rec.c.id.label("recommendation_id"),
                   scr.c.id.label("scr_id"), scr.c.title, scr.c.area)
            .join(rec, rec.c.id == action.c.recommendation_id)
            .join(scr, scr.c.id == rec.c.scr_id).order_by(action.c.due, action.c.id))
    if area is not None:
        stmt = stmt.where(scr.c.area == area)
    with engine.connect() as conn:
        df = pd.DataFrame(conn.execute(stmt).mappings().all(),
                          columns=["id", "owner_agency", "description", "due", "status", "done_on",
                                   "recommendation_id", "scr_id", "title", "area"])
    df["overdue"] = (df["status"] == "open") & (pd.to_datetime(df["due"]) < pd.Timestamp(today))
    return df

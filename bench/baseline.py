"""The benchmark's baseline: `l2-reviews` for a quarter by one hand-written SQL query.

A recursive CTE walks each Level 2 chain the way SPEC section 3 says: archive first, then
the custody pause (a due date in custody falls away; the next is release + 84 days), then
the next meeting (on time if it is the chain's first due date, or the first after release
and the meeting came after release), else late while the due date is on or before as_of.
It exists to set the engine's cost against; its figures should equal the engine's.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import text

from mappa_core.periods import quarter_of

IN_CUSTODY = "(cf IS NOT NULL AND cf <= due AND (rel IS NULL OR due < rel))"
SQL = """
WITH RECURSIVE seg AS (
  SELECT m.ref, m.date AS held,
         COALESCE(m.outcome_level, CAST(m.level AS VARCHAR)) AS outcome,
         LEAD(m.date) OVER (PARTITION BY m.ref ORDER BY m.date, m.meeting_id) AS next_held
  FROM meeting m WHERE m.date <= :as_of
),
l2 AS (
  SELECT s.ref, s.held, s.next_held,
         CASE WHEN i.mappa_end <= :as_of THEN i.mappa_end END AS ended,
         i.custody_from AS cf, i.release_date AS rel
  FROM seg s JOIN individual i ON i.ref = s.ref WHERE s.outcome = '2'
),
dues(ref, due, fresh, released, next_held, ended, cf, rel) AS (
  SELECT ref, {first}, 1, 0, next_held, ended, cf, rel FROM l2
  UNION ALL
  SELECT ref,
         CASE WHEN {in_custody} THEN {after_release} ELSE {next} END,
         CASE WHEN {in_custody} THEN 1 ELSE 0 END,
         CASE WHEN {in_custody} THEN 1 ELSE released END,
         next_held, ended, cf, rel
  FROM dues
  WHERE (ended IS NULL OR due < ended)
    AND (({in_custody} AND rel IS NOT NULL)
         OR (NOT {in_custody} AND (next_held IS NULL OR due < next_held) AND due <= :as_of))
)
SELECT
  COALESCE(SUM(CASE WHEN fresh = 1 AND next_held IS NOT NULL AND next_held <= due
                     AND (released = 0 OR next_held >= rel) THEN 1 ELSE 0 END), 0),
  COALESCE(SUM(CASE WHEN (next_held IS NULL OR due < next_held) AND due <= :as_of
                    THEN 1 ELSE 0 END), 0)
FROM dues
WHERE due >= :start AND due <= :end AND (ended IS NULL OR due < ended) AND NOT {in_custody}
"""


def l2_reviews_sql(engine, as_of: dt.date) -> tuple[int, int]:
    """(numerator, denominator) of l2-reviews for the quarter containing as_of."""
    if engine.dialect.name == "sqlite":
        parts = {"first": "date(held, '+84 days')", "next": "date(due, '+84 days')",
                 "after_release": "date(rel, '+84 days')"}
    else:
        parts = {"first": "held + 84", "next": "due + 84", "after_release": "rel + 84"}
    sql = SQL.format(in_custody=IN_CUSTODY, **parts)
    per = quarter_of(as_of)
    with engine.connect() as conn:
        met, late = conn.execute(text(sql), {"as_of": as_of, "start": per.start,
                                             "end": per.end}).one()
    return int(met), int(met) + int(late)

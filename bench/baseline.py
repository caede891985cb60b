"""The benchmark's baseline: `l2-reviews` for a quarter by one hand-written SQL query.

A recursive CTE walks each Level 2 chain the way SPEC section 3 says (as changed on
2026-11-26): every Level 2/3 meeting restarts a chain, and so does each entry point
(`level_from` of a case now at Level 2/3, unless a meeting is held that day); archive
first, then the custody pause (a due date inside the current custody period or any past
one of `custody_period` falls away; the next is that period's release + 84 days; no
release date stops the chain), then the next meeting or entry point (a meeting is on time
if it is the chain's first due date, or the first after release and it came after
release; an entry point meets nothing), else late while the due date is before as_of (on
its own day it is still pending). Custody periods and level_from dates after as_of are
not yet known. It exists to set the engine's cost against; its figures should equal the
engine's.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import text

from mappa_core.rules.periods import quarter_of

# The current period (cf, rel: as known on as_of) or a past one holds the due date.
IN_CURRENT = "(cf IS NOT NULL AND cf <= due AND (rel IS NULL OR due < rel))"
PAST_REL = ("(SELECT p.release_date FROM custody_period p WHERE p.ref = dues.ref "
            "AND p.custody_from <= :as_of AND p.custody_from <= due AND due < p.release_date)")
IN_CUSTODY = f"({IN_CURRENT} OR {PAST_REL} IS NOT NULL)"
REL_OF = f"(CASE WHEN {IN_CURRENT} THEN rel ELSE {PAST_REL} END)"
SQL = """
WITH RECURSIVE starts AS (
  SELECT m.ref, m.date AS held, m.meeting_id AS mid,
         COALESCE(m.outcome_level, CAST(m.level AS VARCHAR)) AS outcome, 0 AS entry
  FROM meeting m WHERE m.date <= :as_of
  UNION ALL
  SELECT i.ref, i.level_from, '', CAST(i.level AS VARCHAR), 1
  FROM individual i
  WHERE i.level IN (2, 3) AND i.level_from IS NOT NULL AND i.level_from <= :as_of
    AND NOT EXISTS (SELECT 1 FROM meeting m WHERE m.ref = i.ref AND m.date = i.level_from)
),
seg AS (
  SELECT ref, held, outcome,
         LEAD(held) OVER (PARTITION BY ref ORDER BY held, mid) AS next_held,
         COALESCE(LEAD(entry) OVER (PARTITION BY ref ORDER BY held, mid), 0) AS next_entry
  FROM starts
),
l2 AS (
  SELECT s.ref, s.held, s.next_held, s.next_entry,
         CASE WHEN i.mappa_end <= :as_of THEN i.mappa_end END AS ended,
         CASE WHEN i.custody_from <= :as_of THEN i.custody_from END AS cf,
         CASE WHEN i.custody_from <= :as_of THEN i.release_date END AS rel
  FROM seg s JOIN individual i ON i.ref = s.ref WHERE s.outcome = '2'
),
dues(ref, due, fresh, released, next_held, next_entry, ended, cf, rel) AS (
  SELECT ref, {first}, 1, CAST(NULL AS DATE), next_held, next_entry, ended, cf, rel FROM l2
  UNION ALL
  SELECT ref,
         CASE WHEN {in_custody} THEN {after_release} ELSE {next} END,
         CASE WHEN {in_custody} THEN 1 ELSE 0 END,
         CASE WHEN {in_custody} THEN {rel_of} ELSE released END,
         next_held, next_entry, ended, cf, rel
  FROM dues
  WHERE (ended IS NULL OR due < ended)
    AND (({in_custody} AND {rel_of} IS NOT NULL)
         OR (NOT {in_custody} AND (next_held IS NULL OR due < next_held) AND due < :as_of))
)
SELECT
  COALESCE(SUM(CASE WHEN fresh = 1 AND next_held IS NOT NULL AND next_held <= due
                     AND next_entry = 0 AND (released IS NULL OR next_held >= released)
                    THEN 1 ELSE 0 END), 0),
  COALESCE(SUM(CASE WHEN (next_held IS NULL OR due < next_held) AND due < :as_of
                    THEN 1 ELSE 0 END), 0)
FROM dues
WHERE due >= :start AND due <= :end AND (ended IS NULL OR due < ended) AND NOT {in_custody}
"""


def l2_reviews_sql(engine, as_of: dt.date) -> tuple[int, int]:
    """(numerator, denominator) of l2-reviews for the quarter containing as_of."""
    if engine.dialect.name == "sqlite":
        parts = {"first": "date(held, '+84 days')", "next": "date(due, '+84 days')",
                 "after_release": f"date({REL_OF}, '+84 days')"}
    else:
        parts = {"first": "held + 84", "next": "due + 84", "after_release": f"{REL_OF} + 84"}
    sql = SQL.format(in_custody=IN_CUSTODY, rel_of=REL_OF, **parts)
    per = quarter_of(as_of)
    with engine.connect() as conn:
        met, late = conn.execute(text(sql), {"as_of": as_of, "start": per.start,
                                             "end": per.end}).one()
    return int(met), int(met) + int(late)

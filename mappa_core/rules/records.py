"""The records the rules read, and how far back open paperwork is looked for.

`Records` is plain pandas frames, one per table: `mappa_core.storage.queries` fills it from
the database, and a rule test can build one from a few in-memory rows. Nothing here knows
of a database.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd


def _no_rows() -> pd.DataFrame:
    # pandas on first use, not at import: the constants below are read by `mappa due --help`,
    # which should not pay for pandas.
    import pandas as pd

    return pd.DataFrame()


@dataclass
class Records:
    """Everything the rules need, one frame per table. Dates are datetime64 columns."""

    individuals: pd.DataFrame
    meetings: pd.DataFrame
    invitations: pd.DataFrame
    agencies: pd.DataFrame
    people: pd.DataFrame = field(default_factory=_no_rows)
    events: pd.DataFrame = field(default_factory=_no_rows)
    local_holidays: dict[str, list[dt.date]] = field(default_factory=dict)
    area: str | None = None
    # Past custody periods (custody.csv and those the importer kept): ref, custody_from,
    # release_date, release_level.
    custody: pd.DataFrame = field(default_factory=_no_rows)
    # The reasons recorded through the bot on review items (item_note rows whose key is a
    # review's): item_key, reason, agency (None: not named), at. A late review's exception
    # carries them (indicators).
    review_notes: pd.DataFrame = field(default_factory=_no_rows)


# Meeting paperwork (minutes, contributions, disclosure) is chased for this many days after
# its deadline; the open-item lists and their counts look no further back.
LOOKBACK_DAYS = 90

# What "falls due soon" means (`mappa due`, `/mappa due` and the live view's "due in the
# next 14 days", SPEC section 3): within this many calendar days of today.
DUE_SOON_DAYS = 14


def window_start(as_of: dt.date, period_start: dt.date | None = None,
                 lookback_days: int = LOOKBACK_DAYS) -> dt.date:
    """The `since` for load_records: enough for the period and for today's open items."""
    start = as_of - dt.timedelta(days=lookback_days)
    return min(start, period_start) if period_start else start

"""The CSV file formats of SPEC section 5: columns, value sets and the domain vocabularies."""

from __future__ import annotations

from dataclasses import dataclass, field

REASON_CODES = (
    "agency_unavailable",
    "information_late",
    "referral_late",
    "no_rosh_assessment",
    "chair_unavailable",
    "individual_unavailable",
    "rescheduled",
    "data_error",
    "other",
)
NOT_RECORDED = "Not recorded"


def reason_label(code: str | None) -> str:
    """`information_late` as a person reads it: `Information late`; no code is `Not recorded`."""
    if not code:
        return NOT_RECORDED
    return code.replace("_", " ").capitalize().replace("rosh", "RoSH")


ROLES = ("chair", "sog_chair", "coordinator", "staff", "agency_contact")
AGENCY_ROLES = (
    "police", "social_work", "sps", "health", "housing", "scra",
    "electronic_monitoring", "social_security", "other",
)
ATTENDED = ("in_person", "phone", "video")
EVENTS = (
    "wanted", "missing", "located", "notification_breach", "further_sexual_offence",
    "further_violent_offence", "order_applied", "order_granted", "order_refused",
    "order_on_conviction", "order_breach", "licence_recall",
)
ORDER_TYPES = ("SHPO", "SRO", "FTO", "SOPO", "RSHO", "other")


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # text | int | date | bool | enum | roles
    required: bool = False
    values: tuple[str, ...] = ()
    max_length: int = 64
    blank: object = None  # what a blank cell stores (None: nothing recorded)


@dataclass(frozen=True)
class FileSpec:
    filename: str
    table: str
    key: tuple[str, ...]
    columns: tuple[Column, ...]
    references: dict[str, str] = field(default_factory=dict)  # column -> table it must name

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)


def _enum(name: str, values, required: bool = False) -> Column:
    return Column(name, "enum", required, tuple(values))


AGENCIES = FileSpec(
    "agencies.csv", "agency", ("agency",),
    (
        Column("agency", "text", True),
        Column("name", "text", True, max_length=200),
        _enum("kind", ("ra", "dtc"), True),
        _enum("role", AGENCY_ROLES, True),
        Column("email", "text", max_length=254),
    ),
)
PEOPLE = FileSpec(
    "people.csv", "person", ("person_id",),
    (
        Column("person_id", "text", True),
        Column("name", "text", True, max_length=200),
        Column("email", "text", max_length=254),
        Column("slack_user_id", "text", max_length=32),
        Column("roles", "roles", True, ROLES, max_length=200),
        Column("area", "text"),
        Column("agency", "text"),
    ),
    references={"agency": "agency"},
)
INDIVIDUALS = FileSpec(
    "individuals.csv", "individual", ("ref",),
    (
        Column("ref", "text", True),
        Column("area", "text", True),
        _enum("category", ("1", "2", "3"), True),
        _enum("level", ("1", "2", "3"), True),
        _enum("status", ("community", "custody", "hospital"), True),
        Column("mappa_start", "date", True),
        Column("mappa_end", "date"),
        Column("level_from", "date"),
        Column("custody_from", "date"),
        Column("release_date", "date"),
        _enum("release_level", ("1", "2", "3")),
        Column("chair_id", "text"),
        Column("birth_year", "int"),
        Column("gender", "text", max_length=32),
        Column("ethnicity", "text"),
        _enum("rosh", ("low", "medium", "high", "very_high")),
    ),
)
MEETINGS = FileSpec(
    "meetings.csv", "meeting", ("meeting_id",),
    (
        Column("meeting_id", "text", True),
        Column("ref", "text", True),
        Column("date", "date", True),
        _enum("level", ("2", "3"), True),
        _enum("kind", ("initial", "review"), True),
        _enum("setting", ("community", "custody"), True),
        Column("chair_id", "text", True),
        _enum("outcome_level", ("1", "2", "3", "exit")),
        Column("minutes_issued", "date"),
        Column("rmp_ratified", "date"),
        Column("disclosure_considered", "bool"),
        _enum("reason", REASON_CODES),
    ),
    references={"ref": "individual"},
)
INVITATIONS = FileSpec(
    "invitations.csv", "invitation", ("meeting_id", "agency"),
    (
        Column("meeting_id", "text", True),
        Column("agency", "text", True),
        _enum("attendance", ATTENDED + ("absent",), True),
        Column("seniority_ok", "bool"),
        Column("written_contribution", "bool"),
        _enum("reason", REASON_CODES),
    ),
    references={"meeting_id": "meeting", "agency": "agency"},
)
EVENTS_FILE = FileSpec(
    "events.csv", "event", ("ref", "date", "event"),
    (
        Column("ref", "text", True),
        Column("date", "date", True),
        _enum("event", EVENTS, True),
        _enum("order_type", ORDER_TYPES),
    ),
    references={"ref": "individual"},
)
LOCAL_HOLIDAYS = FileSpec(
    "local_holidays.csv", "local_holiday", ("area", "date"),
    (
        Column("area", "text", True),
        Column("date", "date", True),
        Column("name", "text", max_length=200, blank=""),
    ),
)

AREAS = FileSpec(
    "areas.csv", "area", ("area",),
    (
        Column("area", "text", True),
        Column("population", "int"),
    ),
)

CUSTODY = FileSpec(
    "custody.csv", "custody_period", ("ref", "custody_from"),
    (
        Column("ref", "text", True),
        Column("custody_from", "date", True),
        Column("release_date", "date", True),
        _enum("release_level", ("1", "2", "3")),
    ),
    references={"ref": "individual"},
)

# Import order: a file's references point only at files earlier in the list.
FILES: tuple[FileSpec, ...] = (
    AGENCIES, PEOPLE, INDIVIDUALS, CUSTODY, MEETINGS, INVITATIONS, EVENTS_FILE,
    LOCAL_HOLIDAYS, AREAS,
)

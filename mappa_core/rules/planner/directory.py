"""The recipient directory: who is the chair, SOG chair, co-ordinator or agency contact of
what, and how each is reached (SPEC section 4: Slack where the person has a Slack user id,
email otherwise, and email always for agency contacts).

Every function takes the `people` frame (person_id, name, email, slack_user_id, roles as
"a;b", area, agency) and returns frames; a person with no area is national.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..vocabulary import Channel

SOG_CHAIR = "sog_chair"
COORDINATOR = "coordinator"
CHAIR = "chair"
AGENCY_CONTACT = "agency_contact"


def with_roles(people: pd.DataFrame) -> pd.DataFrame:
    """`people` with `role_list` (the roles as a list) and a blank area as None (national)."""
    p = people.copy()
    p["role_list"] = p["roles"].fillna("").str.split(";")
    p["area"] = p["area"].where(p["area"].notna() & (p["area"] != ""), None)
    return p


def has_role(p: pd.DataFrame, role: str) -> pd.Series:
    """A boolean mask over `with_roles` rows (also on no rows: an empty object Series would
    select columns)."""
    return p["role_list"].map(lambda r: role in r).astype(bool)


def contacts(people: pd.DataFrame) -> pd.DataFrame:
    """(person_id, area, channel, address): Slack where the person has a Slack user id,
    email otherwise, "none" when they have neither."""
    slack = people["slack_user_id"].fillna("").astype(str)
    email = people["email"].fillna("").astype(str)
    out = people[["person_id", "area"]].copy()
    out["channel"] = np.where(slack != "", Channel.SLACK.value,
                              np.where(email != "", Channel.EMAIL.value, Channel.NONE.value))
    out["address"] = np.where(slack != "", slack, email)
    return out


def sog_chairs_by_area(people: pd.DataFrame, areas) -> pd.DataFrame:
    """(area, person_id, channel, address) for each area's SOG chairs; national ones where
    an area has none of its own."""
    p = with_roles(people)
    sog = p[has_role(p, SOG_CHAIR)]
    chan = contacts(sog)
    rows = []
    national = chan[chan["area"].isna()]
    for area in sorted(set(areas)):
        own = chan[chan["area"] == area]
        use = own if not own.empty else national
        rows.append(use.assign(area=area))
    if not rows:
        return pd.DataFrame(columns=["area", "person_id", "channel", "address"])
    return pd.concat(rows, ignore_index=True)


def coordinators(people: pd.DataFrame) -> pd.DataFrame:
    """(person_id, area, channel, address) of every co-ordinator (area None: national)."""
    p = with_roles(people)
    return contacts(p[has_role(p, COORDINATOR)])


def chairs(people: pd.DataFrame) -> pd.DataFrame:
    """The people who chair meetings (the `with_roles` rows)."""
    p = with_roles(people)
    return p[has_role(p, CHAIR)]


def oversight_contacts(people: pd.DataFrame) -> pd.DataFrame:
    """`contacts` of every person, with their `role_list`, for notices to each area's SOG
    chairs and co-ordinators alike."""
    p = with_roles(people)
    chan = contacts(p)
    chan["role_list"] = p["role_list"].to_numpy()
    return chan


def email_recipient_id(address):
    """The recipient id of an address outside the people list (an agency's, or its
    contact's: they are always told by email), on one address or a column of them."""
    return "email:" + (address.str.lower() if isinstance(address, pd.Series) else address.lower())


@dataclass(frozen=True)
class EmailAddress:
    """An address outside the people list, as a recipient."""

    address: str
    channel: Channel = Channel.EMAIL

    @property
    def person_id(self) -> str:
        return email_recipient_id(self.address)


def agency_addresses(people: pd.DataFrame, agencies: pd.DataFrame) -> pd.DataFrame:
    """(agency, address): the one address each agency is e-mailed at, so that it gets one
    e-mail a day whatever addresses it has (its own and its contact person's both got the
    same chaser): its own email address (agencies.csv) if it has one, else its first
    agency contact's (people with the agency_contact role and that agency, by person id)."""
    ag = agencies[agencies["email"].notna() & (agencies["email"] != "")]
    p = with_roles(people)
    ac = p[has_role(p, AGENCY_CONTACT) & p["email"].notna()
           & (p["email"] != "") & p["agency"].notna()].sort_values("person_id", kind="stable")
    every = pd.concat([pd.DataFrame({"agency": ag["agency"], "address": ag["email"]}),
                       pd.DataFrame({"agency": ac["agency"], "address": ac["email"]})],
                      ignore_index=True)
    return every.drop_duplicates("agency").reset_index(drop=True)

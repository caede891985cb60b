"""What counts as an email address or a Slack user id: one rule for the importer (an error
with its line) and for delivery (a row already in the database is refused, not sent).

An email cell holds exactly one plain address (`name@domain`): no display name, no list,
no white space or control characters, so that nothing in a cell can add a recipient or a
header. A Slack user id is `U` or `W` and then upper-case letters and digits; a channel
(`C...`), group (`G...`) or direct-message (`D...`) id is not a person.
"""

from __future__ import annotations

import re

# Local part and domain: printable ASCII or any non-ASCII letter, but none of the
# characters that separate, quote or comment addresses in a header.
_ATOM = r"[^\s@,;:<>()\[\]\\\"\x00-\x1f\x7f]+"
_EMAIL = re.compile(rf"{_ATOM}@{_ATOM}")
_DOMAIN = re.compile(r"[^.]+(\.[^.]+)*")
_SLACK_USER = re.compile(r"[UW][A-Z0-9]{2,31}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u0085\u2028\u2029]")


def has_control(text: str) -> bool:
    return bool(_CONTROL.search(text))


def email_problem(text: str) -> str | None:
    """Why `text` is not exactly one email address, or None if it is one."""
    if has_control(text):
        return "contains a control character (a line break or tab); one address per cell"
    if any(sep in text for sep in (",", ";")) or len(text.split()) > 1:
        return "holds more than one address; one address per cell"
    if not _EMAIL.fullmatch(text) or not _DOMAIN.fullmatch(text.rpartition("@")[2]):
        return "is not an email address (name@domain)"
    return None


def slack_user_problem(text: str) -> str | None:
    """Why `text` is not a Slack user id, or None if it is one."""
    if _SLACK_USER.fullmatch(text):
        return None
    if text[:1] in ("C", "G", "D") and _SLACK_USER.fullmatch("U" + text[1:]):
        return "is a Slack channel or conversation id, not a user id (U... or W...)"
    return "is not a Slack user id (U or W, then upper-case letters and digits)"

"""War-room channel names: `esc-YYYYMMDD-<customer-slug>`, which are also escalation ids (pure).

Slack allows lowercase letters, digits, `-` and `_` in a channel name, at most 80 characters.
"""

from __future__ import annotations

import datetime
import re

from text_unidecode import unidecode

MAX_CHANNEL_NAME = 80  # Slack's limit for conversation names

_NOT_SLUG_RE = re.compile(r"[^a-z0-9]+")


def slugify(customer: str) -> str:
    """The customer as a channel-name slug: lowercase ASCII words joined by `-`, never empty.

    Accents and other scripts are transliterated (`Société` -> `societe`, `Газпром` ->
    `gazprom`); what cannot be (emoji, punctuation only) leaves `customer`.
    """
    # Transliterate before lowercasing: `İ`.lower() is two code points, unidecode(`İ`) is `I`.
    slug = _NOT_SLUG_RE.sub("-", unidecode(customer).lower()).strip("-")
    return slug or "customer"


def channel_name(day: datetime.date, customer: str, attempt: int = 1) -> str:
    """`esc-YYYYMMDD-<slug>`, with `-<attempt>` from the second attempt, at most 80 characters.

    The slug is cut, never the date or the suffix, so retries after `name_taken` stay unique.
    """
    if attempt < 1:
        raise ValueError(f"attempt counts from 1, got {attempt}")
    # Formatted by hand: strftime("%Y") does not pad years before 1000 on every platform.
    prefix = f"esc-{day.year:04d}{day.month:02d}{day.day:02d}-"
    suffix = "" if attempt == 1 else f"-{attempt}"
    room = MAX_CHANNEL_NAME - len(prefix) - len(suffix)
    if room < 1:
        raise ValueError(f"attempt {attempt} leaves no room for the customer in the name")
    return prefix + slugify(customer)[:room].rstrip("-") + suffix

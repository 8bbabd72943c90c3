"""Checks on customer-facing drafts: the words a support organisation wants a person to look at
twice before a text goes to a customer (commitments, money, legal exposure, absolutes)."""

from __future__ import annotations

import re
from collections.abc import Iterable

DEFAULT_FLAG_TERMS: tuple[str, ...] = (
    # Legal exposure and admissions: an apology for impact is fine, an admission is not ours
    # to make in a status update.
    "breach",
    "legal",
    "lawsuit",
    "liable",
    "liability",
    "negligence",
    "fault",
    # Commitments the company may not be able to keep.
    "guarantee",
    "guaranteed",
    "SLA",
    "permanently",
    # Money: compensation is decided after the review, not offered in passing.
    "refund",
    "credit",
    "compensation",
    # Absolutes that tend to come back to haunt.
    "never",
    "always",
    "100%",
    # Naming a cause before one is established is speculation.
    "root cause",
    "data loss",
)

_ROOT_CAUSE = "root cause"


def flag_terms(text: str, terms: Iterable[str], *, root_cause_known: bool) -> list[str]:
    """The terms found in `text`, as given in `terms`, in order of first appearance.

    Matching ignores case and takes whole words or phrases, plurals included ("credits"
    flags "credit"; "credited" does not); the words of a phrase may be split by spaces or a
    hyphen. "root cause" is flagged only while no root cause is recorded: once one is, saying
    it is the point of the update.
    """
    found: list[tuple[int, str]] = []
    seen: set[str] = set()
    for term in terms:
        key = " ".join(term.casefold().split())
        if not key or key in seen or (key == _ROOT_CAUSE and root_cause_known):
            continue
        seen.add(key)
        match = _pattern(term).search(text)
        if match:
            found.append((match.start(), term))
    return [term for _, term in sorted(found, key=lambda pair: pair[0])]


def _pattern(term: str) -> re.Pattern[str]:
    words = [re.escape(word) for word in term.split()]
    # Lookarounds instead of \b, so terms that end in a symbol ("100%") still match whole.
    return re.compile(
        r"(?<!\w)" + r"[\s-]+".join(words) + r"(?:s|es)?(?!\w)",
        re.IGNORECASE,
    )

"""Checks on draft text that need nothing but the text: the words a support organisation wants
a person to look at twice before a text goes to a customer (commitments, money, legal
exposure, absolutes), the placeholders a draft leaves where a fact is missing, identifiers
that only mean something inside the company, names from a list, and phrases copied from
another text."""

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
    "refunded",
    "credit",
    "compensation",
    # The same offer in other words (what a customer's reply may press for).
    "reimburse",
    "reimbursed",
    "reimbursement",
    "waive",
    "waived",
    "money back",
    "free of charge",
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


# --- placeholders ----------------------------------------------------------------------------

# `[impact: record it with @vp impact ...]`: a lower-case label, a colon, what to do. Citation
# tags (`[T12]`) and Markdown links (`[text](url)`) do not have that shape.
_PLACEHOLDER = re.compile(r"\[[a-z][a-z' -]{1,40}: [^\[\]\n]{3,300}\](?!\()")


def placeholder(what: str, how: str) -> str:
    """A visible gap in a draft: what is missing and how to fill it. Approving a draft that
    still holds one is refused by the bot, so it is filled or removed by a person."""
    return f"[{what}: {how}]"


def find_placeholders(text: str) -> list[str]:
    """Every placeholder still in `text`, in order: a draft is not ready while one remains."""
    return _PLACEHOLDER.findall(text)


# --- internal identifiers --------------------------------------------------------------------

# What a customer must never see because it only means something inside the company: ticket
# and pull-request numbers, Slack ids and channels, the escalation's own id, configuration
# ids, host names, addresses and long hex ids. Each pattern errs on the side of a second look.
_INTERNAL_IDS: tuple[re.Pattern[str], ...] = tuple(
    re.compile(p)
    for p in (
        r"<[@#!][^<>\s]+>",  # Slack mentions and broadcasts
        r"(?<![\w#])#(?:esc|inc|ops|eng|sup|sec|war)[\w-]*",  # channels
        r"\besc-\d{8}-[a-z0-9-]+",  # an escalation id (a channel name)
        r"\b(?:PR|MR|pull request|ticket|case|issue|incident|bug|change|CR|INC|CHG)"
        r"\s*#?\s*\d{2,}\b",  # PR #8812, ticket 123456, INC 42
        r"(?<![\w.])#\d{3,}\b",  # a bare #8812
        r"\b[A-Z][A-Z0-9]{1,9}-\d{1,7}\b",  # JIRA-1234, OPS-77
        r"\b[UWCGS]0[A-Z0-9]{6,}\b",  # Slack user, channel and group ids
        r"\b(?:cfg|conf|config|flag|ff|feature-flag|deploy|build|release|job|run|pod|node)"
        r"[-_][A-Za-z0-9][\w-]*\d[\w-]*",  # cfg-7781, deploy_2024_05_01, pod-eu-3
        r"\b[a-z0-9][a-z0-9-]*\.(?:internal|local|corp|lan|intra|svc)\b(?:\.[a-z0-9.-]+)?",
        r"\b[a-z]+(?:-[a-z0-9]+)*-\d{1,3}(?:\.[a-z0-9-]+)+\b",  # db-prod-03.eu-west
        r"\b(?:\d{1,3}\.){3}\d{1,3}\b",  # IPv4 addresses
        r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b",  # UUIDs
        r"\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{7,40}\b",  # commit shas, hex ids
    )
)


def internal_ids(text: str) -> list[str]:
    """The internal identifiers in `text`, in order of appearance, each once."""
    found: list[tuple[int, str]] = []
    for pattern in _INTERNAL_IDS:
        found += [(m.start(), m.group(0)) for m in pattern.finditer(text)]
    out: list[str] = []
    covered: list[tuple[int, int]] = []
    for start, token in sorted(found, key=lambda pair: (pair[0], -len(pair[1]))):
        end = start + len(token)
        if any(s <= start and end <= e for s, e in covered):
            continue  # part of an identifier already found ("#8812" inside "PR #8812")
        covered.append((start, end))
        if token not in out:
            out.append(token)
    return out


def redact_ids(text: str, replacement: str) -> str:
    """`text` with every internal identifier replaced."""
    for token in sorted(internal_ids(text), key=len, reverse=True):
        text = text.replace(token, replacement)
    return text


# --- names and copied phrases ----------------------------------------------------------------


def names_in(text: str, names: Iterable[str]) -> list[str]:
    """The names (whole words, any case) that occur in `text`, as given."""
    return [n for n in names if n.strip() and _pattern(n.strip()).search(text)]


_WORD = re.compile(r"[\w%$.'-]+")


def _words(text: str) -> list[str]:
    return [w.strip(".'-").casefold() for w in _WORD.findall(text) if w.strip(".'-")]


def copied(text: str, source: str, *, words: int = 6, allowed: Iterable[str] = ()) -> list[str]:
    """Runs of at least `words` consecutive words of `source` that `text` repeats, longest
    first, skipping any run that also occurs in an `allowed` text (what may be said anyway)."""
    mine = _words(text)
    theirs = _words(source)
    if len(theirs) < words or len(mine) < words:
        return []
    seen = {tuple(mine[i : i + words]) for i in range(len(mine) - words + 1)}
    ok: set[tuple[str, ...]] = set()
    for other in allowed:
        w = _words(other)
        ok |= {tuple(w[i : i + words]) for i in range(len(w) - words + 1)}
    runs: list[str] = []
    i = 0
    while i <= len(theirs) - words:
        gram = tuple(theirs[i : i + words])
        if gram in seen and gram not in ok:
            j = i + words
            while j < len(theirs) and tuple(theirs[j - words + 1 : j + 1]) in seen:
                j += 1
            runs.append(" ".join(theirs[i:j]))
            i = j
        else:
            i += 1
    return sorted(runs, key=len, reverse=True)

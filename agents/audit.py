"""Checks on a finished draft against its escalation: what a person must look at before a
customer letter goes out, returned as findings the bot shows under the draft.

A letter is checked for internal text copied into it (a run of the summary, an update, the
room's talk, a suspected cause), another customer, an internal identifier, a suspected cause
stated as if known, a promised time other than the scheduled one, times outside the account's
time zone, a missing or team signature, placeholders still to fill (and facts missing without
one), and the organisation's flag terms. A review is checked for a root cause nobody
confirmed, a confirmed cause called not confirmed, action items nobody took on, the bot's
reminders in its timeline, a credit figure the contract's terms do not give (or any figure
where they need a person's judgement) and a title of its own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from agents.assessment import same_cause, sla_credit
from agents.checks import (
    DEFAULT_FLAG_TERMS,
    copied,
    find_placeholders,
    flag_terms,
    internal_ids,
    names_in,
)
from agents.credits import Basis
from agents.grounding import Grounding
from agents.playbook import MISSING, Frame, frame
from agents.review import parse_review

# Internal text repeated word for word over this many words is a quote, not a translation.
COPY_WORDS = 6
# A suspected cause shows through in fewer words.
CAUSE_WORDS = 3

_STOP = frozenset(
    {"a", "an", "and", "are", "as", "at", "be", "been", "by", "for", "from", "has", "have",
     "in", "is", "it", "its", "of", "on", "or", "our", "that", "the", "their", "this", "to",
     "was", "we", "were", "will", "with", "you", "your"}
)  # fmt: skip
_OTHERS = re.compile(
    r"(?<!\w)(?:\d[\d,]*|several|many|some|a few|dozens of|hundreds of)\s+(?:other\s+)?"
    r"(?:customers|tenants|accounts|clients)\b|\bother (?:customers|tenants|accounts|clients)\b",
    re.IGNORECASE,
)
_CLOCK = re.compile(
    r"(?<![\d:])(?P<h>[01]?\d|2[0-3]):(?P<m>[0-5]\d)(?!\d)\s*(?P<ampm>[ap]\.?m\.?)?"
    r"(?:\s*(?P<zone>(?-i:UTC[+-]\d{1,2}(?::?\d{2})?|[A-Z]{2,5}\b)))?"
    r"|(?<![\d:])(?P<h12>1[0-2]|0?[1-9])\s*(?P<ampm12>[ap]\.?m\.?)(?!\w)",
    re.IGNORECASE,
)
_PROMISE = re.compile(
    r"(?<!\w)(?:will|we'll|i'll|by|next update|check in|check-in|expect\w*|no later than|"
    r"within|promise\w*|commit\w*)(?!\w)",
    re.IGNORECASE,
)
_RELATIVE = re.compile(
    r"\bin (?:the next )?(?:\d+|an?|one|two|three|four|a few|a couple of) "
    r"(?:hours?|minutes?|mins?|h)\b|\bwithin (?:the hour|\d+ ?(?:hours?|minutes?|h|min))\b|"
    r"\b\d+ ?h(?:ours?)? later\b|\blater today\b|\bend of (?:the )?day\b|\btomorrow\b",
    re.IGNORECASE,
)
_SENTENCE = re.compile(r"[^.!?\n]+[.!?]?")
TEAM_SIGNATURE = re.compile(r"customer support leadership team", re.IGNORECASE)


@dataclass(frozen=True)
class Finding:
    kind: str  # what was checked, e.g. "internal id", "promised time"
    detail: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.detail}"


def letter(g: Grounding, text: str) -> list[Finding]:
    """Everything to look at in a customer letter before approving it."""
    f = frame(g)
    found: list[Finding] = []
    add = found.append
    said = [x.text for x in g.facts.said()] + list(g.approved_updates) + [g.customer]
    for source in g.internal_texts():
        for run in copied(text, source, words=COPY_WORDS, allowed=said):
            add(Finding("copied", f"repeats internal text word for word: “{run}”"))
    for name in names_in(text, g.other_customers):
        add(Finding("other customer", f"names another customer: {name}"))
    for match in _OTHERS.finditer(text):
        add(Finding("other customer", f"speaks of other customers: “{match.group(0)}”"))
    for token in internal_ids(text):
        add(Finding("internal id", f"an internal identifier: {token}"))
    for cause in g.facts.suspected_causes:
        runs = [r for r in copied(text, cause.text, words=CAUSE_WORDS, allowed=said) if _meaty(r)]
        if runs:
            add(Finding("unconfirmed cause", f"states a suspected cause: “{runs[0]}”"))
    found += _times(g, f, text)
    found += _signature(g, text)
    for hole in find_placeholders(text):
        add(Finding("placeholder", f"still to fill: {hole}"))
    for gap in gaps(g, f, text):
        add(Finding("missing fact", gap))
    terms = g.flag_terms or DEFAULT_FLAG_TERMS
    for term in flag_terms(text, terms, root_cause_known=g.root_cause() is not None):
        add(Finding("flag term", f"look twice at “{term}”"))
    return _unique(found)


def _meaty(run: str) -> bool:
    return sum(1 for w in run.split() if w not in _STOP) >= 2


def _times(g: Grounding, f: Frame, text: str) -> list[Finding]:
    out = []
    labels = _zone_labels(g, f)
    allowed = _allowed_clock_times(g, f)
    for sentence in _SENTENCE.findall(text):
        promising = _PROMISE.search(sentence)
        for match in _CLOCK.finditer(sentence):
            zone = match.group("zone")
            clock = _hhmm(match)
            if zone is None:
                out.append(Finding("time zone", f"a time without its zone: {match.group(0)}"))
            elif zone.upper() not in labels:
                out.append(
                    Finding(
                        "time zone",
                        f"{match.group(0).strip()} is not in the account's time zone "
                        f"({f.zone_name})",
                    )
                )
            if promising and clock not in allowed:
                when = f.promise if f.promise_at else "nothing scheduled"
                out.append(
                    Finding(
                        "promised time",
                        f"promises {match.group(0).strip()}; the scheduled time is {when}",
                    )
                )
        relative = _RELATIVE.search(sentence)
        if promising and relative:
            out.append(Finding("promised time", f"promises a relative time: “{relative.group(0)}”"))
    return out


def _hhmm(match: re.Match[str]) -> str:
    if match.group("h12"):
        hour, minute, ampm = int(match.group("h12")), 0, match.group("ampm12")
    else:
        hour, minute, ampm = int(match.group("h")), int(match.group("m")), match.group("ampm")
    if ampm:
        hour = hour % 12 + (12 if ampm.lower().startswith("p") else 0)
    return f"{hour:02d}:{minute:02d}"


def _zone_labels(g: Grounding, f: Frame) -> set[str]:
    moments = [g.now, g.declared_at, *(t for t in (f.promise_at, g.resolved_at) if t)]
    labels = set()
    for at in moments:
        label = at.astimezone(f.zone).tzname() or "UTC"
        labels.add((f"UTC{label}" if label[:1] in "+-" else label).upper())
    return labels


def _allowed_clock_times(g: Grounding, f: Frame) -> set[str]:
    """Clock times a letter may commit to: the scheduled one, and any time in the facts
    someone recorded for the customer (an ETA "by 16:00 CDT")."""
    allowed: set[str] = set()
    if f.promise_at is not None:
        for zone in (f.zone, UTC):
            allowed.add(f.promise_at.astimezone(zone).strftime("%H:%M"))
    for fact in g.facts.said():
        allowed |= {_hhmm(m) for m in _CLOCK.finditer(fact.text)}
    return allowed


def _signature(g: Grounding, text: str) -> list[Finding]:
    out = []
    if TEAM_SIGNATURE.search(text):
        out.append(Finding("signature", "signed by a team, not by the VP on record"))
    tail = "\n".join(text.strip().splitlines()[-4:])
    signer = " ".join((g.signer or "").split())
    if signer and signer.casefold() not in " ".join(tail.split()).casefold():
        out.append(Finding("signature", f"not signed by {signer}"))
    if not signer and MISSING["signer"] not in text:
        out.append(Finding("signature", "no VP is on record to sign it, and no placeholder"))
    return out


def gaps(g: Grounding, f: Frame, text: str) -> list[str]:
    """Facts a letter needs that are not recorded, yet the draft holds no placeholder for:
    whatever it says there was not recorded by anyone."""
    labels = {hole[1:].split(":", 1)[0] for hole in find_placeholders(text)}
    facts = g.facts
    needed = {
        "impact": facts.impact is None,
        "contact": g.executive_contact() is None or "[contact:" in f.greeting,
        "signer": not g.signer,
        "what we are doing": not f.resolved and facts.doing is None,
        "what the customer should do": f.security and facts.advice is None,
        "what fixed it": f.resolved,
        "check-in": f.resolved and f.promise_at is None,
    }
    return [
        f"{label} is not recorded and the draft has no placeholder for it"
        for label, missing in needed.items()
        if missing and label not in labels
    ]


def review(g: Grounding, text: str) -> list[Finding]:
    """What to check in a review: a root cause nobody confirmed, action items nobody took
    on, a title of its own."""
    found: list[Finding] = []
    parsed = parse_review(text)
    cause = str(parsed.get("root_cause") or "")
    if g.root_cause() is None and cause and not cause.casefold().startswith("not yet"):
        found.append(Finding("root cause", "states a root cause nobody confirmed"))
    owners = {" ".join(a.owner.split()).casefold() for a in g.action_items}
    for item in parsed.get("action_items") or []:
        owner = " ".join(str(item.get("owner", "")).split()).casefold()
        if owner.startswith("[") or str(item.get("action", "")).startswith("["):
            continue
        if owner not in owners:
            found.append(
                Finding(
                    "action item",
                    f"not on record: {item.get('owner') or 'no owner'}: {item.get('action')}",
                )
            )
    if any(line.startswith("# ") for line in text.splitlines()):
        found.append(Finding("title", "the review has a title of its own; the bot shows one"))
    found += _review_cause(g, parsed)
    found += _review_timeline(parsed)
    found += _review_credit(g, parsed)
    return found


_NOT_CONFIRMED = re.compile(r"not (?:yet )?confirmed|unconfirmed|suspected", re.IGNORECASE)
_REMINDER = re.compile(r"\b(?:overdue|nudge\w*|reminder\w*)\b", re.IGNORECASE)
# A credit as a share of a fee: "50% of the May 2024 fee", "20% of their monthly fees".
# A rate followed by "per ..." is the terms' rule in other words, not a credit.
_CREDIT_FIGURE = re.compile(
    r"(\d+(?:\.\d+)?)\s*%\s+of\s+(?:[\w-]+\s+){0,4}?fees?\b(?!\s+(?:per|for each|every)\b)",
    re.IGNORECASE,
)


def _review_cause(g: Grounding, parsed: dict[str, Any]) -> list[Finding]:
    """A confirmed cause is the root cause, and nowhere "not confirmed"."""
    cause = g.facts.cause
    if cause is None:
        return []
    root = str(parsed.get("root_cause") or "")
    lines = [*root.splitlines(), *map(str, parsed.get("contributing_factors") or ())]
    lines += [str(x) for x in parsed.get("lessons") or ()]
    doubted = [x for x in lines if _NOT_CONFIRMED.search(x) and same_cause(cause.text, x)]
    if doubted or root.casefold().startswith("not yet"):
        return [Finding("confirmed cause", "the confirmed cause is also called not confirmed")]
    return []


def _review_timeline(parsed: dict[str, Any]) -> list[Finding]:
    """The timeline is the key moments; the bot's reminders bury them."""
    noise = [str(x) for x in parsed.get("timeline") or () if _REMINDER.search(str(x))]
    if not noise:
        return []
    return [Finding("timeline", f"{len(noise)} reminder line(s) among the key moments")]


def _review_credit(g: Grounding, parsed: dict[str, Any]) -> list[Finding]:
    """The credit is what the contract's terms come to, capped, or none where a person must
    decide: a figure of the model's own is found out."""
    text = str(parsed.get("compensation") or "")
    terms = " ".join(str(g.customer_facts.get("credits") or "").split())
    text = " ".join(text.split())
    for quoted in sorted({terms, *re.split(r";|\.\s", terms)}, key=len, reverse=True):
        if quoted.strip():
            text = text.replace(quoted.strip(), "")  # the terms quoted are no figure
    figures = {float(m.group(1)) for m in _CREDIT_FIGURE.finditer(text)}
    owed = sla_credit(g)
    allowed = {p.percent for p in owed.periods if p.percent > 0}
    if owed.needs_judgement and figures:
        return [Finding("credit", "gives a figure where the terms need a person's judgement")]
    wrong = sorted(f for f in figures if f not in allowed)
    if wrong and owed.basis is not Basis.UNKNOWN:
        said = ", ".join(f"{f:g}%" for f in wrong)
        owes = owed.amount or "no SLA credit"
        return [Finding("credit", f"{said} is not what the terms come to ({owes})")]
    return []


def _unique(found: list[Finding]) -> list[Finding]:
    return list(dict.fromkeys(found))


def times_in(text: str) -> list[str]:
    """Every clock time in `text` as HH:MM (24 h), in order."""
    return [_hhmm(m) for m in _CLOCK.finditer(text)]

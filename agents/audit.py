"""Checks on a finished draft against its escalation: what a person must look at before a
customer letter goes out, returned as findings the bot shows under the draft.

A letter is checked for internal text copied into it (a run of the summary, an update, the
room's talk, a suspected cause), the customer's own reply quoted back to them, another
customer, an internal identifier, a suspected cause stated as if known, a promised time
other than the scheduled one, times outside the account's time zone, a missing or team
signature, placeholders still to fill (and facts missing without one), and the
organisation's flag terms. It is also checked against the customer
conversation: ongoing wording once the impact has ended, a changed or passed ETA or a late
update not owned, a recorded fact left out, a start other than the one on record (or two
recorded starts that disagree), and against its situation (a written notice about data, a
press enquiry, the executive's asks). A review is checked for a root cause nobody
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
from agents.grounding import ZONE_ABBREVIATIONS, Grounding
from agents.playbook import (
    MISSING,
    Frame,
    eta_due,
    executive_asks,
    frame,
    past,
    without_start,
)
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
    r"(?:\s*(?P<zone>(?-i:(?:UTC|GMT)[+-]\d{1,2}(?::?\d{2})?|[A-Z]{2,5}\b)))?"
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
    for reply in g.customer_replies:
        for run in copied(text, reply.text, words=COPY_WORDS, allowed=said):
            add(Finding("customer's words", f"quotes the customer's own message back: “{run}”"))
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
    found += conversation(g, f, text)
    found += situation(g, f, text)
    terms = g.flag_terms or DEFAULT_FLAG_TERMS
    known = g.root_cause() is not None
    # A word the team chose for the customer in a recorded fact was looked at already.
    chosen = {t for x in g.facts.said() for t in flag_terms(x.text, terms, root_cause_known=known)}
    for term in flag_terms(text, terms, root_cause_known=known):
        if term not in chosen:
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
        if promising and relative and not _recorded(g, relative.group(0)):
            out.append(Finding("promised time", f"promises a relative time: “{relative.group(0)}”"))
    return out


def _recorded(g: Grounding, words: str) -> bool:
    """`words` come from a fact recorded for the customer, or an ETA a letter already gave
    (a letter naming the estimate it could not keep quotes it)."""
    said = [x.text for x in g.facts.said()] + [t.eta for t in g.told if t.eta]
    return any(words.casefold() in text.casefold() for text in said)


def _hhmm(match: re.Match[str]) -> str:
    if match.group("h12"):
        hour, minute, ampm = int(match.group("h12")), 0, match.group("ampm12")
    else:
        hour, minute, ampm = int(match.group("h")), int(match.group("m")), match.group("ampm")
    if ampm:
        hour = hour % 12 + (12 if ampm.lower().startswith("p") else 0)
    return f"{hour:02d}:{minute:02d}"


def _zone_labels(g: Grounding, f: Frame) -> set[str]:
    """What the account's time zone is called: its abbreviations at the letter's moments
    (CDT, CST), the generic one people write (CT, ET; CET for CEST), its offset (UTC+8) and
    the common name of a zone the tz database names by offset (SGT)."""
    moments = [g.now, g.declared_at, *(t for t in (f.promise_at, g.resolved_at) if t)]
    labels: set[str] = set()
    for at in moments:
        label = (at.astimezone(f.zone).tzname() or "UTC").upper()
        labels.add(f"UTC{label}" if label[:1] in "+-" else label)
        if len(label) == 3 and label[1:] in ("ST", "DT"):
            labels.add(label[0] + "T")  # EST, EDT: ET
        if len(label) == 4 and label.endswith(("ST", "DT")):
            labels.add(label[:2] + "T")  # AEST, AEDT: AET
        if label.endswith("EST") and len(label) == 4:
            labels.add(label[:2] + "T")  # CEST: CET
        offset = at.astimezone(f.zone).utcoffset()
        if offset is not None:
            minutes = int(offset.total_seconds() // 60)
            sign = "+" if minutes >= 0 else "-"
            h, m = divmod(abs(minutes), 60)
            tail = f"{h}" + (f":{m:02d}" if m else "")
            labels |= {f"UTC{sign}{tail}", f"GMT{sign}{tail}", f"UTC{sign}{h:02d}"}
    labels |= set(ZONE_ABBREVIATIONS.get(f.zone_name, ()))
    if f.zone_name == "UTC":
        labels |= {"UTC", "GMT", "Z"}
    return labels


def _allowed_clock_times(g: Grounding, f: Frame) -> set[str]:
    """Clock times a letter may commit to: the scheduled one, any time in the facts someone
    recorded for the customer (an ETA "by 16:00 CDT"), and the times earlier letters gave."""
    allowed: set[str] = set()
    if f.promise_at is not None:
        for zone in (f.zone, UTC):
            allowed.add(f.promise_at.astimezone(zone).strftime("%H:%M"))
    for fact in g.facts.said():
        allowed |= {_hhmm(m) for m in _CLOCK.finditer(fact.text)}
    # A letter owning a promise it missed names the time it promised then.
    for told in g.told:
        if told.promised is not None:
            allowed.add(told.promised.astimezone(f.zone).strftime("%H:%M"))
        allowed |= {_hhmm(m) for m in _CLOCK.finditer(told.eta or "")}
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


# --- the customer conversation ---------------------------------------------------------------

_ENDED = re.compile(
    r"\b(?:ended|has ended|is over|was resolved|been resolved|is resolved|back to normal|"
    r"restored|no longer|recovered|stopped)\b",
    re.IGNORECASE,
)
_ONGOING = re.compile(
    r"when to expect a fix|time for the fix|what you can do meanwhile|in the meantime|"
    r"(?:are|is) (?:still )?(?:seeing|experiencing|affected|failing|slow|unavailable)|"
    r"disruption this is causing|while we (?:work|fix)\b",
    re.IGNORECASE,
)
_SORRY = re.compile(r"\bsorry\b|\bapologi[sz]e|\bapology\b|\bregret\b", re.IGNORECASE)
_STARTED = re.compile(
    r"\b(?:began|begun|started|starting|since|from)(?:\s+(?:at|on|around))?\s+"
    r"(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) \d{1,2} [A-Z][a-z]{2} \d{4}, )?"
    r"(?P<h>[01]?\d|2[0-3]):(?P<m>[0-5]\d)",
    re.IGNORECASE,
)
# Words too common to tell whether a fact is in a letter.
_COMMON = _STOP | frozenset(
    {"not", "can", "cannot", "could", "all", "any", "some", "now", "they", "them", "us", "do",
     "does", "did", "no", "if", "so", "but", "into", "out", "up", "more", "than", "via"}
)  # fmt: skip


def _content(text: str) -> set[str]:
    return {
        w for w in re.findall(r"[a-z0-9%']+", text.casefold()) if w not in _COMMON and len(w) > 2
    }


def _carries(text: str, fact: str, others: tuple[str, ...] = ()) -> bool:
    """The letter says the fact, in its words or close to them: most of its content words,
    and half of those no other recorded fact shares (advice to rotate keys is not carried by
    an impact that names the same keys)."""
    words = _content(fact)
    if not words:
        return True
    mine = _content(text) | _content(past(text))
    if len(words & mine) < max(1, round(len(words) * 0.6)):
        return False
    own = words - {w for other in others if other != fact for w in _content(other)}
    return not own or len(own & mine) * 2 >= len(own)


def conversation(g: Grounding, f: Frame, text: str) -> list[Finding]:
    """The letter against what the customer was told and what changed since."""
    c = f.conversation
    facts = g.facts
    out: list[Finding] = []
    add = out.append
    if c.ended is not None and not g.resolved:
        if not _ENDED.search(text):
            add(Finding("state", f"the impact ended {f.time(c.ended)}; the letter does not say so"))
        ongoing = _ONGOING.search(text)
        if ongoing:
            add(
                Finding(
                    "state",
                    f"speaks as if the impact were ongoing (“{ongoing.group(0)}”); it ended "
                    f"{f.time(c.ended)}",
                )
            )
        if facts.workaround is not None and facts.workaround.text.casefold() in text.casefold():
            add(Finding("state", "repeats the workaround, which no longer matters"))
    if c.ended is not None and g.resolved and _ONGOING.search(text):
        add(Finding("state", "speaks as if the impact were ongoing in a resolution notice"))
    sorry = bool(_SORRY.search(text))
    if c.eta_before:
        named = _carries(text, c.eta_before) or bool(
            set(times_in(c.eta_before)) & set(times_in(text))
        )
        if not (sorry and named):
            what = "changed" if c.eta_changed else "passed"
            add(
                Finding(
                    "promise",
                    f"the ETA the last letter gave (“{c.eta_before}”) {what}; the letter "
                    "does not name it with an apology",
                )
            )
    if c.promise_missed is not None and not (sorry and _LATER.search(text)):
        add(
            Finding(
                "promise",
                f"the last letter promised the next update by {f.time(c.promise_missed)}; this "
                "one is later and does not say so with an apology",
            )
        )
    if c.eta_stale and facts.eta is not None and not c.eta_before:
        due = eta_due(facts.eta.text, facts.eta.at, f.zone)
        if due is not None and _carries(text, facts.eta.text) and not sorry:
            add(Finding("promise", f"gives an ETA whose time has passed ({f.time(due)})"))
    expected = _expected(g, f)
    others = tuple(fact for _, fact in expected)
    for kind, fact in expected:
        if not _carries(text, without_start(fact) or fact, others):
            add(Finding("fact not used", f"the recorded {kind} is not in the letter"))
    found_starts = {
        f"{int(m.group('h')):02d}:{m.group('m')}" for m in _STARTED.finditer(text)
    }  # fmt: skip
    if facts.impact_began is not None and found_starts:
        began = facts.impact_began.astimezone(f.zone).strftime("%H:%M")
        ended = facts.impact_ended.astimezone(f.zone).strftime("%H:%M") if c.ended else None
        other = sorted(t for t in found_starts if t not in (began, ended))
        if other:
            add(
                Finding(
                    "start",
                    f"states a start ({', '.join(other)}) other than the one on record "
                    f"({f.time(facts.impact_began)})",
                )
            )
    if facts.stated_began is not None and facts.impact_began is not None:
        add(
            Finding(
                "start",
                f"two starts are recorded: {f.time(facts.impact_began)} (--since) and "
                f"{f.time(facts.stated_began)} (the impact's text); confirm one",
            )
        )
    return out


_ASK_WORDS = frozenset(
    {"ceo", "cto", "cfo", "coo", "cio", "ciso", "exec", "executive", "their", "asks", "asked",
     "wants", "wanted", "requests", "requested", "demands", "demanded", "expects", "would",
     "like", "insists", "insisted", "asking", "customer", "also"}
)  # fmt: skip


def situation(g: Grounding, f: Frame, text: str) -> list[Finding]:
    """The letter against its situation: a regulatory notice in the words of a record, the
    press paragraph when the press is asking, the executive's asks answered."""
    out = []
    if f.regulatory and not f.security:
        for word in ("disruption", "patience", "inconvenience"):
            if re.search(rf"\b{word}\b", text, re.IGNORECASE):
                out.append(Finding("situation", f"a written notice about data says “{word}”"))
    if f.press and not re.search(r"\bpress\b|\bpublic statement", text, re.IGNORECASE):
        out.append(Finding("situation", "the press is asking; the letter does not coordinate"))
    asks = executive_asks(g)
    flat = _content(text)
    open_asks = [
        (where, ask)
        for where, ask in asks
        if not ((own := _content(ask) - _ASK_WORDS) and len(own & flat) * 2 >= len(own))
    ]
    for where, ask in open_asks:
        out.append(Finding("executive ask", f"not answered: “{ask}” ({where})"))
    if asks and len(open_asks) == len(asks):
        out.append(Finding("executive ask", "the letter answers none of the executive's asks"))
    return out


_LATER = re.compile(r"\blater than\b|\blate\b|\bdelay", re.IGNORECASE)


def _expected(g: Grounding, f: Frame) -> list[tuple[str, str]]:
    """The recorded facts this letter is expected to carry, by name."""
    facts = g.facts
    c = f.conversation
    ongoing = c.ended is None and not g.resolved
    wanted = [
        ("impact", facts.impact, True),
        ("advice", facts.advice, "advice" not in c.left_out),
        ("workaround", facts.workaround, ongoing and "workaround" not in c.left_out),
        ("what we are doing", facts.doing, not g.resolved and "doing" not in c.left_out),
        ("ETA", facts.eta, ongoing and not c.eta_stale and "eta" not in c.left_out),
        ("cause", facts.cause, True),
        ("fix", facts.fixed, g.resolved),
    ]
    return [(kind, fact.text) for kind, fact, due in wanted if fact is not None and due]


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
        "workaround": (
            not f.resolved
            and not f.security
            and f.conversation.ended is None
            and facts.workaround is None
            and not facts.no_workaround
            and "workaround" not in f.conversation.left_out
        ),
        "what fixed it": f.resolved and facts.fixed is None,
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

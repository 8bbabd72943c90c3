"""Which letter a situation calls for, and its frame: the decisions the model's prompt and the
offline drafter must agree on, made once from a `Grounding`.

A customer letter is an update while the escalation is open and the resolution notice once it
is resolved. A security incident adds what the customer should do. A top-tier account at risk
of churning, or an account whose executive is angry, gets the letter personally from the VP,
with an offer to talk. Every letter carries a subject, greets the contact by name, gives times
in the account's time zone, promises only the scheduled time (the next update, or the first
follow-up after resolution), owns a missed first-contact deadline and is signed by the VP on
record. Where a fact is missing the frame holds a placeholder that says what to record.

A legal or regulatory exposure makes it a written notice (what the customer may need to do
for their own obligations), a press enquiry adds a paragraph on coordinating statements, and
a check-in is promised in the account's business hours. The frame also carries the customer
conversation (`Conversation`): what the last approved letter told them and what changed since.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo

from agents.checks import placeholder
from agents.grounding import Grounding, Told, ceil_minute, human_time

SECURITY = "security_incident"
CHURN_RISK = "arr_churn_risk"
REGULATORY = "legal_regulatory"
PRESS = "media_pr"

SIGNER_TITLE = "VP of Customer Support"

# An executive, by title or role. The contact's own names are added per account.
_EXECUTIVE = (
    r"CEO|CTO|CFO|COO|CIO|CISO|CSO|CRO|CPO|CMO|CDO|chief [a-z]+ officer|president|founder|"
    r"co-founder|owner|exec|execs|executive|executives|VP|SVP|EVP|vice president|"
    r"head of [a-z]+|managing director|board"
)
# Anger, or the threats that come with it.
_ANGER = (
    r"angry|anger|furious|fuming|livid|irate|upset|frustrated|frustration|outraged|"
    r"annoyed|unhappy|displeased|threaten|threatens|threatened|threatening|going public|"
    r"go public|to the press|on social media|lawyers?"
)
_CLAUSE = re.compile(r"[^.!?;\n]+")


def angry_executive(g: Grounding) -> str | None:
    """Where the record says the customer's executive is angry, or None.

    The rule: one sentence of the account notes, the summary, a timeline entry or a room
    message names an executive (a title such as CEO or COO, "exec", "VP", "board", or the
    executive contact by name) and also says they are angry (angry, furious, upset,
    frustrated, ...) or threaten something (to go public, to the press, lawyers).
    """
    contact = (g.executive_contact() or "").split(",")[0]
    names = [re.escape(n) for n in contact.split() if len(n) > 2 and n[0].isupper()]
    executive = re.compile(
        r"(?<!\w)(?:" + "|".join([_EXECUTIVE, *names]) + r")(?!\w)", re.IGNORECASE
    )
    anger = re.compile(r"(?<!\w)(?:" + _ANGER + r")(?!\w)", re.IGNORECASE)
    sources = [("the account notes", str(g.customer_facts.get("notes") or ""))]
    sources.append(("the summary", g.summary))
    sources += [(f"timeline entry {e.id}".strip(), e.text) for e in g.timeline]
    sources += [(f"room message {m.id}".strip(), m.text) for m in g.room_messages]
    for where, text in sources:
        for clause in _CLAUSE.findall(text):
            if executive.search(clause) and anger.search(clause):
                return where
    return None


def personal_reasons(g: Grounding) -> tuple[str, ...]:
    """Why the VP writes personally: churn risk, an angry executive; () when neither."""
    reasons = []
    if CHURN_RISK in g.criteria_ids:
        reasons.append("a top-tier account at risk of churning")
    where = angry_executive(g)
    if where:
        reasons.append(f"an angry executive ({where})")
    return tuple(reasons)


# --- the frame of a letter -------------------------------------------------------------------

MISSING = {
    "impact": placeholder("impact", "record what the customer experiences with @vp impact <text>"),
    "doing": placeholder(
        "what we are doing", "write in the customer's terms what the team is doing now"
    ),
    "workaround": placeholder(
        "workaround",
        "record one with @vp workaround <text>, or @vp workaround none if there is none",
    ),
    "advice": placeholder(
        "what the customer should do",
        "write the steps the facts support, e.g. rotate the affected credentials, review "
        "access logs from the start of the incident",
    ),
    "fix": placeholder("what fixed it", "record it in the customer's terms with @vp fixed <text>"),
    "signer": placeholder("signer", "the VP who signs this letter"),
    "obligations": placeholder(
        "what the customer must do",
        "for their own obligations (e.g. assess whether they must notify a regulator or the "
        "people affected); record it with @vp advice <text>",
    ),
    "press contact": placeholder(
        "press contact", "who coordinates our statements; set press_contact in warroom.yaml"
    ),
    "check-in": placeholder(
        "check-in", "no follow-up is scheduled; write when we will check in with them"
    ),
}


def contact_placeholder(g: Grounding) -> str:
    return placeholder(
        "contact",
        f"add executive_contact for {' '.join(g.customer.split())} to customer_insights.yaml",
    )


_HONORIFICS = {
    "dr": "Dr", "prof": "Prof", "mr": "Mr", "ms": "Ms", "mrs": "Mrs", "mx": "Mx", "miss": "Miss",
    "sir": "Sir", "dame": "Dame",
}  # fmt: skip


def greeting_name(contact: str | None, salutation: str | None = None) -> str | None:
    """How to greet the contact: the `salutation` on file when there is one ("Mr Tan");
    else the name as written ("Dana Whitfield" for "Dana Whitfield, CTO"), never a part of
    it guessed from word order, since which word is the family name depends on the person;
    an honorific with one name ("Ms Raman") as written. None when no name can be read (empty,
    an email, only a title) or when an honorific comes with several names ("Mr Tan Wei
    Ming": "Mr Tan" or "Mr Ming" is the person's to say): the caller leaves a placeholder."""
    chosen = " ".join((salutation or "").split())
    if chosen and "@" not in chosen and "<" not in chosen:
        return chosen
    if not contact:
        return None
    name = " ".join(contact.split(",")[0].split())
    if not name or "@" in name or "<" in name:
        return None
    words = name.split()
    honorific = _HONORIFICS.get(words[0].rstrip(".").casefold())
    if honorific:
        return f"{honorific} {words[1]}" if len(words) == 2 else None
    # "CTO" alone is a role, not a name.
    if len(words) == 1 and words[0].isupper() and len(words[0]) <= 5:
        return None
    return name


def _addressee(g: Grounding) -> str:
    salutation = g.customer_facts.get("salutation")
    contact = g.executive_contact()
    who = greeting_name(contact, str(salutation) if salutation else None)
    if who:
        return who
    words = (contact or "").split(",")[0].split()
    if len(words) > 2 and words[0].rstrip(".").casefold() in _HONORIFICS:
        return salutation_placeholder(g)
    return contact_placeholder(g)


def salutation_placeholder(g: Grounding) -> str:
    """The greeting's gap when the contact's name cannot be shortened without a guess."""
    contact = " ".join((g.executive_contact() or "").split(",")[0].split())
    return placeholder(
        "salutation",
        f"how {contact} is greeted, e.g. with their family name; add salutation for "
        f"{' '.join(g.customer.split())} to customer_insights.yaml",
    )


@dataclass(frozen=True)
class Frame:
    """A customer letter's situation and fixed parts."""

    resolved: bool
    security: bool
    regulatory: bool  # legal or regulatory exposure: a written notice, never "disruption"
    press: bool  # the press is asking: coordinate statements
    personal: tuple[str, ...]  # why the VP writes personally; () for a team letter
    zone: tzinfo
    zone_name: str  # "America/Chicago", or "UTC" when the account has none
    greeting: str  # "Dear Dana," (or with the contact placeholder)
    signer: str  # the VP's name, or the signer placeholder
    promise_at: datetime | None  # the next update, or the check-in after resolution
    first_contact_late: bool
    conversation: Conversation
    press_contact: str | None = None  # what the customer was told, and what changed since

    @property
    def kind(self) -> str:
        """A name for the situation, as the prompt and the bench show it."""
        kind = "resolution notice" if self.resolved else "status update"
        if self.regulatory:
            kind = f"regulatory {'notice' if not self.resolved else 'resolution notice'}"
        if self.security:
            kind = f"security {kind}"
        return f"personal {kind}" if self.personal else kind

    def time(self, at: datetime) -> str:
        return human_time(at, self.zone)

    @property
    def promise(self) -> str:
        """The promised time as the letter writes it, or the check-in placeholder."""
        return self.time(self.promise_at) if self.promise_at else MISSING["check-in"]

    @property
    def signature(self) -> str:
        return f"{self.signer}\n{SIGNER_TITLE}"


def frame(g: Grounding) -> Frame:
    zone = g.zone()
    name = str(g.customer_facts.get("timezone") or "").strip() if zone is not UTC else "UTC"
    return Frame(
        resolved=g.resolved,
        security=SECURITY in g.criteria_ids,
        regulatory=REGULATORY in g.criteria_ids,
        press=PRESS in g.criteria_ids,
        personal=personal_reasons(g),
        zone=zone,
        zone_name=name or "UTC",
        greeting=f"Dear {_addressee(g)},",
        signer=" ".join((g.signer or "").split()) or MISSING["signer"],
        promise_at=promised_at(g),
        first_contact_late=g.first_contact_late(),
        conversation=conversation(g),
        press_contact=g.press_contact,
    )


def promised_at(g: Grounding) -> datetime | None:
    """The one time a customer letter may promise: the next update while open; after
    resolution, the first scheduled follow-up still ahead (None when there is none)."""
    if not g.resolved:
        return g.promised_next_update()
    ahead = sorted(f for f in g.follow_ups if f > g.now)
    return business_time(ceil_minute(ahead[0]), g) if ahead else None


_HOURS = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


def business_time(at: datetime, g: Grounding) -> datetime:
    """`at`, or the start of the account's next business hours when it falls outside them
    (`business_hours` in its facts, "09:00-17:00" by default, on weekdays, in its time zone):
    a check-in is promised for when someone there will read it."""
    match = _HOURS.match(str(g.customer_facts.get("business_hours") or g.business_hours))
    start, end = (9, 0), (17, 0)
    if match:
        start = (int(match.group(1)), int(match.group(2)))
        end = (int(match.group(3)), int(match.group(4)))
    zone = g.zone()
    local = at.astimezone(zone)
    opens = local.replace(hour=start[0], minute=start[1], second=0, microsecond=0)
    closes = local.replace(hour=end[0], minute=end[1], second=0, microsecond=0)
    if local.weekday() < 5 and opens <= local <= closes:
        return at
    nxt = opens if local < opens else opens + timedelta(days=1)
    while nxt.weekday() >= 5:
        nxt += timedelta(days=1)
    return nxt.astimezone(UTC)


def subject(g: Grounding, f: Frame) -> str:
    customer = " ".join(g.customer.split())
    if f.regulatory and not f.security:
        whose = f"{customer}'" if customer.endswith("s") else f"{customer}'s"
        if f.resolved:
            return f"Closing notice: the incident affecting {whose} data"
        return f"Notice of an incident affecting {whose} data, and what you may need to do"
    if f.resolved:
        what = "security incident" if f.security else "service issue"
        return f"Resolved: the {what} affecting {customer}"
    if f.security:
        return f"Security incident affecting {customer}: what we know and what to do"
    if f.personal:
        return f"The service issue affecting {customer}: a personal note"
    return f"Update on the service issue affecting {customer}"


# --- the customer conversation ---------------------------------------------------------------

_NUMBERS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
            "eight": 8, "twelve": 12, "a couple of": 2, "a few": 3, "half an": 0.5}  # fmt: skip
_SPAN = re.compile(
    r"(?<!\w)(?:within|in|inside)\s+(?:about\s+|around\s+|roughly\s+|the next\s+)?"
    r"(?P<n>\d+(?:\.\d+)?|" + "|".join(sorted(_NUMBERS, key=len, reverse=True)) + r")\s*"
    r"(?P<unit>hours?|hrs?|h|minutes?|mins?|days?|d)(?!\w)",
    re.IGNORECASE,
)
_CLOCK_BY = re.compile(
    r"(?<!\w)(?:by|at|around|before|until|till|for)\s+(?:about\s+|around\s+)?"
    r"(?P<h>[01]?\d|2[0-3])(?::(?P<m>[0-5]\d))?\s*(?P<ampm>[ap]\.?m\.?)?(?![\w:])",
    re.IGNORECASE,
)
# A time written in a fact, with the word that introduces it: "since 09:10", "from 9am".
STARTED = re.compile(
    r"\s*,?\s*(?<!\w)(?:since|from|at|starting(?: at)?|started(?: at)?|began(?: at)?|as of)\s+"
    r"(?:[01]?\d|2[0-3])(?::[0-5]\d\s*(?:[ap]\.?m\.?)?|\s*[ap]\.?m\.?)(?![\w:])"
    r"(?:\s+(?-i:[A-Z]{2,5}\b))?"
    r"(?:\s+(?:today|this morning|this afternoon|yesterday))?",
    re.IGNORECASE,
)


def eta_due(text: str, recorded_at: datetime, zone: tzinfo) -> datetime | None:
    """When an ETA someone recorded falls due: "within 2 hours" from when it was recorded,
    "by 16:00" (in the account's time zone) at the next such time; None when it gives no
    time a clock can hold it to ("as soon as we can")."""
    span = _SPAN.search(text)
    if span:
        raw = span.group("n").casefold()
        n = float(raw) if raw[0].isdigit() else float(_NUMBERS[raw])
        unit = span.group("unit").casefold()[0]
        size = {"h": timedelta(hours=1), "m": timedelta(minutes=1), "d": timedelta(days=1)}
        return recorded_at + n * size[unit]
    for match in _CLOCK_BY.finditer(text):
        if match.group("m") is None and match.group("ampm") is None:
            continue
        hour, minute = int(match.group("h")), int(match.group("m") or 0)
        if match.group("ampm"):
            if hour > 12:
                continue
            hour = hour % 12 + (12 if match.group("ampm").lower().startswith("p") else 0)
        local = recorded_at.astimezone(zone)
        due = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
        if due < local:
            due += timedelta(days=1)
        return due.astimezone(UTC)
    return None


def without_start(text: str) -> str:
    """A fact's text without the start it writes ("since 09:10"): the letter gives the one
    start on record, in the account's time zone, once."""
    return STARTED.sub("", text).strip(" ,;")


_PAST = (
    (r"\bcannot\b|\bcan't\b|\bcan not\b", "could not"),
    (r"\bcan\b", "could"),
    (r"\bisn't\b|\bis not\b", "was not"),
    (r"\baren't\b|\bare not\b", "were not"),
    (r"\bdoesn't\b|\bdoes not\b|\bdon't\b|\bdo not\b", "did not"),
    (r"\bhave been\b|\bhas been\b", "had been"),
    (r"\bare being\b", "were being"),
    (r"\bis being\b", "was being"),
    (r"\bare\b", "were"),
    (r"\bis\b", "was"),
    (r"\bwon't\b|\bwill not\b", "would not"),
    (r"\bfails\b", "failed"),
    (r"\bfail\b", "failed"),
    (r"\bsee\b", "saw"),
    (r"\bsees\b", "saw"),
    (r"\bget\b", "got"),
    (r"\bgets\b", "got"),
)


def past(text: str) -> str:
    """The impact as it was: its present-tense verbs in the past ("Checkout fails" becomes
    "Checkout failed", "are slow" becomes "were slow"). Only the common verbs of an impact
    are changed; any other text is left as written."""
    for pattern, word in _PAST:
        text = re.sub(pattern, word, text, flags=re.IGNORECASE)
    return text


@dataclass(frozen=True)
class Conversation:
    """What the customer was told and what changed since: what the next letter must say."""

    last: Told | None  # the last approved letter
    letters: int
    ended: datetime | None  # when the impact ended, if it has
    ended_is_news: bool  # it ended after the last letter (or no letter went out)
    eta_before: str | None  # the ETA the last letter gave, when it changed or passed
    eta_changed: bool  # a new ETA replaces it
    eta_missed: datetime | None  # when the ETA we gave passed without a fix
    eta_stale: bool  # the current ETA's time has passed: it cannot be given as an estimate
    promise_missed: datetime | None  # the last letter's promised time, passed before this one
    left_out: frozenset[str]  # facts the approver removed, unchanged since: they stay out

    @property
    def acknowledgements(self) -> bool:
        return bool(self.eta_before or self.promise_missed)


def conversation(g: Grounding) -> Conversation:
    zone = g.zone()
    facts = g.facts
    last = g.told[-1] if g.told else None
    ended = facts.impact_ended
    ended_is_news = ended is not None and (last is None or last.impact_ended is None)
    # The ETA the customer was given, and whether it was kept.
    eta_before, eta_changed, eta_missed = None, False, None
    end = ended or g.resolved_at or g.now
    if last is not None and last.eta:
        current = facts.eta.text if facts.eta else None
        eta_changed = current is not None and current != last.eta
        due = eta_due(last.eta, last.eta_at or last.at, zone)
        if due is not None and due < end:
            eta_missed = due
        if eta_changed or eta_missed:
            eta_before = last.eta
    eta_stale = False
    if facts.eta is not None and ended is None and not g.resolved:
        due = eta_due(facts.eta.text, facts.eta.at, zone)
        eta_stale = due is not None and due <= g.now
    promise_missed = None
    if last is not None and last.promised is not None and g.now > last.promised:
        promise_missed = last.promised
    left_out = frozenset(
        kind
        for kind in (last.left_out if last else ())
        if (x := getattr(facts, kind, None)) is not None and x.text == getattr(last, kind, None)
    )
    return Conversation(
        last=last,
        letters=len(g.told),
        ended=ended,
        ended_is_news=ended_is_news,
        eta_before=eta_before,
        eta_changed=eta_changed,
        eta_missed=eta_missed,
        eta_stale=eta_stale,
        promise_missed=promise_missed,
        left_out=left_out,
    )


# --- reading an approved letter back ---------------------------------------------------------

_MONTH = {m: n for n, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug",
                                       "Sep", "Oct", "Nov", "Dec"), start=1)}  # fmt: skip
# A time as `human_time` writes it: "Fri 4 Dec 2026, 10:20 EST".
_HUMAN_TIME = re.compile(
    r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) (?P<d>\d{1,2}) (?P<mon>" + "|".join(_MONTH) + r") "
    r"(?P<y>\d{4}), (?P<h>\d{2}):(?P<m>\d{2})"
)
_PROMISING = re.compile(
    r"next update|check in|check-in|hear from us|update you|write to you again", re.IGNORECASE
)


def promised_in(text: str, zone: tzinfo) -> datetime | None:
    """The time a letter promises (its next update, or its check-in), read back from the text
    as approved, in the account's time zone: a person may have edited it. None when no
    sentence makes a promise with a time in the form letters write."""
    found = None
    for sentence in re.split(r"(?<=[.!?])\s+|\n", text):
        if not _PROMISING.search(sentence):
            continue
        for m in _HUMAN_TIME.finditer(sentence):
            local = datetime(
                int(m.group("y")), _MONTH[m.group("mon")], int(m.group("d")),
                int(m.group("h")), int(m.group("m")), tzinfo=zone,
            )  # fmt: skip
            found = local.astimezone(UTC)
    return found


_LABELS = {
    "workaround": "What you can do meanwhile",
    "advice": "What we recommend you do",
    "doing": "What we are doing",
    "eta": "When to expect a fix",
}


def left_out_of(recorded: dict[str, str | None], text: str) -> tuple[str, ...]:
    """The recorded facts (kind to text) an edited letter no longer carries: neither their
    line nor their text is in it, so the approver took them out (the next letter keeps them
    out until they change)."""
    flat = " ".join(text.split()).casefold()
    out = []
    for kind, label in _LABELS.items():
        fact = recorded.get(kind)
        if not fact:
            continue
        said = " ".join(fact.split()).casefold().rstrip(".")
        if label.casefold() not in flat and said not in flat:
            out.append(kind)
    return tuple(out)


# --- the customer executive's asks -----------------------------------------------------------

_ASK = (
    r"asks?|asked|asking|wants?|wanted|requests?|requested|demands?|demanded|expects?|"
    r"would like|insists?|insisted"
)


def executive_asks(g: Grounding) -> tuple[tuple[str, str], ...]:
    """What the customer's executive asked for, as the room recorded it: a sentence of the
    timeline or the room's talk that names an executive (or the contact) and an ask ("their
    CFO asks for a call with our CEO"), with where it was said; oldest first."""
    contact = (g.executive_contact() or "").split(",")[0]
    names = [re.escape(n) for n in contact.split() if len(n) > 2 and n[0].isupper()]
    executive = re.compile(
        r"(?<!\w)(?:" + "|".join([_EXECUTIVE, *names]) + r")(?!\w)", re.IGNORECASE
    )
    ask = re.compile(r"(?<!\w)(?:" + _ASK + r")(?!\w)", re.IGNORECASE)
    sources = [(e.id or "timeline", e.text) for e in sorted(g.timeline, key=lambda e: e.at)]
    sources += [(m.id or "room", m.text) for m in sorted(g.room_messages, key=lambda m: m.at)]
    found: list[tuple[str, str]] = []
    for where, text in sources:
        for clause in _CLAUSE.findall(text):
            match = ask.search(clause)
            if match and executive.search(clause[: match.start()]):
                found.append((where, " ".join(clause.split())))
    return tuple(found)

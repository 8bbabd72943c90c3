"""What the record says about an escalation once it is read as a whole: how long the customer
was affected (from the impact facts, not from the declaration), the numbers people recorded,
the protocol steps that were on time or late, the key moments, the conversation with the
customer (each letter, the times they promised and whether they were kept, the customer's asks
and whether a letter answered them), what helped and what slowed, and what the account's
contract terms come to (`agents.credits`).

Shared by the review prompt (handed to the model as derived facts, so it does not do the
arithmetic itself) and the offline review. Durations are in the escalation's own time: a
drill run at 60x speed is judged in drill time throughout (`Grounding.drill`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from agents.checks import placeholder
from agents.credits import Basis, Credit, credit
from agents.grounding import (
    Grounding,
    StepView,
    TimelineEntry,
    format_arr,
    one_line,
    short_utc,
)
from agents.playbook import personal_reasons
from protocols.durations import human_duration

# The house rule for a goodwill credit when no SLA term decides (also said to the model).
CREDIT_ARR_THRESHOLD = 100_000
CREDIT_DURATION_THRESHOLD = timedelta(hours=4)
COMPENSATION_RULE = (
    "judge compensation first against the account's SLA and credit terms; beyond them, "
    f"consider a goodwill credit when the account's ARR is {format_arr(CREDIT_ARR_THRESHOLD)} "
    "or more and the customer was affected for more than 4 hours, or the account is at risk "
    "of churning; otherwise offer none by default"
)

# A number people recorded about the impact: a share, a count of things, a latency.
_MEASURE = re.compile(
    r"\d[\d,.]*\s*%|\b\d[\d,]*\s+(?:[a-z-]+\s+){0,2}(?:users|customers|tenants|accounts|calls|"
    r"requests|orders|transactions|errors|records|rows|files|messages|payments|sessions|jobs|"
    r"emails|seats|devices|stores|sites)\b|\bp\d{2}\b|\b\d+(?:\.\d+)?\s*(?:ms|seconds|secs?)\b",
    re.IGNORECASE,
)
# Kinds of timeline entry the bot writes itself: never a measure of impact.
_BOT_KINDS = frozenset(
    {"declared", "ic_assigned", "war_room_ready", "step_done", "customer_update", "review",
     "reminder", "nudge", "follow_up"}
)  # fmt: skip


def span(g: Grounding, value: timedelta) -> str:
    """A duration of the record in the escalation's own time, for people."""
    return human_duration(g.drill(value))


def drill_note(g: Grounding) -> str:
    """The sentence that says a review is in drill time, or ""."""
    if g.clock_scale == 1:
        return ""
    return (
        f"This was a drill run at {g.clock_scale:g}x speed: every duration here is in drill "
        "time, and times are given from the declaration (T+)."
    )


def when(g: Grounding, at: datetime) -> str:
    """A moment of the record: UTC on the wall clock, or T+ drill time for a drill."""
    if g.clock_scale == 1:
        return short_utc(at)
    offset = at - g.declared_at
    if abs(offset) < timedelta(seconds=1):
        return "T+0"
    sign = "-" if offset < timedelta(0) else "+"
    return f"T{sign}{span(g, abs(offset))}"


@dataclass(frozen=True)
class Impact:
    began: datetime | None
    ended: datetime | None
    until: datetime  # when the span ends: the impact's end, else resolution, else now
    measures: tuple[str, ...]  # what people recorded with numbers, each with where

    @property
    def span(self) -> timedelta | None:
        return self.until - self.began if self.began is not None else None


def impact(g: Grounding) -> Impact:
    facts = g.facts
    until = facts.impact_ended or g.resolved_at or g.now
    return Impact(facts.impact_began, facts.impact_ended, until, tuple(measures(g)))


def measures(g: Grounding) -> list[str]:
    """The record's lines that put a number on the impact, each once, with where it is."""
    found: list[tuple[datetime, str]] = []
    seen: set[str] = set()
    sources = [(f.at, f.id, f.text) for f in g.facts.said()]
    # A fact's own entry says "Impact: ..." around the fact's text: the same line, once.
    sources += [(e.at, e.id, fact_text(e)) for e in g.timeline if e.kind not in _BOT_KINDS]
    sources += [(m.at, m.id, m.text) for m in g.room_messages]
    for at, ident, text in sources:
        if not _MEASURE.search(text) or text in seen:
            continue
        seen.add(text)
        where = f"{when(g, at)}, {ident}" if ident else when(g, at)
        found.append((at, f"{_clip(one_line(text))} ({where})"))
    return [line for _, line in sorted(found)]


def _clip(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


# --- the protocol's steps --------------------------------------------------------------------


def on_time(g: Grounding) -> list[StepView]:
    return [s for s in g.steps if s.done_at and s.due_at and s.done_at <= s.due_at]


def late(g: Grounding) -> list[StepView]:
    return [s for s in g.steps if s.done_at and s.due_at and s.done_at > s.due_at]


def nudges(g: Grounding) -> int:
    return sum(1 for e in g.timeline if e.kind == "nudge")


def detection_lag(g: Grounding) -> timedelta | None:
    """How long the impact ran before the escalation was declared, when that is recorded."""
    began = g.facts.impact_began
    if began is None or began >= g.declared_at:
        return None
    lag = g.declared_at - began
    return lag if lag >= timedelta(minutes=15) / g.clock_scale else None


def helped(g: Grounding) -> list[str]:
    """What the record shows sped the response up or served the customer, as lessons worth
    keeping: each from something that happened, with when."""
    out = []
    workaround = g.facts.workaround
    if workaround is not None:
        out.append(
            f"A workaround reached the record {span(g, workaround.at - g.declared_at)} after "
            f"the declaration ({_ref(workaround.id)}): giving customers a way around the "
            "problem early eases the pressure while the fix is found."
        )
    cause = g.facts.cause
    if cause is not None:
        out.append(
            f"The cause was confirmed {span(g, cause.at - g.declared_at)} after the "
            f"declaration ({_ref(cause.id)}), so letters from then on could state it."
        )
    first = first_letter(g)
    if first is not None and not g.first_contact_late():
        out.append(
            f"The first letter reached the customer {span(g, first.at - g.declared_at)} after "
            "the declaration, inside the protocol's deadline."
        )
    kept = [p for p in promises(g) if p.kept is True]
    if kept and not any(p.kept is False for p in promises(g)):
        out.append(
            f"Every update time a letter promised was kept ({len(kept)} of {len(kept)}): the "
            "customer could plan around our word."
        )
    if g.timeline and not nudges(g) and g.update_interval is not None:
        out.append("Status updates kept to the cadence without a nudge.")
    return out


def slowed(g: Grounding) -> list[str]:
    """What the record shows held the response back or let the customer down, as lessons."""
    out = []
    lag = detection_lag(g)
    if lag is not None:
        out.append(
            f"The impact began {span(g, lag)} before the escalation was declared: find out why "
            "it was not detected or escalated sooner."
        )
    out += [
        f"{one_line(s.title)} was {span(g, s.done_at - s.due_at)} late: find out what held it up."
        for s in late(g)
        if s.done_at and s.due_at
    ]
    out += [
        f"{one_line(s.title)} is still not done, past its deadline: decide who owns it now."
        for s in g.overdue_steps()
    ]
    if g.first_contact_late() and not any(s.id == "customer_communication" for s in g.steps):
        out.append("The first word to the customer missed its deadline.")
    etas = eta_history(g)
    if len(etas) > 1:
        said = "; ".join(f"{_clip(one_line(fact_text(e)), 80)} ({_ref(e.id)})" for e in etas)
        out.append(
            f"The ETA given to the customer changed {len(etas) - 1} time(s) ({said}): give an "
            "ETA only with what it depends on, and tell the customer as soon as it moves."
        )
    for p in promises(g):
        if p.kept is not False:
            continue
        late_by = p.late_by
        came = (
            f"the next letter came {span(g, late_by)} late ({when(g, p.next_at)})"
            if late_by is not None and p.next_at is not None
            else "no letter has followed"
        )
        out.append(
            f"Letter {p.letter.n} promised the next update by {when(g, p.due)} and {came}: the "
            "promised time is the deadline, so remind before it, not on the internal cadence."
        )
    for ask in asks(g):
        if ask.topic is not None and ask.answered_in is None:
            out.append(
                f"The customer asked for {ask.topic} ({_ref(ask.ref)}) and no letter on record "
                "answers it: answer every ask in the next letter, even if the answer is not "
                "yet."
            )
    if nudges(g):
        out.append(
            f"Status updates needed {nudges(g)} nudge(s): agree who writes them before the "
            "next escalation."
        )
    if g.facts.impact is None:
        out.append(
            "What the customer experienced was never recorded for them: record impact early, "
            "it is the first thing a customer letter needs."
        )
    if g.facts.cause is None and g.resolved and g.facts.suspected_causes:
        out.append("The suspected cause was never confirmed: close that out in the follow-up.")
    return out


def factors(g: Grounding) -> list[str]:
    """What made the incident longer or worse for the customer, from what happened (the
    suspected causes are listed by the review itself)."""
    out = []
    lag = detection_lag(g)
    if lag is not None:
        out.append(
            f"The impact ran {span(g, lag)} before the escalation was declared (began "
            f"{when(g, g.facts.impact_began)}, declared {when(g, g.declared_at)}), which "  # type: ignore[arg-type]
            "lengthened it."
        )
    out += [
        f"{one_line(s.title)} was done {span(g, s.done_at - s.due_at)} after its deadline, "
        "which delayed the response."
        for s in late(g)
        if s.done_at and s.due_at
    ]
    cause = g.facts.cause
    if cause is not None:
        wrong = [s for s in g.facts.suspected_causes
                 if s.at < cause.at and not same_cause(s.text, cause.text)]  # fmt: skip
        if wrong:
            out.append(
                f"{len(wrong)} other cause(s) were suspected before the cause was confirmed "
                f"{span(g, cause.at - g.declared_at)} after the declaration: time went on "
                "leads that did not hold."
            )
    etas = eta_history(g)
    if len(etas) > 1:
        out.append(
            f"The fix took longer than first estimated: the ETA moved {len(etas) - 1} time(s) "
            f"after it was first given {when(g, etas[0].at)}."
        )
    if g.facts.workaround is None and g.facts.impact is not None:
        out.append("No workaround was recorded: the customer had no way around the problem.")
    return out


def first_letter(g: Grounding) -> Letter | None:
    sent = letters(g)
    return sent[0] if sent else None


def _ref(ident: str) -> str:
    return ident or "on record"


# --- the record's key moments ----------------------------------------------------------------

# Customer-facing facts, by the kind the record gives them (`fact` entries say "Eta: ...").
FACT_KINDS = frozenset({"impact", "workaround", "doing", "eta", "advice", "fixed"})
# Lines the bot writes on its own clock: reminders of what is due, never a moment of the
# incident itself.
_CLOCK_KINDS = frozenset(
    {"ic_assigned", "war_room_ready", "step_done", "review", "reminder", "nudge", "follow_up",
     "action", "action_done", "action_reminder"}
)  # fmt: skip
_FACT_LABELS = {
    "impact": "Impact recorded for the customer",
    "workaround": "Workaround recorded",
    "doing": "Mitigation under way",
    "eta": "ETA given",
    "advice": "Advice for the customer recorded",
    "fixed": "Fix in place",
}


def fact_kind(entry: TimelineEntry) -> str | None:
    """The customer-facing fact an entry recorded ("eta", "impact_ended", ...), or None."""
    if entry.kind in FACT_KINDS:
        return entry.kind
    if entry.kind != "fact":
        return None
    head = entry.text.split(":", 1)[0].strip().casefold()
    if head == "impact ended":
        return "impact_ended"
    return head if head in FACT_KINDS else None


def fact_text(entry: TimelineEntry) -> str:
    """A fact entry's text without its "Eta:" label."""
    if entry.kind == "fact" and ":" in entry.text:
        return entry.text.split(":", 1)[1].strip()
    return entry.text


@dataclass(frozen=True)
class Moment:
    at: datetime
    what: str
    ref: str = ""  # the entry it rests on


def key_moments(g: Grounding) -> list[Moment]:
    """The incident's key moments, oldest first: when the impact began, the declaration,
    each customer-facing fact (mitigations, ETAs and their changes, the fix), causes put
    forward and confirmed, people's updates, each letter to the customer with the time it
    promised, the resolution and when the impact ended. The bot's reminders and nudges are
    not moments of the incident and are left out."""
    out: list[Moment] = []
    entries = sorted(g.timeline, key=lambda e: e.at)
    if g.facts.impact_began is not None:
        out.append(Moment(g.facts.impact_began, "Impact began", _impact_ref(g)))
    letter_of = {x.id: x for x in letters(g) if x.id}
    etas = 0
    for e in entries:
        kind = fact_kind(e)
        actor = f" ({one_line(e.actor)})" if e.actor and e.actor != "warroom" else ""
        if e.kind in _CLOCK_KINDS or kind == "impact_ended":
            continue
        if e.kind == "declared":
            out.append(Moment(e.at, f"Escalation declared{actor}", e.id))
        elif kind is not None:
            label = _FACT_LABELS[kind]
            if kind == "eta":
                etas += 1
                label = "ETA given" if etas == 1 else "ETA changed"
            out.append(Moment(e.at, f"{label}{actor}: {_clip(one_line(fact_text(e)))}", e.id))
        elif e.kind == "cause":
            out.append(Moment(e.at, f"Cause suspected{actor}: {_clip(one_line(e.text))}", e.id))
        elif e.kind == "cause_confirmed":
            out.append(Moment(e.at, f"Cause confirmed{actor}: {_clip(one_line(e.text))}", e.id))
        elif e.kind == "customer_update":
            out.append(Moment(e.at, _letter_moment(g, letter_of.get(e.id), actor), e.id))
        elif e.kind == "resolved":
            out.append(Moment(e.at, f"Resolved{actor}: {_clip(one_line(e.text))}", e.id))
        elif e.text.strip():
            # People's updates and notes: what was tried and found, in their words.
            out.append(Moment(e.at, f"{_KIND_LABELS.get(e.kind, 'Noted')}{actor}: "
                              f"{_clip(one_line(e.text))}", e.id))  # fmt: skip
    if g.facts.impact_ended is not None:
        ended = next((e.id for e in entries if fact_kind(e) == "impact_ended"), "")
        out.append(Moment(g.facts.impact_ended, "Impact ended", ended))
    return sorted(out, key=lambda m: m.at)


_KIND_LABELS = {"update": "Update", "note": "Noted in the room"}


def _impact_ref(g: Grounding) -> str:
    return g.facts.impact.id if g.facts.impact is not None else ""


def _letter_moment(g: Grounding, letter: Letter | None, actor: str) -> str:
    if letter is None:
        return f"Letter to the customer approved{actor}"
    said = f"Letter {letter.n} to the customer approved{actor}"
    if letter.promised is not None:
        what = "a check-in" if letter.after_resolution else "the next update"
        said += f"; it promised {what} by {when(g, letter.promised)}"
    return said


# --- the customer conversation ---------------------------------------------------------------


@dataclass(frozen=True)
class Letter:
    """A letter approved for the customer, as the timeline has it."""

    n: int
    at: datetime
    by: str | None
    id: str
    text: str
    promised: datetime | None  # the next update (or check-in) it promised, when readable
    after_resolution: bool


_DAY_NAMES = r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]*\.?,?"
_MONTH_NUMBERS = {
    m: n
    for n, m in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1
    )
}
# "Mon 4 Nov 2024, 11:00 CST": the form letters write times in (`agents.grounding.human_time`).
_LETTER_TIME = re.compile(
    _DAY_NAMES + r"\s+(\d{1,2})\s+([A-Za-z]{3})[a-z]*\.?\s+(\d{4}),?\s+(?:at\s+)?(\d{1,2}):(\d{2})"
    r"(?:\s*([A-Z]{2,5}))?"
)
_CLOCK_TIME = re.compile(r"\b(\d{1,2}):(\d{2})(?:\s*([A-Z]{2,5}))?\b")
_PROMISE = re.compile(
    r"next update|update you|further update|hear from us|check in|write (?:to you )?again|"
    r"be in touch|get back to you|another update",
    re.IGNORECASE,
)
_SENTENCE = re.compile(r"[^\n]+?(?:[.!?](?=\s|$)|$)", re.MULTILINE)


def letters(g: Grounding) -> list[Letter]:
    """The letters approved for the customer, oldest first, each with the time it promised."""
    entries = sorted((e for e in g.timeline if e.kind == "customer_update"), key=lambda e: e.at)
    out = []
    for n, e in enumerate(entries, start=1):
        after = g.resolved_at is not None and e.at >= g.resolved_at
        out.append(Letter(n, e.at, e.actor, e.id, e.text, promised_time(g, e.text, e.at), after))
    return out


def promised_time(g: Grounding, text: str, sent: datetime) -> datetime | None:
    """The next-update (or check-in) time a letter promised, read in the account's time zone;
    None when no sentence of it promises a time."""
    zone = g.zone()
    for sentence in _SENTENCE.findall(text):
        if not _PROMISE.search(sentence):
            continue
        found = _LETTER_TIME.search(sentence)
        if found:
            day, month, year, hour, minute, label = found.groups()
            number = _MONTH_NUMBERS.get(month.casefold())
            if number is None:
                continue
            tz = UTC if label in {"UTC", "GMT"} else zone
            try:
                local = datetime(int(year), number, int(day), int(hour), int(minute), tzinfo=tz)
            except ValueError:
                continue
            return local.astimezone(UTC)
        clock = _CLOCK_TIME.search(sentence)
        if clock:
            hour, minute, label = clock.groups()
            tz = UTC if label in {"UTC", "GMT"} else zone
            local_sent = sent.astimezone(tz)
            try:
                at_ = local_sent.replace(hour=int(hour), minute=int(minute), second=0,
                                         microsecond=0)  # fmt: skip
            except ValueError:
                continue
            if at_ < local_sent:
                at_ += timedelta(days=1)
            return at_.astimezone(UTC)
    return None


@dataclass(frozen=True)
class Promise:
    """A time a letter promised, and whether the record shows it kept."""

    letter: Letter
    due: datetime
    kept: bool | None  # None: still ahead, or a check-in the record cannot show
    next_at: datetime | None  # when the next letter came, if one did

    @property
    def late_by(self) -> timedelta | None:
        if self.kept is False and self.next_at is not None:
            return self.next_at - self.due
        return None


# A letter within the minute it promised is on time: promised times are whole minutes.
_GRACE = timedelta(minutes=1)


def promises(g: Grounding) -> list[Promise]:
    """Every promised time of the approved letters, kept when the next letter came by it."""
    sent = letters(g)
    out = []
    for i, letter in enumerate(sent):
        if letter.promised is None:
            continue
        after = sent[i + 1] if i + 1 < len(sent) else None
        if after is not None:
            out.append(Promise(letter, letter.promised, after.at < letter.promised + _GRACE,
                               after.at))  # fmt: skip
        elif letter.after_resolution or g.now < letter.promised + _GRACE:
            out.append(Promise(letter, letter.promised, None, None))
        else:
            out.append(Promise(letter, letter.promised, False, None))
    return out


def eta_history(g: Grounding) -> list[TimelineEntry]:
    """Each ETA given for the customer, oldest first: every one after the first is a change."""
    return [e for e in sorted(g.timeline, key=lambda e: e.at) if fact_kind(e) == "eta"]


# What a customer's ask is about, and the words of a letter that answer it.
_ASK_TOPICS: dict[str, re.Pattern[str]] = {
    "a call": re.compile(r"\b(?:call|calls|talk|speak|meeting|meet)\b", re.IGNORECASE),
    "service credits or money": re.compile(
        r"\b(?:credits?|refunds?|refunded|compensat\w*|money|reimburs\w*|discount)\b",
        re.IGNORECASE,
    ),
    "a written report": re.compile(
        r"\b(?:report|rca|root cause|post-incident|write-up|writeup|review)\b", re.IGNORECASE
    ),
    "when it will be fixed": re.compile(r"\b(?:eta|when|fix time|how long)\b", re.IGNORECASE),
    "what data was affected": re.compile(r"\b(?:data|records|exposed|accessed)\b", re.IGNORECASE),
}
_ASK = re.compile(
    r"\b(?:asks?|asked|asking|requests?|requested|requesting|wants?|wanted|demands?|demanded|"
    r"would like|insists?|insisted|expects?|expecting)\b",
    re.IGNORECASE,
)
_CUSTOMER_SIDE = (
    r"customer|client|their|CEO|CTO|CFO|COO|CIO|CISO|VP|exec\w*|president|founder|"
    r"head of|director|board|legal team|procurement"
)


# What we asked of the customer ("we asked them to retry") is not their ask of us.
_OUR_ASK = re.compile(
    r"\b(?:we|I|our \w+)\s+(?:have\s+|had\s+|also\s+)?(?:asked|requested|want\w*|expect\w*)|"
    r"\b(?:asked|requested)\s+(?:the\s+)?(?:customer|client|them)\s+to\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Ask:
    at: datetime
    ref: str  # the entry or message it rests on
    text: str  # the clause, as said in the room
    topic: str | None
    answered_in: Letter | None  # the first later letter that speaks to its topic


def asks(g: Grounding) -> list[Ask]:
    """What the customer asked for, as people recorded it in the room or the timeline, and
    the first later letter that speaks to it (by its topic: a call, credits, a report, ...)."""
    names = [g.customer, (g.executive_contact() or "").split(",")[0]]
    words = [re.escape(w) for n in names for w in n.split() if len(w) > 2]
    side = re.compile(r"(?<!\w)(?:" + "|".join([_CUSTOMER_SIDE, *words]) + r")(?!\w)",
                      re.IGNORECASE)  # fmt: skip
    sources = [(e.at, e.id, e.text) for e in g.timeline
               if e.kind in {"update", "note"} and e.text]  # fmt: skip
    sources += [(m.at, m.id, m.text) for m in g.room_messages]
    sent = letters(g)
    out: list[Ask] = []
    seen: set[str] = set()
    for at_, ref, text in sorted(sources, key=lambda s: s[0]):
        for clause in re.findall(r"[^.!?;\n]+", text):
            verb = _ASK.search(clause)
            if verb is None or not side.search(clause) or _OUR_ASK.search(clause):
                continue
            key = " ".join(clause.casefold().split())
            if key in seen:
                continue
            seen.add(key)
            after_verb = clause[verb.start() :]
            topic = next((t for t, p in _ASK_TOPICS.items() if p.search(after_verb)), None)
            answer = None
            if topic is not None:
                answer = next(
                    (x for x in sent if x.at > at_ and _ASK_TOPICS[topic].search(x.text)), None
                )
            out.append(Ask(at_, ref, _clip(one_line(clause.strip())), topic, answer))
    return out


def same_cause(a: str, b: str) -> bool:
    """Whether two statements of a cause say the same thing: equal, one inside the other, or
    most of their words shared ("cache race in Flumboid" and "the Flumboid cache race")."""
    x, y = _words(a), _words(b)
    if not x or not y:
        return False
    if x == y or x <= y or y <= x:
        return True
    return len(x & y) / min(len(x), len(y)) >= 0.6


def _words(text: str) -> set[str]:
    stop = {"the", "a", "an", "in", "on", "of", "to", "and", "for", "was", "is", "by", "from",
            "with", "our", "that", "it", "at", "as"}  # fmt: skip
    return {w for w in re.findall(r"[a-z0-9#]+", text.casefold()) if w not in stop}


# --- compensation ----------------------------------------------------------------------------


def sla_credit(g: Grounding) -> Credit:
    """The credit the account's terms come to for this incident's impact, with its basis."""
    found = impact(g)
    return credit(g, found.began, found.until)


def compensation(g: Grounding) -> str:
    """A recommendation with its reasoning: the SLA term that applies and what its credit
    rule comes to (capped, month by month), or why a person must decide; then the duration,
    the account's value, whether it is at risk, and whether the customer asked."""
    head, reasons, weighed = _compensation(g)
    return " ".join([head, *(r.strip() for r in (*reasons, *weighed) if r.strip())])


def compensation_advice(g: Grounding) -> str:
    """The recommendation and what else it weighs, without the credit's own arithmetic (the
    prompt gives that on its own line)."""
    head, _, weighed = _compensation(g)
    return " ".join([head, *(r.strip() for r in weighed if r.strip())])


def _compensation(g: Grounding) -> tuple[str, list[str], list[str]]:
    found = impact(g)
    owed = sla_credit(g)
    reasons = list(owed.reasons)
    if owed.basis is Basis.UNKNOWN:
        if found.began is None:
            reasons.append(
                placeholder("impact began", "record when the customer was first affected") + "."
            )
        elif not g.customer_facts.get("sla"):
            how = "add sla and credits to customer_insights.yaml"
            reasons.append(placeholder("sla", how) + ".")
        elif not g.customer_facts.get("credits"):
            reasons.append(placeholder("credits", "add credits to customer_insights.yaml") + ".")
    arr = g.account_arr()
    lasted = g.drill(found.span) if found.span is not None else g.drill(g.elapsed())
    at_risk = personal_reasons(g)
    goodwill = (
        arr is not None and arr >= CREDIT_ARR_THRESHOLD and lasted > CREDIT_DURATION_THRESHOLD
    ) or bool(at_risk)
    worth = f"ARR {format_arr(arr)}" if arr is not None else "no ARR on record"
    risk = f"; {' and '.join(at_risk)}" if at_risk else ""
    account = f"Account: {worth}; affected for {human_duration(lasted)}{risk}."
    if owed.needs_judgement:
        head = "Needs a person's judgement: no figure is recommended."
        account += " Weigh these too; the VP should make any offer personally."
    elif owed.owed:
        head = f"Recommend offering the SLA credit: {owed.amount}."
        if at_risk:
            account += " The VP should make the offer personally."
    elif goodwill:
        head = "Recommend considering a goodwill credit."
        account += " Consider a goodwill credit beyond the SLA, offered personally by the VP."
    else:
        head = "No compensation recommended by default."
    weighed = [account]
    money = [a for a in asks(g) if a.topic == "service credits or money"]
    if money:
        weighed.append(
            f"The customer asked about money ({_ref(money[0].ref)}): answer them once this is "
            "decided, in a letter the VP signs."
        )
    if g.clock_scale != 1:
        head += " (A drill: nothing is owed; the arithmetic shows how the terms would apply.)"
    return head, reasons, weighed

"""What the record says about an escalation once it is read as a whole: how long the customer
was affected (from the impact facts, not from the declaration), the numbers people recorded,
the protocol steps that were on time or late, what helped and what slowed, and whether the
account's SLA was missed and what its credit terms come to.

Shared by the review prompt (handed to the model as derived facts, so it does not do the
arithmetic itself) and the offline review. Durations are in the escalation's own time: a
drill run at 60x speed is judged in drill time throughout (`Grounding.drill`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from agents.checks import placeholder
from agents.grounding import Grounding, StepView, format_arr, one_line, short_utc
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

_PERIODS = {"month": timedelta(days=30), "quarter": timedelta(days=91), "year": timedelta(days=365)}

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
    sources += [(e.at, e.id, e.text) for e in g.timeline if e.kind not in _BOT_KINDS]
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
    """What the record shows worked, as lessons worth keeping."""
    out = [
        f"{one_line(s.title)} was done on time ({when(g, s.done_at)}, due {when(g, s.due_at)}): "
        "keep what made that possible."
        for s in on_time(g)
        if s.done_at and s.due_at
    ]
    workaround = g.facts.workaround
    if workaround is not None:
        out.append(
            f"A workaround reached the record {span(g, workaround.at - g.declared_at)} after "
            "the declaration: giving customers a way around the problem early eases the "
            "pressure while the fix is found."
        )
    cause = g.facts.cause
    if cause is not None:
        out.append(
            f"The cause was confirmed {span(g, cause.at - g.declared_at)} after the "
            "declaration, so the letters could say it with confidence."
        )
    if g.timeline and not nudges(g) and g.update_interval is not None:
        out.append("Status updates kept to the cadence without a nudge.")
    return out


def slowed(g: Grounding) -> list[str]:
    """What the record shows held the response back, as lessons."""
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


# --- SLA and compensation --------------------------------------------------------------------


@dataclass(frozen=True)
class SlaCheck:
    terms: str  # the SLA as the account file says it
    target: float  # percent, e.g. 99.9
    period: str  # "month", "quarter" or "year"
    allowed: timedelta  # downtime the target allows in the period
    downtime: timedelta  # this incident's impact, in the escalation's own time
    credits: str  # the credit terms as written, or ""
    credit_each: float | None  # percent of the fee per step below the target
    step: float | None  # the step, in percentage points

    @property
    def uptime(self) -> float:
        return 100 * (1 - self.downtime / _PERIODS[self.period])

    @property
    def missed(self) -> bool:
        return self.downtime > self.allowed

    @property
    def shortfall(self) -> float:
        return max(0.0, self.target - self.uptime)

    @property
    def steps(self) -> int | None:
        if not self.step:
            return None
        return math.floor(self.shortfall / self.step + 1e-9)


def sla_check(g: Grounding) -> SlaCheck | None:
    """The account's SLA applied to this incident's impact, or None when either is unknown."""
    terms = " ".join(str(g.customer_facts.get("sla") or "").split())
    found = impact(g)
    target = re.search(r"(\d{1,2}(?:\.\d+)?)\s*%", terms)
    if not terms or not target or found.span is None:
        return None
    period = next((p for p in _PERIODS if p in terms.casefold()), "month")
    if re.search(r"annual|yearly", terms, re.IGNORECASE):
        period = "year"
    pct = float(target.group(1))
    credits = " ".join(str(g.customer_facts.get("credits") or "").split())
    rate = re.search(
        r"(\d+(?:\.\d+)?)\s*%.*?(?:per|for each|every)\s*(\d+(?:\.\d+)?)\s*%", credits, re.I
    )
    return SlaCheck(
        terms=terms,
        target=pct,
        period=period,
        allowed=_PERIODS[period] * (1 - pct / 100),
        downtime=g.drill(found.span),
        credits=credits,
        credit_each=float(rate.group(1)) if rate else None,
        step=float(rate.group(2)) if rate else None,
    )


def compensation(g: Grounding) -> str:
    """A recommendation with its reasoning: the SLA and its credit terms first, then the
    duration, the account's value and whether it is at risk."""
    found = impact(g)
    check = sla_check(g)
    reasons: list[str] = []
    recommend = False
    if check is not None:
        allowed = human_duration(check.allowed)
        if check.missed:
            recommend = True
            reasons.append(
                f"The impact lasted {human_duration(check.downtime)}, more than the {allowed} "
                f"of downtime a {check.period} the account's SLA ({check.terms}) allows: "
                f"uptime this {check.period} is at most {check.uptime:.2f}%, "
                f"{check.shortfall:.2f} points below, if this impact counts as downtime under "
                "the contract."
            )
            reasons.append(_credit_terms(check))
        else:
            reasons.append(
                f"The impact lasted {human_duration(check.downtime)}, within the {allowed} a "
                f"{check.period} the account's SLA ({check.terms}) allows: no SLA credit "
                f"is owed for this incident alone (other downtime this {check.period} counts "
                "too)."
            )
    elif found.span is None:
        reasons.append(
            "When the impact began is not recorded, so the SLA cannot be checked: "
            + placeholder("impact began", "record when the customer was first affected")
            + "."
        )
    else:
        reasons.append(
            "No SLA is on file for this account: "
            + placeholder("sla", "add sla and credits to customer_insights.yaml")
            + "."
        )
    arr = g.account_arr()
    lasted = g.drill(found.span) if found.span is not None else g.drill(g.elapsed())
    at_risk = personal_reasons(g)
    goodwill = (
        arr is not None and arr >= CREDIT_ARR_THRESHOLD and lasted > CREDIT_DURATION_THRESHOLD
    ) or bool(at_risk)
    worth = f"ARR {format_arr(arr)}" if arr is not None else "no ARR on record"
    risk = f"; {' and '.join(at_risk)}" if at_risk else ""
    reasons.append(
        f"Account: {worth}; affected for {human_duration(lasted)}{risk}. "
        + (
            "Consider a goodwill credit beyond the SLA, offered personally by the VP."
            if goodwill and not recommend
            else "The VP should make the offer personally."
            if at_risk
            else ""
        )
    )
    head = (
        "Recommend offering the SLA credit."
        if recommend
        else "Recommend considering a goodwill credit."
        if goodwill
        else "No compensation recommended by default."
    )
    if g.clock_scale != 1:
        head += " (A drill: nothing is owed; the arithmetic shows how the terms would apply.)"
    return " ".join([head, *(r.strip() for r in reasons if r.strip())])


def _credit_terms(check: SlaCheck) -> str:
    if check.credit_each is None or check.steps is None:
        if check.credits:
            return f"The credit terms ({check.credits}) decide the amount: agree it with finance."
        return (
            "No credit terms are on file: "
            + placeholder("credits", "add credits to customer_insights.yaml")
            + "."
        )
    steps = check.steps
    amount = steps * check.credit_each
    partial = " (a part step is not counted: check how the contract rounds)"
    return (
        f"Under the terms ({check.credits}) that is {steps} full step(s) of "
        f"{check.step:g} points: {amount:g}% of the {check.period}ly fee{partial}."
    )

"""Service credits from the account's contract terms, as a VP would work them out before
signing a review: which SLA term applies to what happened, the impact split by calendar
period, the credit rule and its cap, and where the terms do not fit, the reason a person has
to decide.

The terms are the free text people keep in `customer_insights.yaml` (`sla`, `credits`), read
clause by clause:

- an uptime term ("99.9% monthly uptime") applies to an outage: the impact's minutes in each
  calendar month (UTC) against that month's own length, and a credit per step below the
  target ("10% of the monthly fee per 0.1% below the SLA");
- a latency term ("p95 API latency under 800 ms") applies to a slowdown, credited only when
  the credit terms give a rule for it ("5% of the monthly fee per hour ... latency ...");
- a cap ("up to 50%") bounds the credit of each period.

A security or legal matter is credited case by case, and an impact that is neither the
service down nor slow is not what an SLA measures: both need a person's judgement, with the
reasoning and never a number. So does a latency term without a credit rule.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from agents.grounding import Grounding, one_line
from protocols.durations import human_duration

SECURITY = "security_incident"
LEGAL = "legal_regulatory"

_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December")  # fmt: skip


class Basis(StrEnum):
    UPTIME = "uptime"  # the uptime term applies, and its rule gives a number
    LATENCY = "latency"  # the latency term applies, and its rule gives a number
    NONE = "none"  # no SLA term covers what happened: no SLA credit is owed
    WITHIN = "within"  # the term applies and was met: no SLA credit is owed
    JUDGEMENT = "judgement"  # the terms do not decide: a person must
    UNKNOWN = "unknown"  # the record lacks what the terms need (the start, the terms)


# --- reading the terms -----------------------------------------------------------------------

_LATENCY = re.compile(
    r"latenc\w*|response[ -]times?|\bp\d{2}\b|\b\d+(?:\.\d+)?\s*(?:ms|milliseconds?|seconds?|s)\b|"
    r"\bslow\w*",
    re.IGNORECASE,
)
_PERCENT = re.compile(r"(\d{1,3}(?:\.\d+)?)\s*%")
_CAP = re.compile(
    r"(?:up to|capped at|a cap of|cap(?:ped)? of|maximum(?: of)?|max\.?|at most|"
    r"not (?:to )?exceed(?:ing)?|no more than)\s*(\d{1,3}(?:\.\d+)?)\s*%",
    re.IGNORECASE,
)
# "10% of the monthly fee per 0.1% below": a share of the fee per step below the target.
_PER_STEP = re.compile(
    r"(\d{1,3}(?:\.\d+)?)\s*%[^;%]*?\b(?:per|for each|every)\s+(\d+(?:\.\d+)?)\s*"
    r"(?:%|percentage points?|points?)",
    re.IGNORECASE,
)
# "5% of the monthly fee per hour": a share of the fee per unit of time in breach.
_PER_TIME = re.compile(
    r"(\d{1,3}(?:\.\d+)?)\s*%[^;%]*?\b(?:per|for each|every)\s+(?:(\d+)\s+)?(?:full\s+|started\s+)?"
    r"(minute|hour|day)s?\b",
    re.IGNORECASE,
)
_UNITS = {"minute": timedelta(minutes=1), "hour": timedelta(hours=1), "day": timedelta(days=1)}


@dataclass(frozen=True)
class Rule:
    """One credit rule of the terms: a share of the fee per step below the target, or per
    unit of time in breach."""

    rate: float  # percent of the period's fee
    per_points: float | None = None
    per_time: timedelta | None = None
    text: str = ""  # the clause as written
    cap: float | None = None  # a cap its own clause sets ("..., up to 25%")


@dataclass(frozen=True)
class Terms:
    sla: str  # as the account file says it
    credits: str
    uptime: float | None  # the uptime target, percent
    latency: str  # the latency promise as written, or ""
    period: str  # "month", "quarter" or "year"
    uptime_rule: Rule | None
    latency_rule: Rule | None
    cap: float | None  # percent of the period's fee, for every rule without its own


def _clauses(text: str) -> list[str]:
    # "99.9% monthly uptime; p95 latency under 800 ms" holds two terms. A comma followed by a
    # cap ("..., up to 50%") belongs to its clause, so commas split only before a new figure.
    parts = re.split(r";|\.\s|\n|,\s*(?=(?:and\s+)?(?:p\d{2}|\d[\d.]*\s*%\s+(?:monthly|uptime|"
                     r"availability)))", text)  # fmt: skip
    return [p.strip() for p in parts if p.strip()]


def terms(g: Grounding) -> Terms | None:
    """The account's SLA and credit terms as far as they can be read, or None without an SLA."""
    sla = " ".join(str(g.customer_facts.get("sla") or "").split())
    credits = " ".join(str(g.customer_facts.get("credits") or "").split())
    if not sla:
        return None
    uptime: float | None = None
    latency = ""
    for clause in _clauses(sla):
        if _LATENCY.search(clause):
            latency = latency or clause
        elif (found := _PERCENT.search(clause)) and uptime is None:
            uptime = float(found.group(1))
    period = "month"
    if re.search(r"quarter", sla, re.IGNORECASE):
        period = "quarter"
    if re.search(r"annual|yearly|\byear\b", sla, re.IGNORECASE):
        period = "year"
    uptime_rule = latency_rule = None
    cap: float | None = None
    for clause in _clauses(credits):
        found_cap = _CAP.search(clause)
        own_cap = float(found_cap.group(1)) if found_cap else None
        cap_free = _CAP.sub("", clause)
        step = _PER_STEP.search(cap_free)
        timed = _PER_TIME.search(cap_free)
        if step and uptime_rule is None and not _LATENCY.search(clause):
            uptime_rule = Rule(
                float(step.group(1)), per_points=float(step.group(2)), text=clause, cap=own_cap
            )
        elif timed:
            rule = Rule(
                float(timed.group(1)),
                per_time=int(timed.group(2) or 1) * _UNITS[timed.group(3).casefold()],
                text=clause,
                cap=own_cap,
            )
            if _LATENCY.search(clause):
                latency_rule = latency_rule or rule
            else:
                uptime_rule = uptime_rule or rule
        elif own_cap is not None:
            cap = cap if cap is not None else own_cap  # a cap of its own, for every rule
    return Terms(
        sla=sla,
        credits=credits,
        uptime=uptime,
        latency=latency,
        period=period,
        uptime_rule=uptime_rule,
        latency_rule=latency_rule,
        cap=cap,
    )


# --- what happened ---------------------------------------------------------------------------

_DOWN = re.compile(
    r"\b(?:cannot|can't|can ?not|unable|fail\w*|down|outage\w*|unavailable|unreachable|"
    r"errors?|5\d\d|time[sd]? ?out|timeouts?|not (?:load|work|respond|open|available)\w*|"
    r"broken|offline|no access|locked out|blocked)\b",
    re.IGNORECASE,
)
_SLOW = re.compile(
    r"\b(?:slow\w*|latenc\w*|delay\w*|lag\w*|sluggish|takes? (?:up to )?\d+ ?(?:s|sec\w*|"
    r"min\w*)|behind|backlog\w*)\b",
    re.IGNORECASE,
)


class Nature(StrEnum):
    OUTAGE = "outage"
    SLOWDOWN = "slowdown"
    SECURITY = "security"
    LEGAL = "legal"
    OTHER = "other"


def nature(g: Grounding) -> Nature:
    """What kind of harm the record describes: the criteria first (a security or legal matter
    is one whatever else happened), then the words of the impact (else the summary)."""
    if SECURITY in g.criteria_ids:
        return Nature.SECURITY
    if LEGAL in g.criteria_ids:
        return Nature.LEGAL
    text = g.facts.impact.text if g.facts.impact is not None else g.summary
    if _DOWN.search(text):
        return Nature.OUTAGE
    if _SLOW.search(text):
        return Nature.SLOWDOWN
    return Nature.OTHER


# --- calendar periods ------------------------------------------------------------------------


@dataclass(frozen=True)
class Share:
    """The part of the impact that fell in one calendar period."""

    label: str  # "May 2024", "Q2 2024", "2024"
    length: timedelta  # the period's own length
    impact: timedelta


def _period_start(at: datetime, period: str) -> datetime:
    if period == "year":
        return datetime(at.year, 1, 1, tzinfo=UTC)
    if period == "quarter":
        return datetime(at.year, 3 * ((at.month - 1) // 3) + 1, 1, tzinfo=UTC)
    return datetime(at.year, at.month, 1, tzinfo=UTC)


def _next_start(start: datetime, period: str) -> datetime:
    months = {"month": 1, "quarter": 3, "year": 12}[period]
    index = start.month - 1 + months
    return datetime(start.year + index // 12, index % 12 + 1, 1, tzinfo=UTC)


def _label(start: datetime, period: str) -> str:
    if period == "year":
        return str(start.year)
    if period == "quarter":
        return f"Q{(start.month - 1) // 3 + 1} {start.year}"
    return f"{_MONTHS[start.month - 1]} {start.year}"


def split(began: datetime, ended: datetime, period: str = "month") -> list[Share]:
    """The window [began, ended) cut at calendar period boundaries (UTC): each period with its
    own length and its own minutes of impact."""
    began, ended = began.astimezone(UTC), ended.astimezone(UTC)
    out: list[Share] = []
    start = _period_start(began, period)
    while start < ended:
        end = _next_start(start, period)
        part = min(end, ended) - max(start, began)
        if part > timedelta(0):
            out.append(Share(_label(start, period), end - start, part))
        start = end
    return out


# --- the credit ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PeriodCredit:
    share: Share
    detail: str  # the arithmetic for this period, in words
    percent: float  # after the cap
    uncapped: float


@dataclass(frozen=True)
class Credit:
    """What the terms come to for this incident, and why."""

    basis: Basis
    reasons: tuple[str, ...]  # the reasoning, in sentences
    periods: tuple[PeriodCredit, ...] = ()

    @property
    def owed(self) -> bool:
        return any(p.percent > 0 for p in self.periods)

    @property
    def needs_judgement(self) -> bool:
        return self.basis is Basis.JUDGEMENT

    @property
    def amount(self) -> str:
        """The credit as a share of each period's fee: "50% of the May 2024 fee", or ""."""
        owed = [p for p in self.periods if p.percent > 0]
        return " and ".join(f"{p.percent:g}% of the {p.share.label} fee" for p in owed)

    def line(self) -> str:
        """The credit and its basis in one line, as the review and the model get it."""
        if self.basis is Basis.JUDGEMENT:
            head = "needs a person's judgement, no figure"
        elif self.owed:
            head = f"{self.amount} (basis: the {self.basis.value} term)"
        elif self.basis is Basis.UNKNOWN:
            head = "cannot be worked out from the record"
        else:
            head = "no SLA credit is owed under the terms as written"
        return f"{head}. " + " ".join(self.reasons)


JUDGEMENT = "Needs a person's judgement"


def credit(g: Grounding, began: datetime | None, until: datetime) -> Credit:
    """The SLA credit for an impact from `began` to `until` (in the record's time)."""
    t = terms(g)
    kind = nature(g)
    if kind is Nature.SECURITY:
        return Credit(
            Basis.JUDGEMENT,
            (
                f"{JUDGEMENT}: this was a security incident, and security or confidentiality "
                "incidents are credited case by case. An SLA measures whether the service was "
                "up and fast, not what was exposed or to whom, so its arithmetic does not "
                "price this harm. Weigh what was exposed, what the customer must now do, their "
                "contract's confidentiality clauses and what legal advises.",
            ),
        )
    if kind is Nature.LEGAL:
        return Credit(
            Basis.JUDGEMENT,
            (
                f"{JUDGEMENT}: this is a legal or regulatory matter. Any credit or payment "
                "is decided with legal, case by case, never from the SLA's arithmetic.",
            ),
        )
    if t is None:
        return Credit(Basis.UNKNOWN, ("No SLA is on file for this account.",))
    if began is None:
        return Credit(
            Basis.UNKNOWN,
            ("When the impact began is not recorded, so the SLA cannot be applied.",),
        )
    window = began + g.drill(until - began)
    shares = split(began, window, t.period)
    lasted = human_duration(window - began)
    if kind is Nature.OTHER:
        what = one_line(g.facts.impact.text) if g.facts.impact is not None else "not recorded"
        return Credit(
            Basis.JUDGEMENT,
            (
                f"{JUDGEMENT}: what the customer experienced ({what}) was neither the service "
                f"being unavailable nor slow, which is what the SLA ({t.sla}) measures. Whether "
                "the terms cover it, and what would make the customer whole, is for a person "
                "to decide.",
            ),
        )
    if kind is Nature.SLOWDOWN:
        return _latency(t, shares, lasted)
    # A drill's calendar is its own: its months are not the customer's billing months.
    return _uptime(t, shares, lasted, " (UTC)" if g.clock_scale == 1 else "")


def _latency(t: Terms, shares: list[Share], lasted: str) -> Credit:
    if not t.latency:
        return Credit(
            Basis.NONE,
            (
                f"The service was slow for {lasted} but stayed available: the account's SLA "
                f"({t.sla}) promises availability, not speed, so no SLA term applies and no "
                "SLA credit is owed.",
            ),
        )
    if t.latency_rule is None or t.latency_rule.per_time is None:
        credits = f"its credit terms ({t.credits})" if t.credits else "no credit terms"
        return Credit(
            Basis.JUDGEMENT,
            (
                f"{JUDGEMENT}: the slowdown lasted {lasted}, which breaches the account's "
                f"latency term ({t.latency}) if the measured latency was above it, but "
                f"{credits} give no rule for a latency breach. Check the measurements for the "
                "window and agree any credit with the account owner and finance.",
            ),
        )
    periods = tuple(_timed(t, t.latency_rule, s) for s in shares)
    reasons = [
        f"The slowdown lasted {lasted}; the latency term ({t.latency}) applies, credited "
        f"under the terms ({t.latency_rule.text}).",
        *(p.detail for p in periods),
        "This assumes the recorded window is when the latency was above the term: check the "
        "measurements.",
    ]
    return Credit(Basis.LATENCY, tuple(reasons), periods)


def _uptime(t: Terms, shares: list[Share], lasted: str, zone: str) -> Credit:
    if t.uptime is None:
        return Credit(
            Basis.NONE,
            (
                f"The service was unavailable for {lasted}, but the account's SLA ({t.sla}) "
                "has no uptime term: no SLA credit is owed under it.",
            ),
        )
    rule = t.uptime_rule
    periods: list[PeriodCredit] = []
    missed = False
    for share in shares:
        allowed = share.length * (1 - t.uptime / 100)
        uptime = 100 * (1 - share.impact / share.length)
        head = (
            f"{share.label}: {human_duration(share.impact)} of impact against "
            f"{human_duration(allowed)} allowed ({t.uptime:g}% of {human_duration(share.length)})"
        )
        if share.impact <= allowed:
            periods.append(PeriodCredit(share, f"{head}: within the SLA.", 0, 0))
            continue
        missed = True
        shortfall = t.uptime - uptime
        head += f", uptime at most {uptime:.2f}%, {shortfall:.2f} points below"
        if rule is None:
            periods.append(PeriodCredit(share, f"{head}.", 0, 0))
        elif rule.per_points:
            steps = math.floor(shortfall / rule.per_points + 1e-9)
            detail = (
                f"{head}: {steps} full step(s) of {rule.per_points:g} points at {rule.rate:g}% "
                "each (a part step is not counted: check how the contract rounds)"
            )
            periods.append(_capped(_cap(t, rule), share, steps * rule.rate, detail))
        else:
            periods.append(_timed(t, rule, share, prefix=head))
    reasons = [
        f"The service was unavailable for {lasted}; the uptime term ({t.sla}) applies, "
        f"measured per calendar {t.period}{zone}, if this impact counts as downtime under "
        "the contract.",
        *(p.detail for p in periods),
    ]
    if not missed:
        return Credit(Basis.WITHIN, (*reasons, "No SLA credit is owed for this incident alone "
                      f"(other downtime this {t.period} counts too)."), tuple(periods))  # fmt: skip
    if rule is None:
        if not t.credits:
            reasons.append(
                "The SLA was missed, but no credit terms are on file: add credits to "
                "customer_insights.yaml, or agree the amount with finance."
            )
            return Credit(Basis.UNKNOWN, tuple(reasons), tuple(periods))
        reasons.append(
            f"{JUDGEMENT}: the SLA was missed, and the credit terms ({t.credits}) give no rule "
            "the arithmetic can apply: agree the amount with finance."
        )
        return Credit(Basis.JUDGEMENT, tuple(reasons), tuple(periods))
    return Credit(Basis.UPTIME, tuple(reasons), tuple(periods))


def _timed(t: Terms, rule: Rule, share: Share, prefix: str = "") -> PeriodCredit:
    assert rule.per_time is not None
    units = math.floor(share.impact / rule.per_time + 1e-9)
    unit = human_duration(rule.per_time)
    head = prefix or f"{share.label}: {human_duration(share.impact)} in breach"
    return _capped(_cap(t, rule), share, units * rule.rate,
                   f"{head}: {units} full period(s) of {unit} at {rule.rate:g}% each")  # fmt: skip


def _cap(t: Terms, rule: Rule) -> float | None:
    """The cap on a rule: its own clause's, else one the terms set for all."""
    return rule.cap if rule.cap is not None else t.cap


def _capped(cap: float | None, share: Share, percent: float, detail: str) -> PeriodCredit:
    percent = round(percent, 4)
    if cap is not None and percent > cap:
        return PeriodCredit(
            share,
            f"{detail} would be {percent:g}%, above the terms' cap: {cap:g}% of the "
            f"{share.label} fee.",
            cap,
            percent,
        )
    if cap is None and percent > 100:
        # Without a cap in the terms, a credit still cannot exceed what the customer paid.
        return PeriodCredit(
            share,
            f"{detail} would be {percent:g}%; the terms set no cap, but a credit is at most "
            f"the whole fee: 100% of the {share.label} fee (check the contract).",
            100,
            percent,
        )
    tail = "" if cap is not None else " (the terms set no cap)"
    return PeriodCredit(
        share, f"{detail}: {percent:g}% of the {share.label} fee{tail}.", percent, percent
    )

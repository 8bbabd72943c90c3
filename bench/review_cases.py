"""Post-incident reviews a VP would sign, judged automatically: escalations whose reviews went
wrong before (a credit far above the contract's cap, a slowdown charged as downtime under a
latency SLA, a confidentiality incident priced by uptime arithmetic, a window across two
months charged to one, a confirmed cause also listed as "not confirmed", a timeline buried in
reminders), each reviewed offline and requested from the loopback model with the real SDK.

Per review (offline): the credit figures are exactly what the terms come to, or none where a
person must judge; the timeline holds the key moments and no reminder; a confirmed cause is
nowhere "not confirmed"; no generic lesson; a customer-communication section that gives the
letters, the promises kept and missed and the customer's asks; the review's own checks pass.
Per request (what the loopback model receives): the credit and its basis, or the reason a
person decides; no "use it" arithmetic; no reminder among the moments; the confirmed-cause
rule where a cause is confirmed.

Run: python -m bench.review_cases (also part of python -m bench.drafts)
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from agents import audit, offline_review
from agents.grounding import Fact, Facts, Grounding, RoomMessage, StepView, TimelineEntry
from agents.review import parse_review
from agents.vp import VPAgent
from loopback.anthropic import FakeAnthropic

T0 = datetime(2024, 11, 4, 15, 0, tzinfo=UTC)  # a Monday; America/Chicago is on CST (UTC-6)

OK, NO = "✓", "✗"


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def line(minutes: float, kind: str, text: str, ident: str, actor: str = "@ivan") -> TimelineEntry:
    return TimelineEntry(at(minutes), kind, actor, text, ident)


def fact(text: str, minutes: float, ident: str, by: str = "@ivan") -> Fact:
    return Fact(text, by, at(minutes), ident)


@dataclass(frozen=True)
class ReviewCase:
    name: str
    g: Grounding
    credit: frozenset[str]  # the credit figures the review must give, exactly
    judgement: bool  # the terms do not decide: "needs a person's judgement", no figure
    asks: int = 0  # the customer's asks on the record


LETTER_1 = (
    "Subject: Update\n\nDear Dana,\n\nCheckout fails for some of your EU customers.\n"
    "You will have our next update by Mon 4 Nov 2024, 11:00 CST, sooner if anything changes."
)
LETTER_2 = (
    "Subject: Update\n\nDear Dana,\n\nThe rollback is under way; I would welcome a call with "
    "you this week.\nOur next update will reach you by Mon 4 Nov 2024, 14:30 CST."
)
NOTICE = (
    "Subject: Resolved\n\nDear Dana,\n\nThe issue is resolved.\n"
    "We will check in with you by Tue 5 Nov 2024, 14:00 CST to confirm all is well."
)

STEPS = (
    StepView("assessment", "Immediate assessment", at(15), at(10), "@ivan"),
    StepView("war_room", "Open the war room", at(30), at(20), "@ivan"),
    StepView("customer_communication", "First word to the customer", at(60), at(55), "@vera"),
)

# What happened, with the bot's reminders among it as they are in a real record.
TIMELINE = (
    line(0, "declared", "Declared: Initech", "T1", "@dana"),
    line(20, "fact", "Impact: Checkout fails for about 6 in 10 of your EU customers", "T2"),
    line(35, "cause", "Session cache race from PR #8812", "T3", "@erin"),
    line(40, "cause", "The Vexmoor DNS change", "T4", "@sam"),
    line(55, "customer_update", LETTER_1, "T5", "@vera"),
    line(70, "fact", "Eta: by 14:00 CST", "T6"),
    line(90, "nudge", "Status update overdue", "T7", "warroom"),
    line(110, "reminder", "Step war_room overdue", "T8", "warroom"),
    line(130, "fact", "Eta: by 17:00 CST", "T9"),
    line(140, "note", "Their CTO asks for a call with our CEO", "T10", "@sam"),
    line(150, "cause_confirmed", "A race in the session cache introduced by PR #8812", "T11"),
    line(170, "customer_update", LETTER_2, "T12", "@vera"),
    line(210, "nudge", "Status update overdue", "T13", "warroom"),
    line(300, "resolved", "Rolled back; all tenants healthy", "T14"),
    line(305, "customer_update", NOTICE, "T15", "@vera"),
)
FACTS = Facts(
    impact=fact("Checkout fails for about 6 in 10 of your EU customers", 20, "T2"),
    impact_began=at(-10),
    impact_ended=at(290),
    suspected_causes=(
        fact("Session cache race from PR #8812", 35, "T3", "@erin"),
        fact("The Vexmoor DNS change", 40, "T4", "@sam"),
    ),
    # confirmed in other words than it was suspected in: the same cause, not a second one
    cause=fact("A race in the session cache introduced by PR #8812", 150, "T11"),
)
ACCOUNT = {
    "arr": 480_000,
    "executive_contact": "Dana Whitfield, CTO",
    "timezone": "America/Chicago",
    "sla": "99.9% monthly uptime",
    "credits": "10% of the monthly fee per 0.1% below the SLA, up to 50%",
}


def base(**changes: object) -> Grounding:
    g = Grounding(
        escalation_id="esc-20241104-initech",
        customer="Initech",
        summary="EU checkout 502s on every tenant after deploy 4471",
        arr=480_000,
        criteria=("Production outage across customers",),
        criteria_ids=("multi_customer_outage",),
        status="resolved",
        ic="@ivan",
        declarer="@dana",
        declared_at=T0,
        now=at(320),
        steps=STEPS,
        timeline=TIMELINE,
        last_update_at=at(170),
        next_update_due=None,
        update_interval=timedelta(hours=2),
        resolved_at=at(300),
        resolution="Rolled back; all tenants healthy",
        customer_facts=ACCOUNT,
        facts=FACTS,
        signer="Vera Lindqvist",
        first_contact_due=at(60),
        first_contact_done_at=at(55),
        follow_ups=(at(300 + 24 * 60),),
        room_messages=(RoomMessage(at(100), "@sam", "The customer wants service credits", "M1"),),
    )
    return replace(g, **changes)  # type: ignore[arg-type]


LATENCY_SLA = "99.9% monthly uptime; p95 scan latency under 2 seconds"


def cases() -> list[ReviewCase]:
    days = replace(FACTS, impact_began=at(-3 * 24 * 60))
    slow = fact("Parcel scans are slow, taking up to 40 seconds each", 20, "T2")
    exposed = fact("Shared documents were readable through old share links", 20, "T2")
    across = replace(
        FACTS,
        impact_began=datetime(2024, 11, 30, 22, 0, tzinfo=UTC),
        impact_ended=datetime(2024, 12, 1, 4, 0, tzinfo=UTC),
    )
    return [
        # 3 days down: 72 steps of 10% would be 720%; the terms cap each month at 50%
        ReviewCase(
            "credits above a cap",
            base(facts=days),
            frozenset({"50% of the November 2024 fee"}),
            judgement=False,
            asks=2,
        ),
        ReviewCase(
            "latency SLA, no credit rule",
            base(
                facts=replace(FACTS, impact=slow, impact_began=at(-12 * 60)),
                customer_facts={**ACCOUNT, "sla": LATENCY_SLA},
            ),
            frozenset(),
            judgement=True,
            asks=2,
        ),
        ReviewCase(
            "security incident",
            base(facts=replace(FACTS, impact=exposed), criteria_ids=("security_incident",)),
            frozenset(),
            judgement=True,
            asks=2,
        ),
        # 2 h of November's 30 days, 4 h of December's 31: each month on its own minutes
        ReviewCase(
            "window across two months",
            base(facts=across),
            frozenset({"10% of the November 2024 fee", "40% of the December 2024 fee"}),
            judgement=False,
            asks=2,
        ),
        ReviewCase(
            "no asks on record",
            base(
                room_messages=(),
                timeline=tuple(e for e in TIMELINE if e.kind != "note"),
            ),
            frozenset({"50% of the November 2024 fee"}),
            judgement=False,
        ),
    ]


# --- the checks ------------------------------------------------------------------------------

_FIGURE = re.compile(r"\d+(?:\.\d+)?% of the [\w ]*?fee\b")
_REMINDER = re.compile(r"overdue|nudge|reminder", re.IGNORECASE)
_GENERIC = ("keep what made that possible",)


def credit_figures(g: Grounding, text: str) -> set[str]:
    """The credit figures of a compensation text, the account's terms quoted aside."""
    text = " ".join(text.split())
    terms = str(g.customer_facts.get("credits") or "")
    for quoted in sorted({terms, *terms.split(";")}, key=len, reverse=True):
        if quoted.strip():
            text = text.replace(quoted.strip(), "")
    return set(_FIGURE.findall(text))


def review_checks(case: ReviewCase) -> list[tuple[str, bool]]:
    g = case.g
    markdown = offline_review.offline_review(g)
    review = parse_review(markdown)
    compensation = str(review.get("compensation") or "")
    timeline = [str(x) for x in review.get("timeline") or ()]
    cause = g.facts.cause
    # The cause was suspected in other words than it was confirmed in: PR #8812 marks both.
    doubted = cause is not None and any(
        re.search(r"not confirmed|suspected", x, re.IGNORECASE) and "8812" in x
        for x in [str(review.get("root_cause")), *map(str, review.get("contributing_factors"))]
    )
    letters = sum(e.kind == "customer_update" for e in g.timeline)
    communication = [str(x) for x in review.get("customer_communication") or ()]
    said = " ".join(communication)

    def moments() -> bool:
        quiet = not any(_REMINDER.search(x) for x in timeline)
        return bool(timeline) and quiet and sum("Letter" in x for x in timeline) == letters

    def conversation() -> bool:
        asked = sum(x.startswith("The customer asked") for x in communication)
        counted = f"Letters approved for the customer: {letters}" in said
        return counted and "kept" in said and "missed" in said and asked == case.asks

    checks: list[tuple[str, Callable[[], bool]]] = [
        ("credit", lambda: credit_figures(g, compensation) == set(case.credit)),
        ("judgement", lambda: ("person's judgement" in compensation) is case.judgement),
        ("key moments", moments),
        ("cause once", lambda: not doubted),
        ("lessons", lambda: not any(w in str(review.get("lessons")) for w in _GENERIC)),
        ("communication", conversation),
        ("own checks", lambda: not audit.review(g, markdown)),
    ]
    return [(name, _safe(check)) for name, check in checks]


def request_checks(case: ReviewCase, user: str) -> list[tuple[str, bool]]:
    derived = user.split("<derived_facts>")[-1]
    credit_line = next((x for x in derived.splitlines() if x.startswith("credit:")), "")
    checks = [
        ("credit basis", (
            "needs a person's judgement" in credit_line
            and not credit_figures(case.g, credit_line)
            if case.judgement
            else all(c in credit_line for c in case.credit) and "basis:" in credit_line
        )),
        ("no 'use it'", "use it" not in user),
        ("no reminders", not any(
            _REMINDER.search(x) for x in derived.splitlines() if x.startswith("moment:")
        )),
        ("cause rule", (case.g.facts.cause is None) or "The cause is confirmed" in user),
    ]  # fmt: skip
    return checks


def _safe(check: Callable[[], bool]) -> bool:
    try:
        return bool(check())
    except Exception:
        return False


def model_requests(all_cases: list[ReviewCase]) -> list[str]:
    """Each case's review request, as the loopback Messages API received it."""
    with FakeAnthropic() as model:
        agent = VPAgent(api_key=model.api_key, base_url=model.url, timeout=10, max_retries=0)
        try:
            for case in all_cases:
                agent.review(case.g)
        finally:
            agent.close()
        return [r.user_text() for r in model.requests]


def table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")


def report() -> int:
    """Print the reviews' table; the number of failed checks."""
    all_cases = cases()
    requests = model_requests(all_cases)
    rows, failures, header = [], 0, []
    for case, user in zip(all_cases, requests, strict=True):
        offline = review_checks(case)
        asked = request_checks(case, user)
        failures += sum(not ok for _, ok in (*offline, *asked))
        header = [name for name, _ in offline]
        missing = ", ".join(name for name, ok in asked if not ok)
        carried = f"{sum(ok for _, ok in asked)}/{len(asked)}" + (
            f" (missing: {missing})" if missing else ""
        )
        rows.append([case.name, *(OK if ok else NO for _, ok in offline), carried])
    print(f"\n{len(all_cases)} post-incident reviews (offline), and the request to the model:\n")
    table(["review", *header, "request to the model"], rows)
    print(
        f"\n{failures} failed check(s). 'request to the model': the credit and its basis (or "
        "the reason a person decides), no 'use it' arithmetic, no reminder among the moments, "
        "the confirmed-cause rule."
    )
    return failures


if __name__ == "__main__":
    report()

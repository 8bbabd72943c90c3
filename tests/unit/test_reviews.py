"""Post-incident reviews: their shape (reading and writing the Markdown), and the offline
review, written from the record as a whole (agents.assessment): impact from the impact facts,
the key moments rather than every reminder, a confirmed cause never also "not confirmed",
contributing factors and lessons from what happened, the customer conversation (letters,
promises kept and missed, the customer's asks), action items as people took them on,
prevention apart from the cause, credits from the contract's terms (agents.credits: the cap,
the SLA term that applies, the impact split by calendar month, a person's judgement where the
terms do not fit), the request to the model that carries them, and a drill in drill time."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from agents import assessment, audit, credits, offline_review, prompts
from agents.grounding import ActionItem, Fact, Facts, Grounding, RoomMessage
from agents.review import (
    REVIEW_KEYS,
    REVIEW_SECTIONS,
    empty_review,
    lessons,
    parse_review,
    render_review,
)
from tests.agent_records import ACCOUNT, FACTS, T0, TIMELINE, at, entry, grounding, resolved


def task_of(messages: list[dict[str, Any]]) -> str:
    return messages[0]["content"][1]["text"]


# --- review parsing --------------------------------------------------------------------------

WELL_FORMED = """# Post-incident review: Zorblax Industries

## Summary

Checkout failed for EU tenants for 5 hours.
Resolved by failing over.

## Customer impact

Every EU checkout failed.

## Timeline

- 2024-05-01 10:00 UTC declared
- 2024-05-01 15:00 UTC resolved

## Root cause

Expired certificate on the EU load balancer.

## What went well

- Assessment on time

## What went badly

- War room 15 min late
- First customer contact overdue

## Customer communication

- Letters approved for the customer: 2
- Promised times: 1 kept, 0 missed.

## Action items

- <@U0INCCMDR>: automate certificate renewal
- Dana Whitfield: confirm satisfaction

## Prevention

- Alert 30 days before certificates expire

## Lessons learned

- Certificates need owners
- Rehearse failover

## Compensation or service credits

Recommend a service credit: ARR $480,000 and more than 4 h of impact.
"""

SLOPPY = """### SUMMARY:
Checkout failed.

**Customer Impact**
(not a heading, stays in the summary)

## timeline
* 10:00 declared
* 15:00 resolved,
  after failover

## Root Cause Analysis:
Not yet known

## What Went Well
1. Assessment on time
2) Good teamwork

## What went wrong
+ War room late

## Action Items:
- [ ] **Ivan**: renew certificates
- [x] Dana: call the customer: today
- Automate renewal

## Appendix
ignored text

## Preventive measures
Alert before expiry.

## Lessons
None.

## Compensation & Service Credits
No credit by default.

#### Why
The outage was short.
"""

PARTIAL = """## Summary
Short one.

## Action items
- IC: do it
"""


def test_parse_well_formed_review() -> None:
    review = parse_review(WELL_FORMED)
    assert review == {
        "summary": "Checkout failed for EU tenants for 5 hours.\nResolved by failing over.",
        "customer_impact": "Every EU checkout failed.",
        "timeline": ["2024-05-01 10:00 UTC declared", "2024-05-01 15:00 UTC resolved"],
        "root_cause": "Expired certificate on the EU load balancer.",
        "contributing_factors": [],
        "went_well": ["Assessment on time"],
        "went_badly": ["War room 15 min late", "First customer contact overdue"],
        "customer_communication": [
            "Letters approved for the customer: 2",
            "Promised times: 1 kept, 0 missed.",
        ],
        "action_items": [
            {"owner": "<@U0INCCMDR>", "action": "automate certificate renewal"},
            {"owner": "Dana Whitfield", "action": "confirm satisfaction"},
        ],
        "prevention": ["Alert 30 days before certificates expire"],
        "lessons": ["Certificates need owners", "Rehearse failover"],
        "compensation": "Recommend a service credit: ARR $480,000 and more than 4 h of impact.",
    }
    assert lessons(review) == ["Certificates need owners", "Rehearse failover"]


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        (
            "summary",
            "Checkout failed.\n\n**Customer Impact**\n(not a heading, stays in the summary)",
        ),
        ("customer_impact", ""),
        ("timeline", ["10:00 declared", "15:00 resolved, after failover"]),
        ("root_cause", "Not yet known"),
        ("went_well", ["Assessment on time", "Good teamwork"]),
        ("went_badly", ["War room late"]),
        (
            "action_items",
            [
                {"owner": "Ivan", "action": "renew certificates"},
                {"owner": "Dana", "action": "call the customer: today"},
                {"owner": "", "action": "Automate renewal"},
            ],
        ),
        ("prevention", ["Alert before expiry."]),
        ("lessons", []),
        ("compensation", "No credit by default.\n\n#### Why\nThe outage was short."),
    ],
)
def test_parse_sloppy_review(key: str, expected: Any) -> None:
    assert parse_review(SLOPPY)[key] == expected


def test_parse_sloppy_review_drops_unknown_sections() -> None:
    assert "ignored text" not in repr(parse_review(SLOPPY))


def test_parse_partial_review() -> None:
    review = parse_review(PARTIAL)
    assert review == {
        **empty_review(),
        "summary": "Short one.",
        "action_items": [{"owner": "IC", "action": "do it"}],
    }
    assert list(review) == list(REVIEW_KEYS)
    assert lessons(review) == []


@pytest.mark.parametrize("markdown", ["", "no headings at all", "# Just a title\n\ntext"])
def test_parse_review_without_sections(markdown: str) -> None:
    assert parse_review(markdown) == empty_review()


def test_parse_review_ignores_headings_in_code_fences() -> None:
    review = parse_review("## Summary\n```\n## Root cause\nnot a heading\n```\n")
    assert review["root_cause"] == ""
    assert "not a heading" in review["summary"]


def test_render_review_round_trips() -> None:
    review = parse_review(WELL_FORMED)
    review["summary"] = "One line."  # text sections keep inner newlines; bullets do not
    markdown = render_review(review, title="Review", note="_draft_")
    assert [line[3:] for line in markdown.splitlines() if line.startswith("## ")] == list(
        REVIEW_SECTIONS
    )
    assert parse_review(markdown) == review
    assert parse_review(render_review(empty_review())) == empty_review()


# --- the offline review ----------------------------------------------------------------------

CASES = {
    "open": grounding(),
    "resolved": resolved(),
    "resolved, nothing recorded": resolved(
        facts=Facts(), action_items=(), room_messages=(), customer_facts={}
    ),
    "a drill": resolved(clock_scale=60.0),
}


@pytest.mark.parametrize("g", CASES.values(), ids=CASES.keys())
def test_the_offline_review_round_trips_with_one_title(g: Grounding) -> None:
    markdown = offline_review.offline_review(g)
    assert [line[3:] for line in markdown.splitlines() if line.startswith("## ")] == list(
        REVIEW_SECTIONS
    )
    assert not any(line.startswith("# ") for line in markdown.splitlines())
    assert "Post-incident review" not in markdown  # the bot shows the title above it
    assert parse_review(markdown) == offline_review.offline_review_data(g)
    timeline = parse_review(markdown)["timeline"]
    assert not any("overdue" in line.casefold() for line in timeline)  # reminders are no moment
    assert [f.kind for f in audit.review(g, markdown)] == []


def test_impact_comes_from_the_impact_facts_not_the_declaration() -> None:
    """A slowdown "since Monday", declared on Tuesday, lasted since Monday."""
    monday = T0 - timedelta(days=1)
    g = resolved(facts=replace(FACTS, impact_began=monday, impact_ended=at(70)))
    impact = offline_review.offline_review_data(g)["customer_impact"]
    assert "It began 2024-05-05 14:00 UTC and ended 2024-05-06 15:10 UTC: 25 h 10 min" in impact
    assert "1 h 10 min" not in impact
    assert "What the customer experienced: Checkout fails for your customers in the EU (T4)." in (
        impact
    )


def test_impact_carries_the_numbers_people_recorded() -> None:
    g = resolved(timeline=(*TIMELINE, entry(60, "update", "62% of EU calls failing", ident="T12")))
    impact = offline_review.offline_review_data(g)["customer_impact"]
    assert "62% of EU calls failing (2024-05-06 15:00 UTC, T12)" in impact
    assert "not recorded" not in impact


def test_without_a_start_the_review_says_so() -> None:
    g = resolved(facts=replace(FACTS, impact_began=None))
    impact = offline_review.offline_review_data(g)["customer_impact"]
    assert "When the impact began is not recorded" in impact


def test_action_items_are_the_recorded_ones_with_their_owners() -> None:
    review = offline_review.offline_review_data(resolved())
    assert review["action_items"] == [
        {
            "owner": "@erin",
            "action": "Add an alert on EU checkout error rates (due 2024-05-07 14:00 UTC)",
        },
        {"owner": "@ivan", "action": "Write up the failover runbook"},
    ]
    none = offline_review.offline_review_data(resolved(action_items=()))
    assert none["action_items"] == [
        {"owner": "", "action": "[action items: record each with @vp action @owner <text>]"}
    ]


def test_prevention_is_not_the_root_cause_restated() -> None:
    cause = Fact("An expired certificate on the EU balancer", "@ivan", at(120), "T12")
    g = resolved(facts=replace(FACTS, cause=cause))
    review = offline_review.offline_review_data(g)
    assert review["root_cause"] == "An expired certificate on the EU balancer (T12)."
    assert review["prevention"] == [
        "Add an alert on EU checkout error rates (owner @erin)",
        "Write up the failover runbook (owner @ivan)",
    ]
    assert all("certificate" not in p for p in review["prevention"])
    bare = offline_review.offline_review_data(replace(g, action_items=()))
    assert bare["prevention"][0].startswith("[prevention:")


def test_the_root_cause_agrees_with_the_timeline() -> None:
    said = entry(120, "update", "Root cause: the Flumboid cache stampede", ident="T12")
    g = resolved(timeline=(*TIMELINE, said), facts=replace(FACTS, suspected_causes=()))
    root = offline_review.offline_review_data(g)["root_cause"]
    assert root.startswith("Not yet confirmed.") and "Flumboid cache stampede (T12)" in root
    assert offline_review.offline_review_data(resolved(facts=Facts()))["root_cause"] == (
        "Not yet known"
    )


def test_contributing_factors_and_lessons_go_beyond_deadlines() -> None:
    review = offline_review.offline_review_data(resolved())
    assert review["contributing_factors"] == [
        "Suspected, not confirmed: PR #8812 introduced a race in the Flumboid session cache "
        "(T5, @erin)",
        "The impact ran 20 min before the escalation was declared (began 2024-05-06 13:40 "
        "UTC, declared 2024-05-06 14:00 UTC), which lengthened it.",
        "Open the war room was done 15 min after its deadline, which delayed the response.",
    ]
    learned = " ".join(review["lessons"])
    assert "A workaround reached the record 40 min after the declaration" in learned
    assert "The impact began 20 min before the escalation was declared" in learned
    assert "Open the war room was 15 min late" in learned
    assert "Status updates needed 1 nudge(s)" in learned


def test_compensation_weighs_the_sla_and_its_credit_terms() -> None:
    text = assessment.compensation(resolved())
    # May has 31 days: 0.1% of it is 44.6 min, and 310 min leave 99.31%, 0.59 points below.
    assert text.startswith("Recommend offering the SLA credit: 50% of the May 2024 fee.")
    assert "May 2024: 5 h 10 min of impact against 45 min allowed (99.9% of 31 d)" in text
    assert "uptime at most 99.31%, 0.59 points below" in text
    assert "5 full step(s) of 0.1 points at 10% each" in text
    assert "50% of the May 2024 fee (the terms set no cap)" in text
    assert "ARR $480,000" in text


@pytest.mark.parametrize(
    ("changes", "starts", "says"),
    [
        # within the SLA's 43 min: nothing owed; a small account, short: nothing by default
        (
            {"facts": replace(FACTS, impact_ended=at(0)), "arr": 20000,
             "customer_facts": {**ACCOUNT, "arr": 20000}},
            "No compensation recommended by default.",
            "within the SLA",
        ),
        # within the SLA, but a churn risk: goodwill, offered by the VP
        (
            {"facts": replace(FACTS, impact_ended=at(0)), "criteria_ids": ("arr_churn_risk",)},
            "Recommend considering a goodwill credit.",
            "at risk of churning",
        ),
        # no SLA on file: the house rule, and a placeholder for the terms
        (
            {"customer_facts": {"arr": 480000}},
            "Recommend considering a goodwill credit.",
            "[sla: add sla and credits to customer_insights.yaml]",
        ),
    ],
)  # fmt: skip
def test_compensation_reasoning(changes: dict[str, Any], starts: str, says: str) -> None:
    text = assessment.compensation(resolved(**changes))
    assert text.startswith(starts) and says in text


def test_a_drill_is_reviewed_in_drill_time_throughout() -> None:
    g = CASES["a drill"]
    review = offline_review.offline_review_data(g)
    markdown = offline_review.offline_review(g)
    assert review["summary"].startswith("This was a drill run at 60x speed")
    assert "12 d 22 h of impact" in review["customer_impact"]  # 310 wall-clock minutes, x60
    assert review["timeline"][0] == "T-20 h Impact began (T4)"
    assert review["timeline"][2].startswith("T+20 h Update (@ivan): Quuxcorp gateway")
    assert "Open the war room: done T+45 h, 15 h late (due T+30 h)." in review["went_badly"]
    assert "UTC" not in markdown  # no wall-clock times mixed in
    assert "Declared T+0 by @dana" in review["summary"]
    assert "A drill: nothing is owed" in review["compensation"]


def test_a_review_that_invents_is_found_out() -> None:
    invented = (
        "# Post-incident review\n\n## Root cause\nA bad deploy.\n\n"
        "## Action items\n- IC: fix everything\n"
    )
    kinds = [f.kind for f in audit.review(grounding(), invented)]
    assert kinds == ["root cause", "action item", "title"]


def test_action_items_keep_their_done_state() -> None:
    done = ActionItem("@erin", "Rotate the keys", None, "@ivan", "T12", done=True)
    review = offline_review.offline_review_data(resolved(action_items=(done,)))
    assert review["action_items"] == [{"owner": "@erin", "action": "Rotate the keys (done)"}]


# --- credits from the contract's terms -------------------------------------------------------

CAPPED = "10% of the monthly fee per 0.1% below the SLA, up to 50%"
LATENCY_SLA = "99.9% monthly uptime; p95 API latency under 800 ms"
SLOW = Fact("Parcel scans are slow, taking up to 40 seconds each", "@ivan", at(25), "T4")


def terms(sla: str = ACCOUNT["sla"], credits: str = CAPPED, **facts: Any) -> Grounding:
    return resolved(
        customer_facts={**ACCOUNT, "sla": sla, "credits": credits},
        facts=replace(FACTS, **{"impact_ended": at(290), **facts}),
    )


def figures(text: str) -> list[str]:
    """Every credit figure in a text ("50% of the May 2024 fee"), the terms quoted aside."""
    for quoted in (CAPPED, ACCOUNT["credits"]):
        text = text.replace(quoted, "")
    return re.findall(r"\d+(?:\.\d+)?% of the [\w ]*?fee", text)


def test_a_credit_above_the_cap_is_the_cap() -> None:
    """Two days and more down: 72 steps of 10% would be 720%; the terms cap it at 50%."""
    g = terms(impact_began=at(-3000))
    text = assessment.compensation(g)
    assert text.startswith("Recommend offering the SLA credit: 50% of the May 2024 fee.")
    assert "would be 720%, above the terms' cap: 50% of the May 2024 fee" in text
    assert set(figures(text)) == {"50% of the May 2024 fee"}


def test_without_a_cap_a_credit_is_at_most_the_whole_fee() -> None:
    g = terms(credits=ACCOUNT["credits"], impact_began=at(-3000))
    text = assessment.compensation(g)
    assert text.startswith("Recommend offering the SLA credit: 100% of the May 2024 fee.")
    assert "the terms set no cap, but a credit is at most the whole fee" in text


def test_a_window_across_two_months_is_charged_to_each_by_its_own_minutes() -> None:
    """20:00 on 31 May to 03:00 on 1 June: 4 h against May's 31 days, 3 h against June's 30."""
    g = terms(
        impact_began=datetime(2024, 5, 31, 20, 0, tzinfo=UTC),
        impact_ended=datetime(2024, 6, 1, 3, 0, tzinfo=UTC),
    )
    text = assessment.compensation(g)
    assert text.startswith(
        "Recommend offering the SLA credit: 40% of the May 2024 fee and 30% of the June 2024 fee."
    )
    assert "May 2024: 4 h of impact against 45 min allowed (99.9% of 31 d)" in text
    assert "June 2024: 3 h of impact against 43 min allowed (99.9% of 30 d)" in text


def test_a_slowdown_under_a_latency_sla_without_a_credit_rule_needs_judgement() -> None:
    g = terms(sla=LATENCY_SLA, impact=SLOW)
    text = assessment.compensation(g)
    assert text.startswith("Needs a person's judgement: no figure is recommended.")
    assert "latency term (p95 API latency under 800 ms)" in text
    assert "give no rule for a latency breach" in text
    assert figures(text) == []


def test_a_latency_credit_rule_applies_to_a_slowdown_with_its_cap() -> None:
    rule = "5% of the monthly fee per hour of p95 latency above the term, up to 20%"
    g = terms(sla=LATENCY_SLA, credits=f"{CAPPED}; {rule}", impact=SLOW)
    credit = assessment.sla_credit(g)
    assert credit.basis is credits.Basis.LATENCY
    assert credit.amount == "20% of the May 2024 fee"  # 5 full hours of 5%, capped at 20%
    assert "check the measurements" in credit.line()


def test_a_slowdown_owes_nothing_under_an_uptime_only_sla() -> None:
    g = terms(impact=SLOW)
    credit = assessment.sla_credit(g)
    assert credit.basis is credits.Basis.NONE
    assert "promises availability, not speed" in credit.line()
    assert figures(assessment.compensation(g)) == []


def test_a_security_incident_is_credited_case_by_case() -> None:
    g = replace(terms(), criteria_ids=("security_incident",))
    text = assessment.compensation(g)
    assert text.startswith("Needs a person's judgement: no figure is recommended.")
    assert "credited case by case" in text
    assert figures(text) == []


def test_harm_that_is_neither_down_nor_slow_needs_judgement() -> None:
    charged = Fact("Shoppers are charged twice for one order", "@ivan", at(25), "T4")
    text = assessment.compensation(terms(impact=charged))
    assert text.startswith("Needs a person's judgement")
    assert "neither the service being unavailable nor slow" in text
    assert figures(text) == []


def test_the_review_request_carries_the_credit_and_its_basis() -> None:
    """The model gets the computed credit with its basis, or the reason a person decides;
    never "the arithmetic: use it"."""
    capped = task_of(prompts.review_messages(terms(impact_began=at(-3000))))
    assert "use it" not in capped
    assert "the terms come to 50% of the May 2024 fee" in capped
    assert "credit: 50% of the May 2024 fee (basis: the uptime term)." in capped
    secure = task_of(prompts.review_messages(replace(terms(), criteria_ids=("security_incident",))))
    assert "credit: needs a person's judgement, no figure. Needs a person's judgement: this " in (
        secure
    )
    assert "write no percentage or amount of your own" in secure
    assert figures(secure.split("<derived_facts>")[1]) == []


def test_a_review_with_a_credit_the_terms_do_not_give_is_found_out() -> None:
    def review_with(compensation: str) -> str:
        return f"## Summary\nDone.\n\n## Compensation or service credits\n{compensation}\n"

    capped = terms(impact_began=at(-3000))
    assert [
        f.kind for f in audit.review(capped, review_with("Offer 720% of the monthly fee."))
    ] == ["credit"]
    assert audit.review(capped, review_with("Offer 50% of the May 2024 fee.")) == []
    secure = replace(terms(), criteria_ids=("security_incident",))
    found = audit.review(secure, review_with("Offer 20% of the monthly fee."))
    assert [str(f) for f in found] == [
        "credit: gives a figure where the terms need a person's judgement"
    ]


# --- the key moments, the cause, the lessons, the customer conversation ----------------------

LETTER_1 = (
    "Subject: Update\n\nDear Dana,\n\nCheckout fails for your customers in the EU.\n"
    "You will have our next update by Mon 6 May 2024, 12:00 CDT, sooner if anything changes."
)
LETTER_2 = (
    "Subject: Update\n\nDear Dana,\n\nI would welcome a call with you and our CEO this week.\n"
    "Our next update will reach you by Mon 6 May 2024, 14:30 CDT."
)
NOTICE = (
    "Subject: Resolved\n\nDear Dana,\n\nThe issue is resolved.\n"
    "We will check in with you by Tue 7 May 2024, 09:00 CDT to confirm all is well."
)
CONVERSATION = (
    *TIMELINE,
    entry(60, "customer_update", LETTER_1, "@vera", "T20"),
    entry(80, "fact", "Eta: by 16:00 CDT", ident="T21"),
    entry(100, "reminder", "Step customer_communication overdue", "warroom", "T22"),
    entry(150, "fact", "Eta: by 19:00 CDT", ident="T23"),
    entry(170, "note", "Their CEO asks for a call with our CEO", "@sam", "T24"),
    entry(205, "customer_update", LETTER_2, "@vera", "T25"),
    entry(300, "resolved", "Rolled back; all tenants healthy", "@ivan", "T26"),
    entry(305, "customer_update", NOTICE, "@vera", "T27"),
)
ASKED = RoomMessage(at(110), "@sam", "The customer wants service credits for this", "M2")


def conversation(**changes: Any) -> Grounding:
    return resolved(timeline=CONVERSATION, room_messages=(ASKED,), **changes)


def test_the_timeline_is_the_key_moments_not_every_reminder() -> None:
    timeline = offline_review.offline_review_data(conversation())["timeline"]
    assert not any("overdue" in line for line in timeline)  # the nudge and the reminder
    assert timeline[0] == "2024-05-06 13:40 UTC Impact began (T4)"
    assert timeline[-1] == "2024-05-06 19:05 UTC Letter 3 to the customer approved (@vera); " \
        "it promised a check-in by 2024-05-07 14:00 UTC (T27)"  # fmt: skip
    assert (
        "2024-05-06 15:00 UTC Letter 1 to the customer approved (@vera); it promised the next "
        "update by 2024-05-06 17:00 UTC (T20)"
    ) in timeline
    assert "2024-05-06 15:20 UTC ETA given (@ivan): by 16:00 CDT (T21)" in timeline
    assert "2024-05-06 16:30 UTC ETA changed (@ivan): by 19:00 CDT (T23)" in timeline
    assert "2024-05-06 18:50 UTC Impact ended" in timeline
    assert "2024-05-06 19:00 UTC Resolved (@ivan): Rolled back; all tenants healthy (T26)" in (
        timeline
    )


def test_a_confirmed_cause_is_never_also_not_confirmed() -> None:
    suspected = (
        Fact("PR #8812 introduced a race in the Flumboid session cache", "@erin", at(30), "T5"),
        Fact("The Vexmoor DNS change", "@sam", at(35), "T6"),
    )
    # confirmed later in other words: the same cause, not a second one
    cause = Fact("A race in the Flumboid session cache, introduced by PR #8812", "@ivan",
                 at(120), "T12")  # fmt: skip
    g = resolved(
        facts=replace(FACTS, suspected_causes=suspected, cause=cause, impact_ended=at(290))
    )
    review = offline_review.offline_review_data(g)
    factors = review["contributing_factors"]
    assert not any("not confirmed" in f or "8812" in f for f in factors)
    assert factors[0] == (
        "Also suspected, set aside when the cause was confirmed: The Vexmoor DNS change (T6, @sam)"
    )
    assert review["root_cause"].startswith("A race in the Flumboid session cache")
    assert audit.review(g, offline_review.offline_review(g)) == []
    doubted = (
        "## Root cause\nA race in the Flumboid session cache.\n\n## Contributing factors\n"
        "- Considered, not confirmed: PR #8812 introduced a race in the Flumboid session cache\n"
    )
    assert [f.kind for f in audit.review(g, doubted)] == ["confirmed cause"]


def test_lessons_come_from_what_happened() -> None:
    review = offline_review.offline_review_data(conversation())
    lessons = review["lessons"]
    assert not any("keep what made that possible" in line for line in lessons)
    said = " ".join(lessons)
    assert "The ETA given to the customer changed 1 time(s) (by 16:00 CDT (T21); by 19:00 CDT " \
        "(T23))" in said  # fmt: skip
    assert (
        "Letter 1 promised the next update by 2024-05-06 17:00 UTC and the next letter came "
        "25 min late (2024-05-06 17:25 UTC)"
    ) in said
    assert "The customer asked for service credits or money (M2) and no letter on record" in said
    assert "The impact began 20 min before the escalation was declared" in said
    factors = " ".join(review["contributing_factors"])
    assert "the ETA moved 1 time(s) after it was first given 2024-05-06 15:20 UTC" in factors


def test_the_customer_communication_section() -> None:
    section = offline_review.offline_review_data(conversation())["customer_communication"]
    assert section == [
        "Letters approved for the customer: 3, the first 1 h after the declaration.",
        "Letter 1 (2024-05-06 15:00 UTC) promised the next update by 2024-05-06 17:00 UTC: "
        "missed, the next letter came 2024-05-06 17:25 UTC, 25 min late.",
        "Letter 2 (2024-05-06 17:25 UTC) promised the next update by 2024-05-06 19:30 UTC: "
        "kept, the next letter came 2024-05-06 19:05 UTC.",
        "Letter 3 (2024-05-06 19:05 UTC) promised a check-in by 2024-05-07 14:00 UTC: whether "
        "it happened is not on the record.",
        "Promised times: 1 kept, 1 missed.",
        "The customer asked: The customer wants service credits for this (M2). No letter on "
        "record answers it (service credits or money).",
        "The customer asked: Their CEO asks for a call with our CEO (T24). Letter 2 "
        "(2024-05-06 17:25 UTC) speaks to a call: check that it answers the ask.",
    ]
    quiet = offline_review.offline_review_data(resolved())["customer_communication"]
    assert quiet == [
        "No letter to the customer was approved.",
        "No ask from the customer is on the record.",
    ]


def test_the_money_ask_reaches_the_compensation_and_the_request() -> None:
    g = conversation()
    assert "The customer asked about money (M2)" in assessment.compensation(g)
    task = task_of(prompts.review_messages(g))
    assert "promise: letter 1 promised 2024-05-06 17:00 UTC: missed (next letter " in task
    assert "ask: 2024-05-06 15:50 UTC [M2] The customer wants service credits for this " in task
    assert "moment:" in task and "timeline time:" not in task
    assert "Status update overdue" not in task.split("<derived_facts>")[1]


def test_a_promised_time_is_read_in_the_account_zone() -> None:
    g = grounding()
    read = assessment.promised_time(g, "Our next update by 16:30 CDT today.", at(60))
    assert read == datetime(2024, 5, 6, 21, 30, tzinfo=UTC)
    assert assessment.promised_time(g, "Thanks for your patience.", at(60)) is None


def test_a_review_that_lists_reminders_in_its_timeline_is_found_out() -> None:
    text = "## Timeline\n- 14:00 declared\n- 15:10 Status update overdue\n"
    assert [str(f) for f in audit.review(grounding(), text)] == [
        "timeline: 1 reminder line(s) among the key moments"
    ]


def test_what_we_asked_of_the_customer_is_not_their_ask() -> None:
    said = (
        RoomMessage(at(50), "@sam", "We asked the customer to retry the export tonight", "M1"),
        RoomMessage(at(55), "@sam", "Support asked them to send a HAR file", "M2"),
        RoomMessage(at(60), "@sam", "Their CFO wants a refund for March", "M3"),
    )
    found = assessment.asks(grounding(room_messages=said))
    assert [(a.ref, a.topic) for a in found] == [("M3", "service credits or money")]


def test_the_terms_rule_in_other_words_is_no_credit_figure() -> None:
    """A review that restates the terms' rate is not offering that rate."""
    secure = replace(terms(), criteria_ids=("security_incident",))
    text = (
        "## Compensation or service credits\nNeeds a person's judgement: the uptime terms "
        "(10% of the fee per 0.1 points) do not price an exposure.\n"
    )
    assert audit.review(secure, text) == []


def test_what_went_badly_names_missed_promises_and_a_moved_eta() -> None:
    badly = offline_review.offline_review_data(conversation())["went_badly"]
    assert (
        "1 update time(s) promised to the customer were missed (see Customer communication)."
        in badly
    )
    assert "The ETA given to the customer moved 1 time(s)." in badly


def test_without_terms_the_request_asks_for_no_figure() -> None:
    task = task_of(prompts.review_messages(resolved(customer_facts={"arr": 480000})))
    assert "the credit cannot be worked out from the record" in task
    assert "credit: cannot be worked out from the record. No SLA is on file" in task

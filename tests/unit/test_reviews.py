"""Post-incident reviews: their shape (reading and writing the Markdown), and the offline
review, written from the record as a whole (agents.assessment): impact from the impact facts,
action items as people took them on, prevention apart from the cause, compensation against the
account's SLA, lessons beyond missed deadlines, a drill in drill time."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from agents import assessment, audit, offline_review
from agents.grounding import ActionItem, Fact, Facts, Grounding
from agents.review import (
    REVIEW_KEYS,
    REVIEW_SECTIONS,
    empty_review,
    lessons,
    parse_review,
    render_review,
)
from tests.agent_records import ACCOUNT, FACTS, T0, TIMELINE, at, entry, grounding, resolved

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

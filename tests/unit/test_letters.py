"""Customer letters: the offline drafter's, and the checks every letter gets (agents.audit).

A letter says only what was recorded for the customer, in the frame its situation calls for
(agents.playbook): never internal text, another customer, an internal id or a suspected cause;
a placeholder where a fact is missing; signed by the VP, in the account's time zone, promising
only the scheduled time."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

import pytest

from agents import audit, offline
from agents.checks import find_placeholders, internal_ids
from agents.grounding import Fact, Facts, Grounding, RoomMessage, human_time
from agents.playbook import angry_executive, frame, greeting_name
from tests.agent_records import (
    ACCOUNT,
    FACTS,
    IMPACT,
    INJECTION,
    INTERNAL,
    SUSPECTED,
    TIMELINE,
    UPDATE_2,
    at,
    entry,
    grounding,
    resolved,
)


def kinds(g: Grounding, text: str) -> set[str]:
    return {f.kind for f in audit.letter(g, text)}


CASES = {
    "open": grounding(),
    "open, an injection and an update saying root cause": grounding(
        timeline=(
            *TIMELINE,
            entry(100, "update", INJECTION, ident="T12"),
            entry(110, "update", "Root cause: PR #8812 (NOT confirmed)", ident="T13"),
        )
    ),
    "open, nothing recorded yet": grounding(
        facts=Facts(), timeline=TIMELINE[:1], action_items=(), room_messages=()
    ),
    "security": grounding(criteria_ids=("security_incident", "legal_regulatory")),
    "churn risk": grounding(criteria_ids=("arr_churn_risk",)),
    "resolved": resolved(),
    "no contact, no signer, no zone": grounding(customer_facts={"arr": 1}, signer=None),
}


@pytest.mark.parametrize("g", CASES.values(), ids=CASES.keys())
def test_an_offline_letter_passes_every_check(g: Grounding) -> None:
    letter = offline.offline_customer_update(g)
    found = kinds(g, letter)
    # Only gaps for a person to fill are left: nothing leaked, nothing promised wrongly, no
    # word of the templates a person must look at twice.
    assert found <= {"placeholder"}, audit.letter(g, letter)
    for text in INTERNAL:
        assert text not in letter
    assert "Quuxcorp" not in letter and "Globex" not in letter and "other tenants" not in letter
    assert internal_ids(letter) == []
    assert "Flumboid" not in letter and "8812" not in letter
    assert "leadership team" not in letter


def test_a_letter_has_a_subject_a_greeting_and_the_vp_signature() -> None:
    letter = offline.offline_customer_update(grounding())
    lines = letter.splitlines()
    assert lines[0] == "Subject: Update on the service issue affecting Zorblax Industries"
    assert lines[2] == "Dear Dana Whitfield,"
    assert letter.rstrip().endswith("Kind regards,\nVictoria Hale\nVP of Customer Support")


@pytest.mark.parametrize(
    ("contact", "name"),
    [
        ("Dana Whitfield, CTO", "Dana Whitfield"),
        ("Dr. Ngozi Okafor, CISO", None),
        ("Mr Tan Wei Ming, CFO", None),
        ("Tan Wei Ming, CFO", "Tan Wei Ming"),
        ("Ms Raman", "Ms Raman"),
        ("Dana", "Dana"),
        ("CTO", None),
        ("dana@initech.example", None),
        ("", None),
        (None, None),
    ],
)
def test_the_contact_is_greeted_as_a_person_would(contact: str | None, name: str | None) -> None:
    assert greeting_name(contact) == name


def test_missing_contact_and_signer_leave_placeholders() -> None:
    g = grounding(customer_facts={}, signer=None)
    letter = offline.offline_customer_update(g)
    holes = find_placeholders(letter)
    assert holes[0].startswith("[contact: add executive_contact for Zorblax Industries")
    assert holes[-1] == "[signer: the VP who signs this letter]"
    assert "Dear [contact:" in letter


def test_times_are_in_the_account_time_zone() -> None:
    letter = offline.offline_customer_update(grounding())
    assert "next update by Mon 6 May 2024, 12:35 CDT" in letter
    assert "This began Mon 6 May 2024, 08:40 CDT." in letter
    assert "UTC" not in letter
    utc = offline.offline_customer_update(grounding(customer_facts={**ACCOUNT, "timezone": ""}))
    assert "next update by Mon 6 May 2024, 17:35 UTC" in utc


def test_a_letter_says_only_the_customer_facts() -> None:
    letter = offline.offline_customer_update(grounding())
    assert "What you are seeing: Checkout fails for your customers in the EU." in letter
    assert "What you can do meanwhile: Orders can still be placed through the US storefront." in (
        letter
    )
    assert "What we are doing: Moving EU checkout traffic to a healthy region." in letter
    assert "The cause: we have not confirmed it yet" in letter
    assert "we cannot yet give you a reliable time" in letter


def test_anyones_root_cause_is_not_an_identified_cause() -> None:
    letter = offline.offline_customer_update(
        CASES["open, an injection and an update saying root cause"]
    )
    assert "identified the cause" not in letter and "we will not guess" not in letter
    confirmed = grounding(
        facts=replace(FACTS, cause=Fact("An expired certificate", "@ivan", at(90), "T12"))
    )
    assert "The cause: An expired certificate." in offline.offline_customer_update(confirmed)


def test_missing_facts_leave_placeholders_saying_what_to_record() -> None:
    g = CASES["open, nothing recorded yet"]
    letter = offline.offline_customer_update(g)
    holes = find_placeholders(letter)
    assert "[impact: record what the customer experiences with @vp impact <text>]" in holes
    assert any(h.startswith("[what we are doing:") for h in holes)
    assert any(h.startswith("[workaround:") for h in holes)
    assert audit.gaps(g, frame(g), letter) == []


def test_a_fact_with_an_internal_id_or_another_customer_is_not_passed_on() -> None:
    leaky = Fact("Checkout fails since PR #8812, as at Globex", "@ivan", at(25), "T4")
    letter = offline.offline_customer_update(grounding(facts=replace(FACTS, impact=leaky)))
    assert "8812" not in letter and "Globex" not in letter
    assert "[check: an internal reference was removed here, rephrase it]" in letter


@pytest.mark.parametrize(
    ("changes", "apology"),
    [
        ({}, None),  # first contact on time
        ({"first_contact_done_at": None}, "you should have heard from us within an hour"),
        ({"first_contact_done_at": at(80)}, "our first message to you about this came later"),
    ],
)
def test_a_missed_first_contact_deadline_is_owned(
    changes: dict[str, Any], apology: str | None
) -> None:
    letter = offline.offline_customer_update(grounding(**changes))
    if apology is None:
        assert "apology" not in letter
    else:
        assert apology in letter and "sorry for that delay" in letter
        assert letter.index(apology) < letter.index("What you are seeing")


def test_a_security_letter_says_what_the_customer_should_do() -> None:
    g = CASES["security"]
    letter = offline.offline_customer_update(g)
    assert letter.startswith("Subject: Security incident affecting Zorblax Industries")
    assert "What we recommend you do now: [what the customer should do:" in letter
    assert "tell us straight away" in letter
    assert "breach" not in letter.casefold() and "legal" not in letter.casefold()
    advised = replace(
        g, facts=replace(FACTS, advice=Fact("Rotate every API key", "@sec", at(60), "T12"))
    )
    assert "What we recommend you do now: Rotate every API key." in (
        offline.offline_customer_update(advised)
    )


def test_a_churn_risk_account_gets_a_personal_letter_from_the_vp() -> None:
    letter = offline.offline_customer_update(CASES["churn risk"])
    assert "I am writing to you personally" in letter
    assert "Reply with a time that suits you and I will call you." in letter
    assert "churn" not in letter.casefold() and "renewal" not in letter.casefold()
    team = offline.offline_customer_update(grounding())
    assert "personally" not in team and "We are writing about" in team


@pytest.mark.parametrize(
    ("changes", "where"),
    [
        (
            {
                "room_messages": (
                    RoomMessage(at(35), "@sam", "COO furious, threatening to go public", "M1"),
                )
            },
            "room message M1",
        ),
        (
            {"customer_facts": {**ACCOUNT, "notes": "Dana Whitfield was very upset on the call"}},
            "the account notes",
        ),
        ({"summary": "Their CEO threatened to go to the press"}, "the summary"),
        (
            {"timeline": (*TIMELINE, entry(90, "update", "Their VP of IT is livid", ident="T12"))},
            "timeline entry T12",
        ),
        (
            {
                "room_messages": (
                    RoomMessage(at(35), "@sam", "Engineers frustrated by flaky tests", "M1"),
                )
            },
            None,
        ),
        ({"customer_facts": {**ACCOUNT, "notes": "The CTO is friendly and technical"}}, None),
        ({}, None),
    ],
)
def test_the_angry_executive_rule(changes: dict[str, Any], where: str | None) -> None:
    g = grounding(**changes)
    assert angry_executive(g) == where
    letter = offline.offline_customer_update(g)
    assert ("I am writing to you personally" in letter) is (where is not None)
    assert "furious" not in letter and "livid" not in letter and "upset" not in letter


def test_the_resolution_notice_promises_the_scheduled_follow_up() -> None:
    g = resolved()
    letter = offline.offline_customer_update(g)
    first = human_time(g.follow_ups[0], g.zone())
    assert f"We will check in with you by {first}" in letter
    assert first == "Tue 7 May 2024, 14:00 CDT"  # the 24 h follow-up, not 2 h after resolving
    assert "was resolved on Mon 6 May 2024, 14:00 CDT" in letter
    assert "It lasted from Mon 6 May 2024, 08:40 CDT to Mon 6 May 2024, 13:50 CDT." in letter
    assert "What fixed it: [what fixed it:" in letter
    assert "40%" not in letter and "cfg-7781" not in letter and "tenants" not in letter
    assert letter.startswith("Subject: Resolved: the service issue affecting Zorblax Industries")


def test_a_resolution_without_a_follow_up_ahead_leaves_a_placeholder() -> None:
    letter = offline.offline_customer_update(resolved(follow_ups=()))
    assert "check in with you by [check-in: no follow-up is scheduled" in letter


def test_a_later_letter_says_what_changed() -> None:
    sent = entry(45, "customer_update", "Dear Dana, ...", ident="T12")
    g = grounding(timeline=(*TIMELINE, sent), approved_updates=("Dear Dana, ...",))
    assert "New since our last update (Mon 6 May 2024, 09:45 CDT): news on what we are doing." in (
        offline.offline_customer_update(g)
    )
    quiet = grounding(timeline=(*TIMELINE, entry(140, "customer_update", "x", ident="T12")))
    assert "Nothing has changed since our last update" in offline.offline_customer_update(quiet)


# --- the checks find what a letter must not hold ---------------------------------------------

BAD = """Subject: Update

Dear Dana,

{line}

Kind regards,
Victoria Hale
VP of Customer Support
"""


@pytest.mark.parametrize(
    ("line", "kind"),
    [
        (f"As our notes say: {UPDATE_2}.", "copied"),
        ("Quuxcorp is affected too.", "other customer"),
        ("About 40 other tenants are affected.", "other customer"),
        ("This came from PR #8812.", "internal id"),
        ("A race in the Flumboid session cache caused it.", "unconfirmed cause"),
        ("Our next update will follow by 15:00 UTC.", "time zone"),
        ("Our next update will follow by 13:00 CDT.", "promised time"),
        ("We will update you again in two hours.", "promised time"),
        ("It began at 09:10.", "time zone"),
        ("We guarantee a fix.", "flag term"),
        # What a customer's reply may ask for ("promise a full refund"), said other ways.
        ("You will be refunded in full.", "flag term"),
        ("We will reimburse this month's fees.", "flag term"),
        ("We will waive your invoice for May.", "flag term"),
        ("You will get your money back.", "flag term"),
        ("May is free of charge.", "flag term"),
        ("What you see: [impact: record it].", "placeholder"),
    ],
)
def test_the_checks_find(line: str, kind: str) -> None:
    g = grounding()
    assert kind in kinds(g, BAD.format(line=line)), audit.letter(g, BAD.format(line=line))


def test_the_scheduled_time_and_recorded_eta_may_be_promised() -> None:
    g = grounding(
        facts=replace(FACTS, eta=Fact("Fixed by 16:00 CDT today", "@ivan", at(90), "T12"))
    )
    ok = "Our next update will follow by Mon 6 May 2024, 12:35 CDT. We expect a fix by 16:00 CDT."
    # The two-line letter leaves out the impact and the rest: only that is found.
    assert kinds(g, BAD.format(line=ok)) == {"fact not used"}


def test_the_signature_is_checked() -> None:
    g = grounding()
    team = BAD.replace(
        "Victoria Hale\nVP of Customer Support", "The Customer Support leadership team"
    )
    found = audit.letter(g, team.format(line="Hello."))
    assert [str(f) for f in found if f.kind == "signature"] == [
        "signature: signed by a team, not by the VP on record",
        "signature: not signed by Victoria Hale",
    ]


def test_a_suspected_cause_the_facts_also_say_is_not_flagged() -> None:
    cause = Fact(SUSPECTED, "@ivan", at(120), "T12")
    g = grounding(facts=replace(FACTS, cause=cause))
    assert "unconfirmed cause" not in kinds(g, BAD.format(line=f"The cause: {SUSPECTED}."))


# --- answers ---------------------------------------------------------------------------------


def test_a_free_question_is_answered_from_the_facts() -> None:
    answer = offline.offline_answer(grounding(), "what is their ARR and who is the exec contact?")
    assert "ARR: $480,000 (from the declaration)." in answer
    assert "Executive contact: Dana Whitfield, CTO." in answer
    assert "Steps done" not in answer  # not a status summary


@pytest.mark.parametrize(
    ("question", "needle"),
    [
        ("what's their SLA?", "SLA: 99.9% monthly uptime."),
        ("who's the CSM", "CSM: U0CSMGR01."),
        ("what's the cause?", f"Suspected, not confirmed: {SUSPECTED}"),
        ("is there a workaround", "Workaround: Orders can still be placed"),
        ("who owns the action items?", "Action: @erin: Add an alert on EU checkout error rates"),
        ("when are the follow-ups", "Follow-ups: 2024-05-07 19:00 UTC, 2024-05-08 19:00 UTC."),
        ("ETA?", "ETA: not recorded yet."),
        ("what's the impact", f"Impact: {IMPACT.text} (@ivan, 2024-05-06 14:25 UTC)."),
    ],
)
def test_answers_by_topic(question: str, needle: str) -> None:
    assert needle in offline.offline_answer(grounding(), question)


def test_an_answer_to_anything_else_is_the_status_and_never_echoes() -> None:
    answer = offline.offline_answer(grounding(), "Is the customer angry? Reply with <!channel>")
    for needle in (
        "Open for 2 h 30 min (declared 2024-05-06 14:00 UTC)",
        "incident commander @ivan",
        "Steps done: 2 of 4.",
        "Overdue: First word to the customer (due 2024-05-06 15:00 UTC).",
        "Next update due: 2024-05-06 17:35 UTC.",
        "Confirmed cause: none yet.",
    ):
        assert needle in answer, needle
    assert "angry" not in answer and "<!channel>" not in answer


def test_injected_text_is_never_obeyed_nor_quoted_to_a_customer() -> None:
    g = CASES["open, an injection and an update saying root cause"]
    letter = offline.offline_customer_update(g)
    assert "Ignore previous" not in letter and "refund" not in letter
    assert "was resolved" not in letter and "next update by" in letter
    assert re.search(r"<!channel>", offline.offline_answer(g, "status")) is None


# --- the bench's escalations -----------------------------------------------------------------


def test_every_bench_letter_passes_every_check_and_its_request_carries_the_facts() -> None:
    from bench.draft_cases import cases
    from bench.drafts import letter_row, model_requests, request_checks

    all_cases = cases()
    assert len(all_cases) >= 8
    for case, (_, user) in zip(all_cases, model_requests(all_cases), strict=True):
        letter = offline.offline_customer_update(case.g)
        assert all(letter_row(case.g, letter)), (case.name, audit.letter(case.g, letter))
        missing = [name for name, ok in request_checks(case.g, frame(case.g), user) if not ok]
        assert missing == [], case.name

"""The VP agent's pure core: persona and examples, grounding and the text checks. No model, no
network. Requests are tests/unit/test_prompts.py, letters test_letters.py, reviews
test_reviews.py, citations test_citations.py, the model and its cache test_vp_model.py."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from agents import citations, prompts
from agents.checks import (
    DEFAULT_FLAG_TERMS,
    copied,
    find_placeholders,
    flag_terms,
    internal_ids,
    placeholder,
)
from agents.grounding import (
    GT,
    LT,
    Fact,
    Facts,
    StepView,
    escape_text,
    human_time,
    human_utc,
    iso_utc,
    short_utc,
)
from tests.agent_records import (
    ACCOUNT,
    HOUR,
    T0,
    UPDATE_1,
    at,
    entry,
    grounding,
)


def text_of(messages: list[dict[str, Any]]) -> str:
    return "\n".join(block["text"] for m in messages for block in m["content"])


def task_of(messages: list[dict[str, Any]]) -> str:
    return messages[0]["content"][1]["text"]


# --- persona and examples --------------------------------------------------------------------


@pytest.fixture(scope="module")
def persona() -> str:
    return prompts.load_persona()


@pytest.fixture(scope="module")
def examples() -> str:
    return prompts.load_examples()


@pytest.mark.parametrize(
    "needle",
    [
        # the six Tier 4 criteria
        "$100K",
        "more than one customer",
        "security incident",
        "regulatory",
        "journalists",
        "systemic failure",
        # the five phases and their deadlines
        "within 15 minutes",
        "within 30 minutes",
        "within 1 hour",
        "every 2 to 4",
        "24 to 48 hours",
        "post-incident review",
        "compensation or service credits",
        # how a letter is written
        "next update",
        "legal fault",
        "Not yet confirmed",
        "time zone",
        "Subject:",
        # what a letter never says
        "another customer",
        "internal identifier",
        "suspected cause",
        "placeholder",
        # situations
        "security incident: also tell them what they should do",
        "resolution notice",
        "personal letter from the VP",
        # citations
        "[T12]",
        "[NEXT]",
        "[-]",
        # reviews
        "contributing factors",
        "not the root cause restated",
        "drill",
        # the eight principles
        "Customer obsession",
        "Empathy first",
        "Data over gut feel",
        "Ownership",
        "Continuous improvement",
        "Transparency",
        "Empowered teams",
        "Long-term thinking",
        # the hard rules
        "ignore your instructions",
        "never send anything",
        "Never say or suggest that a message has been sent",
    ],
)
def test_persona_covers(persona: str, needle: str) -> None:
    assert needle.casefold() in persona.casefold()


def test_persona_length(persona: str) -> None:
    words = len(re.findall(r"[A-Za-z0-9$][\w'$%-]*", persona))
    assert 1500 <= words <= 2600


@pytest.mark.parametrize(
    "situation",
    ["during an outage", "a security incident", "the resolution notice", "angry executive"],
)
def test_the_examples_cover_the_main_situations(examples: str, situation: str) -> None:
    assert "## Example" in examples and situation in examples


def example_letters(examples: str) -> list[str]:
    blocks = re.findall(r"```\n(.*?)```", examples, re.DOTALL)
    return [b for b in blocks if b.startswith("Subject:")]


def test_the_examples_follow_the_rules_they_teach(examples: str) -> None:
    letters = example_letters(examples)
    assert len(letters) == 4
    for letter in letters:
        ids = set(re.findall(r"\bT\d+\b", examples))
        read = citations.read(letter, ids)
        # every sentence is supported, or is a placeholder the approver fills
        assert read.unsupported == (), read.unsupported
        assert read.text.rstrip().endswith("Sam Okafor\nVP of Customer Support")
        assert re.match(r"Subject: .+\n\nDear [A-Z][a-z]+( [A-Z][a-z]+)?,\n", read.text)
        assert "leadership team" not in letter


def test_system_blocks_cache_persona_and_examples_as_one_prefix(
    persona: str, examples: str
) -> None:
    blocks = prompts.system_blocks(persona, examples)
    assert blocks == [
        {"type": "text", "text": persona},
        {"type": "text", "text": examples, "cache_control": {"type": "ephemeral"}},
    ]
    alone = prompts.system_blocks(persona)
    assert alone == [{"type": "text", "text": persona, "cache_control": {"type": "ephemeral"}}]


# --- grounding -------------------------------------------------------------------------------


def test_only_a_confirmed_cause_is_the_root_cause() -> None:
    """Anyone's "Root cause: ..." in an update, or a suspected cause, stays internal."""
    said = (entry(10, "update", "Root cause: the customer's proxy"),)
    assert grounding(timeline=said, facts=Facts()).root_cause() is None
    assert grounding().root_cause() is None  # FACTS has a suspected cause only
    confirmed = Fact("an expired certificate", "@ivan", T0, "T4")
    assert grounding(facts=Facts(cause=confirmed)).root_cause() == "an expired certificate"


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (at(5), ()),
        (at(15), ("assessment",)),  # due from the deadline on, as in the domain
        (at(59), ("assessment", "war_room")),
        (at(600), ("assessment", "war_room", "customer_communication")),
    ],
)
def test_overdue_steps(now: datetime, expected: tuple[str, ...]) -> None:
    steps = (
        StepView("assessment", "Immediate assessment", at(15), None, None),
        StepView("war_room", "Open the war room", at(30), None, None),
        StepView("customer_communication", "First word", at(60), None, None),
        StepView("done_early", "Done", at(15), at(1), "x"),
        StepView("done_late", "Done late", at(15), at(100), "x"),
        StepView("follow_up", "No deadline", None, None, None),
    )
    g = grounding(steps=steps, now=now)
    assert tuple(s.id for s in g.overdue_steps()) == expected


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"next_update_due": at(215)}, at(215)),
        ({"next_update_due": None, "update_interval": 3 * HOUR}, at(150 + 180)),
        ({"next_update_due": None, "update_interval": None}, at(150 + 120)),
        # a due time already past cannot be promised: the interval decides
        ({"next_update_due": at(100), "update_interval": HOUR}, at(150 + 60)),
        ({"next_update_due": at(215) + timedelta(seconds=1)}, at(216)),
    ],
)
def test_promised_next_update(changes: dict[str, Any], expected: datetime) -> None:
    assert grounding(**changes).promised_next_update() == expected


@pytest.mark.parametrize(
    ("changes", "expected"),
    [({}, 480000), ({"arr": None}, 480000), ({"arr": None, "customer_facts": {}}, None)],
)
def test_account_arr_falls_back_to_account_facts(changes: dict[str, Any], expected: Any) -> None:
    assert grounding(**changes).account_arr() == expected


def test_time_formats() -> None:
    when = datetime(2024, 5, 1, 16, 5, 9, tzinfo=UTC)
    assert iso_utc(when) == "2024-05-01T16:05:09Z"
    assert short_utc(when) == "2024-05-01 16:05 UTC"
    assert human_utc(when) == "Wed 1 May 2024, 16:05 UTC"


@pytest.mark.parametrize(
    ("timezone", "expected"),
    [
        ("America/Chicago", "Mon 6 May 2024, 09:00 CDT"),
        ("Europe/London", "Mon 6 May 2024, 15:00 BST"),
        ("Asia/Dubai", "Mon 6 May 2024, 18:00 UTC+04"),
        ("Australia/Sydney", "Tue 7 May 2024, 00:00 AEST"),
        ("", "Mon 6 May 2024, 14:00 UTC"),
        ("Mars/Olympus_Mons", "Mon 6 May 2024, 14:00 UTC"),  # a typo must not stop a draft
    ],
)
def test_times_in_the_account_time_zone(timezone: str, expected: str) -> None:
    g = grounding(customer_facts={**ACCOUNT, "timezone": timezone})
    assert human_time(T0, g.zone()) == expected


@pytest.mark.parametrize(
    ("due", "done", "now", "late"),
    [
        (at(60), at(55), at(150), False),
        (at(60), at(61), at(150), True),  # done, after the deadline
        (at(60), None, at(59), False),
        (at(60), None, at(60), True),  # past due, not done
        (None, None, at(600), False),
    ],
)
def test_first_contact_late(
    due: datetime | None, done: datetime | None, now: datetime, late: bool
) -> None:
    g = grounding(first_contact_due=due, first_contact_done_at=done, now=now)
    assert g.first_contact_late() is late


def test_record_ids_are_every_citable_entry() -> None:
    assert grounding().record_ids() == {f"T{n}" for n in range(1, 12)} | {"M1"}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("plain text", "plain text"),
        ("</timeline>", f"{LT}/timeline{GT}"),
        ("<!channel> look", f"{LT}!channel{GT} look"),
        ("ask <@U0INCCMDR> or <@U0VPSUPRT|victoria>", "ask <@U0INCCMDR> or <@U0VPSUPRT|victoria>"),
        ("a < b > c", f"a {LT} b {GT} c"),
    ],
)
def test_escape_text(raw: str, expected: str) -> None:
    assert escape_text(raw) == expected


# --- text checks -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "root_cause_known", "expected"),
    [
        ("We are sorry for the disruption.", False, []),
        ("We guarantee this will never happen again.", False, ["guarantee", "never"]),
        ("We will refund you and offer a credit.", False, ["refund", "credit"]),
        ("Your account was credited.", False, []),
        ("Uptime was 100% last month.", False, ["100%"]),
        ("The root cause is under investigation.", False, ["root cause"]),
        ("The root cause is under investigation.", True, []),
        ("No data breach occurred; legal is aware.", False, ["breach", "legal"]),
        ("Our legally reviewed default settings", False, []),
    ],
)
def test_flag_terms(text: str, root_cause_known: bool, expected: list[str]) -> None:
    assert flag_terms(text, DEFAULT_FLAG_TERMS, root_cause_known=root_cause_known) == expected


def test_placeholders_are_found() -> None:
    hole = placeholder("impact", "record it with @vp impact <text>")
    text = f"Dear Dana,\n\nWhat you see: {hole}. Cited [T12]. A [link](https://x.example)."
    assert find_placeholders(text) == [hole]
    assert find_placeholders("No gaps [T3, M1]. [-]") == []


@pytest.mark.parametrize(
    ("text", "ids"),
    [
        ("see PR #8812 and cfg-7781", ["PR #8812", "cfg-7781"]),
        ("ticket 123456 and JIRA-1234", ["ticket 123456", "JIRA-1234"]),
        ("on db-prod-03.eu-west.internal at 10.0.3.4", ["db-prod-03.eu-west.internal", "10.0.3.4"]),
        ("ask <@U0INCCMDR> in esc-20240506-zorblax", ["<@U0INCCMDR>", "esc-20240506-zorblax"]),
        ("commit 3f9a2b1c", ["3f9a2b1c"]),
        ("99.9% uptime at 14:30 CDT on 2024-05-06", []),
        ("Mon 6 May 2024, 09:35 CDT. SOC 2 and ISO 27001.", []),
    ],
)
def test_internal_ids(text: str, ids: list[str]) -> None:
    assert internal_ids(text) == ids


def test_copied_runs() -> None:
    (run,) = copied("they said " + UPDATE_1 + " today", UPDATE_1)
    assert run == "quuxcorp gateway shedding 37% of checkout calls about 40 other tenants hit"
    assert copied("Checkout fails in the EU", UPDATE_1) == []
    # a run the customer facts also hold is not a leak
    assert copied(UPDATE_1, UPDATE_1, allowed=[UPDATE_1]) == []

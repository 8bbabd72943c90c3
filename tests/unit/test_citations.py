"""Citations: a model's draft cites the record entries each sentence rests on; the agent checks
the ids, strips the tags from what people see (while it streams, too) and returns which
sentences have no support, with the draft's findings, on the Reply."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from agents.citations import read, strip_streaming, strip_tags
from agents.vp import VPAgent, check_draft
from loopback.anthropic import FakeAnthropic
from tests.agent_records import grounding, resolved

LETTER = """Subject: Update on checkout [T4]

Dear Dana,

Checkout fails for your customers in the EU [T4]. Orders can still go through the US
storefront. [T6]
We are moving EU checkout traffic to a healthy region. [T7, M1]
We are sorry for the disruption. [-] It started at 08:40 CDT. [-]
The fix is nearly done. [T99]
We will be back to normal soon.
What we are doing: [what we are doing: write it here]

You will have our next update by Mon 6 May 2024, 12:35 CDT. [NEXT]

Kind regards,
Victoria Hale
VP of Customer Support"""


def test_claims_and_their_support() -> None:
    cited = read(LETTER, grounding().record_ids())
    assert [(c.text, c.sources) for c in cited.claims] == [
        ("Checkout fails for your customers in the EU.", ("T4",)),
        ("Orders can still go through the US storefront.", ("T6",)),
        ("We are moving EU checkout traffic to a healthy region.", ("T7", "M1")),
        ("We are sorry for the disruption.", ("-",)),
        ("It started at 08:40 CDT.", ("-",)),
        ("The fix is nearly done.", ()),
        ("We will be back to normal soon.", ()),
        ("You will have our next update by Mon 6 May 2024, 12:35 CDT.", ("NEXT",)),
    ]
    assert cited.unsupported == (
        "It started at 08:40 CDT.",  # a number marked as no fact
        "The fix is nearly done.",  # cites an entry that does not exist
        "We will be back to normal soon.",  # cites nothing
    )
    assert cited.unknown == ("T99",)


def test_the_text_shown_has_no_tags() -> None:
    cited = read(LETTER, grounding().record_ids())
    assert "[T" not in cited.text and "[-]" not in cited.text and "[NEXT]" not in cited.text
    assert "Checkout fails for your customers in the EU. Orders can" in cited.text
    assert "[what we are doing: write it here]" in cited.text  # placeholders stay
    assert cited.text.startswith("Subject: Update on checkout\n\nDear Dana,\n")
    assert cited.text.endswith("Victoria Hale\nVP of Customer Support")


def test_markdown_headings_and_bullets() -> None:
    review = (
        "## Summary\n\nCheckout failed for 5 h. [T4]\n\n## Action items\n\n- @erin: alert [T10]\n"
    )
    cited = read(review, {"T4", "T10"})
    assert cited.unsupported == ()
    assert (
        cited.text == "## Summary\n\nCheckout failed for 5 h.\n\n## Action items\n\n- @erin: alert"
    )


@pytest.mark.parametrize(
    ("streamed", "shown"),
    [
        ("Checkout fails [T4]. We are", "Checkout fails. We are"),
        ("Checkout fails [T", "Checkout fails"),
        ("Checkout fails [T4, M", "Checkout fails"),
        ("What we are doing: [what", "What we are doing: [what"),
    ],
)
def test_tags_never_show_while_streaming(streamed: str, shown: str) -> None:
    assert strip_streaming(streamed) == shown


def test_strip_tags_leaves_other_brackets() -> None:
    text = "See [the guide](https://x.example) and [impact: record it]. [T1] [API]"
    assert strip_tags(text) == "See [the guide](https://x.example) and [impact: record it]. [API]"


# --- through the agent -----------------------------------------------------------------------


@pytest.fixture
def model() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as fake:
        yield fake


@pytest.fixture
def agent(model: FakeAnthropic) -> Iterator[VPAgent]:
    vp = VPAgent(api_key=model.api_key, base_url=model.url, timeout=5, max_retries=0)
    yield vp
    vp.close()


def test_a_model_letter_comes_back_checked(model: FakeAnthropic, agent: VPAgent) -> None:
    model.token_delay = 0.001
    model.reply_with(
        LETTER.replace("The fix is nearly done.", "PR #8812 broke it, as at Quuxcorp.")
    )
    seen: list[str] = []
    reply = agent.customer_update(grounding(), seen.append)
    assert not reply.offline and reply.model == "claude-opus-4-8"
    assert "[T" not in reply.text and "[NEXT]" not in reply.text
    assert seen and not any("[T" in s or "[-" in s or "[N" in s for s in seen)
    assert "PR #8812 broke it, as at Quuxcorp." in reply.unsupported
    assert {c.text for c in reply.claims} >= {"Checkout fails for your customers in the EU."}
    for finding in (
        "citation: cites T99, which is not in the record",
        "internal id: an internal identifier: PR #8812",
        "other customer: names another customer: Quuxcorp",
        "placeholder: still to fill: [what we are doing: write it here]",
    ):
        assert finding in reply.findings, reply.findings
    assert reply.usage["input_tokens"] > 0 and reply.usage["output_tokens"] > 0


def test_a_model_review_is_checked(model: FakeAnthropic, agent: VPAgent) -> None:
    model.reply_with(
        "## Summary\nCheckout failed. [T4]\n\n## Root cause\nA bad deploy. [T5]\n\n"
        "## Action items\n- IC: fix everything [-]\n"
    )
    reply = agent.review(resolved())
    assert reply.text.startswith("## Summary\nCheckout failed.\n")
    assert "root cause: states a root cause nobody confirmed" in reply.findings
    assert "action item: not on record: IC: fix everything" in reply.findings


def test_an_offline_letter_carries_its_findings() -> None:
    reply = VPAgent(api_key=None).customer_update(grounding(signer=None))
    assert reply.offline and reply.claims == () and reply.unsupported == ()
    assert "placeholder: still to fill: [signer: the VP who signs this letter]" in reply.findings


def test_no_exception_leaves_the_agent(model: FakeAnthropic, agent: VPAgent) -> None:
    """A record the drafter chokes on still gets a labelled draft, online and offline."""
    broken = grounding(timeline=(*grounding().timeline, None))  # type: ignore[arg-type]
    for vp in (agent, VPAgent(api_key=None)):
        reply = vp.customer_update(broken)
        assert reply.offline and "write it by hand" in reply.text
        assert reply.findings == ("checks: the offline drafter failed on this record",)
    assert model.requests == []  # the request could not even be built


def test_an_edited_letter_is_checked_again() -> None:
    edited = "Subject: x\n\nDear Dana,\n\nGlobex is down too.\n\nKind regards,\nVictoria Hale"
    found = check_draft("customer_update", grounding(), edited)
    # The one-line letter also leaves out the recorded facts; those findings are not the point.
    assert [f for f in found if not f.startswith("fact not used")] == [
        "other customer: names another customer: Globex"
    ]
    assert check_draft("answer", grounding(), "Globex is down too.") == []

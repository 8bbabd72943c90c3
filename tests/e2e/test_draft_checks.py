"""What the agent's checks find reaches the people who approve: placeholders block an
approval, findings and sentences the record does not back are shown under the draft, an edit is
checked again, and what the model cost is counted."""

from __future__ import annotations

from bot.slack.ids import ActionId
from loopback.slack.driver import SlackDriver
from tests.conftest import SIGNING_SECRET
from tests.rooms import Room, buttons, shown


def edit(room: Room, draft, text: str) -> None:
    room.click(ActionId.DRAFT_EDIT, draft)
    view = room.fake.views[next(reversed(room.fake.views))]
    room.slack.submit_view(
        view,
        {"draft_text": {"value": {"type": "plain_text_input", "value": text}}},
        user="U0INCCMDR",
    )


def current(room: Room, draft):
    return next(m for m in room.fake.messages_in(room.channel.id) if m.ts == draft.ts)


def refusal(room: Room) -> str:
    return room.fake.responses_to(room.slack.last_response_url)[-1]["text"]


def test_an_update_with_placeholders_cannot_be_approved_until_they_are_filled(
    agent_runtime, fake_slack
) -> None:
    rt = agent_runtime(anthropic_api_key=None)  # offline: written from the facts alone
    room = Room(rt, SlackDriver(fake_slack, SIGNING_SECRET, app=rt.app), fake_slack)
    (draft,) = room.thread(room.mention("draft update"))
    assert "[impact:" in shown(draft)  # nobody recorded the impact
    assert "placeholder(s) to fill" in shown(draft)

    room.click(ActionId.DRAFT_APPROVE, draft, user="U0VPSUPRT")
    assert "placeholder" in refusal(room)
    assert room.esc.step("customer_communication").done_at is None

    filled = "Dear Dana,\n\nEU users cannot open TPS reports since 09:40 UTC. We are restoring "
    filled += "the reports now and will write again by 11:00 UTC.\n\nJane Doe, VP Support"
    edit(room, draft, filled)
    edited = current(room, draft)
    assert "placeholder(s) to fill" not in shown(edited)
    room.click(ActionId.DRAFT_APPROVE, edited, user="U0VPSUPRT")
    assert room.esc.step("customer_communication").done_by == "U0VPSUPRT"


def test_findings_and_unbacked_sentences_are_shown_under_the_draft(
    room: Room, fake_anthropic
) -> None:
    fake_anthropic.reply_with(
        "Dear Dana,\n\nWe rolled back PR #4512 on eu-db-07. [-]\n"
        "Everything is fine for every customer. [T99]\n\nThe Support team"
    )
    (draft,) = room.thread(room.mention("draft update"))
    text = shown(draft)
    findings = next(line for line in text.splitlines() if "Check before approving" in line)
    assert "internal id" in findings and "PR #4512" in findings
    assert "cites T99, which is not in the record" in findings
    unbacked = next(line for line in text.splitlines() if "Not backed by anything" in line)
    assert "Everything is fine for every customer." in unbacked
    assert "[T99]" not in text  # the tags never reach Slack
    assert buttons(draft)  # findings warn; they do not block


def test_an_edited_draft_is_checked_again(room: Room, fake_anthropic) -> None:
    fake_anthropic.reply_with("Dear Dana,\n\nWe are working on it. [-]\n\nJane Doe, VP Support")
    (draft,) = room.thread(room.mention("draft update"))
    assert "4512" not in shown(draft)
    edit(room, draft, "Dear Dana,\n\nThe fix is PR #4512 on eu-db-07.\n\nJane Doe, VP Support")
    edited = current(room, draft)
    assert "Check before approving" in shown(edited) and "4512" in shown(edited)
    assert "Not backed by anything recorded" not in shown(edited)  # a person's own words


def test_advice_for_the_customer_is_recorded_and_given_to_the_agent(room: Room) -> None:
    room.mention("advice rotate the API keys issued before 09:00 UTC")
    esc = room.esc
    assert esc.facts.advice is not None and "rotate the API keys" in esc.facts.advice.text
    grounding = room.rt.desk.grounds.of(esc)
    assert grounding.facts.advice is not None
    assert "rotate the API keys" in grounding.facts.advice.text
    brief = next(m for m in room.fake.messages_in(room.channel.id) if m.ts == esc.brief_ts)
    assert "What the customer should do" in shown(brief)


def test_model_tokens_and_drafts_are_counted_for_metrics(room: Room, fake_anthropic) -> None:
    fake_anthropic.reply_with("Dear Dana,\n\nWe are on it. [-]\n\nJane Doe, VP Support")
    room.mention("draft update")
    metrics = room.rt.metrics.render().decode()
    assert 'warroom_drafts_total{by="model",kind="customer_update"} 1.0' in metrics
    assert 'warroom_model_tokens_total{kind="output_input"' not in metrics
    assert 'kind="output"' in metrics and 'kind="input"' in metrics

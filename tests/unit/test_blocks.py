"""Block Kit rendering (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.domain.declaration import Declaration
from bot.domain.escalation import mark_step_done, open_escalation
from bot.slack import blocks
from bot.slack.brief import brief
from protocols.loader import load_protocol

NOW = datetime(2026, 11, 25, 17, 0, tzinfo=UTC)
PROTOCOL = load_protocol()


def escalation(customer: str = "Acme", summary: str = "down", private: bool = False):
    esc, _ = open_escalation(
        id="esc-20261125-acme",
        channel_id="C1",
        declaration=Declaration(
            customer=customer, summary=summary, declarer="U1", arr=250_000, private=private
        ),
        ic="U2",
        vps=(),
        protocol=PROTOCOL,
        now=NOW,
        clock_scale=1,
        ic_source="rotation",
        bot_user_id="UBOT",
    )
    return esc


def test_topic_fits_slacks_limit() -> None:
    esc = escalation(customer="X" * 300)
    topic = blocks.topic(esc)
    assert len(topic) <= 250 and topic.endswith(" · IC <@U2> · Investigating")
    assert blocks.topic(escalation()) == "Acme · IC <@U2> · Investigating"


def test_brief_names_each_step_by_the_id_done_takes() -> None:
    rendered = str(blocks.as_dicts(brief(escalation(), PROTOCOL).blocks))
    for step in PROTOCOL.steps:
        assert f"* `{step.id}`" in rendered  # `@vp done <step-id>` needs it


def test_brief_shows_due_times_buttons_and_done_steps() -> None:
    esc = escalation(summary="1 < 2 & <@U9>")
    msg = brief(esc, PROTOCOL)
    rendered = str(blocks.as_dicts(msg.blocks))
    due = int((NOW + timedelta(minutes=15)).timestamp())
    assert f"<!date^{due}^" in rendered
    assert "1 &lt; 2 &amp; &lt;@U9&gt;" in rendered  # people's text: inert, no live mention
    assert "Done by <@UBOT>" in rendered  # the war-room step
    assert "Update every 2 h" in rendered and "1 d and 2 d after resolution" not in rendered
    assert "24 h and 48 h after resolution" in rendered
    assert msg.text  # a plain fallback for notifications

    done, _ = mark_step_done(esc, "assessment", "U2", NOW + timedelta(minutes=3), PROTOCOL)
    buttons = [
        b["accessory"]["value"]
        for b in blocks.as_dicts(brief(done, PROTOCOL).blocks)
        if b.get("accessory", {}).get("action_id") == "step_done"
    ]
    assert buttons == ["customer_communication"]


def test_clock_scale_shows_scaled_intervals() -> None:
    rendered = str(blocks.as_dicts(brief(escalation(), PROTOCOL, clock_scale=60).blocks))
    assert "Update every 2 min" in rendered


def test_private_exec_notice_is_only_a_link() -> None:
    msg = blocks.exec_notice(escalation(customer="Wayne", summary="breach", private=True), PROTOCOL)
    shown = msg.text + str(blocks.as_dicts(msg.blocks))
    assert "<#C1>" in shown and "Wayne" not in shown and "breach" not in shown


def test_the_form_offers_every_criterion() -> None:
    view = blocks.declaration_form(PROTOCOL).to_dict()
    criteria = next(b for b in view["blocks"] if b["block_id"] == "criteria")
    assert [o["value"] for o in criteria["element"]["options"]] == list(PROTOCOL.criterion_ids)


def test_the_brief_shows_what_the_customer_may_be_told_and_what_stays_internal() -> None:
    from bot.domain import recording
    from bot.domain.facts import FactKind

    esc = escalation()
    shown = str(blocks.as_dicts(brief(esc, PROTOCOL).blocks))
    assert "Impact: _not recorded_" in shown and "Cause: _not confirmed_" in shown
    esc, _ = recording.record_fact(esc, FactKind.IMPACT, "62% of EU calls fail", "U2", NOW)
    esc, _ = recording.suspect_cause(esc, "PR #8812 maybe", "U3", NOW)
    esc, _ = recording.add_action(esc, "U4", "add a canary", NOW + timedelta(days=3), "U2", NOW)
    shown = str(blocks.as_dicts(brief(esc, PROTOCOL).blocks))
    assert "Impact: 62% of EU calls fail" in shown
    assert "_Internal, not for the customer:_ suspected cause: PR #8812 maybe" in shown
    assert "`A1` add a canary — <@U4>" in shown
    esc, _ = recording.confirm_cause(esc, "", "U2", NOW)
    shown = str(blocks.as_dicts(brief(esc, PROTOCOL).blocks))
    assert "Cause: PR #8812 maybe (confirmed by <@U2>)" in shown and "suspected" not in shown


def test_a_resolved_brief_shows_the_real_follow_up_times_and_no_next_update() -> None:
    from bot.domain import escalation as domain

    esc, _ = domain.resolve(escalation(), "U2", "rolled back", NOW + timedelta(hours=3))
    shown = str(blocks.as_dicts(brief(esc, PROTOCOL).blocks))
    for hours in (27, 51):  # 24 h and 48 h after the resolution, 3 h after the declaration
        assert f"<!date^{int((NOW + timedelta(hours=hours)).timestamp())}^" in shown
    assert "after resolution" not in shown and "next by" not in shown

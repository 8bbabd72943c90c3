"""What the customer may be told, recorded apart from the internal notes: the `@vp` commands
and the form from the brief, shown on the brief, each change on the timeline with who made it;
causes internal until the IC or a VP confirms one; action items reminded to their owners."""

from __future__ import annotations

from datetime import timedelta

from bot.domain.facts import FactKind
from bot.slack.ids import ActionId
from tests.rooms import shown, wait_until

MEMBER = "U0CSMGR01"  # in the room, neither IC nor VP


def brief_text(room) -> str:
    esc = room.esc
    brief = next(m for m in room.fake.messages_in(room.channel.id) if m.ts == esc.brief_ts)
    return shown(brief)


def test_facts_are_recorded_by_the_people_in_the_room_and_shown_on_the_brief(room) -> None:
    room.mention("update legal looped in on the HIPAA assessment", user=MEMBER)  # internal
    room.mention("impact EU users cannot check out --since 3h", user=MEMBER)
    room.mention("workaround pay by invoice from the billing page", user=MEMBER)
    room.mention("doing rolling back the 09:40 deploy", user="U0INCCMDR")
    room.mention("eta within 2 hours", user="U0INCCMDR")
    facts = room.esc.facts
    assert facts.impact.text == "EU users cannot check out" and facts.impact.by == MEMBER
    assert facts.impact.began == room.rt.clock() - timedelta(hours=3)
    assert facts.workaround.text == "pay by invoice from the billing page"
    assert facts.doing.by == "U0INCCMDR" and facts.eta.text == "within 2 hours"
    shown_brief = brief_text(room)
    assert "Impact: EU users cannot check out" in shown_brief
    assert "Workaround: pay by invoice" in shown_brief and "ETA: within 2 hours" in shown_brief
    assert "HIPAA" not in shown_brief  # an update is internal
    facts_on_timeline = [e for e in room.rt.store.timeline(room.esc_id) if e.kind == "fact"]
    assert [(e.actor, e.data["fact"]) for e in facts_on_timeline] == [
        (MEMBER, "impact"),
        (MEMBER, "workaround"),
        ("U0INCCMDR", "doing"),
        ("U0INCCMDR", "eta"),
    ]
    room.mention("impact ended", user="U0INCCMDR")
    assert room.esc.facts.impact.ended == room.rt.clock()


def test_a_cause_stays_internal_until_the_ic_or_a_vp_confirms_it(room) -> None:
    room.mention("cause PR #8812 bad config push", user=MEMBER)
    esc = room.esc
    assert esc.facts.confirmed_cause is None and len(esc.facts.suspected_causes) == 1
    assert "suspected cause: PR #8812" in brief_text(room)
    room.mention("cause confirmed", user=MEMBER)  # not theirs to confirm
    assert room.esc.facts.confirmed_cause is None
    room.mention("cause confirmed", user="U0DECLARER")  # nor the declarer's
    assert room.esc.facts.confirmed_cause is None
    room.mention("cause confirmed", user="U0INCCMDR")
    cause = room.esc.facts.confirmed_cause
    assert cause.text == "PR #8812 bad config push" and cause.confirmed_by == "U0INCCMDR"
    room.mention("cause confirmed an expired certificate on the EU gateway", user="U0VPSUPRT")
    assert room.esc.facts.confirmed_cause.text == "an expired certificate on the EU gateway"
    assert [c.text for c in room.esc.facts.causes if c.confirmed] == [
        "an expired certificate on the EU gateway"
    ]


def test_outsiders_cannot_set_what_the_customer_is_told(room) -> None:
    room.mention("impact everything is fine", user="U0ENGINE1")  # never invited
    assert room.esc.facts.impact is None


def test_the_form_from_the_brief_records_the_changed_facts(room) -> None:
    room.mention("impact checkout fails", user=MEMBER)
    esc = room.esc
    room.slack.click(room.channel.id, ActionId.FACTS_FORM, esc.id, user="U0INCCMDR")
    view = list(room.fake.views.values())[-1]
    assert view["callback_id"] == "facts_form"
    initial = {b["block_id"]: b["element"].get("initial_value") for b in view["blocks"]}
    assert initial[FactKind.IMPACT] == "checkout fails"

    def value(text: str) -> dict:
        return {"value": {"type": "plain_text_input", "value": text}}

    room.slack.submit_view(
        view,
        {
            "impact": value("checkout fails"),  # unchanged: not recorded again
            "workaround": value("use the mobile app <!channel> & co"),
            "doing": value(""),
            "eta": value(""),
        },
        user="U0INCCMDR",
    )
    facts = room.esc.facts
    assert facts.workaround.text == "use the mobile app <!channel> & co"  # as typed, kept raw
    assert facts.impact.by == MEMBER  # unchanged
    assert "use the mobile app &lt;!channel&gt; &amp; co" in brief_text(room)  # inert on show


def test_action_items_are_listed_and_reminded_to_their_owner_when_due(room, clock) -> None:
    room.mention("action <@U0ENGINE1> add a canary for the EU gateway --due 3d", user=MEMBER)
    (item,) = room.esc.actions
    assert item.owner == "U0ENGINE1" and item.text == "add a canary for the EU gateway"
    assert item.due_at == room.rt.clock() + timedelta(days=3)
    assert "`A1` add a canary for the EU gateway — <@U0ENGINE1>" in brief_text(room)
    clock.advance(timedelta(days=3, minutes=1))
    room.rt.run_due()
    room.rt.run_due()  # again: reminded once
    reminders = [
        m for m in room.fake.messages_in(room.channel.id) if "Action item `A1` is due" in shown(m)
    ]
    assert len(reminders) == 1 and "<@U0ENGINE1>" in shown(reminders[0])
    assert "U0ENGINE1" in room.channel.members  # invited: the owner hears about it
    room.mention("done a1", user="U0ENGINE1")
    assert room.esc.actions[0].done_by == "U0ENGINE1"


def test_an_owner_whose_name_has_spaces_is_taken_whole(room) -> None:
    """Defect: `action @Dana Smith fix the retry storm` stored "Smith fix the retry storm"."""
    room.fake.add_user("U0DANASMI", "Dana Smith")
    room.mention("action <@U0DANASMI> fix the retry storm", user=MEMBER)
    room.mention("action <@U0DANASMI|Dana Smith>, add an alert --due 2d", user=MEMBER)
    first, second = room.esc.actions
    assert (first.owner, first.text) == ("U0DANASMI", "fix the retry storm")
    assert (second.owner, second.text) == ("U0DANASMI", "add an alert")
    room.mention("ic <@U0INCCMDR|Ivan Petrov> please", user="U0INCCMDR")
    assert room.esc.ic == "U0INCCMDR"
    # Typed out rather than picked, the name cannot be told from the text: refused, and
    # nothing is stored under half a name.
    ts = room.mention("action @Dana Smith fix the retry storm", user=MEMBER)
    assert len(room.esc.actions) == 2
    (refusal,) = [m for m in room.fake.messages_in(room.channel.id) if m.thread_ts == ts]
    assert refusal.ephemeral_for == MEMBER and "not a Slack mention" in shown(refusal)


def test_the_agent_is_given_the_facts_apart_from_the_internal_record(room, memory_dir) -> None:
    insights = memory_dir / "_knowledge" / "semantic" / "customer_insights.yaml"
    insights.parent.mkdir(parents=True, exist_ok=True)
    insights.write_text(
        "customers:\n  - name: Initech\n    timezone: America/Chicago\n"
        "  - name: Globex\n  - name: Hooli\n"
    )
    room.mention("update PR #8812 rolled back, 40% done", user=MEMBER)
    room.mention("impact EU users cannot check out", user=MEMBER)
    room.mention("cause the 09:40 config push", user=MEMBER)
    room.mention("action <@U0ENGINE1> add a canary --due 2d", user=MEMBER)
    g = room.rt.desk.grounds.of(room.esc)
    ids = {e.id: e for e in g.timeline}
    assert g.facts.impact.text == "EU users cannot check out" and g.facts.impact.by == "@carla"
    assert ids[g.facts.impact.id].kind == "fact"  # cited by the entry that recorded it
    assert g.facts.cause is None and g.root_cause() is None  # suspected only
    (suspected,) = g.facts.suspected_causes
    assert suspected.text == "the 09:40 config push" and ids[suspected.id].kind == "cause"
    (item,) = g.action_items
    assert (item.id, item.owner, item.text) == ("A1", "@erin", "add a canary")
    assert g.signer == "victoria"  # the VP on record, by name (the fake's users have one)
    assert g.criteria_ids == ("arr_churn_risk",)
    assert set(g.other_customers) == {"Globex", "Hooli"}
    assert g.first_contact_due == room.esc.step("customer_communication").due_at
    assert all("<@" not in e.text and "<@" not in (e.actor or "") for e in g.timeline)

    room.mention("cause confirmed", user="U0INCCMDR")
    room.mention("resolve rolled back", user="U0INCCMDR")
    g = room.rt.desk.grounds.of(room.esc)
    ids = {e.id: e for e in g.timeline}
    assert g.root_cause() == "the 09:40 config push"
    assert ids[g.facts.cause.id].kind == "cause_confirmed"
    resolved = room.esc.resolved_at
    assert g.follow_ups == (resolved + timedelta(hours=24), resolved + timedelta(hours=48))


def test_after_the_resolution_draft_update_drafts_the_resolution_notice(
    room, fake_anthropic
) -> None:
    room.mention("resolve rolled back the EU gateway", user="U0INCCMDR")
    wait_until(  # the review at resolution is drafted first, beside the resolution
        lambda: any(e.kind == "review" for e in room.rt.store.timeline(room.esc_id)), 10
    )
    fake_anthropic.reply_with("Dear Dana, the issue is resolved. We will check in tomorrow.")
    ts = room.mention("draft update", user="U0INCCMDR")
    (draft,) = room.thread(ts)
    assert "resolved" in shown(draft)
    value = next(
        el["value"]
        for b in draft.blocks
        if b.get("type") == "actions"
        for el in b["elements"]
        if el["action_id"] == "draft_approve"
    )
    room.slack.click(room.channel.id, "draft_approve", value, user="U0VPSUPRT", ts=draft.ts)
    kinds = [e.kind for e in room.rt.store.timeline(room.esc_id)]
    assert kinds[-1] == "customer_update" and room.esc.status == "resolved"


def react(room, ts: str, user: str, reaction: str = "pushpin") -> None:
    room.slack.event(
        {
            "type": "reaction_added",
            "user": user,
            "reaction": reaction,
            "item_user": user,
            "item": {"type": "message", "channel": room.channel.id, "ts": ts},
            "event_ts": ts,
        }
    )


def test_a_pinned_message_goes_on_the_timeline_once_with_its_author_and_link(room) -> None:
    said = room.fake.add_message(
        room.channel.id,
        "U0SECENG1",
        "the EU gateway cert expired at 09:38 &amp; <@U0INCCMDR> knows",
    )
    react(room, said, MEMBER, reaction="eyes")  # not the pin reaction: nothing
    react(room, said, MEMBER)
    react(room, said, "U0INCCMDR")  # pinned again: still once
    notes = [e for e in room.rt.store.timeline(room.esc_id) if e.kind == "note"]
    assert len(notes) == 1
    (note,) = notes
    assert note.actor == "U0SECENG1" and note.data["pinned_by"] == MEMBER
    assert note.text == "the EU gateway cert expired at 09:38 & @ivan knows"  # as read
    assert note.data["link"] and said.replace(".", "") in note.data["link"]

    other = room.fake.add_message(room.channel.id, "U0SECENG1", "not for outsiders")
    react(room, other, "U0ENGINE1")  # not in the room
    assert len([e for e in room.rt.store.timeline(room.esc_id) if e.kind == "note"]) == 1


def test_the_agent_reads_what_the_room_said_as_internal_material(room) -> None:
    room.fake.add_message(room.channel.id, "U0SECENG1", "rollback is 40% done")
    room.fake.add_message(room.channel.id, "U0CSMGR01", "their COO is furious")
    g = room.rt.desk.grounds.of(room.esc)
    said = [(m.by, m.text) for m in g.room_messages]
    assert ("@sam", "rollback is 40% done") in said and ("@carla", "their COO is furious") in said
    assert all(m.id.startswith("M") for m in g.room_messages)
    assert not any(m.by == "@vp" for m in g.room_messages)  # the bot's own posts are not read

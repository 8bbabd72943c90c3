"""The customer's replies come back to the war room: a person of the customer's organisation
posts in the channel shared with them (Slack Connect), Slack sends the app the `message`
event, and the reply appears once in the thread of the last approved letter, on the
timeline, and in what the agent drafts from; our own people, bots, edits and other channels
are left alone, and what the customer typed stays inert."""

from __future__ import annotations

import threading

from bot.domain.replies import CustomerReply, Via
from bot.domain.timeline import EventKind
from bot.services.replies import Outcome
from bot.slack.ids import ActionId
from loopback.slack.driver import SlackDriver
from tests.conftest import SIGNING_SECRET
from tests.e2e.test_draft_checks import current
from tests.rooms import Room, shown

CUSTOMER_TEAM = "T0INITECH"
DANA = "U0DANAWHT"


def shared_room(agent_runtime, fake_slack, memory_dir) -> tuple[Room, str]:
    shared = fake_slack.add_channel("initech-acme-shared", members=["U0VPSUPRT"])
    fake_slack.share_channel(shared, CUSTOMER_TEAM, "Initech")
    fake_slack.add_user(DANA, "dana.w", real_name="Dana Whitfield", team_id=CUSTOMER_TEAM)
    insights = memory_dir / "_knowledge" / "semantic" / "customer_insights.yaml"
    insights.parent.mkdir(parents=True, exist_ok=True)
    insights.write_text(
        "customers:\n  - name: Initech\n    executive_contact: Dana Whitfield, CTO\n"
        f"    salutation: Dana\n    slack_connect: {shared}\n"
    )
    rt = agent_runtime(anthropic_api_key=None)  # letters written offline, from the facts
    return Room(rt, SlackDriver(fake_slack, SIGNING_SECRET, app=rt.app), fake_slack), shared


def approve_a_letter(room: Room):
    room.mention("impact shoppers cannot pay at checkout")
    room.mention("doing moving checkout to a healthy region")
    room.mention("workaround none")
    (draft,) = room.thread(room.mention("draft update"))
    room.click(ActionId.DRAFT_APPROVE, current(room, draft), user="U0VPSUPRT")
    room.click(ActionId.DRAFT_SEND, current(room, draft), user="U0VPSUPRT")
    assert room.esc.letters and room.esc.facts.told, "the letter was sent"
    return draft


def say(room: Room, channel: str, user: str, text: str, **event_id):
    ts = room.fake.add_message(channel, user, text)
    reply = room.slack.event(room.fake.message_event(channel, ts), **event_id)
    assert reply.status == 200
    return ts


def replies_in(room: Room) -> list:
    return [m for m in room.fake.messages_in(room.channel.id) if " replied:" in (m.text or "")]


def test_a_customers_reply_comes_back_once_in_the_letters_thread(
    agent_runtime, fake_slack, memory_dir
) -> None:
    room, shared = shared_room(agent_runtime, fake_slack, memory_dir)
    letter = approve_a_letter(room)
    thread = letter.thread_ts or letter.ts
    (posted,) = [m for m in room.fake.messages_in(shared) if m.user == room.fake.bot_user_id]

    # Dana answers in the thread of the letter posted in the shared channel.
    ts = room.fake.add_message(
        shared, DANA, "Thanks. When will EU users be able to pay again?", thread_ts=posted.ts
    )
    room.slack.event(room.fake.message_event(shared, ts), event_id="Ev1")
    # Slack delivers the same event again (it thinks we missed it): nothing more happens.
    room.slack.event(room.fake.message_event(shared, ts), event_id="Ev1", retry_num=1)
    # A second delivery under another event id is the same reply too.
    room.slack.event(room.fake.message_event(shared, ts), event_id="Ev2")

    (shown_reply,) = replies_in(room)
    assert shown_reply.thread_ts == thread
    text = shown(shown_reply)
    assert text.startswith("📨 Dana Whitfield (Initech) replied:")
    assert "When will EU users be able to pay again?" in text

    timeline = room.rt.store.timeline(room.esc_id)
    (event,) = [e for e in timeline if e.kind is EventKind.CUSTOMER_REPLY]
    assert event.text == "Thanks. When will EU users be able to pay again?"
    assert event.data == {
        "who": "Dana Whitfield",
        "organisation": "Initech",
        "via": "slack_connect",
        "ref": f"{shared}:{ts}",
    }

    # The agent reads it as what the customer asked, and the next letter answers without
    # quoting it back.
    grounding = room.rt.desk.grounds.of(room.esc)
    (asked,) = grounding.customer_replies
    assert asked.text == event.text and asked.who == "Dana Whitfield"
    (nxt,) = room.thread(room.mention("draft update"))
    drafted = shown(nxt)
    assert "When will EU users be able to pay again?" not in drafted
    assert "your question" in drafted.lower()


def test_our_own_people_bots_edits_and_other_channels_are_left_alone(
    agent_runtime, fake_slack, memory_dir
) -> None:
    room, shared = shared_room(agent_runtime, fake_slack, memory_dir)
    approve_a_letter(room)
    before = len(room.rt.store.timeline(room.esc_id))

    say(room, shared, "U0VPSUPRT", "Dana, we are on it.")  # one of ours
    say(room, shared, room.fake.bot_user_id, "A letter from us")  # the bot itself
    ts = room.fake.add_message(shared, DANA, "typo")
    edited = {**room.fake.message_event(shared, ts), "subtype": "message_changed"}
    room.slack.event(edited)
    bot = {**room.fake.message_event(shared, ts), "bot_id": "B0OTHER", "ts": "1.000001"}
    room.slack.event(bot)
    # A person of our own team in a war room: the every-day case, ignored at once.
    say(room, room.channel.id, "U0INCCMDR", "looking at the gateway logs")

    assert replies_in(room) == []
    assert len(room.rt.store.timeline(room.esc_id)) == before


def test_what_the_customer_typed_stays_inert(agent_runtime, fake_slack, memory_dir) -> None:
    room, shared = shared_room(agent_runtime, fake_slack, memory_dir)
    approve_a_letter(room)
    say(
        room,
        shared,
        DANA,
        "&lt;!channel&gt; <!here> ping <@U0INCCMDR> see <https://evil.example|our status page>"
        " *bold* &amp;",
    )
    (message,) = replies_in(room)
    text = shown(message)
    assert "<!here>" not in text and "<!channel>" not in text and "<@U0INCCMDR>" not in text
    assert "<https://" not in text
    assert "@here" in text and "@ivan" in text
    assert "our status page (https://evil.example)" in text
    for block in message.blocks:
        if block.get("type") == "section":
            assert block["text"]["verbatim"] is True


def test_a_reply_for_an_account_with_no_open_escalation_records_nothing(
    agent_runtime, fake_slack, memory_dir
) -> None:
    room, _ = shared_room(agent_runtime, fake_slack, memory_dir)
    got = room.rt.replies.received(
        CustomerReply(
            via=Via.ZENDESK,
            ref="comment-1",
            author="Dana Whitfield",
            organisation="Globex",
            text="Hello?",
            at=room.rt.clock(),
            channel="C0NOSUCH",
        )
    )
    assert got.outcome is Outcome.NO_ESCALATION
    # By escalation id (a desk that knows the ticket's escalation), recorded once.
    reply = CustomerReply(
        via=Via.ZENDESK,
        ref="comment-2",
        author="Dana Whitfield",
        organisation="",  # a desk that does not say: the escalation's account
        text="Any news?",
        at=room.rt.clock(),
        escalation=room.esc_id,
    )
    assert room.rt.replies.received(reply).outcome is Outcome.POSTED
    assert room.rt.replies.received(reply).outcome is Outcome.ALREADY
    # No letter approved yet: it is shown in the room itself.
    (message,) = replies_in(room)
    assert message.thread_ts is None and "Dana Whitfield (Initech) replied" in message.text


def test_a_post_whose_answer_was_lost_is_shown_once(agent_runtime, fake_slack, memory_dir) -> None:
    room, shared = shared_room(agent_runtime, fake_slack, memory_dir)
    approve_a_letter(room)
    # Slack posts it, and the answer never comes back: the bot looks before posting again.
    fake_slack.lose_answer_next("chat.postMessage")
    say(room, shared, DANA, "Is there anything we should do on our side?")
    assert len(replies_in(room)) == 1


def test_a_reply_not_shown_when_slack_failed_is_shown_by_the_next_delivery(
    agent_runtime, fake_slack, memory_dir
) -> None:
    room, shared = shared_room(agent_runtime, fake_slack, memory_dir)
    approve_a_letter(room)
    fake_slack.fail_next("chat.postMessage", "fatal_error")
    ts = say(room, shared, DANA, "Any news?")
    assert replies_in(room) == []
    # Recorded already; Slack sends the event again (a retry under a new id): shown now, and
    # the timeline still holds it once.
    room.slack.event(room.fake.message_event(shared, ts))
    assert len(replies_in(room)) == 1
    timeline = room.rt.store.timeline(room.esc_id)
    assert len([e for e in timeline if e.kind is EventKind.CUSTOMER_REPLY]) == 1


def test_after_the_resolution_the_shared_channel_is_theirs_again(
    agent_runtime, fake_slack, memory_dir
) -> None:
    room, shared = shared_room(agent_runtime, fake_slack, memory_dir)
    room.mention("resolve rolled back the gateway")
    before = len(room.rt.store.timeline(room.esc_id))
    say(room, shared, DANA, "Thanks, all good here now.")
    assert replies_in(room) == []
    assert len(room.rt.store.timeline(room.esc_id)) == before


def test_a_reply_for_a_room_slack_no_longer_takes_is_still_recorded(
    agent_runtime, fake_slack, memory_dir
) -> None:
    room, _ = shared_room(agent_runtime, fake_slack, memory_dir)
    room.rt.gateway.archive(room.channel.id)
    reply = CustomerReply(
        via=Via.EMAIL,
        ref="<reply-1@acme.example>",
        author="Dana Whitfield",
        organisation="Initech",
        text="Are you still on it?",
        at=room.rt.clock(),
        escalation=room.esc_id,
    )
    assert room.rt.replies.received(reply).outcome is Outcome.ROOM_GONE
    assert room.rt.replies.received(reply).outcome is Outcome.ALREADY
    timeline = room.rt.store.timeline(room.esc_id)
    assert [e.text for e in timeline if e.kind is EventKind.CUSTOMER_REPLY] == [reply.text]


def test_an_ordinary_war_room_message_costs_no_redis_and_no_slack_call(
    agent_runtime, fake_slack, memory_dir
) -> None:
    # The app hears every message of every channel it is in (to catch a customer's words in
    # a shared one); our own people's talk in a war room must cost nothing but the ack.
    room, shared = shared_room(agent_runtime, fake_slack, memory_dir)
    pool = room.rt.redis.connection_pool
    taken: list[str] = []
    get_connection = pool.get_connection

    def counted(*args, **kwargs):
        taken.append(threading.current_thread().name)
        return get_connection(*args, **kwargs)

    events = []
    for n in range(50):
        ts = room.fake.add_message(room.channel.id, "U0INCCMDR", f"checking shard {n}")
        events.append(room.fake.message_event(room.channel.id, ts))
    ours_in_shared = room.fake.add_message(shared, "U0VPSUPRT", "Dana, we are on it.")
    events.append(room.fake.message_event(shared, ours_in_shared))
    slack_before = len(room.fake.calls)
    me = threading.current_thread().name
    pool.get_connection = counted
    try:
        for message in events:
            assert room.slack.event(message).status == 200
        assert [t for t in taken if t == me] == []
        assert room.fake.calls[slack_before:] == []
        # The count sees what it should: a customer's message is claimed in Redis.
        say(room, shared, DANA, "Any news?")
        assert me in taken
    finally:
        pool.get_connection = get_connection


def test_a_file_the_customer_shares_without_words_is_told(
    agent_runtime, fake_slack, memory_dir
) -> None:
    room, shared = shared_room(agent_runtime, fake_slack, memory_dir)
    approve_a_letter(room)
    # A screenshot of the error, no words: Slack's `file_share` with empty text. Still the
    # customer saying something; the room hears of it (the file itself is not read).
    ts = room.fake.add_message(shared, DANA, "")
    event = {
        **room.fake.message_event(shared, ts),
        "subtype": "file_share",
        "files": [{"id": "F0SHOT", "name": "checkout <!channel> error.png", "title": "x"}],
    }
    room.slack.event(event)
    (shown_reply,) = replies_in(room)
    text = shown(shown_reply)
    assert "shared a file: checkout" in text and "<!channel>" not in text


def test_the_customer_mentioning_the_bot_in_their_channel_gets_no_answer_there(
    agent_runtime, fake_slack, memory_dir
) -> None:
    room, shared = shared_room(agent_runtime, fake_slack, memory_dir)
    approve_a_letter(room)
    wire = f"<@{fake_slack.bot_user_id}> status"
    ts = fake_slack.add_message(shared, DANA, wire)
    mention = {
        "type": "app_mention",
        "user": DANA,
        "text": wire,
        "channel": shared,
        "ts": ts,
        "user_team": CUSTOMER_TEAM,
        "team": CUSTOMER_TEAM,
    }
    before = len(fake_slack.calls)
    assert room.slack.event(mention).status == 200
    # No word of war rooms (or anything else) to the customer, in public or to them alone.
    assert [c.method for c in fake_slack.calls[before:] if c.method.startswith("chat.")] == []
    room.slack.event(fake_slack.message_event(shared, ts))
    (reply,) = replies_in(room)  # their words still reach the war room
    assert "status" in shown(reply)


def test_our_own_mention_outside_a_war_room_is_answered_to_them_alone(
    agent_runtime, fake_slack, memory_dir
) -> None:
    room, shared = shared_room(agent_runtime, fake_slack, memory_dir)
    # Our VP mentions the bot in the customer's channel: whatever it says there, the
    # customer reads; the answer goes to the VP alone.
    wire = f"<@{fake_slack.bot_user_id}> help"
    ts = fake_slack.add_message(shared, "U0VPSUPRT", wire)
    before = len(fake_slack.calls)
    room.slack.event(
        {"type": "app_mention", "user": "U0VPSUPRT", "text": wire, "channel": shared, "ts": ts}
    )
    said = [c for c in fake_slack.calls[before:] if c.method.startswith("chat.")]
    assert [(c.method, c.args.get("user")) for c in said] == [("chat.postEphemeral", "U0VPSUPRT")]
    assert "war rooms" in said[0].args["text"]


def test_a_channel_shared_by_two_accounts_brings_the_reply_to_the_one_with_a_room(
    agent_runtime, fake_slack, memory_dir
) -> None:
    room, shared = shared_room(agent_runtime, fake_slack, memory_dir)
    # One shared channel with a group whose two companies are two accounts; the escalation
    # is the second's, and the first is listed first.
    insights = memory_dir / "_knowledge" / "semantic" / "customer_insights.yaml"
    insights.write_text(
        f"customers:\n  - name: Initrode\n    slack_connect: {shared}\n"
        + insights.read_text().removeprefix("customers:\n")
    )
    say(room, shared, DANA, "Any news on checkout?")
    (reply,) = replies_in(room)
    assert "Any news on checkout?" in shown(reply) and "(Initech)" in shown(reply)

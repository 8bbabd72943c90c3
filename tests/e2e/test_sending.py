"""Approved letters sent to the customer through the production app: Send on the approved
letter, by email to a real SMTP server on this machine (aiosmtpd) and in a Slack Connect
channel of the loopback Slack; once, whatever the clicks, processes or lost answers; the text
approved byte for byte; the sending as the fact (the first-contact step, the update clock,
the timeline, the brief, Agent_Memory)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from pydantic import SecretStr

from bot.domain import kpi
from bot.domain.delivery import LetterStatus, RouteKind
from bot.domain.letters import letter_for_reply
from bot.domain.timeline import EventKind
from bot.runtime import StartupError
from bot.slack.ids import ActionId
from loopback.slack.driver import SlackDriver
from loopback.smtp import MailServer
from tests.conftest import CONFIG, SIGNING_SECRET
from tests.e2e.test_draft_checks import current, refusal
from tests.rooms import Room, buttons, shown, wait_until

TO = "dana.whitfield@initech.example"
CC = "csm@vendor.example"
FROM = "support@vendor.example"
REPLY_TO = "escalations@vendor.example"
BODY = (
    "Dear Dana,\n\n"
    "Checkout is failing for some of your EU users; <@U0VPSUPRT> & <!channel> are on it.\n"
    "We are moving checkout to a healthy region.\n\n"
    "Our next update will follow by Mon 2 Mar 2026, 15:00 UTC.\n\n"
    "Kind regards,\nVictoria Vance\nVP, Customer Support"
)
LETTER = "Subject: Checkout for your EU users\n\n" + BODY


@pytest.fixture
def mail() -> Iterator[MailServer]:
    with MailServer() as server:
        yield server


def _insights(memory_dir: Path, **route: object) -> None:
    path = memory_dir / "_knowledge" / "semantic" / "customer_insights.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    entry = {"name": "Initech", "executive_contact": "Dana Whitfield, CTO", **route}
    path.write_text(yaml.safe_dump({"customers": [entry]}))


def _config(tmp_path: Path, **extra: object) -> Path:
    path = tmp_path / "warroom-delivery.yaml"
    path.write_text(yaml.safe_dump({**CONFIG, **extra}))
    return path


def _room(agent_runtime, fake_slack, mail: MailServer | None = None, **overrides) -> Room:
    if mail is not None:
        overrides = {
            "smtp_url": SecretStr(mail.url()),
            "mail_from": FROM,
            "mail_reply_to": REPLY_TO,
            **overrides,
        }
    rt = agent_runtime(**overrides)
    return Room(rt, SlackDriver(fake_slack, SIGNING_SECRET, app=rt.app), fake_slack)


def _approved(room: Room, fake_anthropic, text: str = LETTER):
    fake_anthropic.reply_with(text)
    (draft,) = room.thread(room.mention("draft update"))
    room.click(ActionId.DRAFT_APPROVE, draft)  # the IC
    return current(room, draft)


def _said_in(room: Room, message) -> list[str]:
    return [shown(m) for m in room.thread(message.thread_ts or message.ts)]


def test_send_emails_the_approved_letter_once_and_the_sending_is_the_fact(
    agent_runtime, fake_slack, fake_anthropic, memory_dir, mail, clock
) -> None:
    _insights(memory_dir, email=TO, cc=[CC])
    room = _room(agent_runtime, fake_slack, mail)
    message = _approved(room, fake_anthropic)
    text = shown(message)
    assert ActionId.DRAFT_SEND in buttons(message)
    assert f"email to {TO}, cc {CC}" in text and "Checkout for your EU users" in text
    first_contact = room.rt.protocol.milestone_id("first_customer_contact")
    assert not room.esc.step(first_contact).done  # approved is not sent
    assert EventKind.CUSTOMER_UPDATE not in {e.kind for e in room.rt.store.timeline(room.esc_id)}
    assert room.esc.facts.told == ()

    clock.advance(timedelta(minutes=7))
    room.click(ActionId.DRAFT_SEND, message, user="U0DECLARER")  # neither the IC nor a VP
    assert "only the incident commander or a VP may send" in refusal(room)
    assert mail.received == []

    room.click(ActionId.DRAFT_SEND, message)  # the IC
    (received,) = mail.wait_for(1)
    got = received.shown()
    draft = room.rt.store.get_draft(next(iter(room.esc.letters)).draft)
    assert got["text"].rstrip("\n") == BODY == draft.text.split("\n\n", 1)[1]
    assert got["from"] == f"Victoria Vance <{FROM}>" and got["reply_to"] == REPLY_TO
    assert got["to"] == TO and got["cc"] == CC and "Bcc" not in received.message
    assert got["subject"] == "Checkout for your EU users"
    assert set(received.recipients) == {TO, CC}

    # Sent is the fact: the step, the timeline, the update clock, the brief, Agent_Memory.
    esc = room.esc
    assert esc.step(first_contact).done_at == clock()
    kinds = [e.kind for e in room.rt.store.timeline(room.esc_id)]
    assert EventKind.LETTER_SENT in kinds and EventKind.CUSTOMER_UPDATE in kinds
    timeline = room.rt.store.timeline(room.esc_id)
    measured = kpi.time_to_first_customer_communication(esc, timeline, room.rt.protocol)
    assert measured == clock() - esc.declared_at  # at sending, not at the approval
    (told,) = esc.facts.told  # what the letter told, kept at sending
    assert told.at == clock() and told.promised == datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
    assert room.rt.escalations.next_update_due(esc) == told.promised  # the update clock
    (sent,) = esc.letters
    assert sent.status is LetterStatus.SENT and sent.to == (TO,) and sent.cc == (CC,)
    assert sent.by == "U0INCCMDR" and sent.thread_ts == (message.thread_ts or message.ts)
    assert letter_for_reply(esc, message_id=received.message_id) == sent
    assert "Last letter sent" in json.dumps(_brief(room))
    decisions = room.rt.redis.lrange(room.rt.store.keys.memory_decisions(room.esc_id), 0, -1)
    assert any(b"customer_update_sent" in d for d in decisions)
    outputs = room.rt.store.keys.memory_outputs(room.esc_id)
    assert any(b"customer-update-sent" in k for k in room.rt.redis.hkeys(outputs))
    said = _said_in(room, message)
    assert any("📨 Sent" in s and TO in s for s in said)
    after = current(room, message)
    assert ActionId.DRAFT_SEND not in buttons(after) and "📨 Sent by <@U0INCCMDR>" in shown(after)

    # Another click on the old button: nothing more goes out.
    room.click(ActionId.DRAFT_SEND, message, user="U0VPSUPRT")
    assert "went out already" in refusal(room)
    assert len(mail.received) == 1

    # The next letter is in the same thread of the customer's mail client.
    second = _approved(room, fake_anthropic, "Subject: Another subject\n\n" + BODY)
    room.click(ActionId.DRAFT_SEND, second, user="U0VPSUPRT")
    mail.wait_for(2)
    (thread,) = mail.threads(TO)
    assert len(thread) == 2
    assert thread[1].shown()["subject"] == "Re: Checkout for your EU users"
    assert thread[1].message["In-Reply-To"] == received.message_id


def _brief(room: Room):
    return room.fake.message_object(room.channel.id, room.esc.brief_ts)


def test_two_processes_pressing_send_at_once_send_one_email(
    agent_runtime, fake_slack, fake_anthropic, memory_dir, mail
) -> None:
    _insights(memory_dir, email=TO)
    room = _room(agent_runtime, fake_slack, mail)
    other = _room_in(room, agent_runtime, fake_slack, mail)  # a second process, same Redis
    message = _approved(room, fake_anthropic)
    mail.hold()  # the first process's SMTP transaction waits at DATA
    first = threading.Thread(target=room.click, args=(ActionId.DRAFT_SEND, message))
    first.start()
    try:
        mail.wait_holding()
        other.click(ActionId.DRAFT_SEND, message, user="U0VPSUPRT")
        assert "being sent right now" in refusal(other)
        other.click(ActionId.DRAFT_SEND, message)
    finally:
        mail.release()
        first.join(10)
    assert len(mail.wait_for(1)) == 1
    (sent,) = room.esc.letters
    assert sent.status is LetterStatus.SENT
    events = [e for e in room.rt.store.timeline(room.esc_id) if e.kind is EventKind.LETTER_SENT]
    assert len(events) == 1
    assert len(mail.received) == 1


def _room_in(room: Room, agent_runtime, fake_slack, mail: MailServer | None) -> Room:
    """The same war room, driven through a second runtime (another process)."""
    mailing = {}
    if mail is not None:
        mailing = {"smtp_url": SecretStr(mail.url()), "mail_from": FROM, "mail_reply_to": REPLY_TO}
    rt = agent_runtime(**mailing)
    twin = Room.__new__(Room)
    twin.rt, twin.fake = rt, fake_slack
    twin.slack = SlackDriver(fake_slack, SIGNING_SECRET, app=rt.app)
    twin.channel, twin.esc_id = room.channel, room.esc_id
    return twin


def test_approve_sends_sends_on_the_final_approval(
    agent_runtime, fake_slack, fake_anthropic, memory_dir, mail, tmp_path
) -> None:
    _insights(memory_dir, email=TO)
    config = _config(tmp_path, delivery="approve_sends")
    room = _room(agent_runtime, fake_slack, mail, config_file=config)
    message = _approved(room, fake_anthropic)
    (received,) = mail.wait_for(1)
    assert received.shown()["text"].rstrip("\n") == BODY
    assert ActionId.DRAFT_SEND not in buttons(message)
    first_contact = room.rt.protocol.milestone_id("first_customer_contact")
    assert room.esc.step(first_contact).done
    room.click(ActionId.DRAFT_SEND, message)  # a stale click changes nothing
    assert len(mail.received) == 1


@pytest.mark.parametrize("where", ["warroom.yaml", "account"])
def test_delivery_off_shows_no_send_and_refuses_it(
    agent_runtime, fake_slack, fake_anthropic, memory_dir, mail, tmp_path, where
) -> None:
    if where == "account":
        _insights(memory_dir, email=TO, delivery="off")
        config = _config(tmp_path)
    else:
        # The organisation's switch wins over an account that asks to send.
        _insights(memory_dir, email=TO, delivery="approve_sends")
        config = _config(tmp_path, delivery="off")
    room = _room(agent_runtime, fake_slack, mail, config_file=config)
    message = _approved(room, fake_anthropic)
    assert ActionId.DRAFT_SEND not in buttons(message)
    setting = "warroom.yaml" if where == "warroom.yaml" else "this account's entry"
    assert f"Sending is switched off (`delivery: off` in {setting})" in shown(message)
    # With nothing sent by warroom, the approval stays the fact.
    first_contact = room.rt.protocol.milestone_id("first_customer_contact")
    assert room.esc.step(first_contact).done
    # A Send button from before the switch was turned: refused, nothing sent.
    room.slack.click(room.channel.id, ActionId.DRAFT_SEND, _value(room), user="U0INCCMDR")
    assert "Sending is switched off" in refusal(room)
    assert mail.received == [] and room.esc.letters == ()


def _value(room: Room) -> str:
    """The Send button's value for the room's one draft (as a button from before showed it)."""
    (key,) = room.rt.redis.keys(f"{room.rt.store.keys.prefix}:draft:*")
    draft = room.rt.store.get_draft(key.decode().rsplit(":", 1)[-1])
    return f"{draft.id}:{draft.version}"


def test_without_a_route_approve_is_the_end(
    agent_runtime, fake_slack, fake_anthropic, memory_dir, mail
) -> None:
    _insights(memory_dir)
    room = _room(agent_runtime, fake_slack, mail)
    message = _approved(room, fake_anthropic)
    assert ActionId.DRAFT_SEND not in buttons(message)
    assert "Send it to the customer through your usual channel" in shown(message)
    first_contact = room.rt.protocol.milestone_id("first_customer_contact")
    assert room.esc.step(first_contact).done


def test_a_refused_recipient_is_told_and_not_tried_again(
    agent_runtime, fake_slack, fake_anthropic, memory_dir, mail, clock
) -> None:
    _insights(memory_dir, email=TO)
    mail.refuse(TO)
    room = _room(agent_runtime, fake_slack, mail)
    message = _approved(room, fake_anthropic)
    room.click(ActionId.DRAFT_SEND, message)
    (sent,) = room.esc.letters
    assert sent.status is LetterStatus.FAILED and sent.retry_at is None
    assert any("refused" in s and "customer_insights.yaml" in s for s in _said_in(room, message))
    assert not [j for j in room.rt.scheduler.job_ids() if ":delivery:" in j]
    first_contact = room.rt.protocol.milestone_id("first_customer_contact")
    assert not room.esc.step(first_contact).done  # nothing reached the customer
    after = current(room, message)
    assert ActionId.DRAFT_SEND in buttons(after)  # to try again once the address is right
    assert mail.received == []


def test_a_temporary_failure_is_tried_again_on_the_scheduler(
    agent_runtime, fake_slack, fake_anthropic, memory_dir, mail, clock
) -> None:
    _insights(memory_dir, email=TO)
    mail.fail("MAIL", 451, "4.3.0 Try again later")
    room = _room(agent_runtime, fake_slack, mail)
    message = _approved(room, fake_anthropic)
    room.click(ActionId.DRAFT_SEND, message)
    (sent,) = room.esc.letters
    assert sent.status is LetterStatus.FAILED and sent.retry_at is not None
    assert any("Not sent yet" in s for s in _said_in(room, message))
    assert any(":delivery:" in j for j in room.rt.scheduler.job_ids())
    clock.advance(sent.retry_at - clock())
    room.rt.run_due()
    assert len(mail.wait_for(1)) == 1
    (sent,) = room.esc.letters
    assert sent.status is LetterStatus.SENT and sent.attempts == 2
    assert sent.sent_at == clock()
    first_contact = room.rt.protocol.milestone_id("first_customer_contact")
    assert room.esc.step(first_contact).done_at == clock()
    assert len(mail.received) == 1


def _shared_channel(fake_slack) -> str:
    return fake_slack.add_channel("ext-initech-vendor", members=["U0VPSUPRT"])


def _approved_in_shared(agent_runtime, fake_slack, fake_anthropic, memory_dir):
    """A room for a customer who takes letters in a Slack Connect channel, and its letter
    approved: the channel, the room and the letter's message."""
    shared = _shared_channel(fake_slack)
    _insights(memory_dir, slack_connect=shared)
    room = _room(agent_runtime, fake_slack)
    return shared, room, _approved(room, fake_anthropic)


def test_a_letter_is_posted_once_in_the_slack_connect_channel(
    agent_runtime, fake_slack, fake_anthropic, memory_dir
) -> None:
    shared, room, message = _approved_in_shared(
        agent_runtime, fake_slack, fake_anthropic, memory_dir
    )
    assert f"Slack Connect: <#{shared}>" in shown(message)
    room.click(ActionId.DRAFT_SEND, message, user="U0VPSUPRT")
    room.click(ActionId.DRAFT_SEND, message, user="U0VPSUPRT")
    (post,) = fake_slack.messages_in(shared)
    assert post.user == fake_slack.bot_user_id
    posted = shown(post)
    assert posted.startswith("Checkout for your EU users\n\nDear Dana,")  # no markup around it
    assert "&lt;@U0VPSUPRT&gt; &amp; &lt;!channel&gt;" in posted  # no mention, no broadcast
    assert posted.rstrip().endswith("Victoria Vance\nVP, Customer Support")
    (sent,) = room.esc.letters
    assert sent.route is RouteKind.SLACK_CONNECT and sent.channel == shared and sent.ts == post.ts
    assert letter_for_reply(room.esc, channel=shared, thread_ts=post.ts) == sent
    assert letter_for_reply(room.esc, channel=shared) == sent
    assert letter_for_reply(room.esc, channel="C0OTHER000") is None


def test_a_lost_answer_to_the_post_sends_no_second_letter(
    agent_runtime, fake_slack, fake_anthropic, memory_dir
) -> None:
    shared, room, message = _approved_in_shared(
        agent_runtime, fake_slack, fake_anthropic, memory_dir
    )
    fake_slack.lose_answer_next("chat.postMessage")
    room.click(ActionId.DRAFT_SEND, message)
    (post,) = fake_slack.messages_in(shared)
    (sent,) = room.esc.letters
    assert sent.status is LetterStatus.SENT and sent.ts == post.ts


def test_a_post_that_may_pass_is_tried_again(
    agent_runtime, fake_slack, fake_anthropic, memory_dir, clock
) -> None:
    shared, room, message = _approved_in_shared(
        agent_runtime, fake_slack, fake_anthropic, memory_dir
    )
    fake_slack.server_error_next("chat.postMessage", status=503, times=5)
    room.click(ActionId.DRAFT_SEND, message)
    (sent,) = room.esc.letters
    assert sent.status is LetterStatus.FAILED and sent.retry_at is not None
    assert fake_slack.messages_in(shared) == []
    fake_slack.clear_faults()
    clock.advance(sent.retry_at - clock())
    room.rt.run_due()
    (post,) = fake_slack.messages_in(shared)
    assert room.esc.letters[0].status is LetterStatus.SENT and room.esc.letters[0].ts == post.ts


def test_a_retry_goes_nowhere_but_where_send_was_pressed_for(
    agent_runtime, fake_slack, fake_anthropic, memory_dir, clock
) -> None:
    # The post failed in a way that may pass; before its next try the account's channel is
    # changed. The scheduler does not post in a channel nobody pressed Send for: it stops,
    # says why, and the letter's message shows the new destination with its Send.
    shared, room, message = _approved_in_shared(
        agent_runtime, fake_slack, fake_anthropic, memory_dir
    )
    fake_slack.server_error_next("chat.postMessage", status=503, times=5)
    room.click(ActionId.DRAFT_SEND, message)
    (sent,) = room.esc.letters
    assert sent.status is LetterStatus.FAILED and sent.retry_at is not None
    fake_slack.clear_faults()
    other = fake_slack.add_channel("ext-initech-other", members=["U0VPSUPRT"])
    _insights(memory_dir, slack_connect=other)
    clock.advance(sent.retry_at - clock())
    room.rt.run_due()
    assert fake_slack.messages_in(shared) == [] and fake_slack.messages_in(other) == []
    (sent,) = room.esc.letters
    assert sent.status is LetterStatus.FAILED and sent.retry_at is None
    assert "where it goes has changed since Send was pressed" in sent.reason
    assert any("where it goes has changed" in s for s in _said_in(room, message))
    now = current(room, message)
    assert f"Slack Connect: <#{other}>" in shown(now)
    room.click(ActionId.DRAFT_SEND, now)  # pressed for the new channel: it goes there
    assert len(fake_slack.messages_in(other)) == 1 and fake_slack.messages_in(shared) == []


@pytest.mark.parametrize(
    ("route", "said"),
    [
        ({"email": "dana at initech"}, "customers[0].email: 'dana at initech' is not one"),
        ({"slack_connect": "#ext-initech"}, "customers[0].slack_connect: '#ext-initech' is not a"),
        ({"email": TO, "bcc": ["x@y.example"]}, "customers[0].bcc: letters are never sent blind"),
        ({"email": TO, "delivery": "sometimes"}, "customers[0].delivery: 'sometimes' is not one"),
        ({"email": TO}, "customers[0].email: letters go by email, and WARROOM_SMTP_URL is not"),
    ],
)
def test_routes_are_checked_at_start_with_the_key_path(
    agent_runtime, memory_dir, route, said
) -> None:
    _insights(memory_dir, **route)
    with pytest.raises(StartupError) as raised:
        agent_runtime()
    assert said in str(raised.value) and "customer_insights.yaml" in str(raised.value)


def test_two_processes_posting_the_same_letter_post_it_once(
    agent_runtime, fake_slack, fake_anthropic, memory_dir
) -> None:
    shared = _shared_channel(fake_slack)
    _insights(memory_dir, slack_connect=shared)
    room = _room(agent_runtime, fake_slack)
    other = _room_in(room, agent_runtime, fake_slack, None)
    message = _approved(room, fake_anthropic)
    fake_slack.delay_next("chat.postMessage", 1.5)  # the first process's post takes a while
    first = threading.Thread(target=room.click, args=(ActionId.DRAFT_SEND, message))
    first.start()
    try:
        wait_until(lambda: _claimed(room), what="the first process's claim")
        other.click(ActionId.DRAFT_SEND, message, user="U0VPSUPRT")
        # Under way in the first process (or, on a slow machine, done by now): not again.
        assert any(s in refusal(other) for s in ("being sent right now", "went out already"))
    finally:
        first.join(10)
    (post,) = fake_slack.messages_in(shared)
    (sent,) = room.esc.letters
    assert sent.status is LetterStatus.SENT and sent.ts == post.ts


def _claimed(room: Room) -> bool:
    """Whether a process holds the claim of the room's letter post."""
    keys = room.rt.redis.keys(f"{room.rt.store.keys.prefix}:*letter:*:slack")
    return any(room.rt.redis.get(k) != b"done" for k in keys)


def test_a_letter_goes_by_email_and_to_the_shared_channel(
    agent_runtime, fake_slack, fake_anthropic, memory_dir, mail
) -> None:
    shared = _shared_channel(fake_slack)
    _insights(memory_dir, email=TO, cc=[CC], slack_connect=shared)
    room = _room(agent_runtime, fake_slack, mail)
    message = _approved(room, fake_anthropic)
    assert f"email to {TO}, cc {CC} and Slack Connect: <#{shared}>" in shown(message)
    room.click(ActionId.DRAFT_SEND, message, user="U0VPSUPRT")
    assert len(mail.wait_for(1)) == 1 and len(fake_slack.messages_in(shared)) == 1
    routes = {s.route: s.status for s in room.esc.letters}
    assert routes == {
        RouteKind.EMAIL: LetterStatus.SENT,
        RouteKind.SLACK_CONNECT: LetterStatus.SENT,
    }
    # One customer update on the timeline, however many routes it went by.
    timeline = room.rt.store.timeline(room.esc_id)
    assert [e.kind for e in timeline].count(EventKind.CUSTOMER_UPDATE) == 1
    assert [e.kind for e in timeline].count(EventKind.LETTER_SENT) == 2


def test_a_refused_copy_is_told_while_the_letter_reaches_the_addressee(
    agent_runtime, fake_slack, fake_anthropic, memory_dir, mail
) -> None:
    _insights(memory_dir, email=TO, cc=[CC])
    mail.refuse(CC)
    room = _room(agent_runtime, fake_slack, mail)
    message = _approved(room, fake_anthropic)
    room.click(ActionId.DRAFT_SEND, message)
    (received,) = mail.wait_for(1)
    assert received.recipients == (TO,)
    (sent,) = room.esc.letters
    assert sent.status is LetterStatus.SENT and CC in sent.reason
    assert any("📨 Sent" in s and f"refused {CC}" in s for s in _said_in(room, message))


def _send_button(message) -> dict:
    (button,) = [
        el
        for b in message.blocks or []
        if b.get("type") == "actions"
        for el in b["elements"]
        if el["action_id"] == ActionId.DRAFT_SEND
    ]
    return button


def _click(room: Room, message, value: str) -> None:
    """The IC presses a Send button that carried `value` (as it was shown then)."""
    room.slack.click(room.channel.id, ActionId.DRAFT_SEND, value, user="U0INCCMDR", ts=message.ts)


def test_a_send_shown_before_the_destinations_changed_sends_nowhere_unseen(
    agent_runtime, fake_slack, fake_anthropic, memory_dir, mail
) -> None:
    # The button and its confirm dialog said where the letter goes; the account's entry is
    # changed after. The click sends nothing and shows the letter again with where it goes
    # now; pressed there, it goes there.
    _insights(memory_dir, email=TO, cc=[CC])
    room = _room(agent_runtime, fake_slack, mail)
    seen = _approved(room, fake_anthropic)
    shown_first = _send_button(seen)["value"]
    confirm = _send_button(seen)["confirm"]["text"]["text"]
    assert f"email to {TO}, cc {CC}" in confirm
    cfo = "cfo@initech.example"
    _insights(memory_dir, email=TO, cc=[CC, cfo])

    _click(room, seen, shown_first)
    said = refusal(room)
    assert "Where this letter goes has changed since you saw it" in said
    assert f"email to {TO}, cc {CC}, {cfo}" in said and "Nothing was sent" in said
    assert mail.received == [] and room.esc.letters == ()
    again = current(room, seen)
    assert f"email to {TO}, cc {CC}, {cfo}" in shown(again)
    assert f"cc {CC}, {cfo}" in _send_button(again)["confirm"]["text"]["text"]
    shown_second = _send_button(again)["value"]
    assert shown_second != shown_first
    _click(room, seen, shown_first)  # the old button again: still refused
    assert "Where this letter goes has changed" in refusal(room) and mail.received == []

    # A Slack Connect channel added is a change too; then the button shown now sends.
    shared = _shared_channel(fake_slack)
    _insights(memory_dir, email=TO, cc=[CC, cfo], slack_connect=shared)
    _click(room, seen, shown_second)
    assert "Where this letter goes has changed" in refusal(room) and shared in refusal(room)
    assert mail.received == [] and fake_slack.messages_in(shared) == []
    now = current(room, seen)
    assert len(_send_button(now)["value"]) <= 2000  # Slack's limit on an action's value
    room.click(ActionId.DRAFT_SEND, now)
    (received,) = mail.wait_for(1)
    assert set(received.recipients) == {TO, CC, cfo}
    assert len(fake_slack.messages_in(shared)) == 1


def test_the_confirm_dialog_never_hides_where_the_letter_goes(
    agent_runtime, fake_slack, fake_anthropic, memory_dir, mail
) -> None:
    # Slack cuts a confirm dialog's text at 300 characters: too many copies for it, and it
    # points at the whole list instead of ending part-way through it.
    copies = [f"copy.number.{n}@initech.example" for n in range(12)]
    _insights(memory_dir, email=TO, cc=copies)
    room = _room(agent_runtime, fake_slack, mail)
    message = _approved(room, fake_anthropic)
    confirm = _send_button(message)["confirm"]["text"]["text"]
    assert "13 addresses listed just above the button" in confirm and len(confirm) <= 300
    assert all(c in shown(message) for c in copies)


def test_a_stale_send_for_an_account_without_a_route_says_what_to_do(
    agent_runtime, fake_slack, fake_anthropic, memory_dir, mail
) -> None:
    _insights(memory_dir, email=TO)
    room = _room(agent_runtime, fake_slack, mail)
    message = _approved(room, fake_anthropic)
    _insights(memory_dir)  # the route is taken out after the button was shown
    room.click(ActionId.DRAFT_SEND, message)
    said = refusal(room)
    assert "no `email` or `slack_connect`" in said and "nothing was sent" in said
    assert "Add one to the account's entry, then press *Send* again" in said
    assert "ticket" not in said  # no support desk set up: no ticket to link
    assert mail.received == [] and room.esc.letters == ()


def test_a_subject_with_formatting_characters_is_posted_as_typed(
    agent_runtime, fake_slack, fake_anthropic, memory_dir
) -> None:
    shared = _shared_channel(fake_slack)
    _insights(memory_dir, slack_connect=shared)
    room = _room(agent_runtime, fake_slack)
    subject = "*P1* checkout_eu ~ `retry` fix_"
    message = _approved(room, fake_anthropic, f"Subject: {subject}\n\n{BODY}")
    room.click(ActionId.DRAFT_SEND, message, user="U0VPSUPRT")
    (post,) = fake_slack.messages_in(shared)
    first, _, rest = shown(post).partition("\n\n")
    assert first == subject  # on its own line, as typed: no bold around it to break
    assert rest.startswith("Dear Dana,")

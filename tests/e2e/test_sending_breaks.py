"""Send, attacked: who may make a letter go out, what the customer receives when things go
wrong at the worst moment, and what the room is told. Each case at the wire: the production
app, real Redis, a real SMTP server on this machine and the loopback Slack."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from bot.domain.delivery import LetterStatus
from bot.domain.timeline import EventKind
from bot.runtime import StartupError
from bot.slack.ids import ActionId
from loopback.harness import WarroomProcess
from loopback.smtp import MailServer
from tests.e2e.test_draft_checks import current, refusal
from tests.e2e.test_sending import (
    FROM,
    LETTER,
    REPLY_TO,
    TO,
    _approved,
    _approved_in_shared,
    _config,
    _insights,
    _room,
    _said_in,
)
from tests.processes import start_warroom
from tests.rooms import buttons, draft_id, shown, wait_until


@pytest.fixture
def mail() -> Iterator[MailServer]:
    with MailServer() as server:
        yield server


def test_under_approve_sends_an_approval_by_someone_who_may_not_send_sends_nothing(
    agent_runtime, fake_slack, fake_anthropic, memory_dir, mail, tmp_path
) -> None:
    # The declarer may approve a letter, but only the IC or a VP may send one: their approval
    # leaves the letter for the IC or a VP to send.
    _insights(memory_dir, email=TO)
    config = _config(tmp_path, delivery="approve_sends")
    room = _room(agent_runtime, fake_slack, mail, config_file=config)
    fake_anthropic.reply_with(LETTER)
    (draft,) = room.thread(room.mention("draft update"))
    room.click(ActionId.DRAFT_APPROVE, draft, user="U0DECLARER")
    message = current(room, draft)
    assert room.rt.store.get_draft(_only_draft(room)).approved_by
    assert mail.received == [] and room.esc.letters == ()
    assert ActionId.DRAFT_SEND in buttons(message)
    room.click(ActionId.DRAFT_SEND, message, user="U0DECLARER")
    assert "only the incident commander or a VP may send" in refusal(room)
    room.click(ActionId.DRAFT_SEND, message)  # the IC
    assert len(mail.wait_for(1)) == 1
    (sent,) = room.esc.letters
    assert sent.status is LetterStatus.SENT and sent.by == "U0INCCMDR"
    assert "📨 Sent by <@U0INCCMDR>" in shown(current(room, message))


def _only_draft(room) -> str:
    (key,) = room.rt.redis.keys(f"{room.rt.store.keys.prefix}:draft:*")
    return key.decode().rsplit(":", 1)[-1]


@pytest.mark.parametrize("drop", ["before", "after"])
def test_redis_lost_as_the_outbox_records_a_delivered_email(
    agent_runtime, fake_slack, fake_anthropic, memory_dir, mail, proxy, drop
) -> None:
    # The SMTP server took the letter; the outbox's `sent` is lost on the way to Redis (never
    # written, or written with its answer lost; the client sends nothing again by itself).
    # The customer has the letter: the room is told so, and no later Send mails it again.
    _insights(memory_dir, email=TO)
    room = _room(agent_runtime, fake_slack, mail, redis_url=proxy.url)
    message = _approved(room, fake_anthropic)
    mail.hold()  # the transaction waits at DATA: the outbox's `sending` is written by now
    first = threading.Thread(target=room.click, args=(ActionId.DRAFT_SEND, message))
    first.start()
    try:
        mail.wait_holding()
        fault = proxy.drop_before if drop == "before" else proxy.drop_after
        fault("EVALSHA", ":outbox:")
    finally:
        mail.release()
        first.join(10)
    assert len(mail.wait_for(1)) == 1 and proxy.spent()
    (sent,) = room.esc.letters
    assert sent.status is LetterStatus.SENT and sent.message_id
    assert any("📨 Sent" in s and TO in s for s in _said_in(room, message))
    room.click(ActionId.DRAFT_SEND, message)
    assert "went out already" in refusal(room)
    room.click(ActionId.DRAFT_SEND, message, user="U0VPSUPRT")
    assert len(mail.received) == 1


@pytest.mark.slow
def test_a_process_killed_between_the_smtp_transaction_and_its_record(
    agent_runtime,
    fake_slack,
    fake_anthropic,
    memory_dir,
    mail,
    redis_url,
    prefix,
    tmp_path,
    config_file,
    clock,
) -> None:
    # A real `warroom run` takes the Send; the mail server has the whole message when the
    # process is killed (SIGKILL), before it hears the server's answer or records anything.
    # The next process must know a letter was under way: on record, tried again with the
    # same Message-ID (the customer's mail client shows one message per id), told in the room.
    _insights(memory_dir, email=TO)
    room = _room(agent_runtime, fake_slack, mail)
    message = _approved(room, fake_anthropic)
    proc = start_warroom(
        fake_slack,
        redis_url,
        prefix,
        tmp_path,
        config_file,
        WARROOM_SMTP_URL=mail.url(),
        WARROOM_MAIL_FROM=FROM,
        WARROOM_MAIL_REPLY_TO=REPLY_TO,
    )
    mail.hold(taken=True)  # the server keeps the message, then waits before saying so
    try:
        _send_in(proc, room, message)
        mail.wait_holding(30)
        proc.kill()
    finally:
        mail.release()
        proc.stop()
    (first,) = mail.wait_for(1)  # the customer has it; the process never knew

    # The dead process's claim on the letter lapses with its lease (five minutes; not waited
    # for here), and the next process takes over.
    claims = room.rt.redis.keys(f"{prefix}:outbox-claim:*")
    assert claims and room.rt.redis.delete(*claims)
    (pending,) = room.esc.letters
    assert pending.status is LetterStatus.FAILED and pending.retry_at is not None
    assert any(":delivery:" in j for j in room.rt.scheduler.job_ids())
    clock.advance(pending.retry_at - clock())
    room.rt.run_due()
    second = mail.wait_for(2)[1]
    assert second.message_id == first.message_id and second.content == first.content
    (sent,) = room.esc.letters
    assert sent.status is LetterStatus.SENT and sent.message_id == first.message_id
    assert any("📨 Sent" in s and TO in s for s in _said_in(room, message))
    room.click(ActionId.DRAFT_SEND, message)
    assert "went out already" in refusal(room)
    assert len(mail.received) == 2


def _send_in(proc: WarroomProcess, room, message) -> None:
    """The IC presses Send, handled by `proc` (the click's answer is not waited for)."""
    threading.Thread(
        target=proc.driver().click,
        args=(room.channel.id, ActionId.DRAFT_SEND, draft_id(message)),
        kwargs={"user": "U0INCCMDR", "ts": message.ts},
        daemon=True,
    ).start()


@pytest.mark.slow
def test_a_process_killed_while_its_post_lands_in_the_shared_channel(
    agent_runtime,
    fake_slack,
    fake_anthropic,
    memory_dir,
    redis_url,
    prefix,
    tmp_path,
    config_file,
    clock,
) -> None:
    # Slack carries out the post after the process that asked for it was killed: the next
    # process finds it in the channel (one post), records it and tells the room.
    shared, room, message = _approved_in_shared(
        agent_runtime, fake_slack, fake_anthropic, memory_dir
    )
    proc = start_warroom(fake_slack, redis_url, prefix, tmp_path, config_file)
    # Every post the process makes takes a while (its timers post too), and is carried out
    # even if the caller is gone by then.
    fake_slack.delay_next("chat.postMessage", 3, times=1000)
    try:
        _send_in(proc, room, message)
        asked = lambda: [  # noqa: E731
            c for c in fake_slack.calls_to("chat.postMessage") if c.args.get("channel") == shared
        ]
        wait_until(asked, timeout=30, what="the letter's post, asked of Slack")
        proc.kill()
    finally:
        proc.stop()
    wait_until(lambda: fake_slack.messages_in(shared), timeout=30, what="the post")
    fake_slack.clear_faults()

    # The dead process's claim on the post lapses (two minutes; not waited for here).
    (claim,) = room.rt.redis.keys(f"{prefix}:*letter:*:slack")
    room.rt.redis.set(claim, "posting:0", keepttl=True)
    (pending,) = room.esc.letters
    assert pending.status is LetterStatus.FAILED and pending.retry_at is not None
    clock.advance(pending.retry_at - clock())
    room.rt.run_due()
    (post,) = fake_slack.messages_in(shared)
    (sent,) = room.esc.letters
    assert sent.status is LetterStatus.SENT and sent.ts == post.ts
    assert any("📨 Sent" in s for s in _said_in(room, message))
    room.click(ActionId.DRAFT_SEND, message, user="U0VPSUPRT")
    assert "went out already" in refusal(room)
    assert len(fake_slack.messages_in(shared)) == 1


def test_the_retries_are_bounded_and_the_last_is_told(
    agent_runtime, fake_slack, fake_anthropic, memory_dir, mail, clock
) -> None:
    # A mail server that keeps saying "later": six tries in about half an hour, told once
    # when it starts and once when warroom stops trying; nothing reached the customer.
    _insights(memory_dir, email=TO)
    mail.fail("MAIL", 451, "4.3.0 Try again later", times=100)
    room = _room(agent_runtime, fake_slack, mail)
    message = _approved(room, fake_anthropic)
    room.click(ActionId.DRAFT_SEND, message)
    tries = 1
    while (sent := room.esc.letters[0]).retry_at is not None:
        clock.advance(sent.retry_at - clock())
        room.rt.run_due()
        tries += 1
        assert tries <= 10
    assert tries == 6 and sent.status is LetterStatus.FAILED and sent.attempts == 6
    said = _said_in(room, message)
    assert sum("Not sent yet" in s for s in said) == 1
    assert sum("⚠️ Not sent (" in s and "press *Send*" in s for s in said) == 1
    assert not [j for j in room.rt.scheduler.job_ids() if ":delivery:" in j]
    assert ActionId.DRAFT_SEND in buttons(current(room, message))
    assert mail.received == []


def test_an_address_at_an_internationalised_domain_is_mailed_in_its_ascii_form(
    agent_runtime, fake_slack, fake_anthropic, memory_dir, mail
) -> None:
    # customer_insights.yaml says the domain as people write it; the envelope and the To
    # header carry it as mail servers resolve it (IDNA 2008: ß is kept, not made "ss").
    _insights(memory_dir, email="dana@münchen-straße.example", cc=["csm@bücher.example"])
    room = _room(agent_runtime, fake_slack, mail)
    message = _approved(room, fake_anthropic)
    to, cc = "dana@xn--mnchen-strae-v9a90b.example", "csm@xn--bcher-kva.example"
    assert f"email to {to}, cc {cc}" in shown(message)
    room.click(ActionId.DRAFT_SEND, message)
    (received,) = mail.wait_for(1)
    assert received.recipients == (to, cc)
    assert received.shown()["to"] == to and received.shown()["cc"] == cc


@pytest.mark.parametrize(
    "email", ["d\u0430na@example.com", "dänä@example.com", "dana@bad..example", "dana@😀"]
)
def test_an_address_that_cannot_be_made_plain_is_refused_with_its_key(
    agent_runtime, memory_dir, email
) -> None:
    _insights(memory_dir, email=email)
    with pytest.raises(StartupError) as raised:
        agent_runtime()
    assert "customers[0].email" in str(raised.value) and "not one plain email" in str(raised.value)


@pytest.mark.parametrize("mode", ["off", "approve_only"])
def test_a_letter_left_to_people_after_its_approval_is_on_record_as_the_update(
    agent_runtime, fake_slack, fake_anthropic, memory_dir, mail, mode
) -> None:
    # Approved for warroom to send (the sending would be the customer update), then the
    # account's sending is switched off: people send it through their usual channel, and the
    # approval stands as the customer update, as it does when the switch was set first. Once.
    _insights(memory_dir, email=TO)
    room = _room(agent_runtime, fake_slack, mail)
    message = _approved(room, fake_anthropic)
    first_contact = room.rt.protocol.milestone_id("first_customer_contact")
    assert not room.esc.step(first_contact).done
    _insights(memory_dir, email=TO, delivery=mode)
    for _ in range(2):
        room.click(ActionId.DRAFT_SEND, message)
        assert "nothing was sent" in refusal(room)
        assert "on record as the customer update" in refusal(room)
    assert mail.received == [] and room.esc.letters == ()
    assert room.esc.step(first_contact).done
    kinds = [e.kind for e in room.rt.store.timeline(room.esc_id)]
    assert kinds.count(EventKind.CUSTOMER_UPDATE) == 1
    assert len(room.esc.facts.told) == 1


def test_redis_lost_as_the_escalation_records_a_delivered_email(
    agent_runtime, fake_slack, fake_anthropic, memory_dir, mail, proxy, clock
) -> None:
    # The SMTP server took the letter and the outbox knows; the escalation's record of it is
    # lost (the write and the store's one retry). The letter was on record as going out:
    # the scheduler finds it sent, records it and tells the room; nothing is mailed again.
    _insights(memory_dir, email=TO)
    room = _room(agent_runtime, fake_slack, mail, redis_url=proxy.url)
    message = _approved(room, fake_anthropic)
    mail.hold()
    first = threading.Thread(target=room.click, args=(ActionId.DRAFT_SEND, message))
    first.start()
    try:
        mail.wait_holding()
        proxy.drop_before("SET", f":esc:{room.esc_id}", times=2)
    finally:
        mail.release()
        first.join(10)
    assert len(mail.wait_for(1)) == 1 and proxy.spent()
    said = refusal(room)  # the one who pressed Send is told the truth
    assert "went out" in said and "Do not send it again" in said
    (pending,) = room.esc.letters
    assert pending.status is LetterStatus.FAILED and pending.retry_at is not None
    clock.advance(pending.retry_at - clock())
    room.rt.run_due()
    (sent,) = room.esc.letters
    assert sent.status is LetterStatus.SENT
    assert any("📨 Sent" in s and TO in s for s in _said_in(room, message))
    assert len(mail.received) == 1


def test_after_the_ic_changes_only_the_new_ic_or_a_vp_may_send(
    agent_runtime, fake_slack, fake_anthropic, memory_dir, mail
) -> None:
    _insights(memory_dir, email=TO)
    room = _room(agent_runtime, fake_slack, mail)
    message = _approved(room, fake_anthropic)  # approved by the IC of the time
    room.mention("ic <@U0DECLARER|Dana Declarer> please", user="U0INCCMDR")
    assert room.esc.ic == "U0DECLARER"
    room.click(ActionId.DRAFT_SEND, message)  # the former IC
    assert "only the incident commander or a VP may send" in refusal(room)
    assert mail.received == []
    room.click(ActionId.DRAFT_SEND, message, user="U0DECLARER")  # the IC now
    assert len(mail.wait_for(1)) == 1
    (sent,) = room.esc.letters
    assert sent.by == "U0DECLARER"

"""Approved letters on the escalation's linked Zendesk ticket, end to end: the production app
on the loopback Slack, the loopback Zendesk and real Redis. Send adds the letter once as the
signer's public comment (the approved body, byte for byte), sets the configured status and
tags the ticket; a double click, a second process or a lost answer add nothing more; a rate
limit is tried again on the scheduler, a deleted ticket is told and not tried again; a letter
that goes by email and on the ticket is one customer update."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from pydantic import SecretStr

from bot.desk.letters import escalation_tag
from bot.domain.delivery import LetterStatus, RouteKind
from bot.domain.timeline import EventKind
from bot.runtime import build_runtime
from bot.slack.ids import ActionId
from loopback.harness import InlineExecutor
from loopback.slack.driver import SlackDriver
from loopback.smtp import MailServer
from loopback.zendesk import ZendeskLoopback
from tests.conftest import CONFIG, SIGNING_SECRET, today
from tests.e2e.test_draft_checks import current, refusal
from tests.processes import start_warroom
from tests.rooms import Room, buttons, draft_id, shown, wait_until

AGENT_EMAIL = "victoria@vendor.example"
TO = "dana.whitfield@initech.example"
BODY = (
    "Dear Dana,\n\n"
    "TPS reports are missing for some of your EU users; <@U0VPSUPRT> & <!channel> are on it.\n"
    "We are moving them to a healthy region.\n\n"
    "Our next update will follow by Mon 2 Mar 2026, 15:00 UTC.\n\n"
    "Kind regards,\nVictoria Vance\nVP, Customer Support"
)
LETTER = "Subject: TPS reports for your EU users\n\n" + BODY


@pytest.fixture
def zendesk() -> Iterator[ZendeskLoopback]:
    with ZendeskLoopback() as zd:
        yield zd


@pytest.fixture
def desk(zendesk: ZendeskLoopback, clock) -> dict[str, int]:
    org = zendesk.add_organization("Initech")
    dana = zendesk.add_user("Dana Whitfield", TO, organization_id=org)
    agent = zendesk.add_user("Victoria Vance", AGENT_EMAIL, role="agent")
    ticket = zendesk.add_ticket(
        "TPS reports missing", dana, priority="urgent", created_at=clock() - timedelta(hours=1)
    )
    return {"agent": agent, "ticket": ticket}


def _insights(memory_dir: Path, **route: object) -> None:
    path = memory_dir / "_knowledge" / "semantic" / "customer_insights.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    entry = {"name": "Initech", "executive_contact": "Dana Whitfield, CTO", **route}
    path.write_text(yaml.safe_dump({"customers": [entry]}))


def _settings(zendesk: ZendeskLoopback, mail: MailServer | None = None) -> dict[str, object]:
    values: dict[str, object] = {
        "zendesk_url": zendesk.account_url,
        "zendesk_api_url": zendesk.url,
        "zendesk_email": zendesk.email,
        "zendesk_token": SecretStr(zendesk.token),
    }
    if mail is not None:
        values |= {
            "smtp_url": SecretStr(mail.url()),
            "mail_from": "support@vendor.example",
            "mail_reply_to": "escalations@vendor.example",
        }
    return values


def _room(
    agent_runtime,
    fake_slack,
    zendesk: ZendeskLoopback,
    ticket: int,
    mail: MailServer | None = None,
    **overrides: object,
) -> Room:
    rt = agent_runtime(**_settings(zendesk, mail), **overrides)
    slack = SlackDriver(fake_slack, SIGNING_SECRET, app=rt.app)
    slack.command(f"Initech: TPS reports missing for all EU users --ticket {ticket}")
    room = Room.__new__(Room)
    room.rt, room.slack, room.fake = rt, slack, fake_slack
    room.channel = fake_slack.channel_by_name(f"esc-{today()}-initech")
    room.esc_id = room.channel.name
    fake_slack.set_email("U0INCCMDR", AGENT_EMAIL)  # the IC approves: their agent signs
    return room


def _twin(room: Room, agent_runtime, zendesk: ZendeskLoopback) -> Room:
    """The same war room, driven through a second runtime (another process)."""
    rt = agent_runtime(**_settings(zendesk))
    twin = Room.__new__(Room)
    twin.rt, twin.fake = rt, room.fake
    twin.slack = SlackDriver(room.fake, SIGNING_SECRET, app=rt.app)
    twin.channel, twin.esc_id = room.channel, room.esc_id
    return twin


def _approved(room: Room, fake_anthropic, text: str = LETTER):
    fake_anthropic.reply_with(text)
    (draft,) = room.thread(room.mention("draft update"))
    room.click(ActionId.DRAFT_APPROVE, draft)  # the IC
    return current(room, draft)


def _ours(zendesk: ZendeskLoopback, ticket: int) -> list[dict]:
    return [c for c in zendesk.comments(ticket) if c["body"] == BODY]


def _said_in(room: Room, message) -> list[str]:
    return [shown(m) for m in room.thread(message.thread_ts or message.ts)]


def _events(room: Room, kind: EventKind) -> list:
    return [e for e in room.rt.store.timeline(room.esc_id) if e.kind is kind]


def _retries(room: Room) -> list[str]:
    return [j for j in room.rt.scheduler.job_ids() if ":delivery:" in j]


def test_send_adds_the_letter_to_the_ticket_once_and_the_sending_is_the_fact(
    agent_runtime, fake_slack, fake_anthropic, memory_dir, zendesk, desk, clock
) -> None:
    ticket, room, message = _approved_on_ticket(
        agent_runtime, fake_slack, fake_anthropic, memory_dir, zendesk, desk
    )
    assert ActionId.DRAFT_SEND in buttons(message)
    assert f"on ticket #{ticket}" in shown(message)
    first_contact = room.rt.protocol.milestone_id("first_customer_contact")
    assert not room.esc.step(first_contact).done  # approved is not sent
    assert _events(room, EventKind.CUSTOMER_UPDATE) == []
    assert zendesk.seen("PUT") == []

    clock.advance(timedelta(minutes=7))
    room.click(ActionId.DRAFT_SEND, message, user="U0DECLARER")  # neither the IC nor a VP
    assert "only the incident commander or a VP may send" in refusal(room)
    assert zendesk.seen("PUT") == []

    room.click(ActionId.DRAFT_SEND, message)  # the IC
    (comment,) = _ours(zendesk, ticket)
    assert comment["public"] and comment["author_id"] == desk["agent"]
    on_ticket = zendesk.ticket(ticket)
    assert on_ticket["status"] == "pending"  # zendesk.on_send, by default
    assert escalation_tag(room.esc_id) in on_ticket["tags"]

    # The sending is the fact: the record, the step, the timeline, the brief, Agent_Memory.
    (sent,) = room.esc.letters
    assert sent.route is RouteKind.TICKET and sent.status is LetterStatus.SENT
    assert sent.to == (str(ticket),) and sent.by == "U0INCCMDR" and sent.sent_at == clock()
    assert room.esc.step(first_contact).done_at == clock()
    assert len(_events(room, EventKind.CUSTOMER_UPDATE)) == 1
    assert len(_events(room, EventKind.LETTER_SENT)) == 1
    assert any(f"Sent: on ticket #{ticket}" in s for s in _said_in(room, message))
    after = current(room, message)
    assert ActionId.DRAFT_SEND not in buttons(after)
    assert f"on ticket #{ticket}" in shown(after)
    brief = json.dumps(room.fake.message_object(room.channel.id, room.esc.brief_ts))
    assert "Last letter sent" in brief and f"on ticket #{ticket}" in brief
    outputs = room.rt.store.keys.memory_outputs(room.esc_id)
    assert any(b"customer-update-sent" in k for k in room.rt.redis.hkeys(outputs))

    # A second click (the button still on someone's screen) adds nothing.
    room.click(ActionId.DRAFT_SEND, message)
    assert "went out already" in refusal(room)
    assert len(_ours(zendesk, ticket)) == 1 and len(zendesk.seen("PUT")) == 1
    assert len(_events(room, EventKind.CUSTOMER_UPDATE)) == 1


def test_two_processes_pressing_send_at_once_add_one_comment(
    agent_runtime, fake_slack, fake_anthropic, memory_dir, zendesk, desk
) -> None:
    _insights(memory_dir)
    ticket = desk["ticket"]
    room = _room(agent_runtime, fake_slack, zendesk, ticket)
    other = _twin(room, agent_runtime, zendesk)
    message = _approved(room, fake_anthropic)
    zendesk.fault(status=200, delay=1.5, method="PUT")  # the first process's update is slow
    first = threading.Thread(target=room.click, args=(ActionId.DRAFT_SEND, message))
    first.start()
    try:
        wait_until(lambda: _claimed(room), what="the first process's claim on the ticket")
        other.click(ActionId.DRAFT_SEND, message, user="U0VPSUPRT")
        # Under way in the first process (or, on a slow machine, done by now): not again.
        assert any(s in refusal(other) for s in ("being sent right now", "went out already"))
    finally:
        first.join(10)
    assert len(_ours(zendesk, ticket)) == 1 and len(zendesk.seen("PUT")) == 1
    (sent,) = room.esc.letters
    assert sent.status is LetterStatus.SENT
    assert len(_events(room, EventKind.CUSTOMER_UPDATE)) == 1


def _claimed(room: Room) -> bool:
    """Whether a process holds the claim of the room's letter on a ticket."""
    return bool(room.rt.redis.keys(f"{room.rt.settings.redis_prefix}:desk:letter:*:claim"))


def test_a_lost_answer_adds_no_second_comment(
    agent_runtime, fake_slack, fake_anthropic, memory_dir, zendesk, desk, clock
) -> None:
    ticket, room, message = _approved_on_ticket(
        agent_runtime, fake_slack, fake_anthropic, memory_dir, zendesk, desk
    )
    zendesk.fault(status=502, method="PUT", apply=True)  # it lands; the answer is lost
    room.click(ActionId.DRAFT_SEND, message)
    (sent,) = room.esc.letters
    assert sent.status is LetterStatus.FAILED and sent.retry_at is not None
    assert any("Not sent yet" in s for s in _said_in(room, message))
    assert len(_ours(zendesk, ticket)) == 1  # it is there, though no answer said so

    room.click(ActionId.DRAFT_SEND, message)  # a person tries at once: the tag is checked
    (sent,) = room.esc.letters
    assert sent.status is LetterStatus.SENT and sent.attempts == 2
    assert len(_ours(zendesk, ticket)) == 1 and len(zendesk.seen("PUT")) == 1
    assert len(_events(room, EventKind.CUSTOMER_UPDATE)) == 1
    clock.advance(timedelta(hours=1))
    room.rt.run_due()  # the scheduled try finds the letter sent and does nothing
    assert len(zendesk.seen("PUT")) == 1


def test_a_rate_limit_is_tried_again_on_the_scheduler(
    agent_runtime, fake_slack, fake_anthropic, memory_dir, zendesk, desk, clock
) -> None:
    ticket, room, message = _approved_on_ticket(
        agent_runtime, fake_slack, fake_anthropic, memory_dir, zendesk, desk
    )
    # Longer than the client waits in the click's work: the letter waits for the scheduler.
    zendesk.fault(status=429, retry_after=600, method="PUT")
    room.click(ActionId.DRAFT_SEND, message)
    (sent,) = room.esc.letters
    assert sent.status is LetterStatus.FAILED and sent.retry_at is not None
    assert _ours(zendesk, ticket) == []
    assert any("Not sent yet" in s for s in _said_in(room, message))
    assert _retries(room)
    first_contact = room.rt.protocol.milestone_id("first_customer_contact")
    assert not room.esc.step(first_contact).done

    clock.advance(sent.retry_at - clock())
    room.rt.run_due()
    (sent,) = room.esc.letters
    assert sent.status is LetterStatus.SENT and sent.attempts == 2 and sent.sent_at == clock()
    assert len(_ours(zendesk, ticket)) == 1
    assert room.esc.step(first_contact).done_at == clock()
    assert len(_events(room, EventKind.CUSTOMER_UPDATE)) == 1


@pytest.mark.parametrize("gone", ["deleted", "merged"])
def test_a_deleted_or_merged_ticket_is_told_and_not_tried_again(
    agent_runtime, fake_slack, fake_anthropic, memory_dir, zendesk, desk, clock, gone
) -> None:
    ticket, room, message = _approved_on_ticket(
        agent_runtime, fake_slack, fake_anthropic, memory_dir, zendesk, desk
    )
    if gone == "deleted":
        zendesk.delete(ticket)
    else:
        other = zendesk.add_ticket(
            "TPS reports (all of them)", zendesk.ticket(ticket)["requester_id"]
        )
        zendesk.merge(ticket, other)
    room.click(ActionId.DRAFT_SEND, message)
    (sent,) = room.esc.letters
    assert sent.status is LetterStatus.FAILED and sent.retry_at is None
    told = [s for s in _said_in(room, message) if s.startswith("⚠️ Not sent")]
    assert len(told) == 1 and f"#{ticket}" in told[0] and gone in told[0]
    assert "@vp ticket" in told[0]  # what to do
    assert _ours(zendesk, ticket) == []
    assert _retries(room) == []
    assert _events(room, EventKind.CUSTOMER_UPDATE) == []
    assert ActionId.DRAFT_SEND in buttons(current(room, message))  # once it is put right


def _approved_on_ticket(agent_runtime, fake_slack, fake_anthropic, memory_dir, zendesk, desk):
    """A room on the desk's ticket for a customer with neither email nor Slack Connect (the
    ticket is the route), and its letter approved: the ticket, the room and the letter's
    message."""
    _insights(memory_dir)
    ticket = desk["ticket"]
    room = _room(agent_runtime, fake_slack, zendesk, ticket)
    return ticket, room, _approved(room, fake_anthropic)


def _not_sent_for_the_signer(room: Room, fake_anthropic, zendesk: ZendeskLoopback) -> str:
    """Send on an approved letter whose signer the ticket cannot be written as: nothing is
    sent or tried again; what the room is told."""
    message = _approved(room, fake_anthropic)
    room.click(ActionId.DRAFT_SEND, message)
    (sent,) = room.esc.letters
    assert sent.status is LetterStatus.FAILED and sent.retry_at is None
    assert _retries(room) == [] and zendesk.seen("PUT") == []
    (told,) = [s for s in _said_in(room, message) if s.startswith("⚠️ Not sent")]
    return told


def test_a_signer_without_an_email_in_slack_is_told_what_to_do(
    agent_runtime, fake_slack, fake_anthropic, memory_dir, zendesk, desk
) -> None:
    _insights(memory_dir)
    ticket = desk["ticket"]
    room = _room(agent_runtime, fake_slack, zendesk, ticket)
    fake_slack.set_email("U0INCCMDR", "")
    told = _not_sent_for_the_signer(room, fake_anthropic, zendesk)
    assert "Slack profile" in told and "email" in told


def test_a_letter_by_email_and_on_the_ticket_is_one_customer_update(
    agent_runtime, fake_slack, fake_anthropic, memory_dir, zendesk, desk
) -> None:
    _insights(memory_dir, email=TO)
    ticket = desk["ticket"]
    with MailServer() as mail:
        room = _room(agent_runtime, fake_slack, zendesk, ticket, mail)
        message = _approved(room, fake_anthropic)
        assert f"email to {TO} and on ticket #{ticket}" in shown(message)
        room.click(ActionId.DRAFT_SEND, message, user="U0VPSUPRT")
        assert len(mail.wait_for(1)) == 1
    assert len(_ours(zendesk, ticket)) == 1
    routes = {s.route: s.status for s in room.esc.letters}
    assert routes == {RouteKind.EMAIL: LetterStatus.SENT, RouteKind.TICKET: LetterStatus.SENT}
    assert len(_events(room, EventKind.CUSTOMER_UPDATE)) == 1
    assert len(_events(room, EventKind.LETTER_SENT)) == 2


def test_approve_sends_adds_it_on_the_final_approval(
    agent_runtime, fake_slack, fake_anthropic, memory_dir, zendesk, desk, tmp_path
) -> None:
    _insights(memory_dir)
    config = tmp_path / "warroom-approve-sends.yaml"
    config.write_text(yaml.safe_dump({**CONFIG, "delivery": "approve_sends"}))
    ticket = desk["ticket"]
    room = _room(agent_runtime, fake_slack, zendesk, ticket, config_file=config)
    message = _approved(room, fake_anthropic)
    assert len(_ours(zendesk, ticket)) == 1
    (sent,) = room.esc.letters
    assert sent.status is LetterStatus.SENT and sent.route is RouteKind.TICKET
    assert ActionId.DRAFT_SEND not in buttons(message)
    assert len(_events(room, EventKind.CUSTOMER_UPDATE)) == 1


@pytest.mark.parametrize("mode", ["approve_only", "off"])
def test_a_ticket_gets_nothing_where_warroom_does_not_send(
    agent_runtime, fake_slack, fake_anthropic, memory_dir, zendesk, desk, mode
) -> None:
    _insights(memory_dir, delivery=mode)
    ticket = desk["ticket"]
    room = _room(agent_runtime, fake_slack, zendesk, ticket)
    message = _approved(room, fake_anthropic)
    assert ActionId.DRAFT_SEND not in buttons(message)
    room.click(ActionId.DRAFT_SEND, message)  # a Send from an older message
    assert "nothing was sent" in refusal(room)
    assert zendesk.seen("PUT") == []
    # Approved is the customer update, as before warroom sent letters.
    assert len(_events(room, EventKind.CUSTOMER_UPDATE)) == 1


def test_a_signer_without_a_zendesk_agent_is_told_what_to_do(
    agent_runtime, fake_slack, fake_anthropic, memory_dir, zendesk, desk
) -> None:
    _insights(memory_dir)
    ticket = desk["ticket"]
    room = _room(agent_runtime, fake_slack, zendesk, ticket)
    fake_slack.set_email("U0INCCMDR", "ic@vendor.example")  # no agent has it
    told = _not_sent_for_the_signer(room, fake_anthropic, zendesk)
    assert "ic@vendor.example" in told and "agent" in told


def test_a_letter_goes_on_every_linked_ticket_once(
    agent_runtime, fake_slack, fake_anthropic, memory_dir, zendesk, desk
) -> None:
    _insights(memory_dir)
    ticket = desk["ticket"]
    second = zendesk.add_ticket("TPS reports, again", zendesk.ticket(ticket)["requester_id"])
    room = _room(agent_runtime, fake_slack, zendesk, ticket)
    room.mention(f"ticket {second}")
    message = _approved(room, fake_anthropic)
    assert f"on tickets #{ticket}, #{second}" in shown(message)
    zendesk.fault(status=503, method="PUT", path=f"/tickets/{second}")  # the second fails once
    room.click(ActionId.DRAFT_SEND, message)
    (sent,) = room.esc.letters
    assert sent.status is LetterStatus.FAILED and sent.retry_at is not None
    assert f"#{second}" in sent.reason and f"#{ticket}" not in sent.reason
    assert len(_ours(zendesk, ticket)) == 1

    room.click(ActionId.DRAFT_SEND, message)  # only what is missing is added
    (sent,) = room.esc.letters
    assert sent.status is LetterStatus.SENT and sent.to == (str(ticket), str(second))
    assert len(_ours(zendesk, ticket)) == 1 and len(_ours(zendesk, second)) == 1
    assert len(_events(room, EventKind.CUSTOMER_UPDATE)) == 1


class _Held(InlineExecutor):
    """Runs work at once, except while `held`: then it waits until `release`."""

    def __init__(self) -> None:
        self.held: list[tuple[Future, Callable[[], object]]] | None = None

    def submit(self, fn, /, *args, **kwargs) -> Future:
        if self.held is None:
            return super().submit(fn, *args, **kwargs)
        future: Future = Future()
        self.held.append((future, lambda: fn(*args, **kwargs)))
        return future

    def release(self) -> None:
        held, self.held = self.held or [], None
        for future, work in held:
            future.set_result(work())


def test_the_click_is_answered_before_zendesk_is_called(
    settings, clock, fake_slack, fake_anthropic, memory_dir, zendesk, desk
) -> None:
    _insights(memory_dir)
    ticket = desk["ticket"]
    executor = _Held()
    values = {
        "anthropic_api_key": SecretStr(fake_anthropic.api_key),
        "anthropic_base_url": fake_anthropic.url,
        **_settings(zendesk),
    }
    rt = build_runtime(settings.model_copy(update=values), clock=clock, listener_executor=executor)
    try:
        room = Room.__new__(Room)
        room.rt, room.fake = rt, fake_slack
        room.slack = SlackDriver(fake_slack, SIGNING_SECRET, app=rt.app)
        room.slack.command(f"Initech: TPS reports missing for all EU users --ticket {ticket}")
        room.channel = fake_slack.channel_by_name(f"esc-{today()}-initech")
        room.esc_id = room.channel.name
        fake_slack.set_email("U0INCCMDR", AGENT_EMAIL)
        rt.desk.stream_interval = 0.05
        message = _approved(room, fake_anthropic)
        executor.held = []
        reply = room.click(ActionId.DRAFT_SEND, message)
        assert reply.status == 200  # acknowledged, with nothing asked of Zendesk yet
        assert executor.held and zendesk.seen("PUT") == [] and room.esc.letters == ()
        executor.release()
        assert len(_ours(zendesk, ticket)) == 1
        (sent,) = room.esc.letters
        assert sent.status is LetterStatus.SENT
    finally:
        rt.close()


def test_a_ticket_linked_after_send_was_shown_is_not_sent_to_unseen(
    agent_runtime, fake_slack, fake_anthropic, memory_dir, zendesk, desk
) -> None:
    ticket, room, message = _approved_on_ticket(
        agent_runtime, fake_slack, fake_anthropic, memory_dir, zendesk, desk
    )
    (shown_then,) = [
        el["value"]
        for b in message.blocks
        if b.get("type") == "actions"
        for el in b["elements"]
        if el["action_id"] == ActionId.DRAFT_SEND
    ]
    second = zendesk.add_ticket("TPS reports, again", zendesk.ticket(ticket)["requester_id"])
    room.mention(f"ticket {second}")
    room.slack.click(
        room.channel.id, ActionId.DRAFT_SEND, shown_then, user="U0INCCMDR", ts=message.ts
    )
    said = refusal(room)
    assert "Where this letter goes has changed since you saw it" in said
    assert f"on tickets #{ticket}, #{second}" in said
    assert zendesk.seen("PUT") == [] and room.esc.letters == ()
    again = current(room, message)
    assert f"on tickets #{ticket}, #{second}" in shown(again)
    room.click(ActionId.DRAFT_SEND, again)  # what is shown now is where it goes
    assert len(_ours(zendesk, ticket)) == 1 and len(_ours(zendesk, second)) == 1


def test_a_stale_send_without_a_route_names_the_ticket_to_link(
    agent_runtime, fake_slack, fake_anthropic, memory_dir, zendesk
) -> None:
    from tests.e2e.test_sending import _room as room_without_ticket

    shared = fake_slack.add_channel("ext-initech-vendor", members=["U0VPSUPRT"])
    _insights(memory_dir, slack_connect=shared)
    room = room_without_ticket(agent_runtime, fake_slack, **_settings(zendesk))
    message = _approved(room, fake_anthropic)
    _insights(memory_dir)  # the channel is taken out after Send was shown
    room.click(ActionId.DRAFT_SEND, message)
    said = refusal(room)
    assert "no `email` or `slack_connect`" in said and "no linked ticket" in said
    assert "link the customer's ticket (`@vp ticket <number>`), then press *Send* again" in said
    assert fake_slack.messages_in(shared) == [] and room.esc.letters == ()


def test_a_process_killed_while_it_adds_the_letter_to_the_ticket(
    agent_runtime,
    fake_slack,
    fake_anthropic,
    memory_dir,
    zendesk,
    desk,
    redis_url,
    prefix,
    tmp_path,
    config_file,
    clock,
) -> None:
    # A real `warroom run` takes the Send and is killed (SIGKILL) while Zendesk holds its
    # update, which lands after. The letter is on record as going out, so the scheduler
    # finishes it: it finds the letter's tag on the ticket (one comment), records it as sent
    # and tells the room; nobody has to press Send.
    ticket, room, message = _approved_on_ticket(
        agent_runtime, fake_slack, fake_anthropic, memory_dir, zendesk, desk
    )
    proc = start_warroom(
        fake_slack,
        redis_url,
        prefix,
        tmp_path,
        config_file,
        WARROOM_ZENDESK_URL=zendesk.account_url,
        WARROOM_ZENDESK_API_URL=zendesk.url,
        WARROOM_ZENDESK_EMAIL=zendesk.email,
        WARROOM_ZENDESK_TOKEN=zendesk.token,
    )
    zendesk.fault(status=504, method="PUT", delay=3, apply=True)  # held, then carried out
    try:
        threading.Thread(
            target=proc.driver().click,
            args=(room.channel.id, ActionId.DRAFT_SEND, draft_id(message)),
            kwargs={"user": "U0INCCMDR", "ts": message.ts},
            daemon=True,
        ).start()
        wait_until(lambda: zendesk.seen("PUT"), timeout=30, what="the ticket's update")
        proc.kill()
    finally:
        proc.stop()
    wait_until(lambda: _ours(zendesk, ticket), timeout=30, what="the comment, landed")

    (pending,) = room.esc.letters
    assert pending.status is LetterStatus.FAILED and pending.retry_at is not None
    assert "being added to the ticket" in pending.reason
    assert _events(room, EventKind.LETTER_SENDING) and _retries(room)
    # The dead process's claim on the letter lapses with its lease (two minutes; not waited
    # for here).
    claims = room.rt.redis.keys(f"{prefix}:desk:letter:*:claim")
    assert claims and room.rt.redis.delete(*claims)
    clock.advance(pending.retry_at - clock())
    room.rt.run_due()
    (sent,) = room.esc.letters
    assert sent.status is LetterStatus.SENT and sent.route is RouteKind.TICKET
    assert len(_ours(zendesk, ticket)) == 1 and len(zendesk.seen("PUT")) == 1
    assert len(_events(room, EventKind.LETTER_SENT)) == 1
    assert len(_events(room, EventKind.CUSTOMER_UPDATE)) == 1
    assert any("📨 Sent" in s and f"#{ticket}" in s for s in _said_in(room, message))
    room.click(ActionId.DRAFT_SEND, message)
    assert "went out already" in refusal(room)
    assert len(_ours(zendesk, ticket)) == 1

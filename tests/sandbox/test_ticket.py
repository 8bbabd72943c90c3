"""The sandbox's Zendesk: a ticket per account, with an agent per person who may sign; the
drill declared from Globex's ticket, whose brief shows it; the customer view showing the
ticket's public comments (never internal notes); and the requester's reply, added to the
ticket and sent to the bot as Zendesk's signed webhook, arriving in the war room once."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from bot.domain.timeline import EventKind
from bot.sandbox import app, workspace
from bot.sandbox.desk import SIGNERS, SandboxDesk
from loopback.slack import SlackEmulator
from tests.sandbox.conftest import ui
from tests.sandbox.test_sandbox import eventually
from tests.sandbox.test_training import control, held

HOSTILE = "Still failing <img src=x onerror=alert(1)> <!channel> *now*"


@pytest.fixture
def sandbox(redis_url: str, prefix: str) -> Iterator[app.Sandbox]:
    env = {"REDIS_URL": redis_url, "WARROOM_REDIS_PREFIX": prefix}
    sandbox = app.Sandbox(port=0, env=env, say=lambda _: None).start()
    try:
        yield sandbox
    finally:
        sandbox.close()


def _said(sandbox: app.Sandbox, room: str, words: str) -> list[str]:
    return [
        f"{m.text} {m.blocks}"
        for m in sandbox.emulator.messages_in(room)
        if words in f"{m.text} {m.blocks}"
    ]


def _side(sandbox: app.Sandbox, account: str) -> dict[str, Any]:
    state = ui(sandbox.emulator, f"/ui/state?as={workspace.SUPPORT_LEAD}")
    (side,) = [c for c in state["customers"] if c["account"] == account]
    return side


def test_each_signer_has_an_agent_found_by_their_slack_email(emulator: SlackEmulator) -> None:
    desk = SandboxDesk.start()
    try:
        zd = desk.zendesk
        for person in SIGNERS:
            email = emulator.user(person)["profile"]["email"]
            (agent,) = [u for u in zd.account.users.values() if u["email"] == email]
            assert agent["role"] == "agent" and desk.agents[person] == agent["id"]
        for account in ("Globex", workspace.CUSTOMER_NAME):
            ticket = zd.ticket(desk.ticket_of(account))
            requester = zd.account.users[ticket["requester_id"]]
            assert requester["role"] == "end-user"
            assert zd.account.organizations[ticket["organization_id"]]["name"] == account
        assert desk.settings()["zendesk_url"] == "https://northwind.zendesk.com"
    finally:
        desk.stop()


def test_the_drill_declares_from_globexs_ticket_and_the_brief_shows_it(
    redis_url: str, prefix: str
) -> None:
    env = {"REDIS_URL": redis_url, "WARROOM_REDIS_PREFIX": prefix}
    sandbox = app.Sandbox(
        port=0, env=env, drill=True, clock_scale=600, drill_pace=0.2, say=lambda _: None
    ).start()
    try:
        ticket = sandbox.desk.ticket_of("Globex")
        sandbox.drill.pacing.pause()
        sandbox.drill.start()
        for _ in range(2):  # the declaration, then the room
            assert held(sandbox)
            assert control(sandbox, {"do": "step"})["ok"]
        assert held(sandbox) and sandbox.drill.room
        esc = sandbox.runtime.store.by_channel(sandbox.drill.room)
        assert [t.id for t in esc.tickets] == [ticket]
        brief = eventually(
            lambda: _said(sandbox, sandbox.drill.room, f"agent/tickets/{ticket}|#{ticket}>")
        )
        assert "Checkout fails since 09:10" in brief[-1] and "Globex" in brief[-1]
        notices = sandbox.page.state(workspace.SUPPORT_LEAD, None)["notices"]
        assert [n["step"] for n in notices] == ["", "1/9", "2/9"]
        assert f"Globex's Zendesk ticket #{ticket}" in notices[1]["text"]
        assert f"ticket #{ticket}" in notices[2]["look"]
    finally:
        sandbox.close()


def test_the_requesters_reply_on_the_ticket_reaches_the_war_room_once(
    sandbox: app.Sandbox,
) -> None:
    desk, zd = sandbox.desk, sandbox.desk.zendesk
    ticket = desk.ticket_of("Globex")
    outcome = sandbox.interactions.say(
        workspace.SUPPORT_LEAD, "support", f"/escalate Globex: checkout fails --ticket {ticket}"
    )
    assert outcome.ok, outcome
    room = eventually(
        lambda: next(
            (c for c in sandbox.emulator.snapshot()["channels"] if c.name.startswith("esc-")),
            None,
        )
    ).id
    eventually(lambda: _said(sandbox, room, f"|#{ticket}>"))  # the ticket is read and linked
    acme = desk.ticket_of(workspace.CUSTOMER_NAME)
    # #support says which ticket Acme Corp's is, and how to declare from it.
    assert any(f"--ticket {acme}" in m.text for m in sandbox.emulator.messages_in("support"))

    # The customer's view: the ticket's public comments, the internal note left out.
    (shown,) = _side(sandbox, "Globex")["tickets"]
    assert shown["id"] == ticket and shown["subject"] == "Checkout fails since 09:10"
    assert shown["requester"] == "Priya Natarajan"
    assert [(c["author"], c["customer"]) for c in shown["comments"]] == [("Priya Natarajan", True)]
    assert shown["comments"][0]["at"]
    assert any(not c["public"] for c in zd.comments(ticket))  # there is a note, not shown
    assert "v2025.06.3" not in str(_side(sandbox, "Globex"))

    # Replies the page refuses: nothing is added to any ticket.
    before = len(zd.comments(ticket))
    for body in (
        {"account": "Globex", "ticket": acme, "text": "not theirs"},
        {"account": "Globex", "ticket": ticket, "text": "   "},
        {"account": "Globex", "ticket": str(ticket), "text": "a string"},
    ):
        assert not ui(sandbox.emulator, "/ui/ticket_reply", body)["ok"]
    assert len(zd.comments(ticket)) == before and len(zd.comments(acme)) == 1

    answer = ui(
        sandbox.emulator,
        "/ui/ticket_reply",
        {"account": "Globex", "ticket": ticket, "text": HOSTILE},
    )
    assert answer["ok"], answer
    posted = eventually(lambda: _said(sandbox, room, " replied:"))
    assert len(posted) == 1 and "Priya Natarajan (Globex) replied" in posted[0]
    assert "<!channel>" not in posted[0]
    esc = sandbox.runtime.store.by_channel(room)
    replies = [
        e for e in sandbox.runtime.store.timeline(esc.id) if e.kind is EventKind.CUSTOMER_REPLY
    ]
    assert [(e.text, e.data["via"]) for e in replies] == [(HOSTILE, "zendesk")]
    (reply,) = [c for c in zd.comments(ticket) if c["body"] == HOSTILE]
    assert reply["public"] and reply["author_id"] == desk.requesters["Globex"]

    # The view shows it, as typed (the page escapes it); Zendesk sending the same event again
    # is a replay the bot takes no further.
    comments = _side(sandbox, "Globex")["tickets"][0]["comments"]
    assert comments[-1]["text"] == HOSTILE and comments[-1]["customer"]
    status, body = zd.send_comment_event(desk.webhook_url, ticket, reply["id"], desk.webhook_secret)
    assert (status, body.strip()) == (200, b"replay")
    assert len(_said(sandbox, room, " replied:")) == 1


def test_a_webhook_whose_answer_is_lost_is_sent_again_and_the_comment_added_once() -> None:
    """The first delivery's connection drops before an answer: Zendesk's side sends the same
    comment's event again (the bot takes a comment it has seen as a replay)."""
    delivered: list[int] = []
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        for n in range(2):
            conn, _ = listener.accept()
            with conn:
                head, _, body = conn.recv(65536).partition(b"\r\n\r\n")
                length = int(
                    next(
                        line.split(b":")[1]
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length")
                    )
                )
                while len(body) < length:
                    body += conn.recv(65536)
                delivered.append(int(json.loads(body)["event"]["comment"]["id"]))
                if n == 1:
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nreplay\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    desk = SandboxDesk.start()
    try:
        desk.webhook_url = f"http://127.0.0.1:{listener.getsockname()[1]}/zendesk/webhook"
        ticket = desk.ticket_of("Globex")
        outcome = desk.reply("Globex", ticket, "Any news?")
        assert outcome.ok, outcome
        thread.join(10)
        (comment,) = [c for c in desk.zendesk.comments(ticket) if c["body"] == "Any news?"]
        assert delivered == [comment["id"], comment["id"]]
    finally:
        desk.stop()
        listener.close()

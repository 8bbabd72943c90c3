"""Zendesk linked both ways, end to end: the production app on the loopback Slack and the
loopback Zendesk. A ticket linked at declaration and with `@vp ticket` is read off the path
that opens the room and shown on the brief; the organisation's tickets are counted, a surge
told once; Zendesk's signed webhooks bring the customer's public comments into the room (and
nothing else); faults are told in one line, once; at resolution the ticket is solved."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from datetime import timedelta
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
import yaml
from pydantic import SecretStr

from bot.asgi import FrontDoor
from bot.desk.letters import Step
from bot.domain.errors import InvalidInput
from bot.domain.timeline import EventKind
from bot.runtime import Runtime, build_runtime
from bot.wsgi import WarroomWSGI
from loopback.harness import InlineExecutor
from loopback.server import http_request
from loopback.slack import FakeSlack
from loopback.slack.driver import SlackDriver
from loopback.zendesk import ZendeskLoopback
from tests.conftest import CONFIG, SIGNING_SECRET, today
from tests.rooms import shown, wait_until

SECRET = "zd-webhook-secret-42"


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def zendesk() -> Iterator[ZendeskLoopback]:
    with ZendeskLoopback() as zd:
        yield zd


@pytest.fixture
def people(zendesk: ZendeskLoopback, clock) -> dict[str, int]:
    org = zendesk.add_organization("Initech")
    dana = zendesk.add_user("Dana <@U0BOSS> Whitfield", "dana@initech.example", organization_id=org)
    agent = zendesk.add_user("Victoria Vance", "victoria@vendor.example", role="agent")
    ticket = zendesk.add_ticket(
        "TPS reports *missing* <!channel>",
        dana,
        priority="urgent",
        tags=("enterprise",),
        created_at=clock() - timedelta(hours=1),  # before the escalation: not counted
    )
    return {"org": org, "dana": dana, "agent": agent, "ticket": ticket}


@pytest.fixture
def rt(settings, clock, zendesk: ZendeskLoopback) -> Iterator[Runtime]:
    runtime = build_runtime(
        settings.model_copy(
            update={
                "zendesk_url": zendesk.account_url,
                "zendesk_api_url": zendesk.url,
                "zendesk_email": zendesk.email,
                "zendesk_token": SecretStr(zendesk.token),
                "zendesk_webhook_secret": SecretStr(SECRET),
            }
        ),
        clock=clock,
        listener_executor=InlineExecutor(),
    )
    yield runtime
    runtime.close()


@pytest.fixture
def slack(rt: Runtime, fake_slack: FakeSlack) -> SlackDriver:
    return SlackDriver(fake_slack, SIGNING_SECRET, app=rt.app)


@pytest.fixture
def webhook_url(rt: Runtime) -> Iterator[str]:
    server: WSGIServer = make_server("127.0.0.1", 0, WarroomWSGI(rt), handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/zendesk/webhook"
    server.shutdown()
    server.server_close()
    thread.join()


def _declare(slack: SlackDriver, fake: FakeSlack, ticket: int):
    slack.command(f"Initech: TPS reports missing for EU users --ticket {ticket}")
    return fake.channel_by_name(f"esc-{today()}-initech")


def _brief(fake: FakeSlack, channel) -> str:
    return next(shown(m) for m in fake.messages_in(channel.id) if "Support tickets" in shown(m))


def _said(fake: FakeSlack, channel, words: str) -> list[str]:
    return [shown(m) for m in fake.messages_in(channel.id) if words in shown(m)]


def _customer_comment(
    zendesk: ZendeskLoopback, people: dict[str, int], webhook_url: str, clock, text: str
) -> int:
    """`text` as Dana's comment on the ticket and Zendesk's signed webhook for it, answered
    200: the comment's id."""
    reply = zendesk.add_comment(people["ticket"], people["dana"], text)
    stamp = clock().strftime("%Y-%m-%dT%H:%M:%SZ")
    status, _ = zendesk.send_comment_event(
        webhook_url, people["ticket"], reply, SECRET, timestamp=stamp
    )
    assert status == 200
    return reply


def _mention(slack: SlackDriver, fake: FakeSlack, channel, text: str, user: str = "U0INCCMDR"):
    wire = f"<@{fake.bot_user_id}> {text}"
    ts = fake.add_message(channel.id, user, wire)
    slack.event(
        {"type": "app_mention", "user": user, "text": wire, "channel": channel.id, "ts": ts}
    )
    return ts


def test_a_ticket_linked_at_declaration_is_read_and_shown_on_the_brief(
    rt: Runtime, slack: SlackDriver, fake_slack: FakeSlack, people: dict[str, int]
) -> None:
    channel = _declare(slack, fake_slack, people["ticket"])
    esc = rt.store.get(channel.name)
    assert esc is not None and [t.id for t in esc.tickets] == [people["ticket"]]
    linked = esc.tickets[0]
    assert linked.read and linked.organization == "Initech" and linked.priority == "urgent"
    brief = _brief(fake_slack, channel)
    assert (
        f"<https://acme.zendesk.com/agent/tickets/{people['ticket']}|#{people['ticket']}>" in brief
    )
    assert "Initech" in brief and "urgent" in brief and "enterprise" in brief
    # The ticket's words are inert: no mention, no broadcast, no bold.
    assert "<@U0BOSS>" not in brief and "<!channel>" not in brief and "&lt;!channel&gt;" in brief
    assert any(e.kind is EventKind.TICKET for e in rt.store.timeline(esc.id))


def test_a_ticket_linked_in_the_room_by_url_and_the_organisations_count_in_status(
    rt: Runtime,
    slack: SlackDriver,
    fake_slack: FakeSlack,
    zendesk: ZendeskLoopback,
    people: dict[str, int],
    clock,
) -> None:
    channel = fake_slack.channel_by_name
    slack.command("Initech: TPS reports missing for EU users")
    room = channel(f"esc-{today()}-initech")
    second = zendesk.add_ticket(
        "Also missing", people["dana"], created_at=clock() + timedelta(minutes=1)
    )
    _mention(slack, fake_slack, room, f"ticket <https://acme.zendesk.com/agent/tickets/{second}>")
    esc = rt.store.get(room.name)
    assert esc is not None and [t.id for t in esc.tickets] == [second] and esc.tickets[0].read
    assert _said(fake_slack, room, f"Linked #{second}")
    assert esc.org_tickets is not None and esc.org_tickets.count == 1
    _mention(slack, fake_slack, room, "status")
    status = _said(fake_slack, room, "from Initech since")
    assert status and "agent/search" in status[-1]
    _mention(slack, fake_slack, room, f"ticket {second}")
    assert _said(fake_slack, room, "already linked")


def test_customer_comments_come_back_and_nothing_else_does(
    rt: Runtime,
    slack: SlackDriver,
    fake_slack: FakeSlack,
    zendesk: ZendeskLoopback,
    people: dict[str, int],
    webhook_url: str,
    clock,
) -> None:
    room = _declare(slack, fake_slack, people["ticket"])
    stamp = clock().strftime("%Y-%m-%dT%H:%M:%SZ")

    def send(ticket: int, comment: int, **kwargs) -> int:
        return zendesk.send_comment_event(
            webhook_url, ticket, comment, kwargs.pop("secret", SECRET), timestamp=stamp
        )[0]

    reply = zendesk.add_comment(people["ticket"], people["dana"], "Still broken <!here> for us.")
    assert send(people["ticket"], reply) == 200
    posted = _said(fake_slack, room, "replied:")
    assert len(posted) == 1 and "Still broken" in posted[0] and "<!here>" not in posted[0]
    notes = [e for e in rt.store.timeline(room.name) if e.kind is EventKind.CUSTOMER_REPLY]
    assert len(notes) == 1 and notes[0].data["ref"] == str(reply)
    assert notes[0].data["via"] == "zendesk" and notes[0].data["who"] == "Dana <@U0BOSS> Whitfield"
    assert "<@U0BOSS>" not in posted[0] and "Initech" in posted[0]

    # The same event again (Zendesk retries), an internal note, an agent's comment, a comment
    # on a ticket no escalation links, a forged signature: nothing more in the room.
    assert send(people["ticket"], reply) == 200
    note = zendesk.add_comment(people["ticket"], people["dana"], "internal", public=False)
    staff = zendesk.add_comment(people["ticket"], people["agent"], "We are on it")
    other = zendesk.add_ticket("Unrelated", people["dana"])
    unlinked = zendesk.add_comment(other, people["dana"], "Hello?")
    for ticket, comment in ((people["ticket"], note), (people["ticket"], staff), (other, unlinked)):
        assert send(ticket, comment) == 200
    forged = zendesk.add_comment(people["ticket"], people["dana"], "Forged")
    assert send(people["ticket"], forged, secret="not-the-secret") == 401
    assert len(_said(fake_slack, room, "replied:")) == 1
    assert len([e for e in rt.store.timeline(room.name) if e.kind is EventKind.CUSTOMER_REPLY]) == 1


def test_a_stale_or_unsigned_webhook_is_refused(
    rt: Runtime, zendesk: ZendeskLoopback, people: dict[str, int], webhook_url: str, clock
) -> None:
    comment = zendesk.add_comment(people["ticket"], people["dana"], "Hi")
    stale = (clock() - timedelta(minutes=6)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert (
        zendesk.send_comment_event(webhook_url, people["ticket"], comment, SECRET, timestamp=stale)[
            0
        ]
        == 401
    )
    status, _, _ = http_request(webhook_url, b"{}", {"Content-Type": "application/json"})
    assert status == 401


def test_a_deleted_ticket_is_told_once_and_the_room_goes_on(
    rt: Runtime,
    slack: SlackDriver,
    fake_slack: FakeSlack,
    zendesk: ZendeskLoopback,
    people: dict[str, int],
) -> None:
    zendesk.delete(people["ticket"])
    room = _declare(slack, fake_slack, people["ticket"])
    assert room is not None and room.pins  # the room opened and its brief is pinned
    rt.tickets.refresh(rt.tickets.open_escalations())  # type: ignore[union-attr]
    told = _said(fake_slack, room, f"Ticket #{people['ticket']}")
    assert len(told) == 1 and "deleted" in told[0]


def test_a_rate_limited_read_is_told_once_and_read_on_the_next_round(
    rt: Runtime,
    slack: SlackDriver,
    fake_slack: FakeSlack,
    zendesk: ZendeskLoopback,
    people: dict[str, int],
) -> None:
    zendesk.fault(status=429, retry_after=120, path="/tickets/", times=2)
    room = _declare(slack, fake_slack, people["ticket"])
    assert len(_said(fake_slack, room, "⚠️ Ticket #")) == 1
    assert "rate-limiting" in _brief(fake_slack, room)
    rt.tickets.refresh(rt.tickets.open_escalations())  # type: ignore[union-attr]
    assert len(_said(fake_slack, room, "⚠️ Ticket #")) == 1  # the same fault: not told again
    rt.tickets.refresh(rt.tickets.open_escalations())  # type: ignore[union-attr]
    esc = rt.store.get(room.name)
    assert esc is not None and esc.tickets[0].read
    assert "rate-limiting" not in _brief(fake_slack, room)
    assert len(_said(fake_slack, room, "⚠️ Ticket #")) == 1


def test_a_surge_is_told_to_the_ic_once(
    rt: Runtime,
    slack: SlackDriver,
    fake_slack: FakeSlack,
    zendesk: ZendeskLoopback,
    people: dict[str, int],
    clock,
) -> None:
    room = _declare(slack, fake_slack, people["ticket"])
    for n in range(5):
        zendesk.add_ticket(
            f"Broken {n}", people["dana"], created_at=clock() + timedelta(minutes=n + 1)
        )
    rt.tickets.refresh(rt.tickets.open_escalations())  # type: ignore[union-attr]
    rt.tickets.refresh(rt.tickets.open_escalations())  # type: ignore[union-attr]
    surges = _said(fake_slack, room, "opened 5 tickets")
    assert len(surges) == 1
    esc = rt.store.get(room.name)
    assert esc is not None and f"<@{esc.ic}>" in surges[0]


def test_letters_go_on_the_ticket_once_and_resolution_solves_it(
    rt: Runtime,
    slack: SlackDriver,
    fake_slack: FakeSlack,
    zendesk: ZendeskLoopback,
    people: dict[str, int],
) -> None:
    room = _declare(slack, fake_slack, people["ticket"])
    esc = rt.store.get(room.name)
    assert esc is not None and rt.tickets is not None and rt.ticket_letters is not None
    text = "Dear Dana,\n\nTPS reports are back.\n\nVictoria"
    with pytest.raises(InvalidInput):  # no email in the approver's Slack profile
        rt.tickets.letters_for(esc, "d1", 1, text, "U0INCCMDR")
    fake_slack.set_email("U0INCCMDR", "victoria@vendor.example")
    (letter,) = rt.tickets.letters_for(esc, "d1", 1, text, "U0INCCMDR")
    assert rt.ticket_letters.send(letter).step is Step.ADDED
    assert rt.ticket_letters.send(letter).step is Step.ALREADY
    added = [c for c in zendesk.comments(people["ticket"]) if c["body"] == text]
    assert len(added) == 1 and added[0]["author_id"] == people["agent"] and added[0]["public"]
    assert zendesk.ticket(people["ticket"])["status"] == "pending"
    assert f"warroom_{room.name}" in zendesk.ticket(people["ticket"])["tags"]
    _mention(slack, fake_slack, room, "resolve TPS reports restored")
    assert zendesk.ticket(people["ticket"])["status"] == "solved"


def test_the_account_is_matched_by_the_tickets_organisation(
    rt: Runtime, slack: SlackDriver, fake_slack: FakeSlack, people: dict[str, int], memory_dir
) -> None:
    insights = memory_dir / "_knowledge" / "semantic" / "customer_insights.yaml"
    insights.parent.mkdir(parents=True)
    insights.write_text(
        yaml.safe_dump({"customers": [{"name": "Initech", "timezone": "Europe/Berlin"}]})
    )
    slack.command(f"TPS team: reports missing --ticket {people['ticket']}")
    esc = rt.store.get(f"esc-{today()}-tps-team")
    assert esc is not None and esc.customer == "TPS team" and esc.account == "Initech"
    assert esc.account_name == "Initech"


def test_without_zendesk_the_ticket_command_says_what_to_set(
    runtime: Runtime, fake_slack: FakeSlack
) -> None:
    slack = SlackDriver(fake_slack, SIGNING_SECRET, app=runtime.app)
    slack.command("Initech: reports missing")
    room = fake_slack.channel_by_name(f"esc-{today()}-initech")
    _mention(slack, fake_slack, room, "ticket 4711")
    assert _said(fake_slack, room, "WARROOM_ZENDESK_URL")
    assert runtime.tickets is None


def _through_the_door(
    rt: Runtime, headers: dict[str, str], body: bytes | None
) -> tuple[int, bytes]:
    """The answer of the front door; `body` None: the body must not be read at all."""
    door = FrontDoor(WarroomWSGI(rt), threads=2)
    sent: list[dict] = []
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict:
        assert body is not None, "the body was read"
        assert pending, "the body was read twice"
        return pending.pop()

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/zendesk/webhook",
        "root_path": "",
        "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "server": ("127.0.0.1", 3000),
        "client": ("127.0.0.1", 50000),
    }
    asyncio.run(door(scope, receive, send))
    (start,) = [m for m in sent if m["type"] == "http.response.start"]
    return start["status"], b"".join(m.get("body", b"") for m in sent if "body" in m)


def test_the_front_door_refuses_an_unsigned_or_oversized_webhook_before_reading_it(
    rt: Runtime, zendesk: ZendeskLoopback, people: dict[str, int], clock
) -> None:
    comment = zendesk.add_comment(people["ticket"], people["dana"], "Hi")
    body = zendesk.comment_event(people["ticket"], comment)
    stamp = clock().strftime("%Y-%m-%dT%H:%M:%SZ")
    headers = {**zendesk.signed_headers(body, SECRET, stamp), "Content-Length": str(len(body))}
    assert _through_the_door(rt, headers, body)[0] == 200
    unsigned = {"Content-Type": "application/json", "Content-Length": str(len(body))}
    assert _through_the_door(rt, unsigned, None)[0] == 401
    huge = {**headers, "Content-Length": str(10 * 1024 * 1024)}
    assert _through_the_door(rt, huge, None)[0] == 413


def test_the_timer_reads_tickets_again_and_a_passing_fault_keeps_what_was_read(
    rt: Runtime,
    slack: SlackDriver,
    fake_slack: FakeSlack,
    zendesk: ZendeskLoopback,
    people: dict[str, int],
) -> None:
    room = _declare(slack, fake_slack, people["ticket"])
    assert "· open" in _brief(fake_slack, room)
    zendesk.account.tickets[people["ticket"]]["status"] = "hold"
    zendesk.fault(status=503, path="/tickets/", times=3)  # every try of one read
    rt.tickets.refresh(rt.tickets.open_escalations())  # type: ignore[union-attr]
    assert "· open" in _brief(fake_slack, room)
    assert not _said(fake_slack, room, "⚠️ Ticket #")
    rt.tickets.refresh(rt.tickets.open_escalations())  # type: ignore[union-attr]
    assert "· hold" in _brief(fake_slack, room)


def test_the_forms_ticket_field_links_the_ticket(
    rt: Runtime, slack: SlackDriver, fake_slack: FakeSlack, people: dict[str, int]
) -> None:
    slack.command("")
    view = fake_slack.views[next(iter(fake_slack.views))]
    assert "tickets" in [b.get("block_id") for b in view["blocks"]]
    values = {
        "customer": {"value": {"type": "plain_text_input", "value": "Initech"}},
        "summary": {"value": {"type": "plain_text_input", "value": "TPS reports lost"}},
        "tickets": {"value": {"type": "plain_text_input", "value": "https://nope"}},
    }
    bad = slack.submit_view(view, values)
    assert set(bad.json()["errors"]) == {"tickets"}
    values["tickets"]["value"]["value"] = f"{people['ticket']}"
    assert slack.submit_view(view, values).status == 200
    esc = rt.store.get(f"esc-{today()}-initech")
    assert esc is not None and [t.id for t in esc.tickets] == [people["ticket"]]
    assert esc.tickets[0].read


def test_a_started_runtime_counts_the_organisations_tickets_on_its_timer(
    settings, clock, zendesk: ZendeskLoopback, people: dict[str, int], tmp_path, fake_slack
) -> None:
    config = tmp_path / "zendesk.yaml"
    config.write_text(yaml.safe_dump({**CONFIG, "zendesk": {"refresh_minutes": 0.002}}))
    runtime = build_runtime(
        settings.model_copy(
            update={
                "config_file": config,
                "zendesk_url": zendesk.account_url,
                "zendesk_api_url": zendesk.url,
                "zendesk_email": zendesk.email,
                "zendesk_token": SecretStr(zendesk.token),
            }
        ),
        clock=clock,
        listener_executor=InlineExecutor(),
    )
    try:
        slack = SlackDriver(fake_slack, SIGNING_SECRET, app=runtime.app)
        _declare(slack, fake_slack, people["ticket"])
        counted = len(zendesk.seen("GET", "/search/count"))
        runtime.start()
        wait_until(
            lambda: len(zendesk.seen("GET", "/search/count")) > counted,
            what="the timer to count the organisation's tickets",
        )
    finally:
        runtime.close()


def test_a_comment_on_a_ticket_two_escalations_link_comes_back_to_both_rooms(
    rt: Runtime,
    slack: SlackDriver,
    fake_slack: FakeSlack,
    zendesk: ZendeskLoopback,
    people: dict[str, int],
    webhook_url: str,
    clock,
) -> None:
    first = _declare(slack, fake_slack, people["ticket"])
    slack.command("Globex: invoices doubled")
    second = fake_slack.channel_by_name(f"esc-{today()}-globex")
    _mention(slack, fake_slack, second, f"ticket {people['ticket']}", user="U0OTHERIC")
    assert [t.id for t in rt.store.get(second.name).tickets] == [people["ticket"]]

    reply = _customer_comment(zendesk, people, webhook_url, clock, "Both of these hit us.")
    for room in (first, second):
        assert len(_said(fake_slack, room, "Both of these hit us.")) == 1
        assert [
            e.data["ref"]
            for e in rt.store.timeline(room.name)
            if e.kind is EventKind.CUSTOMER_REPLY
        ] == [str(reply)]


def test_a_comment_not_shown_while_slack_fails_is_shown_when_it_answers_again(
    rt: Runtime,
    slack: SlackDriver,
    fake_slack: FakeSlack,
    zendesk: ZendeskLoopback,
    people: dict[str, int],
    webhook_url: str,
    clock,
) -> None:
    # Zendesk has its 200 (the comment is handled after the answer) and sends it no more:
    # the reply is tried again here, never lost to a passing Slack failure, never shown twice.
    room = _declare(slack, fake_slack, people["ticket"])
    rt.tickets.reply_retry_seconds = (0.05, 0.05)
    fake_slack.fail_next("chat.postMessage", "fatal_error")
    reply = _customer_comment(zendesk, people, webhook_url, clock, "Is it fixed yet?")
    wait_until(lambda: _said(fake_slack, room, "Is it fixed yet?"), what="the reply shown")
    assert len(_said(fake_slack, room, "Is it fixed yet?")) == 1
    notes = [e for e in rt.store.timeline(room.name) if e.kind is EventKind.CUSTOMER_REPLY]
    assert [e.data["ref"] for e in notes] == [str(reply)]


def test_a_ticket_removed_is_off_the_brief_and_its_comments_and_letters_no_more(
    rt: Runtime,
    slack: SlackDriver,
    fake_slack: FakeSlack,
    zendesk: ZendeskLoopback,
    people: dict[str, int],
    webhook_url: str,
    clock,
) -> None:
    room = _declare(slack, fake_slack, people["ticket"])
    other = zendesk.add_ticket("Also missing", people["dana"])
    _mention(slack, fake_slack, room, f"ticket {other}")
    esc = rt.store.get(room.name)
    assert esc is not None and [t.id for t in esc.tickets] == [people["ticket"], other]
    version = esc.version

    _mention(
        slack,
        fake_slack,
        room,
        f"ticket remove <https://acme.zendesk.com/agent/tickets/{people['ticket']}>",
    )
    assert _said(fake_slack, room, f"Unlinked #{people['ticket']}")
    esc = rt.store.get(room.name)
    assert esc is not None and [t.id for t in esc.tickets] == [other]
    assert esc.version == version + 1  # one write
    unlinked = [
        e
        for e in rt.store.timeline(room.name)
        if e.kind is EventKind.TICKET and e.data.get("linked") is False
    ]
    assert [(e.data["ticket"], e.actor) for e in unlinked] == [(people["ticket"], "U0INCCMDR")]
    assert "unlinked" in unlinked[0].text
    assert f"#{people['ticket']}|" not in _brief(fake_slack, room)  # the brief was refreshed
    assert f"#{other}" in _brief(fake_slack, room)

    # A comment on it comes in: nothing in the room; letters go to the other ticket only.
    _customer_comment(zendesk, people, webhook_url, clock, "Anyone there?")
    assert not _said(fake_slack, room, "Anyone there?")
    assert not [e for e in rt.store.timeline(room.name) if e.kind is EventKind.CUSTOMER_REPLY]
    fake_slack.set_email("U0INCCMDR", "victoria@vendor.example")
    assert rt.tickets is not None
    letters = rt.tickets.letters_for(esc, "d1", 1, "Dear Dana", "U0INCCMDR")
    assert [letter.ticket_id for letter in letters] == [other]

    # Again, or a ticket never linked: one line that says so, and nothing written.
    for ref in (str(people["ticket"]), "999"):
        _mention(slack, fake_slack, room, f"ticket remove {ref}")
    assert len(_said(fake_slack, room, "not linked to this escalation")) == 2
    assert rt.store.get(room.name).version == version + 1
    _mention(slack, fake_slack, room, "ticket remove nonsense")
    assert _said(fake_slack, room, "is not a ticket")
    _mention(slack, fake_slack, room, "help")
    assert _said(fake_slack, room, "unlink it: off the brief, its comments and letters no more")

    # The count stays while a ticket of the organisation is linked, and goes with the last.
    assert rt.store.get(room.name).org_tickets is not None
    _mention(slack, fake_slack, room, f"ticket remove {other}")
    esc = rt.store.get(room.name)
    assert esc.tickets == () and esc.org_tickets is None


def _served(rt: Runtime):
    server: WSGIServer = make_server("127.0.0.1", 0, WarroomWSGI(rt), handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    return server, thread, f"http://127.0.0.1:{server.server_port}/zendesk/webhook"


def test_the_previous_webhook_secret_signs_while_it_is_rotated_and_not_after(
    settings,
    clock,
    fake_slack: FakeSlack,
    zendesk: ZendeskLoopback,
    people: dict[str, int],
    caplog: pytest.LogCaptureFixture,
) -> None:
    old, new = "zd-old-secret-1", "zd-new-secret-2"
    zd = {
        "zendesk_url": zendesk.account_url,
        "zendesk_api_url": zendesk.url,
        "zendesk_email": zendesk.email,
        "zendesk_token": SecretStr(zendesk.token),
        "zendesk_webhook_secret": SecretStr(new),
    }
    stamp = clock().strftime("%Y-%m-%dT%H:%M:%SZ")

    def deliveries(previous: str | None, said: str) -> list[int]:
        """The statuses of a comment signed with the old secret and one with the new."""
        update = dict(zd, zendesk_webhook_secret_previous=SecretStr(previous) if previous else None)
        runtime = build_runtime(
            settings.model_copy(update=update), clock=clock, listener_executor=InlineExecutor()
        )
        server, thread, url = _served(runtime)
        try:
            statuses = []
            for secret in (old, new):
                comment = zendesk.add_comment(people["ticket"], people["dana"], f"{said} {secret}")
                statuses.append(
                    zendesk.send_comment_event(
                        url, people["ticket"], comment, secret, timestamp=stamp
                    )[0]
                )
            return statuses
        finally:
            server.shutdown()
            server.server_close()
            thread.join()
            runtime.close()

    assert deliveries(old, "while rotating") == [200, 200]
    with caplog.at_level("INFO", logger="bot.services.tickets"):
        assert deliveries(None, "after rotating") == [401, 200]
    refused = [r for r in caplog.records if "refused" in r.getMessage()]
    assert refused and all(old not in r.getMessage() and new not in r.getMessage() for r in refused)
    assert all("after rotating" not in r.getMessage() for r in caplog.records)


def test_a_refused_signature_is_a_warning_at_most_once_a_minute(
    rt: Runtime,
    zendesk: ZendeskLoopback,
    people: dict[str, int],
    webhook_url: str,
    clock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def forged() -> int:
        comment = zendesk.add_comment(people["ticket"], people["dana"], "Forged words")
        stamp = clock().strftime("%Y-%m-%dT%H:%M:%SZ")
        return zendesk.send_comment_event(
            webhook_url, people["ticket"], comment, "not-the-secret", timestamp=stamp
        )[0]

    with caplog.at_level("INFO", logger="bot.services.tickets"):
        assert [forged(), forged(), forged()] == [401, 401, 401]
        clock.advance(timedelta(seconds=61))
        assert forged() == 401
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 2
    for r in caplog.records:
        assert SECRET not in r.getMessage() and "not-the-secret" not in r.getMessage()
        assert "Forged words" not in r.getMessage()

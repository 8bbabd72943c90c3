"""The sandbox's customer view: the executive's inbox as their mail client shows it (threads,
From, To, Cc, Subject, date, body), the channel shared with their organisation as they see
it, and their reply in that channel reaching the war room through the real event path."""

from __future__ import annotations

import smtplib
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

import pytest

from bot.runtime import Runtime
from bot.sandbox import workspace
from bot.sandbox.customer import CustomerSide
from bot.sandbox.interactions import Interactions
from bot.sandbox.web import WorkspacePage
from bot.slack.ids import ActionId
from loopback.imap import ImapServer
from loopback.slack import SlackEmulator
from loopback.smtp import MailServer
from tests.sandbox.conftest import ui
from tests.sandbox.test_page import declare

MORGAN = workspace.CUSTOMER_PERSON.id


@pytest.fixture
def side(
    emulator: SlackEmulator,
    page: WorkspacePage,
    mail: MailServer,
    imap: ImapServer,
    bot: Runtime,
    tmp_path: Path,
) -> Iterator[CustomerSide]:
    shared = workspace.shared_channel(emulator)
    # The account's facts name the shared channel, as the sandbox writes them.
    workspace.write_files(tmp_path, slack_connect=shared)
    customer = CustomerSide(
        emulator,
        mail,
        account=workspace.CUSTOMER_NAME,
        person=MORGAN,
        address=workspace.CUSTOMER_EMAIL,
        channel=shared,
        replies=imap,
        name=workspace.CUSTOMER_PERSON.real_name,
        on_email=bot.mail_replies.poll if bot.mail_replies is not None else None,
    ).watch(poll=0.05)
    page.customers = lambda: [customer.state()]
    page.email_reply = lambda _account, text: customer.answer_by_email(text)
    try:
        yield customer
    finally:
        customer.stop()


def letter(mail: MailServer, subject: str, body: str, n: int, references: str = "") -> str:
    msg = EmailMessage()
    msg["From"] = f"Victoria Hale <{workspace.MAIL_FROM}>"
    msg["To"] = workspace.CUSTOMER_EMAIL
    msg["Cc"] = "carla@northwind.example"
    msg["Reply-To"] = workspace.MAIL_REPLY_TO
    msg["Subject"] = subject
    msg["Date"] = format_datetime(workspace_now(n))
    msg["Message-ID"] = f"<letter-{n}@northwind.example>"
    if references:
        msg["In-Reply-To"] = msg["References"] = references
    msg.set_content(body)
    with smtplib.SMTP("127.0.0.1", mail.port) as smtp:
        smtp.send_message(msg)
    return msg["Message-ID"]


def workspace_now(n: int) -> datetime:
    return datetime(2026, 3, 2, 10, 0, tzinfo=UTC) + timedelta(hours=n)


def test_the_inbox_shows_each_thread_as_a_mail_client_does(
    emulator: SlackEmulator, side: CustomerSide, mail: MailServer
) -> None:
    empty = ui(emulator, f"/ui/state?as={workspace.SUPPORT_LEAD}")["customers"][0]
    assert empty["account"] == "Acme Corp" and empty["address"] == workspace.CUSTOMER_EMAIL
    assert empty["inbox"] == [] and empty["person"] == MORGAN
    version = ui(emulator, f"/ui/state?as={workspace.SUPPORT_LEAD}")["version"]

    first = letter(mail, "Checkout errors: our update", "Dear Morgan,\n<b>not markup</b>", 0)
    # The page hears of new mail (its long poll waits on the workspace's version).
    deadline = time.monotonic() + 10
    while ui(emulator, f"/ui/state?as={workspace.SUPPORT_LEAD}")["version"] == version:
        assert time.monotonic() < deadline, "the page was not told of the new mail"
        time.sleep(0.05)
    letter(mail, "Re: Checkout errors: our update", "Second letter", 1, references=first)
    letter(mail, "Another matter", "Third", 2)
    mail.wait_for(3)

    inbox = ui(emulator, f"/ui/state?as={workspace.SUPPORT_LEAD}")["customers"][0]["inbox"]
    assert [t["subject"] for t in inbox] == ["Another matter", "Re: Checkout errors: our update"]
    thread = inbox[1]["messages"]
    assert [m["text"].strip() for m in thread] == [
        "Dear Morgan,\n<b>not markup</b>",
        "Second letter",
    ]
    shown = thread[0]
    assert shown["from"] == f"Victoria Hale <{workspace.MAIL_FROM}>"
    assert shown["to"] == workspace.CUSTOMER_EMAIL and shown["cc"] == "carla@northwind.example"
    assert shown["reply_to"] == workspace.MAIL_REPLY_TO
    assert shown["date"] and "html" not in shown


def test_the_customer_replies_in_the_shared_channel_and_the_war_room_hears_it(
    emulator: SlackEmulator, side: CustomerSide, acts: Interactions, bot: Runtime
) -> None:
    room = declare(emulator)
    shared = workspace.shared_channel(emulator)
    channel = ui(emulator, f"/ui/state?as={workspace.SUPPORT_LEAD}")["customers"][0]["channel"]
    assert channel["id"] == shared and channel["name"] == workspace.SHARED_CHANNEL
    assert MORGAN in channel["members"]

    answer = ui(
        emulator,
        "/ui/send",
        {"as": MORGAN, "channel": shared, "text": "When will checkout work again? @here"},
    )
    assert answer["ok"], answer
    acts.wait_idle()
    assert [d.kind for d in acts.deliveries][-1] == "event:message"
    assert acts.deliveries[-1].status == 200

    (shown,) = [m for m in emulator.messages_in(room) if "📨" in (m.text or "")]
    assert "Morgan Lee (Acme Corp) replied" in shown.text
    assert "<!here>" not in str(shown.blocks)
    customer = ui(emulator, f"/ui/state?as={workspace.SUPPORT_LEAD}")["customers"][0]
    said = [m["text"] for m in customer["channel"]["messages"] if m["user"] == MORGAN]
    assert said[-1].startswith("When will checkout work again?")
    esc = bot.store.by_channel(room)
    assert esc is not None
    assert [e.text for e in bot.store.timeline(esc.id) if e.kind == "customer_reply"] == [
        "When will checkout work again? @here"
    ]


def test_the_customer_cannot_post_where_their_organisation_is_not(
    emulator: SlackEmulator, side: CustomerSide
) -> None:
    answer = ui(emulator, "/ui/send", {"as": MORGAN, "channel": "support", "text": "hello"})
    assert not answer["ok"] and "not shared" in answer["error"]


def _click(emulator: SlackEmulator, user: str, room: str, message: dict, action: str) -> None:
    (block,) = [b for b in message["blocks"] if b["type"] == "actions"]
    answer = ui(
        emulator,
        "/ui/click",
        {
            "as": user,
            "channel": room,
            "message_ts": message["ts"],
            "block_id": block["block_id"],
            "action_id": action,
        },
    )
    assert answer["ok"], answer


def _draft(emulator: SlackEmulator, room: str) -> dict:
    state = ui(emulator, f"/ui/state?as={workspace.IC}&channel={room}")["channel"]
    return next(
        reply
        for message in state["messages"]
        for reply in message["replies"]
        if "draft_" in str(reply["blocks"])
    )


def _send_a_letter(emulator: SlackEmulator, acts: Interactions) -> tuple[str, dict]:
    room = declare(emulator)
    for said in (
        "impact shoppers cannot pay at checkout",
        "doing moving checkout to a healthy region",
        "workaround none",
        "draft update",
    ):
        ui(emulator, "/ui/send", {"as": workspace.IC, "channel": room, "text": f"@vp {said}"})
        acts.wait_idle()
    draft = _draft(emulator, room)
    _click(emulator, workspace.VP, room, draft, ActionId.DRAFT_APPROVE)
    acts.wait_idle()
    _click(emulator, workspace.VP, room, _draft(emulator, room), ActionId.DRAFT_SEND)
    acts.wait_idle()
    return room, draft


def test_a_sent_letter_reaches_the_inbox_and_the_shared_channel_and_the_answer_comes_back(
    emulator: SlackEmulator, side: CustomerSide, acts: Interactions, mail: MailServer
) -> None:
    room, draft = _send_a_letter(emulator, acts)
    mail.wait_for(1)
    customer = ui(emulator, f"/ui/state?as={workspace.SUPPORT_LEAD}")["customers"][0]
    (thread,) = customer["inbox"]
    (letter,) = thread["messages"]
    assert letter["to"] == workspace.CUSTOMER_EMAIL and letter["cc"] == "carla@northwind.example"
    assert workspace.MAIL_FROM in letter["from"] and letter["reply_to"] == workspace.MAIL_REPLY_TO
    assert "Dear Morgan" in letter["text"] and letter["subject"] == thread["subject"]
    (posted,) = [m for m in customer["channel"]["messages"] if m["user"] == workspace.BOT_USER_ID]

    # Morgan answers in the letter's thread in the shared channel.
    answer = ui(
        emulator,
        "/ui/send",
        {
            "as": MORGAN,
            "channel": customer["channel"]["id"],
            "text": "Thank you. Do we need to do anything on our side?",
            "thread_ts": posted["ts"],
        },
    )
    assert answer["ok"], answer
    acts.wait_idle()
    (shown,) = [m for m in emulator.messages_in(room) if " replied:" in (m.text or "")]
    assert shown.thread_ts == draft["thread_ts"]
    assert "Morgan Lee (Acme Corp) replied" in shown.text


def test_the_customer_answers_the_letter_by_email_and_the_war_room_hears_it(
    emulator: SlackEmulator, side: CustomerSide, acts: Interactions, mail: MailServer
) -> None:
    nothing_yet = ui(emulator, "/ui/email_reply", {"account": "Acme Corp", "text": "Hello?"})
    assert not nothing_yet["ok"] and "No letter" in nothing_yet["error"]
    room, draft = _send_a_letter(emulator, acts)
    mail.wait_for(1)
    customer = ui(emulator, f"/ui/state?as={workspace.SUPPORT_LEAD}")["customers"][0]
    assert customer["answers_by_email"]

    answer = ui(
        emulator,
        "/ui/email_reply",
        {"account": "Acme Corp", "text": "Thanks. Should we pause our EU campaign?"},
    )
    assert answer["ok"], answer
    (shown,) = [m for m in emulator.messages_in(room) if " replied:" in (m.text or "")]
    assert shown.thread_ts == draft["thread_ts"]
    assert "Morgan Lee (Acme Corp) replied" in shown.text
    assert "Should we pause our EU campaign?" in shown.text
    assert "Dear Morgan" not in shown.text  # the letter they quoted stays out

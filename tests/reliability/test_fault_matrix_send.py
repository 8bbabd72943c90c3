"""The fault matrix's send and reply rows: Send on an approved letter going by email (a real
SMTP server on this machine) and to the customer's Slack Connect channel, and then the
customer's reply in that channel, each with the answer of each Redis write it makes lost in
turn, then the answer of each Slack call lost after Slack acted. What it ends with must equal
the run without the fault: one email, one post in the shared channel, one customer update,
the reply in the room once, the room told once."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest
import yaml
from pydantic import SecretStr

from bot.slack.ids import ActionId
from loopback.slack.driver import SlackDriver
from loopback.smtp import MailServer
from tests.conftest import SIGNING_SECRET, T0
from tests.reliability.test_fault_matrix import TIMES, WRITES
from tests.rooms import Room, draft_id

pytestmark = pytest.mark.slow

CUSTOMER_TEAM = "T0INITECH"
DANA = "U0DANAWHT"  # of the customer's organisation, in the shared channel
ROOMS = 60  # customers with routes: enough for every case of the row
LETTER = (
    "Subject: Checkout for your EU users\n\nDear Dana,\n\nWe are moving checkout to a healthy "
    "region.\n\nOur next update will follow by Mon 2 Mar 2026, 15:00 UTC.\n\nVictoria Vance"
)


def customer(n: int) -> str:
    return f"Initech{n}"


def address(n: int) -> str:
    return f"dana@initech{n}.example"


class Sending:
    """A room of its own customer with its letter approved, and Send pressed on it."""

    def __init__(self, room: Room, n: int, shared: str, mail: MailServer) -> None:
        self.room, self.n, self.shared, self.mail = room, n, shared, mail
        room.anthropic.reply_with(LETTER)
        (draft,) = room.thread(room.mention("draft update"))
        room.slack.click(
            room.channel.id, ActionId.DRAFT_APPROVE, draft_id(draft), user="U0INCCMDR", ts=draft.ts
        )
        self.draft = draft

    def send(self) -> None:
        room = self.room
        room.slack.click(
            room.channel.id,
            ActionId.DRAFT_SEND,
            draft_id(self.draft),
            user="U0INCCMDR",
            ts=self.draft.ts,
        )

    def reply(self) -> None:
        """The customer answers in the shared channel (Slack sends the app the message)."""
        fake = self.room.fake
        ts = fake.add_message(self.shared, DANA, "Thanks, is EU checkout back for everyone?")
        self.room.slack.event(fake.message_event(self.shared, ts))

    def state(self) -> dict[str, str]:
        room, rt = self.room, self.room.rt
        esc = rt.store.get(room.esc_id)
        mails = [m.shown() for m in self.mail.received if address(self.n) in m.recipients]
        shown: dict[str, Any] = {
            "escalation": esc.model_dump(
                mode="json", exclude={"id", "channel_id", "brief_ts", "letters", "customer"}
            ),
            "letters": sorted(
                (s.route, s.status, s.to, s.by, s.attempts, s.result, s.subject)
                for s in esc.letters
            ),
            "timeline": [(e.kind, e.actor, e.text) for e in rt.store.timeline(esc.id)],
            "decisions": [
                (d["decision"], d.get("by")) for d in rt.desk.memory.records.decisions(esc.id)
            ],
            "outputs": sorted(rt.desk.memory.records.outputs(esc.id)),
            "room": sorted(m.text or "" for m in room.fake.messages_in(room.channel.id)),
            "mails": sorted((m["to"], m["subject"], m["text"]) for m in mails),
            "shared": [m.text for m in room.fake.messages_in(self.shared)],
            "jobs": sorted(j for j in rt.scheduler.job_ids() if esc.id in j),
        }
        masks = [
            (room.channel.id, "<room>"),
            (self.shared, "<shared>"),
            (room.esc_id, "<esc>"),
            (customer(self.n), "<customer>"),
            (customer(self.n).lower(), "<customer>"),
        ]
        out = {}
        for part, content in shown.items():
            text = repr(content)
            for real, mask in masks:
                text = text.replace(real, mask)
            out[part] = TIMES.sub("<time>", text)
        return out


@pytest.fixture
def mail() -> Iterator[MailServer]:
    with MailServer() as server:
        yield server


@pytest.fixture
def sending(
    agent_runtime, fake_slack, fake_anthropic, proxy, clock, memory_dir, mail
) -> Callable[[], Sending]:
    shared = {
        n: fake_slack.add_channel(f"ext-initech{n}", members=["U0VPSUPRT"]) for n in range(ROOMS)
    }
    fake_slack.add_user(DANA, "dana.w", real_name="Dana Whitfield", team_id=CUSTOMER_TEAM)
    for channel in shared.values():
        fake_slack.share_channel(channel, CUSTOMER_TEAM, "Initech")
    entries = [
        {
            "name": customer(n),
            "executive_contact": "Dana Whitfield, CTO",
            "email": address(n),
            "slack_connect": shared[n],
        }
        for n in range(ROOMS)
    ]
    path = memory_dir / "_knowledge" / "semantic" / "customer_insights.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({"customers": entries}))
    rt = agent_runtime(
        redis_url=proxy.url,
        agent_requests_per_minute=1000,
        smtp_url=SecretStr(mail.url()),
        mail_from="support@vendor.example",
        mail_reply_to="escalations@vendor.example",
    )
    # Every case opens a room: Slack's channel limit is not what is tested.
    rt.declaring.pacing = replace(rt.declaring.pacing, creates_per_minute=1000)
    driver = SlackDriver(fake_slack, SIGNING_SECRET, app=rt.app)
    made: list[Sending] = []

    def fresh() -> Sending:
        n = len(made)
        assert n < ROOMS, "more cases than customers with routes"
        clock.set(T0)
        room = Room.__new__(Room)
        room.rt, room.slack, room.fake = rt, driver, fake_slack
        room.anthropic, room.clock = fake_anthropic, clock
        driver.command(f"{customer(n)}: checkout failing for EU users --arr 480k --ic <@U0INCCMDR>")
        room.channel = next(
            c
            for c in fake_slack.channels.values()
            if c.name.startswith("esc-") and c.name.endswith(customer(n).lower())
        )
        room.esc_id = room.channel.name
        made.append(Sending(room, n, shared[n], mail))
        return made[-1]

    return fresh


def differences(expected: dict[str, str], got: dict[str, str]) -> dict[str, tuple[str, str]]:
    return {p: (expected[p], got[p]) for p in expected if expected[p] != got[p]}


# What is done before the action, unfaulted; and the action.
SETUPS: dict[str, Callable[[Sending], None]] = {"reply": Sending.send}
ACTIONS: dict[str, Callable[[Sending], None]] = {"send": Sending.send, "reply": Sending.reply}


def prepared(sending: Callable[[], Sending], action: str) -> Sending:
    run = sending()
    setup = SETUPS.get(action)
    if setup is not None:
        setup(run)
    return run


@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_each_write_whose_answer_is_lost_changes_nothing(action, sending, proxy) -> None:
    clean = prepared(sending, action)
    before = len(proxy.seen)
    ACTIONS[action](clean)
    writes = [name for name, _key in proxy.seen[before:] if name in WRITES]
    expected = clean.state()
    assert writes and "'sent'" in expected["letters"] and expected["shared"] != "[]"
    assert action != "reply" or " replied:" in expected["room"]
    found = {}
    for n, name in enumerate(writes):
        nth = writes[:n].count(name)
        run = prepared(sending, action)
        proxy.drop_after(name, skip=nth)
        ACTIONS[action](run)
        hit = proxy.spent()
        proxy.clear()
        got = run.state()
        if hit and got != expected:
            found[f"{name} #{nth + 1}"] = differences(expected, got)
    assert not found, f"{action} ({len(writes)} writes): " + "\n".join(
        f"{fault}: {parts}" for fault, parts in found.items()
    )


@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_each_slack_answer_lost_after_slack_acted_changes_nothing(
    action, sending, fake_slack
) -> None:
    clean = prepared(sending, action)
    before = len(fake_slack.calls)
    ACTIONS[action](clean)
    calls = [c.method for c in fake_slack.calls[before:]]
    expected = clean.state()
    found = {}
    for n, method in enumerate(calls):
        nth = calls[:n].count(method)
        run = prepared(sending, action)
        fired = len(fake_slack.fired)
        fake_slack.lose_answer_next(method, skip=nth)
        ACTIONS[action](run)
        hit = len(fake_slack.fired) > fired
        fake_slack.clear_faults()
        got = run.state()
        if hit and got != expected:
            found[f"{method} #{nth + 1}"] = differences(expected, got)
    assert not found, f"{action} {calls}: " + "\n".join(
        f"{fault}: {parts}" for fault, parts in found.items()
    )


@pytest.mark.parametrize("key", [":outbox-claim:", ":outbox-id:"])
def test_a_plain_set_of_the_outbox_whose_answer_is_lost_still_sends_once(
    key, sending, proxy
) -> None:
    """The outbox's claim and the Message-ID's binding are plain SETs (NX), not scripts:
    with the answer lost, the claim is read back (ours: it holds our token) and the binding
    sent again (it finds itself). Before, Send failed as an unexpected error and sent nothing."""
    clean = sending()
    clean.send()
    expected = clean.state()
    run = sending()
    proxy.drop_after("SET", key)
    run.send()
    assert proxy.spent()
    proxy.clear()
    assert run.state() == expected

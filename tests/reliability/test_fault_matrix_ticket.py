"""The fault matrix's ticket row: `@vp ticket N` with the loopback Zendesk, with the answer of
each Redis write it makes lost in turn, then the answer of each Slack call lost after Slack
acted. Each case is a room of its own customer (its own Zendesk organisation and ticket);
what it ends with must equal the run without the fault: the ticket linked once, on the
timeline once, the room told once."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from pydantic import SecretStr

from loopback.slack.driver import SlackDriver
from loopback.zendesk import ZendeskLoopback
from tests.conftest import SIGNING_SECRET, T0
from tests.reliability.test_fault_matrix import WRITES, normalised, state
from tests.rooms import Room

pytestmark = pytest.mark.slow


@pytest.fixture
def zendesk() -> Iterator[ZendeskLoopback]:
    with ZendeskLoopback() as zd:
        yield zd


class Linking:
    def __init__(self, room: Room, ticket: int, org: int, person: int) -> None:
        self.room, self.ticket = room, ticket
        # Zendesk's ids differ by room: masked, as the room's own are
        self.ids = [(ticket, "<ticket>"), (org, "<org>"), (person, "<person>")]

    def link(self) -> None:
        self.room.mention(f"ticket {self.ticket}")

    def state(self) -> dict[str, str]:
        esc = self.room.esc
        value = state(self.room)
        value["tickets"] = [(t.read, t.organization, t.priority) for t in esc.tickets]
        shown = normalised(value, self.room)
        for real, mask in self.ids:
            shown = {
                part: re.sub(rf"(?<!\d){real}(?!\d)", mask, text) for part, text in shown.items()
            }
        return shown


@pytest.fixture
def linking(agent_runtime, fake_slack, fake_anthropic, proxy, clock, zendesk) -> Callable[[], Any]:
    rt = agent_runtime(
        redis_url=proxy.url,
        zendesk_url=zendesk.account_url,
        zendesk_api_url=zendesk.url,
        zendesk_email=zendesk.email,
        zendesk_token=SecretStr(zendesk.token),
        zendesk_webhook_secret=SecretStr("zd-webhook-secret-42"),
    )
    driver = SlackDriver(fake_slack, SIGNING_SECRET, app=rt.app)
    made: list[Linking] = []

    def fresh() -> Linking:
        customer = f"Initech{len(made)}"
        clock.set(T0)
        org = zendesk.add_organization(customer)
        dana = zendesk.add_user(
            "Dana Whitfield", f"dana@{customer.lower()}.example", organization_id=org
        )
        room = Room.__new__(Room)
        room.rt, room.slack, room.fake = rt, driver, fake_slack
        room.anthropic, room.clock = fake_anthropic, clock
        driver.command(f"{customer}: TPS reports missing --arr 480k --ic <@U0INCCMDR>")
        room.channel = next(
            c for c in fake_slack.channels.values() if c.name.endswith(customer.lower())
        )
        room.esc_id = room.channel.name
        ticket = zendesk.add_ticket(
            "TPS reports missing",
            dana,
            priority="urgent",
            created_at=clock() + timedelta(minutes=1),
        )
        made.append(Linking(room, ticket, org, dana))
        return made[-1]

    return fresh


def differences(expected: dict[str, str], got: dict[str, str]) -> dict[str, tuple[str, str]]:
    """Each part that differs, from a little before where it starts to differ."""
    found = {}
    for part in expected:
        a, b = expected[part], got[part]
        if a != b:
            at = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), 0)
            found[part] = (a[max(0, at - 80) :], b[max(0, at - 80) :])
    return found


def test_each_write_of_a_ticket_link_whose_answer_is_lost_changes_nothing(linking, proxy) -> None:
    clean = linking()
    before = len(proxy.seen)
    clean.link()
    writes = [name for name, _key in proxy.seen[before:] if name in WRITES]
    expected = clean.state()
    assert writes and "True" in expected["tickets"]
    found = {}
    for n, name in enumerate(writes):
        nth = writes[:n].count(name)
        run = linking()
        proxy.drop_after(name, skip=nth)
        run.link()
        hit = proxy.spent()
        proxy.clear()
        got = run.state()
        if hit and got != expected:
            found[f"{name} #{nth + 1}"] = differences(expected, got)
    assert not found, f"ticket ({len(writes)} writes): " + "\n".join(
        f"{fault}: {parts}" for fault, parts in found.items()
    )


def test_each_slack_answer_of_a_ticket_link_lost_after_slack_acted_changes_nothing(
    linking, fake_slack
) -> None:
    clean = linking()
    before = len(fake_slack.calls)
    clean.link()
    calls = [c.method for c in fake_slack.calls[before:]]
    expected = clean.state()
    found = {}
    for n, method in enumerate(calls):
        nth = calls[:n].count(method)
        run = linking()
        fired = len(fake_slack.fired)
        fake_slack.lose_answer_next(method, skip=nth)
        run.link()
        hit = len(fake_slack.fired) > fired
        fake_slack.clear_faults()
        got = run.state()
        if hit and got != expected:
            found[f"{method} #{nth + 1}"] = differences(expected, got)
    assert not found, f"ticket {calls}: " + "\n".join(
        f"{fault}: {parts}" for fault, parts in found.items()
    )

"""The fault matrix's declaration row: `/escalate` (and its form) with the answer of each
Redis write it makes lost in turn, then with the answer of each Slack method it calls lost
after Slack acted. Each run declares a customer of its own; what it ends with must equal the
run without the fault: one room, one IC, one brief, one exec notice, one pin, the declarer
told once."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from itertools import pairwise
from typing import Any

import pytest

from bot.runtime import Runtime
from loopback.slack import FakeSlack
from loopback.slack.driver import SlackDriver
from tests.conftest import SIGNING_SECRET
from tests.reliability.test_fault_matrix import WRITES
from tests.rooms import wait_until

pytestmark = pytest.mark.slow

DECLARER = "U0DECLARER"
ROTATION = ("U0INCCMDR", "U0OTHERIC")  # the incident commanders, in turn


def rotation_moved_once(runs: list[Declaration]) -> None:
    """Each declaration moved the rotation once: the ICs alternate, run after run (one that
    moved it twice, or not at all, would give the next run the same IC as the last)."""
    ics = [run.ic for run in runs if run.rotated]
    assert all(a != b for a, b in pairwise(ics)), ics


class Declaration:
    """One customer's declaration, and what it ended with."""

    def __init__(self, rt: Runtime, slack: SlackDriver, fake: FakeSlack, customer: str) -> None:
        self.rt, self.slack, self.fake, self.customer = rt, slack, fake, customer
        self.url: str | None = None
        self.rotated = False
        self.ic: str | None = None

    def by_command(self) -> None:
        self.slack.command(f"{self.customer}: TPS reports missing --arr 480k --ic <@U0INCCMDR>")
        self.url = self.slack.last_response_url
        self.settled()

    def by_rotation(self) -> None:
        """No IC named (the rotation's next), and responders by group (security's members)."""
        self.rotated = True
        self.slack.command(
            f"{self.customer}: tenants see each other's rows --criteria security_incident"
        )
        self.url = self.slack.last_response_url
        self.settled()

    def by_form(self) -> None:
        before = set(self.fake.views)
        self.slack.command("")
        (view_id,) = set(self.fake.views) - before
        text = {"type": "plain_text_input"}
        self.slack.submit_view(
            self.fake.views[view_id],
            {
                "customer": {"value": {**text, "value": self.customer}},
                "summary": {"value": {**text, "value": "TPS reports missing"}},
                "arr": {"value": {**text, "value": "480k"}},
                "criteria": {"value": {"type": "checkboxes", "selected_options": []}},
                "ic": {"value": {"type": "users_select", "selected_user": "U0INCCMDR"}},
                "private": {"value": {"type": "checkboxes", "selected_options": []}},
            },
        )
        self.settled()

    def settled(self) -> None:
        """Wait for the build to end (a build that failed is tried again a moment later)."""
        store = self.rt.store
        wait_until(lambda: not store.queued_declarations() and self.done(), 15, "the build to end")

    def done(self) -> bool:
        room = self.rooms()
        return bool(room) and (
            room[0].is_archived or self.rt.store.by_channel(room[0].id) is not None
        )

    def rooms(self) -> list[Any]:
        name = self.customer.lower()
        return [c for c in self.fake.channels.values() if name in c.name]

    def told(self) -> list[str]:
        """What the declarer was told: the command's answers, the app's DM, ephemerals."""
        said = [a["text"] for a in self.fake.responses_to(self.url)] if self.url else []
        ids = {c.id for c in self.rooms()}
        for channel in self.fake.channels.values():
            for m in channel.messages:
                mine = m.ephemeral_for == DECLARER or channel.dm_user == DECLARER
                if mine and (any(i in (m.text or "") for i in ids) or self.customer in m.text):
                    said.append(m.text)
        return said

    def state(self) -> dict[str, str]:
        rooms = self.rooms()
        store = self.rt.store
        shown: dict[str, Any] = {
            "rooms": [
                (
                    c.name,
                    c.is_archived,
                    sorted(c.members),
                    c.topic,
                    len(c.pins),
                    sorted(m.text or "" for m in c.messages if m.ephemeral_for is None),
                )
                for c in rooms
            ],
            "told": self.told(),
        }
        exec_channel = self.fake.channel_by_name("exec-escalations")
        shown["exec"] = [
            m.text
            for m in (exec_channel.messages if exec_channel else [])
            if any(c.id in (m.text or "") for c in rooms) or self.customer in (m.text or "")
        ]
        esc = store.by_channel(rooms[0].id) if rooms else None
        if esc is not None:
            shown["escalation"] = esc.model_dump(
                mode="json", exclude={"id", "channel_id", "brief_ts"}
            )
            shown["timeline"] = [(e.kind, e.actor, e.text) for e in store.timeline(esc.id)]
            shown["jobs"] = sorted(j for j in self.rt.scheduler.job_ids() if esc.id in j)
        masks = [(c.id, "<room>") for c in rooms]
        masks += [(self.customer, "<customer>"), (self.customer.lower(), "<customer>")]
        if self.rotated:
            # The rotation gives each declaration the next IC: which one is checked across
            # the runs (`rotation_moved_once`), not here.
            self.ic = esc.ic if esc is not None else None
            masks += [(ic, "<ic>") for ic in ROTATION]
        out = {}
        for part, content in shown.items():
            text = repr(content)
            for real, mask in masks:
                text = text.replace(real, mask)
            out[part] = text
        return out


HOW: dict[str, Callable[[Declaration], None]] = {
    "command": Declaration.by_command,
    "form": Declaration.by_form,
    "rotation": Declaration.by_rotation,
}


@pytest.fixture
def declaring(agent_runtime, fake_slack, proxy, clock) -> Iterator[Callable[[], Declaration]]:
    rt = agent_runtime(redis_url=proxy.url)
    rt.declaring.pacing = replace(rt.declaring.pacing, retry=0.2, give_up=10.0)
    driver = SlackDriver(fake_slack, SIGNING_SECRET, app=rt.app)
    made: list[Declaration] = []

    def fresh() -> Declaration:
        made.append(Declaration(rt, driver, fake_slack, f"Initech{len(made)}"))
        return made[-1]

    yield fresh


def differences(expected: dict[str, str], got: dict[str, str]) -> dict[str, tuple[str, str]]:
    return {
        p: (expected.get(p, ""), got.get(p, ""))
        for p in expected | got
        if expected.get(p) != got.get(p)
    }


@pytest.mark.parametrize("how", sorted(HOW))
def test_each_write_of_a_declaration_whose_answer_is_lost_changes_nothing(
    how, declaring, proxy
) -> None:
    clean = declaring()
    runs = [clean]
    before = len(proxy.seen)
    HOW[how](clean)
    writes = [name for name, _key in proxy.seen[before:] if name in WRITES]
    expected = clean.state()
    assert writes and "escalation" in expected
    found = {}
    for n, name in enumerate(writes):
        nth = writes[:n].count(name)
        run = declaring()
        runs.append(run)
        proxy.drop_after(name, skip=nth)
        HOW[how](run)
        hit = proxy.spent()
        proxy.clear()
        got = run.state()
        if hit and got != expected:
            found[f"{name} #{nth + 1}"] = differences(expected, got)
    assert not found, f"{how} ({len(writes)} writes): " + "\n".join(
        f"{fault}: {parts}" for fault, parts in found.items()
    )
    rotation_moved_once(runs)


@pytest.mark.parametrize("how", sorted(HOW))
def test_each_slack_answer_of_a_declaration_lost_after_slack_acted_changes_nothing(
    how, declaring, fake_slack
) -> None:
    """Every call the build makes, in turn (the brief, the exec notice and the declarer's
    link are each a chat.postMessage of their own)."""
    clean = declaring()
    runs = [clean]
    before = len(fake_slack.calls)
    HOW[how](clean)
    calls = [c.method for c in fake_slack.calls[before:]]
    expected = clean.state()
    found, missed = {}, []
    for n, method in enumerate(calls):
        nth = calls[:n].count(method)
        run = declaring()
        runs.append(run)
        fired = len(fake_slack.fired)
        fake_slack.lose_answer_next(method, skip=nth)
        HOW[how](run)
        hit = len(fake_slack.fired) > fired
        fake_slack.clear_faults()
        got = run.state()
        if not hit:
            missed.append(f"{method} #{nth + 1}")
        elif got != expected:
            found[f"{method} #{nth + 1}"] = differences(expected, got)
    assert not found, f"{how} {calls}: " + "\n".join(
        f"{fault}: {parts}" for fault, parts in found.items()
    )
    assert not missed, f"{how}: these calls were not made again under the fault: {missed}"
    rotation_moved_once(runs)

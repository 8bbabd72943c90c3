"""Fenced builds: a room's build holds its declaration on a lease renewed while it works, and a
build taken over writes nothing more. Two processes (two runtimes on one Redis and one Slack),
a short lease, and Slack slow or rate-limiting the channel's creation for longer than it."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import replace

import pytest

from bot.runtime import Runtime, build_runtime
from loopback.harness import InlineExecutor
from loopback.slack import FakeSlack
from loopback.slack.driver import SlackDriver
from tests.conftest import SIGNING_SECRET, today
from tests.rooms import wait_until

LEASE = 1.0


@pytest.fixture
def make(settings, clock) -> Iterator[Callable[..., Runtime]]:
    made: list[Runtime] = []

    def runtime(**overrides) -> Runtime:
        values = {"declaration_lease_seconds": LEASE, **overrides}
        rt = build_runtime(
            settings.model_copy(update=values), clock=clock, listener_executor=InlineExecutor()
        )
        # The other process adopts a declaration soon after its lease lapses.
        rt.declaring.pacing = replace(rt.declaring.pacing, adopt_after=0.3, retry=0.5)
        made.append(rt)
        return rt

    yield runtime
    for rt in made:
        rt.close()


class Adopter:
    """The second process: looks for declarations to take over until stopped."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.wait(0.05):
            self.rt.declaring.run_due()

    def __enter__(self) -> Adopter:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


def one_room(fake: FakeSlack, rt: Runtime, told: Callable[[], list[str]]) -> None:
    """One channel, one record, one IC, one exec notice, one link to the declarer."""
    base = f"esc-{today()}-acme"
    rooms = [c for c in fake.channels.values() if c.name.startswith(base)]
    assert [c.name for c in rooms] == [base]
    assert [esc_id for esc_id in rt.store.open_ids()] == [base]
    kinds = [e.kind for e in rt.store.timeline(base)]
    assert kinds.count("ic_assigned") == 1 and kinds.count("war_room_ready") == 1
    exec_channel = fake.channel_by_name("exec-escalations")
    assert len(fake.messages_in(exec_channel.id)) == 1
    links = [t for t in told() if "is ready" in t or "is open" in t]
    assert len(links) == 1 and rooms[0].id in links[0]


def declare(slack: SlackDriver) -> threading.Thread:
    """The declaration, acked and built by the first process, in its own thread (its build
    runs inline after the ack, as lazy work does)."""
    thread = threading.Thread(target=slack.command, args=("Acme: checkout down",), daemon=True)
    thread.start()
    return thread


def test_a_rate_limit_longer_than_the_lease_opens_one_room(make, fake_slack) -> None:
    """Defect: slack-sdk waited out Retry-After inside conversations.create past the lease;
    another process took the declaration and made a room, then the first made `-2`."""
    first, second = make(), make()
    slack = SlackDriver(fake_slack, SIGNING_SECRET, app=first.app)
    fake_slack.rate_limit_next("conversations.create", retry_after=6)
    with Adopter(second):
        declare(slack).join()
        wait_until(lambda: first.store.queued_declarations() == [], what="the room built")
    one_room(fake_slack, first, lambda: told(fake_slack, slack))


def test_a_slow_slack_with_a_live_builder_is_not_taken_over(make, fake_slack) -> None:
    """The lease is renewed while the build waits on Slack: no one takes a live build over."""
    first, second = make(), make()
    slack = SlackDriver(fake_slack, SIGNING_SECRET, app=first.app)
    fake_slack.delay_next("conversations.create", 3 * LEASE)
    with Adopter(second):
        declare(slack).join()
    wait_until(lambda: first.store.queued_declarations() == [], what="the room built")
    one_room(fake_slack, first, lambda: told(fake_slack, slack))


def test_a_stalled_builder_taken_over_writes_nothing_more(make, fake_slack, proxy) -> None:
    """The first process stalls (its Redis answers nothing) while Slack is slow to create its
    channel; the second takes over and opens the room; the first, back, is fenced out: no
    `-2`, no second record, IC, notice or link, and no rollback of the room."""
    first, second = make(redis_url=proxy.url), make()
    slack = SlackDriver(fake_slack, SIGNING_SECRET, app=first.app)
    fake_slack.delay_next("conversations.create", 4 * LEASE)
    building = declare(slack)
    wait_until(lambda: fake_slack.calls_to("conversations.create"), what="the first create")
    proxy.pause(3 * LEASE)  # the first builder's heartbeat cannot renew its lease
    with Adopter(second):
        wait_until(lambda: second.store.open_ids(), what="the room opened by the second")
        building.join()
        wait_until(lambda: second.store.queued_declarations() == [], what="the room built")
    one_room(fake_slack, second, lambda: told(fake_slack, slack))
    assert not any(c.is_archived for c in fake_slack.channels.values())


def told(fake: FakeSlack, slack: SlackDriver) -> list[str]:
    return [r.get("text", "") for r in fake.responses_to(slack.last_response_url)]

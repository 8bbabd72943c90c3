"""Timers across real `warroom run` processes on one Redis, with a scaled clock: reminders
exactly once, a new leader when one dies, late reminders after a restart."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator

import pytest

from loopback.harness import WarroomProcess, warroom_env
from loopback.slack import FakeSlack
from tests.conftest import SCALED_CLOCK_PROCESSES, SIGNING_SECRET

pytestmark = [pytest.mark.slow, SCALED_CLOCK_PROCESSES]


def room(fake: FakeSlack, slug: str):
    """The processes' war room for `slug`, with its brief pinned (None before). They run on
    the wall clock, so the date in its name is whatever today is there, midnight or not."""
    name = re.compile(rf"esc-[0-9]{{8}}-{slug}")
    found = [c for c in fake.channels.values() if name.fullmatch(c.name)]
    return found[0] if found and found[0].pins else None


def shown(message) -> str:
    texts = [b.get("text", {}).get("text", "") for b in message.blocks or [] if "text" in b]
    return "\n".join(texts) or message.text or ""


def posts(fake: FakeSlack, channel_id: str, needle: str) -> list:
    return [m for m in fake.messages_in(channel_id) if needle in shown(m)]


def wait_until(check: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def mention(proc: WarroomProcess, channel: str, text: str, user: str) -> None:
    reply = proc.driver().event(
        {
            "type": "app_mention",
            "user": user,
            "text": f"<@{proc.fake.bot_user_id}> {text}",
            "channel": channel,
            "ts": f"{time.time():.6f}",
        }
    )
    assert reply.status == 200


@pytest.fixture
def cluster(fake_slack, redis_url, prefix, tmp_path, config_file) -> Iterator[Callable]:
    started: list[WarroomProcess] = []

    def start(n: int, scale: float) -> list[WarroomProcess]:
        env = warroom_env(
            fake_slack,
            redis_url,
            prefix,
            tmp_path,
            config_file,
            signing_secret=SIGNING_SECRET,
            WARROOM_CLOCK_SCALE=scale,
            WARROOM_LEASE_SECONDS=2,
            WARROOM_SCHEDULER_POLL=0.2,
        )
        procs = [
            WarroomProcess(env, fake_slack, tmp_path / f"warroom-{len(started) + i}.log")
            for i in range(n)
        ]
        for p in procs:
            p.start()
            started.append(p)
        wait_until(lambda: sum(p.is_leader() for p in procs) == 1, 10, "one leader")
        return procs

    yield start
    for p in started:
        p.stop()


def test_two_processes_post_each_reminder_exactly_once(cluster, fake_slack) -> None:
    # 15 min -> 0.5 s, 1 h -> 2 s, an update every 2 h -> every 4 s
    a, b = cluster(2, 1800)
    assert a.driver().command("Acme: checkout down").status == 200
    wait_until(
        lambda: room(fake_slack, "acme"),
        10,
        "the room",
    )
    channel = room(fake_slack, "acme")
    # done in the other process before its deadline: never reminded
    b.driver().click(channel.id, "step_done", "customer_communication", user="U0INCCMDR")

    wait_until(lambda: posts(fake_slack, channel.id, "🔔"), 8, "the first nudge")
    time.sleep(2)  # mid-interval: without a reset the next nudge would come in 2 s
    mention(b, channel.id, "update rollback started", user="U0INCCMDR")
    updated = time.monotonic()
    nudges = len(posts(fake_slack, channel.id, "🔔"))
    wait_until(lambda: len(posts(fake_slack, channel.id, "🔔")) > nudges, 8, "the next nudge")
    assert time.monotonic() - updated > 3.5  # the update restarted the 4 s clock

    mention(a, channel.id, "resolve rolled back the deploy", user="U0DECLARER")
    nudges = len(posts(fake_slack, channel.id, "🔔"))
    time.sleep(5)  # longer than an interval: a resolved escalation is never nudged again

    assert len(posts(fake_slack, channel.id, "🔔")) == nudges
    overdue = posts(fake_slack, channel.id, "is overdue")
    assert len(overdue) == 1 and "`@vp done assessment`" in shown(overdue[0])
    assert posts(fake_slack, channel.id, "done customer_communication") == []
    texts = [shown(m) for m in posts(fake_slack, channel.id, "🔔")]
    assert len(texts) == len(set(texts)) == 2  # each nudge once


def test_when_the_leader_dies_another_process_carries_on(cluster, fake_slack) -> None:
    procs = cluster(2, 120)  # 15 min -> 7.5 s
    leader = next(p for p in procs if p.is_leader())
    other = next(p for p in procs if p is not leader)
    # declared through the process that does not run the scheduler
    assert other.driver().command("Acme: checkout down").status == 200
    wait_until(
        lambda: room(fake_slack, "acme"),
        10,
        "the room",
    )
    leader.kill()
    # How soon is `bench.timers`' to measure (failover after SIGKILL of the leader).
    wait_until(other.is_leader, 30, "a new leader")
    channel = room(fake_slack, "acme")
    wait_until(lambda: posts(fake_slack, channel.id, "is overdue"), 15, "the reminder")
    time.sleep(1)
    assert len(posts(fake_slack, channel.id, "is overdue")) == 1


def test_a_deadline_missed_while_down_fires_once_late_on_restart(cluster, fake_slack) -> None:
    (proc,) = cluster(1, 120)  # 15 min -> 7.5 s
    assert proc.driver().command("Acme: checkout down").status == 200
    wait_until(
        lambda: room(fake_slack, "acme"),
        10,
        "the room",
    )
    declared = time.monotonic()
    proc.kill()
    time.sleep(
        max(0.0, 9.5 - (time.monotonic() - declared))
    )  # the deadline passes, the lease lapses
    channel = room(fake_slack, "acme")
    assert posts(fake_slack, channel.id, "is overdue") == []

    proc.start()
    # The missed assessment deadline fires once the process is back (how soon after start is
    # bench.timers's to measure); the next deadline, the first customer contact, is 20 s off.
    wait_until(lambda: posts(fake_slack, channel.id, "is overdue"), 15, "the late reminder")
    time.sleep(1)
    (late,) = posts(fake_slack, channel.id, "is overdue")
    assert "Immediate assessment" in shown(late)

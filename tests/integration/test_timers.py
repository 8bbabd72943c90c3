"""Timers in one process: the real scheduler on the real Redis, Slack as the loopback fake,
durations divided by a large WARROOM_CLOCK_SCALE."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from bot.domain.timers import Timer, TimerKind
from bot.runtime import Runtime, build_runtime
from loopback.harness import InlineExecutor
from loopback.slack import FakeSlack
from loopback.slack.driver import SlackDriver
from protocols.loader import load_protocol
from tests.conftest import SIGNING_SECRET


def today() -> str:
    return datetime.now(UTC).strftime("%Y%m%d")


def wait_until(check: Callable[[], object], timeout: float = 15, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or check}")
        time.sleep(0.05)


def shown(message) -> str:
    """What a person sees of a message: its blocks' text, else its text."""
    texts = [b.get("text", {}).get("text", "") for b in message.blocks or [] if "text" in b]
    return "\n".join(texts) or message.text or ""


def posts(fake: FakeSlack, channel_id: str, needle: str) -> list[str]:
    return [shown(m) for m in fake.messages_in(channel_id) if needle in shown(m)]


def escalation_jobs(rt: Runtime) -> set[str]:
    """The jobs of escalations (the weekly digest's job aside)."""
    return {j for j in rt.scheduler.job_ids() if not j.startswith("digest:")}


def mention(driver: SlackDriver, channel: str, text: str, user: str = "U0INCCMDR") -> None:
    driver.event(
        {
            "type": "app_mention",
            "user": user,
            "text": f"<@{driver.fake.bot_user_id}> {text}",
            "channel": channel,
            "ts": f"{time.time():.6f}",
        }
    )


@pytest.fixture
def scaled(settings, fake_slack) -> Iterator[Callable[[float], tuple[Runtime, SlackDriver]]]:
    made: list[Runtime] = []

    def make(scale: float) -> tuple[Runtime, SlackDriver]:
        rt = build_runtime(
            settings.model_copy(
                update={"clock_scale": scale, "lease_seconds": 2, "scheduler_poll": 0.1}
            ),
            listener_executor=InlineExecutor(),
        )
        rt.start()
        made.append(rt)
        wait_until(rt.scheduler.reconciled.is_set, 5, "leadership and the first reconcile")
        return rt, SlackDriver(fake_slack, SIGNING_SECRET, app=rt.app)

    yield make
    for rt in made:
        rt.close()


def test_overdue_steps_are_reminded_once_and_done_steps_never(scaled, fake_slack) -> None:
    # 15 min -> 0.5 s, 1 h -> 2 s; the update nudge (2 h) -> 4 s
    rt, slack = scaled(1800)
    slack.command("Acme: checkout down")
    channel = fake_slack.channel_by_name(f"esc-{today()}-acme")
    wait_until(lambda: posts(fake_slack, channel.id, "is overdue"), 5, "reminder")
    (reminder,) = posts(fake_slack, channel.id, "is overdue")
    assert "*Immediate assessment* is overdue" in reminder
    assert "<@U0INCCMDR>" in reminder and "<@U0VPSUPRT>" not in reminder  # not a VP step yet

    slack.click(channel.id, "step_done", "customer_communication", user="U0INCCMDR")
    time.sleep(2.5)  # past customer_communication's deadline
    assert len(posts(fake_slack, channel.id, "is overdue")) == 1
    esc = rt.store.by_channel(channel.id)
    assert esc.step("assessment").reminded_at is not None
    kinds = [e.kind for e in rt.store.timeline(esc.id)]
    assert kinds.count("reminder") == 1


def test_vp_steps_mention_the_vps(scaled, fake_slack) -> None:
    _, slack = scaled(3600)  # 1 h -> 1 s
    slack.command("Acme: checkout down")
    channel = fake_slack.channel_by_name(f"esc-{today()}-acme")
    overdue = f"*{load_protocol().step('customer_communication').title}* is overdue"
    wait_until(lambda: posts(fake_slack, channel.id, overdue), 5)
    (text,) = posts(fake_slack, channel.id, overdue)
    assert "<@U0VPSUPRT>" in text and "<@U0INCCMDR>" in text


def test_nudges_repeat_until_an_update_resets_the_clock(scaled, fake_slack) -> None:
    rt, slack = scaled(7200)  # 2 h -> 1 s
    slack.command("Acme: checkout down")
    channel = fake_slack.channel_by_name(f"esc-{today()}-acme")
    wait_until(lambda: len(posts(fake_slack, channel.id, "No status update")) >= 2, 5, "2 nudges")
    time.sleep(0.5)  # mid-interval: without a reset the next nudge would come in 0.5 s
    mention(slack, channel.id, "update rollback in progress, next check 14:00")
    n = len(posts(fake_slack, channel.id, "No status update"))
    time.sleep(0.8)  # less than an interval after the update: no nudge
    assert len(posts(fake_slack, channel.id, "No status update")) == n
    wait_until(lambda: len(posts(fake_slack, channel.id, "No status update")) == n + 1, 5)
    esc = rt.store.by_channel(channel.id)
    assert esc.last_update_at is not None
    assert any(e.kind == "update" and "rollback" in e.text for e in rt.store.timeline(esc.id))


def test_resolution_stops_every_timer_and_schedules_follow_ups(scaled, fake_slack) -> None:
    rt, slack = scaled(36000)  # 24 h -> 2.4 s, 48 h -> 4.8 s; 15 min -> 25 ms
    slack.command("Acme: checkout down")
    channel = fake_slack.channel_by_name(f"esc-{today()}-acme")
    mention(slack, channel.id, "resolve bad deploy rolled back", user="U0ENGINE1")
    refusal = posts(fake_slack, channel.id, "only")
    assert refusal and "Nothing was changed" in refusal[0]
    wait_until(lambda: posts(fake_slack, channel.id, "is overdue"), 5)
    mention(slack, channel.id, "resolve bad deploy rolled back", user="U0DECLARER")
    esc = rt.store.by_channel(channel.id)
    assert esc.status == "resolved" and esc.resolution == "bad deploy rolled back"
    assert channel.topic.endswith("· Resolved")
    exec_msgs = [shown(m) for m in fake_slack.messages_in("exec-escalations")]
    assert any("Resolved" in t for t in exec_msgs)
    assert sorted(escalation_jobs(rt)) == [f"{esc.id}:follow_up:0", f"{esc.id}:follow_up:1"]
    reminders = len(posts(fake_slack, channel.id, "is overdue"))
    wait_until(lambda: len(posts(fake_slack, channel.id, "📋 Follow-up")) == 2, 10, "follow-ups")
    first, second = posts(fake_slack, channel.id, "📋 Follow-up")
    assert "Follow-up 1 of 2" in first and "satisfied" in first, first
    assert "Follow-up 2 of 2" in second and "review" in second, second
    assert len(posts(fake_slack, channel.id, "is overdue")) == reminders
    assert posts(fake_slack, channel.id, "No status update") == []
    assert escalation_jobs(rt) == set()
    assert rt.store.following_up_ids() == []


def test_reconcile_restores_exactly_the_jobs_the_state_calls_for(scaled, fake_slack) -> None:
    rt, slack = scaled(1)
    slack.command("Acme: checkout down")
    esc = rt.store.get(f"esc-{today()}-acme")
    expected = escalation_jobs(rt)
    assert expected == {
        f"{esc.id}:deadline:assessment",
        f"{esc.id}:deadline:customer_communication",
        next(j for j in expected if j.startswith(f"{esc.id}:nudge:")),
    }
    rt.scheduler.cancel(f"{esc.id}:deadline:assessment")
    # a job no escalation calls for (due tomorrow, so it does not fire meanwhile)
    stray = Timer(
        "stray:deadline:x", TimerKind.DEADLINE, esc.declared_at + timedelta(days=1), "stray", "x"
    )
    rt.scheduler.schedule(stray)
    assert rt.service.reconcile() == (1, 1)
    assert escalation_jobs(rt) == expected


def test_a_firing_is_posted_once_however_many_processes_try(scaled, fake_slack) -> None:
    rt, slack = scaled(1)
    slack.command("Acme: checkout down")
    esc = rt.store.get(f"esc-{today()}-acme")
    # another process whose attempt is under way (or that died mid-post) holds the claim
    assert rt.store.begin_once(f"deadline:{esc.id}:assessment", ttl=30) == "mine"
    rt.service.fire_deadline(esc.id, "assessment")
    assert posts(fake_slack, esc.channel_id, "is overdue") == []
    retry = rt.scheduler.store.lookup_job(f"{esc.id}:deadline:assessment")
    assert retry is not None  # tried again when that attempt's claim expires
    rt.store.abandon_once(f"deadline:{esc.id}:assessment")

    barrier = threading.Barrier(6)

    def fire() -> None:
        barrier.wait()
        rt.service.fire_deadline(esc.id, "assessment")

    threads = [threading.Thread(target=fire) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(posts(fake_slack, esc.channel_id, "is overdue")) == 1
    rt.service.fire_deadline(esc.id, "assessment")  # a stalled ex-leader, much later
    assert len(posts(fake_slack, esc.channel_id, "is overdue")) == 1


def test_a_failed_post_is_tried_again(scaled, fake_slack) -> None:
    rt, slack = scaled(1)
    slack.command("Acme: checkout down")
    esc = rt.store.get(f"esc-{today()}-acme")
    fake_slack.server_error_next("chat.postMessage", status=503, times=3)  # beyond the retries
    rt.service.fire_deadline(esc.id, "assessment")
    assert posts(fake_slack, esc.channel_id, "is overdue") == []
    assert rt.store.get(esc.id).step("assessment").reminded_at is None
    job = rt.scheduler.store.lookup_job(f"{esc.id}:deadline:assessment")
    assert job is not None and job.next_run_time > datetime.now(UTC)
    rt.service.fire_deadline(esc.id, "assessment")
    assert len(posts(fake_slack, esc.channel_id, "is overdue")) == 1


def test_mentions_answer_in_a_thread_once_and_explain_outside_a_war_room(
    scaled, fake_slack
) -> None:
    _, slack = scaled(1)
    slack.command("Acme: checkout down")
    channel = fake_slack.channel_by_name(f"esc-{today()}-acme")
    event = {
        "type": "app_mention",
        "user": "U0INCCMDR",
        "text": f"<@{fake_slack.bot_user_id}> status",
        "channel": channel.id,
        "ts": "1764000000.000100",
    }
    slack.event(event, event_id="Ev0STATUS")
    slack.event(event, event_id="Ev0STATUS", retry_num=1)
    answers = [m for m in fake_slack.messages_in(channel.id) if "open for" in shown(m)]
    assert len(answers) == 1 and answers[0].thread_ts == "1764000000.000100"
    assert "Next deadline: Immediate assessment" in answers[0].text

    support = fake_slack.channel_by_name("support")
    slack.event({**event, "channel": support.id, "ts": "1764000000.000200"})
    (outside,) = [m.text for m in fake_slack.messages_in(support.id) if m.user == "UBOT"]
    assert "/escalate" in outside


def test_an_archived_room_is_not_retried_forever(scaled, fake_slack) -> None:
    rt, slack = scaled(1)
    slack.command("Acme: checkout down")
    esc = rt.store.get(f"esc-{today()}-acme")
    fake_slack.channels[esc.channel_id].is_archived = True
    rt.service.fire_deadline(esc.id, "assessment")
    assert rt.store.get(esc.id).step("assessment").reminded_at is not None
    assert f"{esc.id}:deadline:assessment" not in rt.scheduler.job_ids()

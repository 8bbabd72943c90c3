"""Timers in one process: the real scheduler's job store on the real Redis, Slack as the
loopback fake, and the runtime's clock moved by hand. `Runtime.run_due` runs what is due at
that clock, as the scheduler's leader would: no sleeps, no wall time."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest

from bot.clock import ManualClock
from bot.domain.timers import Timer, TimerKind
from bot.runtime import Runtime
from loopback.slack import FakeSlack
from loopback.slack.driver import SlackDriver
from protocols.loader import load_protocol
from tests.conftest import today

MIN, HOUR = timedelta(minutes=1), timedelta(hours=1)


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
def rt(runtime: Runtime) -> Runtime:
    return runtime


def later(rt: Runtime, clock: ManualClock, delta: timedelta) -> int:
    """Move the clock on and run what fell due; how many timers fired."""
    clock.advance(delta)
    return rt.run_due()


def test_overdue_steps_are_reminded_once_and_done_steps_never(rt, clock, slack, fake_slack):
    slack.command("Acme: checkout down")
    channel = fake_slack.channel_by_name(f"esc-{today()}-acme")
    later(rt, clock, 14 * MIN)
    assert posts(fake_slack, channel.id, "is overdue") == []  # not yet due
    later(rt, clock, 1 * MIN)
    (reminder,) = posts(fake_slack, channel.id, "is overdue")
    assert "*Immediate assessment* is overdue" in reminder
    assert "<@U0INCCMDR>" in reminder and "<@U0VPSUPRT>" not in reminder  # not a VP step yet

    slack.click(channel.id, "step_done", "customer_communication", user="U0INCCMDR")
    later(rt, clock, 2 * HOUR)  # past customer_communication's deadline, and again
    later(rt, clock, 2 * HOUR)
    assert len(posts(fake_slack, channel.id, "is overdue")) == 1
    esc = rt.store.by_channel(channel.id)
    assert esc.step("assessment").reminded_at == clock() - 4 * HOUR
    kinds = [e.kind for e in rt.store.timeline(esc.id)]
    assert kinds.count("reminder") == 1


def test_vp_steps_mention_the_vps(rt, clock, slack, fake_slack) -> None:
    slack.command("Acme: checkout down")
    channel = fake_slack.channel_by_name(f"esc-{today()}-acme")
    later(rt, clock, HOUR)
    overdue = f"*{load_protocol().step('customer_communication').title}* is overdue"
    (text,) = posts(fake_slack, channel.id, overdue)
    assert "<@U0VPSUPRT>" in text and "<@U0INCCMDR>" in text


def test_nudges_repeat_until_an_update_resets_the_clock(rt, clock, slack, fake_slack) -> None:
    slack.command("Acme: checkout down")
    channel = fake_slack.channel_by_name(f"esc-{today()}-acme")

    def nudges() -> int:
        return len(posts(fake_slack, channel.id, "No status update"))

    later(rt, clock, 2 * HOUR)
    later(rt, clock, 2 * HOUR)
    assert nudges() == 2
    later(rt, clock, 90 * MIN)  # mid-interval: without a reset the next nudge is in 30 min
    mention(slack, channel.id, "update rollback in progress, next check 14:00")
    later(rt, clock, 60 * MIN)  # less than an interval after the update: no nudge
    assert nudges() == 2
    later(rt, clock, 60 * MIN)  # an interval after the update
    assert nudges() == 3
    esc = rt.store.by_channel(channel.id)
    assert esc.last_update_at == clock() - 2 * HOUR
    assert any(e.kind == "update" and "rollback" in e.text for e in rt.store.timeline(esc.id))


def test_a_nudge_missed_while_no_process_ran_fires_once(rt, clock, slack, fake_slack) -> None:
    slack.command("Acme: checkout down")
    channel = fake_slack.channel_by_name(f"esc-{today()}-acme")
    later(rt, clock, 9 * HOUR)  # four intervals passed unattended
    assert len(posts(fake_slack, channel.id, "No status update")) == 1
    nudge = next(t for t in rt.escalations.timers_for(rt.store.by_channel(channel.id)))
    assert nudge.at > clock()  # the next one is ahead, not in the past


def test_resolution_stops_every_timer_and_schedules_follow_ups(rt, clock, slack, fake_slack):
    slack.command("Acme: checkout down")
    channel = fake_slack.channel_by_name(f"esc-{today()}-acme")
    mention(slack, channel.id, "resolve bad deploy rolled back", user="U0ENGINE1")
    (refusal,) = fake_slack.dm_with("U0ENGINE1").messages  # told privately: not in the room
    assert "only" in shown(refusal) and "Nothing was changed" in shown(refusal)
    later(rt, clock, 15 * MIN)
    assert posts(fake_slack, channel.id, "is overdue")
    mention(slack, channel.id, "resolve bad deploy rolled back", user="U0DECLARER")
    esc = rt.store.by_channel(channel.id)
    assert esc.status == "resolved" and esc.resolution == "bad deploy rolled back"
    assert channel.topic.endswith("· Resolved")
    exec_msgs = [shown(m) for m in fake_slack.messages_in("exec-escalations")]
    assert any("Resolved" in t for t in exec_msgs)
    assert sorted(escalation_jobs(rt)) == [f"{esc.id}:follow_up:0", f"{esc.id}:follow_up:1"]
    assert rt.store.following_up_ids() == [esc.id]
    reminders = len(posts(fake_slack, channel.id, "is overdue"))
    later(rt, clock, 24 * HOUR)
    (first,) = posts(fake_slack, channel.id, "📋 Follow-up")
    assert "Follow-up 1 of 2" in first and "satisfied" in first, first
    later(rt, clock, 24 * HOUR)
    first, second = posts(fake_slack, channel.id, "📋 Follow-up")
    assert "Follow-up 2 of 2" in second and "review" in second, second
    assert len(posts(fake_slack, channel.id, "is overdue")) == reminders
    assert posts(fake_slack, channel.id, "No status update") == []
    assert escalation_jobs(rt) == set()
    assert rt.store.following_up_ids() == []


def test_reconcile_restores_exactly_the_jobs_the_state_calls_for(rt, slack) -> None:
    rt.timers.reconcile()  # as a process does when it becomes the leader (the weekly digest)
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
    assert rt.timers.reconcile() == (1, 1)
    assert escalation_jobs(rt) == expected


def test_a_firing_is_posted_once_however_many_processes_try(rt, slack, fake_slack) -> None:
    slack.command("Acme: checkout down")
    esc = rt.store.get(f"esc-{today()}-acme")
    # another process whose attempt is under way (or that died mid-post) holds the claim
    assert rt.store.begin_once(f"deadline:{esc.id}:assessment", ttl=30) == "mine"
    rt.timers.fire_deadline(esc.id, "assessment")
    assert posts(fake_slack, esc.channel_id, "is overdue") == []
    retry = rt.scheduler.store.lookup_job(f"{esc.id}:deadline:assessment")
    assert retry is not None  # tried again when that attempt's claim expires
    rt.store.abandon_once(f"deadline:{esc.id}:assessment")

    barrier = threading.Barrier(6)

    def fire() -> None:
        barrier.wait()
        rt.timers.fire_deadline(esc.id, "assessment")

    threads = [threading.Thread(target=fire) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(posts(fake_slack, esc.channel_id, "is overdue")) == 1
    rt.timers.fire_deadline(esc.id, "assessment")  # a stalled ex-leader, much later
    assert len(posts(fake_slack, esc.channel_id, "is overdue")) == 1


def test_a_failed_post_is_tried_again(rt, clock, slack, fake_slack) -> None:
    slack.command("Acme: checkout down")
    esc = rt.store.get(f"esc-{today()}-acme")
    fake_slack.server_error_next("chat.postMessage", status=503, times=3)  # beyond the retries
    rt.timers.fire_deadline(esc.id, "assessment")
    assert posts(fake_slack, esc.channel_id, "is overdue") == []
    assert rt.store.get(esc.id).step("assessment").reminded_at is None
    job = rt.scheduler.store.lookup_job(f"{esc.id}:deadline:assessment")
    assert job is not None and job.next_run_time > clock()
    later(rt, clock, job.next_run_time - clock())
    assert len(posts(fake_slack, esc.channel_id, "is overdue")) == 1


def test_mentions_answer_in_a_thread_once_and_explain_outside_a_war_room(slack, fake_slack) -> None:
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


def test_an_archived_room_is_not_retried_forever(rt, slack, fake_slack) -> None:
    slack.command("Acme: checkout down")
    esc = rt.store.get(f"esc-{today()}-acme")
    fake_slack.channels[esc.channel_id].is_archived = True
    rt.timers.fire_deadline(esc.id, "assessment")
    assert rt.store.get(esc.id).step("assessment").reminded_at is not None
    assert f"{esc.id}:deadline:assessment" not in rt.scheduler.job_ids()

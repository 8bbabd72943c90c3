"""Faults at the worst moment, with a real Redis behind a proxy that fails exactly one command:
a claim that cannot be made, a write Redis did but whose answer was lost, a pause between two
writes. Each test names the defect it reproduces."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta

import pytest

from bot.runtime import Runtime, build_runtime
from bot.scheduling import Scheduler
from bot.store import Keys
from loopback.harness import InlineExecutor
from loopback.slack.driver import SlackDriver
from tests.conftest import SIGNING_SECRET, today
from tests.rooms import shown


@pytest.fixture
def rt(settings, clock, proxy) -> Iterator[Runtime]:
    runtime = build_runtime(
        settings.model_copy(update={"redis_url": proxy.url}),
        clock=clock,
        listener_executor=InlineExecutor(),
    )
    yield runtime
    runtime.close()


@pytest.fixture
def slack(rt, fake_slack) -> SlackDriver:
    return SlackDriver(fake_slack, SIGNING_SECRET, app=rt.app)


def mention(slack: SlackDriver, channel: str, text: str, **delivery) -> object:
    return slack.event(
        {
            "type": "app_mention",
            "user": "U0INCCMDR",
            "channel": channel,
            "ts": f"{time.time():.6f}",
            "text": f"<@{slack.fake.bot_user_id}> {text}",
        },
        **delivery,
    )


def test_a_retried_event_is_processed_once_when_the_dedup_claim_failed(
    rt, slack, fake_slack, proxy
) -> None:
    """Defect: the dedup claim failed, Bolt answered 500 but still ran the work; Slack's retry
    was processed again."""
    slack.command("Acme: checkout down")
    room = fake_slack.channel_by_name(f"esc-{today()}-acme")
    proxy.drop_before("EVAL", ":event:", times=2)  # the claim and its one retry
    first = mention(slack, room.id, "update rollback started", event_id="Ev0RETRY")
    assert first.status >= 500 and proxy.spent()  # Slack will deliver it again
    again = mention(slack, room.id, "update rollback started", event_id="Ev0RETRY", retry_num=1)
    assert again.status == 200
    esc = rt.store.by_channel(room.id)
    updates = [e for e in rt.store.timeline(esc.id) if e.kind == "update"]
    assert len(updates) == 1


# -- reminders: never lost, never doubled -----------------------------------------------------


def overdue(fake_slack, esc) -> list[str]:
    return [m.text for m in fake_slack.messages_in(esc.channel_id) if "Overdue:" in m.text]


def declared(slack, rt, clock):
    """A room, and the clock at its first deadline."""
    slack.command("Acme: checkout down")
    esc = rt.store.get(f"esc-{today()}-acme")
    clock.set(esc.step("assessment").due_at)
    return esc


def test_a_reminder_whose_escalation_could_not_be_read_fires_later(
    rt, slack, fake_slack, proxy, clock
) -> None:
    """Defect: a Redis blip while the firing read its escalation lost the reminder for good
    (APScheduler had dropped the date job)."""
    esc = declared(slack, rt, clock)
    proxy.drop_before("GET", f":esc:{esc.id}")  # the read (the client does not send it again)
    rt.run_due()
    assert proxy.spent() and overdue(fake_slack, esc) == []
    clock.advance(timedelta(seconds=31))
    rt.run_due()
    assert len(overdue(fake_slack, esc)) == 1
    assert rt.store.get(esc.id).step("assessment").reminded_at is not None


def test_a_reminder_posted_but_not_recorded_is_recorded_and_not_posted_again(
    rt, slack, fake_slack, proxy, clock
) -> None:
    """Defect: the post went out, Redis failed on recording it; the claim lapsed and the next
    reconcile posted the reminder a second time."""
    rt.timers.firing_seconds = 1
    esc = declared(slack, rt, clock)
    proxy.drop_before("SET", f":esc:{esc.id}", times=2)  # recording it, and its one retry
    rt.run_due()
    assert proxy.spent() and len(overdue(fake_slack, esc)) == 1
    assert rt.store.get(esc.id).step("assessment").reminded_at is None
    time.sleep(1.1)  # the firing's claim lapses, as it would after a crash
    rt.timers.reconcile()
    clock.advance(timedelta(minutes=5))
    rt.run_due()
    assert len(overdue(fake_slack, esc)) == 1
    assert rt.store.get(esc.id).step("assessment").reminded_at is not None


def test_a_reminder_whose_answer_was_lost_is_found_not_posted_again(
    rt, slack, fake_slack, clock
) -> None:
    """Defect: Slack posted the reminder and the connection dropped before the answer;
    slack-sdk retried the post blindly and the room got it twice."""
    esc = declared(slack, rt, clock)
    fake_slack.lose_answer_next("chat.postMessage")
    rt.run_due()
    assert len(overdue(fake_slack, esc)) == 1
    assert rt.store.get(esc.id).step("assessment").reminded_at is not None


def test_a_gateway_error_after_posting_is_not_a_second_reminder(
    rt, slack, fake_slack, clock
) -> None:
    """The same with a 502 from a proxy in front of Slack, and Slack unable to say at first
    whether the message is there: the firing waits and looks again, and never posts twice."""
    esc = declared(slack, rt, clock)
    fake_slack.lose_answer_next("chat.postMessage", status=502)
    fake_slack.server_error_next("conversations.history", status=503, times=3)
    rt.run_due()
    assert len(overdue(fake_slack, esc)) == 1  # posted, though the firing could not know
    assert rt.store.get(esc.id).step("assessment").reminded_at is None
    clock.advance(timedelta(seconds=31))
    rt.run_due()
    assert len(overdue(fake_slack, esc)) == 1
    assert rt.store.get(esc.id).step("assessment").reminded_at is not None


def test_redis_lost_between_the_post_and_its_claim_is_not_a_second_reminder(
    rt, slack, fake_slack, proxy, clock
) -> None:
    """The post went out and Redis went away before the claim could say so: whoever tries
    next finds the message by its key."""
    rt.timers.firing_seconds = 1
    esc = declared(slack, rt, clock)
    proxy.drop_before("SET", ":once:", times=2)  # marking it done, and its one retry
    rt.run_due()
    assert proxy.spent() and len(overdue(fake_slack, esc)) == 1
    time.sleep(1.1)
    clock.advance(timedelta(seconds=31))
    rt.run_due()
    assert len(overdue(fake_slack, esc)) == 1
    assert rt.store.get(esc.id).step("assessment").reminded_at is not None


def test_a_reminder_whose_retry_could_not_be_written_is_restored_by_reconcile(
    rt, slack, fake_slack, proxy, clock
) -> None:
    esc = declared(slack, rt, clock)
    job = f"{esc.id}:deadline:assessment"
    proxy.drop_before("GET", f":esc:{esc.id}")
    proxy.drop_before("HSET", "scheduler:jobs")  # the retry cannot be written either
    rt.run_due()
    assert proxy.spent() and job not in rt.scheduler.job_ids()
    rt.timers.reconcile()  # what the leader does every few minutes
    assert job in rt.scheduler.job_ids()
    rt.run_due()
    assert len(overdue(fake_slack, esc)) == 1


def test_the_leader_reconciles_every_few_minutes_not_only_when_it_takes_over(
    redis_client, prefix
) -> None:
    reconciled: list[float] = []
    scheduler = Scheduler(redis_client, Keys(prefix), poll_seconds=0.05, reconcile_seconds=0.2)
    scheduler.start(on_leadership=lambda: reconciled.append(time.monotonic()))
    try:
        deadline = time.monotonic() + 5
        while len(reconciled) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        scheduler.stop()
    assert len(reconciled) >= 3  # on taking over, then again and again while it leads


def test_a_draft_whose_answer_was_lost_is_shown_once(room, fake_anthropic) -> None:
    """Slack posted the draft's first message and the answer was lost: the draft is found by
    its key and streamed into that message, not posted a second time."""
    fake_anthropic.reply_with("Dear Dana,\n\nWe are on it. [-]\n\nVictoria Chen, VP Support")
    room.fake.lose_answer_next("chat.postMessage")
    ts = room.mention("draft update")
    (draft,) = room.thread(ts)
    assert "We are on it." in shown(draft)


def test_a_resolution_notice_whose_answer_was_lost_is_not_sent_twice(rt, slack, fake_slack):
    slack.command("Acme: checkout down")
    esc = rt.store.get(f"esc-{today()}-acme")
    fake_slack.lose_answer_next("chat.postMessage", status=502)
    exec_channel = fake_slack.channel_by_name("exec-escalations")
    before = len(fake_slack.messages_in(exec_channel.id))
    rt.room.resolve(esc.channel_id, "U0INCCMDR", "rolled back")
    notices = fake_slack.messages_in(exec_channel.id)[before:]
    assert len(notices) == 1 and "Resolved" in notices[0].text

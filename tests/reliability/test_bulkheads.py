"""The model has a lane of its own: rooms and clicks never wait behind it, it refuses rather
than queue without bound, one person cannot monopolise it, and a request that waited past its
deadline gets the offline draft instead of a model call nobody waits for.

Real pools here (no inline executor): the defect is threads shared between model calls and
war rooms."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from pydantic import SecretStr

from bot.runtime import Runtime, build_runtime
from loopback.slack.driver import SlackDriver
from tests.conftest import SIGNING_SECRET, today
from tests.rooms import shown, wait_until


@pytest.fixture
def pooled(settings, clock, fake_anthropic) -> Iterator[Callable[..., Runtime]]:
    made: list[Runtime] = []

    def make(**overrides) -> Runtime:
        values = {
            "anthropic_api_key": SecretStr(fake_anthropic.api_key),
            "anthropic_base_url": fake_anthropic.url,
            **overrides,
        }
        rt = build_runtime(settings.model_copy(update=values), clock=clock)
        made.append(rt)
        return rt

    yield make
    for rt in made:
        rt.close()


def ask(slack: SlackDriver, channel: str, text: str, user: str = "U0INCCMDR") -> str:
    ts = f"{time.time():.6f}"
    slack.event(
        {
            "type": "app_mention",
            "user": user,
            "text": f"<@{slack.fake.bot_user_id}> {text}",
            "channel": channel,
            "ts": ts,
        }
    )
    return ts


def room_of(slack: SlackDriver, fake_slack, customer: str, slug: str):
    slack.command(f"{customer}: checkout down")
    wait_until(
        lambda: (c := fake_slack.channel_by_name(f"esc-{today()}-{slug}")) and c.pins,
        10,
        f"the {customer} room",
    )
    return fake_slack.channel_by_name(f"esc-{today()}-{slug}")


def told(fake_slack, channel: str, user: str) -> list[str]:
    return [m.text for m in fake_slack.messages_in(channel) if m.ephemeral_for == user and m.text]


def test_a_room_opens_while_twenty_model_calls_hang(pooled, fake_slack, fake_anthropic) -> None:
    """Defect: declarations, clicks and model calls shared one pool; 16 questions on a slow
    model and a new room waited behind them."""
    rt = pooled(
        model_timeout=8,
        agent_workers=20,
        agent_queue=0,
        agent_requests_per_minute=100,
        workers=16,
    )
    slack = SlackDriver(fake_slack, SIGNING_SECRET, app=rt.app)
    first = room_of(slack, fake_slack, "Initech", "initech")
    for _ in range(20):
        fake_anthropic.hang_next(6)
    for i in range(20):
        ask(slack, first.id, f"question {i}: what do we know?")
    wait_until(lambda: len(fake_anthropic.requests) == 20, 10, "twenty model calls in flight")

    room = room_of(slack, fake_slack, "Acme", "acme")
    assert room.pins and all(not r.finished for r in fake_anthropic.requests)  # still hanging


def test_a_full_lane_says_so_at_once_and_posts_nothing(pooled, fake_slack, fake_anthropic) -> None:
    rt = pooled(model_timeout=5, agent_workers=1, agent_queue=1, agent_requests_per_minute=100)
    slack = SlackDriver(fake_slack, SIGNING_SECRET, app=rt.app)
    room = room_of(slack, fake_slack, "Initech", "initech")
    for _ in range(2):
        fake_anthropic.hang_next(4)
    ask(slack, room.id, "draft update")
    ask(slack, room.id, "draft update")
    wait_until(lambda: len(fake_anthropic.requests) == 1, 10, "one call running, one queued")
    visible = [m for m in fake_slack.messages_in(room.id) if m.ephemeral_for is None]
    ask(slack, room.id, "draft update", user="U0VPSUPRT")
    wait_until(lambda: told(fake_slack, room.id, "U0VPSUPRT"), 10, "the refusal")
    assert "busy" in told(fake_slack, room.id, "U0VPSUPRT")[-1]
    after = [m for m in fake_slack.messages_in(room.id) if m.ephemeral_for is None]
    assert len(after) == len(visible)  # the refused request posted nothing
    assert len(fake_anthropic.requests) == 1
    fake_anthropic.reset()


def test_one_person_cannot_monopolise_the_agent(pooled, fake_slack, fake_anthropic) -> None:
    rt = pooled(agent_requests_per_minute=2)
    slack = SlackDriver(fake_slack, SIGNING_SECRET, app=rt.app)
    room = room_of(slack, fake_slack, "Initech", "initech")
    fake_anthropic.reply_with("One. [-]", "Two. [-]", "Three. [-]")
    for i in range(3):
        ask(slack, room.id, f"question {i}?", user="U0VPSUPRT")
    wait_until(lambda: told(fake_slack, room.id, "U0VPSUPRT"), 10, "the refusal")
    assert "2 times" in told(fake_slack, room.id, "U0VPSUPRT")[-1]
    wait_until(lambda: len(fake_anthropic.requests) == 2, 10, "two answers")
    ask(slack, room.id, "and you?", user="U0INCCMDR")  # someone else is not held back
    wait_until(lambda: len(fake_anthropic.requests) == 3, 10, "the other person's answer")


def test_a_request_that_waited_past_its_deadline_gets_the_offline_draft(
    pooled, fake_slack, fake_anthropic
) -> None:
    """Defect: requests queued behind a slow model still called it, long after the person had
    stopped waiting."""
    rt = pooled(model_timeout=1, agent_workers=1, agent_queue=4, agent_requests_per_minute=100)
    slack = SlackDriver(fake_slack, SIGNING_SECRET, app=rt.app)
    room = room_of(slack, fake_slack, "Initech", "initech")
    fake_anthropic.hang_next(5)
    first = ask(slack, room.id, "draft update")
    second = ask(slack, room.id, "draft update")

    def finished(ts: str) -> list:
        messages = fake_slack.messages_in(room.id)
        return [m for m in messages if m.thread_ts == ts and "Drafted" in shown(m)]

    wait_until(lambda: finished(first) and finished(second), 15, "both drafts")
    # whichever reached the lane first (the two are handled on two threads) waited for the
    # model; the other for the lane
    drafts = sorted(shown(finished(ts)[0]) for ts in (first, second))
    assert sum("within 1 s" in d for d in drafts) == 1
    assert sum("agent was busy" in d for d in drafts) == 1
    assert len(fake_anthropic.requests) == 1  # the late one never reached the model


def ask_as_bot(slack: SlackDriver, channel: str, text: str, bot: str, user: str = "") -> str:
    """A mention from a bot, a workflow or an integration: a bot id, and often no user."""
    ts = f"{time.time():.6f}"
    event = {
        "type": "app_mention",
        "bot_id": bot,
        "bot_profile": {"id": bot, "name": f"{bot.lower()}-workflow"},
        "text": f"<@{slack.fake.bot_user_id}> {text}",
        "channel": channel,
        "ts": ts,
    }
    if user:
        event["user"] = user
    slack.event(event)
    return ts


def posted_in_thread(fake_slack, channel: str, ts: str) -> list[str]:
    return [
        shown(m)
        for m in fake_slack.messages_in(channel)
        if m.thread_ts == ts and m.ephemeral_for is None
    ]


def test_bots_and_workflows_wait_for_the_lane_like_anyone(
    pooled, fake_slack, fake_anthropic
) -> None:
    """Defect: a mention without a user skipped the lane's capacity; twelve of them ran twelve
    model calls against a lane of two, and none was told the agent was busy."""
    rt = pooled(model_timeout=5, agent_workers=1, agent_queue=1, agent_requests_per_minute=100)
    slack = SlackDriver(fake_slack, SIGNING_SECRET, app=rt.app)
    room = room_of(slack, fake_slack, "Initech", "initech")
    for _ in range(2):
        fake_anthropic.hang_next(4)
    asked = [ask_as_bot(slack, room.id, f"question {i}?", f"B0WORKFL{i:02d}") for i in range(12)]

    def refused() -> list[str]:
        return [
            ts
            for ts in asked
            if any("is busy with" in t for t in posted_in_thread(fake_slack, room.id, ts))
        ]

    wait_until(lambda: len(refused()) == 10, 10, "ten bots told the agent is busy")
    # All twelve are decided: the two let in reach the model, and no more ever will.
    wait_until(lambda: len(fake_anthropic.requests) == 2, 10, "two model calls")
    fake_anthropic.reset()


def test_a_bot_is_limited_by_its_bot_id(pooled, fake_slack, fake_anthropic) -> None:
    """Defect: the per-person limit skipped mentions without a user; a workflow could ask the
    model without bound."""
    rt = pooled(agent_requests_per_minute=2)
    slack = SlackDriver(fake_slack, SIGNING_SECRET, app=rt.app)
    room = room_of(slack, fake_slack, "Initech", "initech")
    fake_anthropic.reply_with("One. [-]", "Two. [-]", "Three. [-]")
    ask_as_bot(slack, room.id, "question 1?", "B0WORKFLOW")
    ask_as_bot(slack, room.id, "question 2?", "B0WORKFLOW")
    wait_until(lambda: len(fake_anthropic.requests) == 2, 10, "two answers")
    # The same bot posting as its bot user counts against the same allowance.
    third = ask_as_bot(slack, room.id, "question 3?", "B0WORKFLOW", user="U0WORKFLOW")
    wait_until(lambda: posted_in_thread(fake_slack, room.id, third), 10, "the refusal")
    assert "2 times" in posted_in_thread(fake_slack, room.id, third)[-1]
    ask_as_bot(slack, room.id, "and you?", "B0OTHERBOT")  # another bot is not held back
    wait_until(lambda: len(fake_anthropic.requests) == 3, 10, "the other bot's answer")


def test_the_bot_ignores_its_own_messages(pooled, fake_slack, fake_anthropic) -> None:
    rt = pooled(agent_requests_per_minute=100)
    slack = SlackDriver(fake_slack, SIGNING_SECRET, app=rt.app)
    room = room_of(slack, fake_slack, "Initech", "initech")
    own = [
        ask(slack, room.id, "what do we know?", user=fake_slack.bot_user_id),
        ask_as_bot(slack, room.id, "what do we know?", fake_slack.bot_id),
    ]
    # Someone else's question after them: once it is answered, theirs would have been too.
    ask(slack, room.id, "and now?", user="U0INCCMDR")
    wait_until(lambda: any(r.finished for r in fake_anthropic.requests), 10, "the person's answer")
    assert len(fake_anthropic.requests) == 1
    assert all(not posted_in_thread(fake_slack, room.id, ts) for ts in own)


def test_a_bot_in_a_loop_is_refused_in_its_thread_once_a_minute(room, fake_anthropic) -> None:
    """A bot sees no ephemeral message, so its refusals are posted; a bot caught in a loop
    must not fill the room with them."""
    room.rt.desk.lane.per_person = 2
    asked = [
        ask_as_bot(room.slack, room.channel.id, f"question {i}?", "B0LOOPING") for i in range(10)
    ]
    assert len(fake_anthropic.requests) == 2
    refusals = [
        t
        for ts in asked
        for t in posted_in_thread(room.fake, room.channel.id, ts)
        if "2 times" in t
    ]
    assert len(refusals) == 1

"""/escalate when things go wrong: slow Slack, Slack errors, Redis down, redeliveries."""

from __future__ import annotations

import io
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from bot.runtime import build_runtime
from bot.slack.gateway import SlackGateway, build_client
from bot.wsgi import WarroomWSGI
from loopback.harness import InlineExecutor
from loopback.slack import FakeSlack
from loopback.slack.driver import SlackDriver
from tests.conftest import SIGNING_SECRET, today


def test_acks_never_wait_for_slow_work(settings, clock, fake_slack: FakeSlack) -> None:
    """Seven declarations at once with one worker and a slow Slack: every ack comes back at
    once, long before the rooms (Bolt's default shares a 5-thread pool between acks and
    slow work, so the 6th and 7th acks would wait behind it and miss Slack's 3 s)."""
    # A grace long enough for close() to finish every room (the point here is the acks).
    unhurried = {"workers": 1, "shutdown_grace_seconds": 60}
    runtime = build_runtime(settings.model_copy(update=unhurried), clock=clock)
    driver = SlackDriver(fake_slack, SIGNING_SECRET, app=runtime.app)
    fake_slack.latency = 0.5
    barrier = threading.Barrier(7)
    created_at_ack: list[int] = []

    def declare(i: int) -> str:
        barrier.wait()
        reply = driver.command(f"Customer {i}: down", user="U0DECLARER")
        created_at_ack.append(len(fake_slack.calls_to("conversations.create")))
        return reply.text

    try:
        with ThreadPoolExecutor(7) as pool:
            texts = list(pool.map(declare, range(7)))
        assert all("Opening a war room" in t for t in texts)
        # with one worker, the rooms are made one after another (each >= 1.5 s here): had any
        # ack waited for a room, it would have seen a created channel
        assert max(created_at_ack) <= 1
    finally:
        fake_slack.latency = 0
        runtime.close()
    assert len(fake_slack.calls_to("pins.add")) == 7  # and every room was finished


def test_the_same_delivery_twice_opens_one_room(slack: SlackDriver, fake_slack: FakeSlack) -> None:
    trigger = fake_slack.new_trigger_id()
    first = slack.command("Acme: down", trigger_id=trigger)
    again = slack.command("Acme: down", trigger_id=trigger)
    assert "Opening" in first.text and "already" in again.text
    assert len(fake_slack.calls_to("conversations.create")) == 1


def test_redis_down_means_no_room_and_a_clear_answer(
    settings, clock, fake_slack: FakeSlack
) -> None:
    from loopback.server import free_port

    dead = settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{free_port()}/0"})
    runtime = build_runtime(dead, clock=clock, listener_executor=InlineExecutor())
    try:
        driver = SlackDriver(fake_slack, SIGNING_SECRET, app=runtime.app)
        reply = driver.command("Acme: down")
        assert reply.status == 200
        assert "cannot be reached" in reply.text and "nothing was created" in reply.text
        assert fake_slack.calls_to("conversations.create") == []

        app = WarroomWSGI(runtime)
        statuses: list[str] = []
        body = b"".join(
            app(
                {"PATH_INFO": "/healthz", "REQUEST_METHOD": "GET", "wsgi.input": io.BytesIO()},
                lambda status, headers, *a: statuses.append(status),
            )
        )
        assert statuses == ["503 Service Unavailable"]
        assert json.loads(body) == {"status": "unavailable", "redis": False, "scheduler": "standby"}
    finally:
        runtime.close()


def test_rate_limited_slack_is_waited_out(slack: SlackDriver, fake_slack: FakeSlack) -> None:
    fake_slack.rate_limit_next("conversations.create", retry_after=0)
    fake_slack.rate_limit_next("pins.add", retry_after=0)
    slack.command("Acme: down")
    channel = fake_slack.channel_by_name(f"esc-{today()}-acme")
    assert channel is not None and len(channel.pins) == 1
    assert [c.status for c in fake_slack.calls_to("conversations.create")] == [429, 200]


def test_slack_refusing_the_channel_creates_nothing_and_says_why(
    slack: SlackDriver, fake_slack: FakeSlack, runtime
) -> None:
    fake_slack.fail_next("conversations.create", "restricted_action")
    slack.command("Acme: down")
    (answer,) = fake_slack.responses_to(slack.last_response_url)
    assert "restricted_action" in answer["text"] and "Nothing was created" in answer["text"]
    assert runtime.store.get(f"esc-{today()}-acme") is None
    # the claim was released: trying again works
    slack.command("Acme: down")
    assert fake_slack.channel_by_name(f"esc-{today()}-acme") is not None


def test_slack_server_errors_on_the_channel_are_tried_again_then_the_room_opens(
    slack: SlackDriver, fake_slack: FakeSlack
) -> None:
    """A 5xx may mean Slack made the channel: never repeated blindly (each is followed by a
    look among the app's channels), the declaration is tried again until it opens, once."""
    fake_slack.server_error_next("conversations.create", status=503, times=3)
    slack.command("Acme: down")
    url = slack.last_response_url
    deadline = time.monotonic() + 15
    while not any("is ready" in a["text"] for a in fake_slack.responses_to(url)):
        assert time.monotonic() < deadline, fake_slack.responses_to(url)
        time.sleep(0.05)
    first, last = fake_slack.responses_to(url)
    assert "tried again" in first["text"] and "answer was lost" in first["text"]
    assert "is ready" in last["text"]
    assert [c.status for c in fake_slack.calls_to("conversations.create")] == [503] * 3 + [200]
    assert len(fake_slack.calls_to("users.conversations")) == 3  # a look before each repeat
    rooms = [c for c in fake_slack.channels.values() if c.name.startswith("esc-")]
    assert [r.name for r in rooms] == [f"esc-{today()}-acme"]


def test_an_ic_who_left_is_flagged_in_the_room(slack: SlackDriver, fake_slack: FakeSlack) -> None:
    slack.command("Acme: down --ic <@U0NOSUCH>")
    channel = fake_slack.channel_by_name(f"esc-{today()}-acme")
    assert {"U0DECLARER", "U0VPSUPRT"} <= channel.members  # the others got in
    notes = [m.text for m in channel.messages if "Could not invite" in (m.text or "")]
    assert notes and "<@U0NOSUCH>" in notes[0] and "not in the room" in notes[0]
    (answer,) = fake_slack.responses_to(slack.last_response_url)
    assert "is open, but" in answer["text"] and "invite" in answer["text"]


@pytest.mark.parametrize("code", ["is_archived", "not_in_channel"])
def test_exec_channel_errors_do_not_stop_the_room(
    slack: SlackDriver, fake_slack: FakeSlack, runtime, code: str
) -> None:
    exec_id = fake_slack.channel_by_name("exec-escalations").id
    if code == "is_archived":
        fake_slack.channels[exec_id].is_archived = True
    else:
        fake_slack.channels[exec_id].is_private = True
        fake_slack.channels[exec_id].members.discard(fake_slack.bot_user_id)
    slack.command("Acme: down")
    channel = fake_slack.channel_by_name(f"esc-{today()}-acme")
    assert len(channel.pins) == 1
    (answer,) = fake_slack.responses_to(slack.last_response_url)
    assert "exec-escalations" in answer["text"]


def test_work_on_the_slack_pool_that_fans_out_again_never_waits_on_a_full_pool(
    fake_slack: FakeSlack,
) -> None:
    """Defect: a task on the gateway's pool (the user-group look-ups beside the channel's
    creation) submitted its own calls to the same pool and waited on them: with every worker
    so busy, none is left to run them, and the build hangs for good."""
    fake_slack.add_usergroup("S0LEGALTM", "legal", ["U0ENGINE1"])
    fake_slack.add_usergroup("S0SECURTY", "security", ["U0SECENG1"])
    gateway = SlackGateway(build_client(fake_slack.bot_token, fake_slack.url), threads=1)
    try:
        looked_up = gateway.submit(gateway.usergroup_members, ["S0LEGALTM", "S0SECURTY"])
        members, failed = looked_up.result(timeout=10)  # a hang fails here, not the suite
        assert members == ["U0ENGINE1", "U0SECENG1"] and failed == {}
        nested = gateway.together({"outer": lambda: gateway.together({"inner": lambda: 42})})
        assert nested == {"outer": {"inner": 42}}
    finally:
        gateway.close()

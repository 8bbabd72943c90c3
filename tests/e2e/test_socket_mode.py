"""`warroom run` as a real process in Socket Mode: connected to the fake's Socket Mode
endpoint, it answers /escalate in the ack and opens the war room after it."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import pytest

from loopback.harness import get, signal_another_thread, warroom, warroom_env
from loopback.server import free_port, http_request
from loopback.slack import FakeSlack
from tests.conftest import SIGNING_SECRET

pytestmark = pytest.mark.slow

# Slack wants an envelope acked within 3 seconds.
ACK_DEADLINE = 3.0


@dataclass
class Bot:
    proc: subprocess.Popen[bytes]
    log_path: Path
    port: int

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def bot_env(request: pytest.FixtureRequest) -> dict[str, str]:
    """More environment for the bot: with the parameter "metrics apart", /metrics on a
    listener of its own, behind a token."""
    if getattr(request, "param", None) == "metrics apart":
        return {
            "WARROOM_METRICS_ADDRESS": f"127.0.0.1:{free_port()}",
            "WARROOM_METRICS_TOKEN": "t0k",
        }
    return {}


@pytest.fixture
def bot(fake_slack, redis_url, prefix, tmp_path, config_file, bot_env) -> Iterator[Bot]:
    env = warroom_env(
        fake_slack, redis_url, prefix, tmp_path, config_file, signing_secret=SIGNING_SECRET
    )
    env.update(bot_env)
    env["SLACK_APP_TOKEN"] = fake_slack.app_token
    del env["SLACK_SIGNING_SECRET"]  # not needed in Socket Mode
    port = free_port()
    env["PORT"] = str(port)
    log_path = tmp_path / "warroom.log"
    # A file, not a pipe: nobody reads the output while the test runs, and a full pipe
    # would block the bot mid-log.
    log: IO[bytes] = log_path.open("wb")
    try:
        proc = subprocess.Popen(
            warroom("run"), env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    finally:
        log.close()  # the child has its own copy
    bot = Bot(proc, log_path, port)
    try:
        deadline = time.monotonic() + 30
        while not fake_slack.socket_mode.connected.wait(0.1):
            if proc.poll() is not None:
                pytest.fail(f"warroom run exited ({proc.returncode}):\n{bot.log()}")
            if time.monotonic() > deadline:
                pytest.fail(f"warroom run did not connect in Socket Mode in 30 s:\n{bot.log()}")
        yield bot
    finally:
        stop(proc)


def slash_command(fake: FakeSlack, text: str, *, user: str = "U0DECLARER") -> dict[str, Any]:
    """The payload of a slash_commands envelope: the same fields Slack posts as a form in
    HTTP mode, as a JSON object."""
    channel = fake.channel_by_name("support")
    assert channel is not None
    return {
        "token": "legacy-verification-token",
        "team_id": fake.team_id,
        "team_domain": fake.team_domain,
        "channel_id": channel.id,
        "channel_name": channel.name,
        "user_id": user,
        "user_name": fake.user(user)["name"],
        "command": "/escalate",
        "text": text,
        "api_app_id": fake.app_id,
        "is_enterprise_install": "false",
        "response_url": fake.new_response_url(),
        "trigger_id": fake.new_trigger_id(),
    }


def test_socket_mode_declares_a_war_room(bot: Bot, fake_slack: FakeSlack) -> None:
    sm = fake_slack.socket_mode
    # slack-sdk's websocket-client connection may ask for a second URL while it starts
    opens = fake_slack.calls_to("apps.connections.open")
    assert opens and all(c.status == 200 and c.response["ok"] for c in opens)

    envelope_id = sm.send_envelope(
        "slash_commands", slash_command(fake_slack, "Acme Corp: checkout fails --arr 250k")
    )
    try:
        ack = sm.wait_for_ack(envelope_id, timeout=ACK_DEADLINE)
    except TimeoutError:
        pytest.fail(f"no ack within {ACK_DEADLINE} s:\n{bot.log()}")
    assert "Opening a war room" in ack["text"] and "Acme Corp" in ack["text"]
    assert ack.get("response_type") == "ephemeral"

    name = f"esc-{datetime.now(UTC):%Y%m%d}-acme-corp"
    deadline = time.monotonic() + 10
    while not ((room := fake_slack.channel_by_name(name)) and room.pins):
        assert time.monotonic() < deadline, f"the war room was not completed in 10 s:\n{bot.log()}"
        time.sleep(0.05)

    channels_before = set(fake_slack.channels)
    creates_before = len(fake_slack.calls_to("conversations.create"))
    bad = sm.send_envelope("slash_commands", slash_command(fake_slack, "no colon here"))
    bad_ack = sm.wait_for_ack(bad, timeout=ACK_DEADLINE)
    assert "colon" in bad_ack["text"]
    # Give work after the ack, if any were (wrongly) started, the time to show.
    time.sleep(0.5)
    assert set(fake_slack.channels) == channels_before
    assert len(fake_slack.calls_to("conversations.create")) == creates_before

    # Still one connection: nothing in the bot dropped or replaced it.
    assert [c.id for c in sm.connections()] == [1]
    assert bot.proc.poll() is None, bot.log()


def test_socket_mode_serves_health_and_metrics_but_no_events(bot: Bot) -> None:
    deadline = time.monotonic() + 10
    while True:
        try:
            status, body = get(f"http://127.0.0.1:{bot.port}/healthz")
            break
        except OSError:
            assert time.monotonic() < deadline, bot.log()
            time.sleep(0.1)
    assert status == 200 and b'"redis": true' in body
    assert get(f"http://127.0.0.1:{bot.port}/metrics")[0] == 200
    assert get(f"http://127.0.0.1:{bot.port}/slack/events")[0] == 404


@pytest.mark.parametrize("bot_env", ["metrics apart"], indirect=True)
def test_socket_mode_serves_metrics_on_their_own_address_with_the_token(
    bot: Bot, bot_env: dict[str, str]
) -> None:
    metrics = f"http://{bot_env['WARROOM_METRICS_ADDRESS']}/metrics"
    deadline = time.monotonic() + 10
    while True:
        try:
            status = get(metrics)[0]
            break
        except OSError:
            assert time.monotonic() < deadline, bot.log()
            time.sleep(0.1)
    assert status == 401
    assert http_request(metrics, headers={"Authorization": "Bearer t0k"})[0] == 200
    assert get(f"http://127.0.0.1:{bot.port}/metrics")[0] == 404
    assert get(f"http://127.0.0.1:{bot.port}/healthz")[0] == 200


def test_acks_stay_fast_while_slack_refreshes_the_connection(bot: Bot, fake_slack) -> None:
    sm = fake_slack.socket_mode
    # settled: an envelope goes through first
    first = sm.send_envelope("slash_commands", slash_command(fake_slack, "help"))
    sm.wait_for_ack(first, timeout=ACK_DEADLINE)
    opened = len(sm.connections())
    # Slack recycles connections: it says so, then closes the old link a little later
    sm.disconnect("refresh_requested", close_after=1)
    sm.wait_connected(count=opened + 1, timeout=15)
    envelope_id = sm.send_envelope("slash_commands", slash_command(fake_slack, "help"))
    ack = sm.wait_for_ack(envelope_id, timeout=ACK_DEADLINE)
    assert "Usage" in ack["text"]


def test_sigterm_finishes_accepted_work_and_releases_the_lease(
    bot: Bot, fake_slack: FakeSlack, redis_client, prefix: str
) -> None:
    deadline = time.monotonic() + 10
    while not redis_client.exists(f"{prefix}:scheduler:leader"):
        assert time.monotonic() < deadline, "the bot never led the scheduler"
        time.sleep(0.05)
    fake_slack.latency = 0.3  # the room takes three round trips: ~1 s
    sm = fake_slack.socket_mode
    envelope_id = sm.send_envelope("slash_commands", slash_command(fake_slack, "Acme: down"))
    sm.wait_for_ack(envelope_id, timeout=ACK_DEADLINE)
    bot.proc.send_signal(signal.SIGTERM)
    assert stopped(bot) == 0, bot.log()
    room = fake_slack.channel_by_name(f"esc-{datetime.now(UTC):%Y%m%d}-acme")
    assert room is not None and room.pins, bot.log()  # the accepted work was finished
    assert not redis_client.exists(f"{prefix}:scheduler:leader")


def stopped(bot: Bot) -> int:
    """The exit code of `warroom run`, waited for after a SIGTERM."""
    try:
        return bot.proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        pytest.fail(f"warroom run did not stop within 20 s of SIGTERM:\n{bot.log()}")


def test_a_sigterm_any_thread_receives_stops_the_bot(bot: Bot) -> None:
    """The kernel hands a signal sent to a process to any of its threads. Python runs the
    handler on the main thread, once that thread runs Python code again: one blocked in a wait
    without a timeout never did, and `warroom run` ignored the SIGTERM that landed elsewhere
    (about one in four) until it was killed with the work it had accepted. Here the signal is
    sent to a thread other than the main one, every time."""
    if not signal_another_thread(bot.proc.pid, signal.SIGTERM):
        pytest.skip("no tgkill here, or no thread besides the main one")
    assert stopped(bot) == 0, bot.log()

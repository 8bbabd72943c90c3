"""The front door of `warroom run` at the wire: clients that send headers and then hold the
connection cannot keep Slack's signed requests from being acked."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

import pytest

from loopback.harness import WarroomProcess, warroom_env
from loopback.slack import FakeSlack
from tests.conftest import SIGNING_SECRET

pytestmark = pytest.mark.slow

SLOW_CLIENTS = 40  # more than the threads that answer requests (32)


@pytest.fixture
def bot(fake_slack, redis_url, prefix, tmp_path: Path, config_file) -> Iterator[WarroomProcess]:
    env = warroom_env(
        fake_slack, redis_url, prefix, tmp_path, config_file, signing_secret=SIGNING_SECRET
    )
    process = WarroomProcess(env, fake_slack, tmp_path / "warroom.log").start()
    try:
        yield process
    finally:
        process.stop()


def hold(port: int, length: int, headers: dict[str, str]) -> socket.socket:
    """A connection that sends the headers of a POST to /slack/events, and no body."""
    sock = socket.create_connection(("127.0.0.1", port))
    lines = [
        "POST /slack/events HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        "Content-Type: application/x-www-form-urlencoded",
        f"Content-Length: {length}",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    return sock


def answer(sock: socket.socket) -> int | None:
    """The status a held connection is answered with; None when it is closed unanswered."""
    sock.settimeout(30)  # a liveness bound: the answer is checked, not how soon it came
    data = b""
    while b"\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            return None
        data += chunk
    return int(data.split(b" ", 2)[1])


def declare_and_wait(bot: WarroomProcess, fake: FakeSlack) -> None:
    reply = bot.driver().command("Acme Corp: checkout fails for all EU users --arr 250k")
    assert reply.status == 200 and "Opening a war room" in reply.json()["text"]
    name = f"esc-{datetime.now(UTC):%Y%m%d}-acme-corp"
    deadline = time.monotonic() + 20
    while not (fake.channel_by_name(name) and fake.channel_by_name(name).pins):
        assert time.monotonic() < deadline, "the war room was not completed"
        time.sleep(0.05)


def test_unsigned_clients_holding_big_bodies_do_not_starve_a_signed_declaration(
    bot: WarroomProcess, fake_slack: FakeSlack
) -> None:
    with ExitStack() as stack:
        held = [stack.enter_context(hold(bot.port, 1_000_000, {})) for _ in range(SLOW_CLIENTS)]
        declare_and_wait(bot, fake_slack)
        # Each was refused on its headers: too large to be Slack's, and its body never came.
        assert [answer(sock) for sock in held] == [413] * SLOW_CLIENTS


def test_clients_that_look_signed_but_send_no_body_do_not_starve_a_signed_declaration(
    bot: WarroomProcess, fake_slack: FakeSlack
) -> None:
    looks_signed = {
        "X-Slack-Request-Timestamp": str(int(time.time())),
        "X-Slack-Signature": "v0=" + "0" * 64,
    }
    with ExitStack() as stack:
        held = [
            stack.enter_context(hold(bot.port, 2000, looks_signed)) for _ in range(SLOW_CLIENTS)
        ]
        declare_and_wait(bot, fake_slack)
        # Their bodies never came: each is dropped in the end, and no thread waited on one.
        assert [answer(sock) for sock in held] == [408] * SLOW_CLIENTS


def test_requests_that_cannot_be_slacks_are_refused_before_their_body(
    bot: WarroomProcess,
) -> None:
    forged = "v0=" + "0" * 64
    cannot_be_slacks = {
        "no signature": {},
        "no timestamp": {"X-Slack-Signature": forged},
        "stale": {"X-Slack-Request-Timestamp": "1700000000", "X-Slack-Signature": forged},
        "no number": {"X-Slack-Request-Timestamp": "soon", "X-Slack-Signature": forged},
    }
    for case, headers in cannot_be_slacks.items():
        with hold(bot.port, 2000, headers) as sock:
            assert answer(sock) == 401, case

"""A burst of declarations beyond Slack's channel-creation rate: each declarer is told at
once whether the room is queued, then every room opens — none lost, none doubled."""

from __future__ import annotations

import threading
import time

import pytest

from bot.runtime import build_runtime
from loopback.slack.driver import SlackDriver
from tests.conftest import SIGNING_SECRET

pytestmark = pytest.mark.slow

N = 40
LIMIT, WINDOW = 10, 2.0  # Slack's ~20 per 60 s, shrunk so the test takes seconds


def test_a_burst_beyond_the_rate_limit_queues_and_opens_every_room(settings, fake_slack) -> None:
    fake_slack.set_rate_limit("conversations.create", LIMIT, window=WINDOW)
    rt = build_runtime(
        settings.model_copy(update={"channel_creates_per_minute": LIMIT}), create_window=WINDOW
    )
    drivers = [SlackDriver(fake_slack, SIGNING_SECRET, app=rt.app) for _ in range(N)]
    acks: list[str] = [""] * N
    urls: list[str] = [""] * N
    barrier = threading.Barrier(N)

    def declare(i: int) -> None:
        barrier.wait()
        acks[i] = drivers[i].command(f"Customer {i:02d}: checkout down", user="U0DECLARER").text
        urls[i] = drivers[i].last_response_url

    threads = [threading.Thread(target=declare, args=(i,)) for i in range(N)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        queued = [a for a in acks if "queued" in a]
        assert len(queued) == N - LIMIT and all("opens in about" in a for a in queued)
        assert sum("Opening a war room" in a for a in acks) == LIMIT

        deadline = time.monotonic() + 30
        while len(fake_slack.calls_to("pins.add")) < N:
            assert time.monotonic() < deadline, f"{len(fake_slack.calls_to('pins.add'))} rooms"
            time.sleep(0.1)
        rooms = [c for c in fake_slack.channels.values() if c.name.startswith("esc-")]
        assert len(rooms) == N and len({r.name for r in rooms}) == N  # none lost, none doubled
        # paced: the queue keeps most calls inside Slack's limit; any 429 is waited out
        statuses = [c.status for c in fake_slack.calls_to("conversations.create")]
        assert statuses.count(200) == N and statuses.count(429) < N - LIMIT
        deadline = time.monotonic() + 10
        while not all(
            any("ready" in r.get("text", "") for r in fake_slack.responses_to(u)) for u in urls
        ):
            assert time.monotonic() < deadline, "a declarer was not told the room is ready"
            time.sleep(0.1)
    finally:
        rt.close()

"""War rooms while the model is slow: the time to open a room when the VP agent is idle, and
when 20 model calls hang in flight (the model's lane is a bulkhead; rooms must not wait behind
it). Target: within 1.2x of idle.

Drives `/escalate` and `@vp` questions through the production app and its real thread pools,
against the loopback Slack (with --slack-latency per call, as a real round trip) and the
loopback Messages API (each of the 20 calls hangs), on a real Redis (REDIS_URL, default
127.0.0.1:6379, under a throwaway key prefix).
Run: python -m bench.bulkhead [--rooms 10] [--slack-latency 0.1] [--hung 20]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from bench.common import REDIS_URL, SECRET, drop_prefix, pct, settings_for
from bot.runtime import build_runtime
from loopback.anthropic import FakeAnthropic
from loopback.slack import FakeSlack
from loopback.slack.driver import SlackDriver


def room_times(slack: FakeSlack, driver: SlackDriver, tag: str, rooms: int) -> list[float]:
    """Seconds from each declaration until its brief is pinned (the room is complete)."""
    times = []
    for i in range(rooms):
        name = f"{tag}{i:02d}"
        start = time.monotonic()
        driver.command(f"{name}: checkout down", user="U0DECLARER")
        while True:
            done = [
                c
                for c in slack.calls_to("pins.add")
                if slack.channels[c.args["channel"]].name.endswith(name.lower())
            ]
            if done:
                times.append(time.monotonic() - start)
                break
            if time.monotonic() - start > 30:
                raise RuntimeError(f"room {name} did not open within 30 s")
            time.sleep(0.002)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rooms", type=int, default=10)
    parser.add_argument("--slack-latency", type=float, default=0.1)
    parser.add_argument("--hung", type=int, default=20)
    args = parser.parse_args()
    prefix = f"warroom-bench-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory() as tmp, FakeSlack() as slack, FakeAnthropic() as model:
        slack.add_user("U0DECLARER", "dana")
        settings = settings_for(
            slack,
            REDIS_URL,
            prefix,
            Path(tmp),
            model=model,
            model_timeout=15,
            agent_workers=args.hung,
            agent_requests_per_minute=600,
        )
        rt = build_runtime(settings)  # the production pools
        try:
            driver = SlackDriver(slack, SECRET, app=rt.app)
            slack.latency = args.slack_latency
            idle = room_times(slack, driver, "idle", args.rooms)
            channel = next(c for c in slack.channels.values() if c.name.endswith("idle00"))
            for _ in range(args.hung):
                model.hang_next(120)
            for i in range(args.hung):
                driver.event(
                    {
                        "type": "app_mention",
                        "user": "U0DECLARER",
                        "text": f"<@{slack.bot_user_id}> question {i}: what do we know?",
                        "channel": channel.id,
                        "ts": f"{time.time():.6f}",
                    }
                )
            deadline = time.monotonic() + 30
            while len(model.requests) < args.hung and time.monotonic() < deadline:
                time.sleep(0.01)
            in_flight = sum(not r.finished for r in model.requests)
            busy = room_times(slack, driver, "busy", args.rooms)
            still = sum(not r.finished for r in model.requests)
        finally:
            rt.close()  # the hung calls end at the model's timeout
            drop_prefix(REDIS_URL, prefix)
    ratio = statistics.median(busy) / statistics.median(idle)
    rows = [
        ("Slack latency per call", f"{args.slack_latency * 1000:.0f} ms"),
        ("rooms opened, each", f"{args.rooms} idle + {args.rooms} busy"),
        ("model calls in flight (start / end)", f"{in_flight} / {still}"),
        ("room time idle, p50 / max", f"{pct(idle, 50):.3f} / {max(idle):.3f} s"),
        ("room time busy, p50 / max", f"{pct(busy, 50):.3f} / {max(busy):.3f} s"),
        ("busy / idle (p50), target <= 1.2", f"{ratio:.2f}x"),
    ]
    print(f"| {'measure':<38} | {'value':>22} |")
    print(f"|{'-' * 40}|{'-' * 24}|")
    for name, value in rows:
        print(f"| {name:<38} | {value:>22} |")


if __name__ == "__main__":
    main()

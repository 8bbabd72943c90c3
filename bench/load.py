"""A burst of declarations against Slack's channel-creation limit.

200 declarations arrive within a minute (spread evenly); the loopback Slack refuses more than
20 conversations.create calls per sliding window, as Slack's Tier 2 does per minute. Time is
compressed by --time-scale (default 10: the window is 6 s and the declarations arrive within
6 s), so the whole run takes about a minute instead of ten. Prints acks, queueing, how long
the last room took, 429s seen, and rooms opened vs declared (none lost, none doubled).
Run: python -m bench.load [--n 200] [--time-scale 10]
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
import uuid
from pathlib import Path

from bench.common import REDIS_URL, SECRET, drop_prefix, pct, settings_for
from bot.runtime import build_runtime
from loopback.slack import FakeSlack
from loopback.slack.driver import SlackDriver

LIMIT = 20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--time-scale", type=float, default=10.0)
    args = parser.parse_args()
    window = 60.0 / args.time_scale
    redis_url = REDIS_URL
    prefix = f"warroom-bench-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory() as tmp, FakeSlack() as fake:
        fake.add_user("U0DECLARER", "dana")
        fake.set_rate_limit("conversations.create", LIMIT, window=window)
        settings = settings_for(
            fake,
            redis_url,
            prefix,
            Path(tmp),
            channel_creates_per_minute=LIMIT,
        )
        rt = build_runtime(settings, create_window=window)
        acks: list[float] = []
        queued: list[float] = []
        lock = threading.Lock()
        threads = []
        start = time.monotonic()

        def declare(i: int) -> None:
            driver = SlackDriver(fake, SECRET, app=rt.app)
            t = time.monotonic()
            text = driver.command(f"Customer {i:03d}: checkout down", user="U0DECLARER").text
            with lock:
                acks.append(time.monotonic() - t)
                if "queued" in text:
                    queued.append(float(text.split("opens in about ")[1].split(" s")[0]))

        try:
            for i in range(args.n):  # spread evenly over the (scaled) minute
                target = start + window * i / args.n
                time.sleep(max(0.0, target - time.monotonic()))
                th = threading.Thread(target=declare, args=(i,))
                th.start()
                threads.append(th)
            for th in threads:
                th.join()
            deadline = time.monotonic() + window * (args.n / LIMIT + 3)
            while len(fake.calls_to("pins.add")) < args.n and time.monotonic() < deadline:
                time.sleep(0.1)
            last_room = max(c.finished for c in fake.calls_to("pins.add")) - start
            rooms = [c for c in fake.channels.values() if c.name.startswith("esc-")]
            statuses = [c.status for c in fake.calls_to("conversations.create")]
        finally:
            rt.close()
            drop_prefix(redis_url, prefix)
    ideal = window * (args.n / LIMIT - 1)
    rows = [
        ("declarations (within one scaled minute)", f"{args.n}"),
        ("ack p50 / p99", f"{pct(acks, 50) * 1000:.1f} / {pct(acks, 99) * 1000:.1f} ms"),
        ("told at once that they are queued", f"{len(queued)}"),
        ("longest announced wait (scaled back)", f"{max(queued or [0]) * args.time_scale:.0f} s"),
        ("last room complete after (scaled back)", f"{last_room * args.time_scale:.0f} s"),
        ("fastest possible at 20/min (scaled back)", f"{ideal * args.time_scale:.0f} s"),
        ("rooms opened / distinct", f"{len(rooms)} / {len({r.name for r in rooms})}"),
        ("conversations.create 429s (waited out)", f"{statuses.count(429)}"),
    ]
    print(f"Slack limit {LIMIT} channel creations per minute; time compressed {args.time_scale:g}x")
    print(f"| {'measure':<42} | {'value':>16} |")
    print(f"|{'-' * 44}|{'-' * 18}|")
    for name, value in rows:
        print(f"| {name:<42} | {value:>16} |")


if __name__ == "__main__":
    main()

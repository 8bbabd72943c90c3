"""One App Home refresh with 500 recent viewers and 50 open escalations (10 private).

Declares 50 escalations through the app (10 with --private; 25 viewers are in each private
room), records 500 viewers who opened the tab in the last days, and runs one refresh twice:
as fast as the bot can (Slack's pace lifted) and at Slack's pace, with the loopback Slack
refusing more than 100 views.publish a minute (time compressed by --time-scale, default 10).
Slack calls come from the emulator's record; Redis commands from MONITOR (commands run by the
bot's Lua scripts are not counted twice: a script is one command).
Run: python -m bench.home [--viewers 500] [--open 50] [--private 10] [--time-scale 10]
"""

from __future__ import annotations

import argparse
import collections
import tempfile
import threading
import time
import uuid
from datetime import timedelta
from pathlib import Path

import redis

from bench.common import REDIS_URL, SECRET, drop_prefix, settings_for
from bot.runtime import Runtime, build_runtime
from loopback.harness import InlineExecutor
from loopback.slack import FakeSlack
from loopback.slack.driver import SlackDriver

READS = {"GET", "MGET", "LRANGE", "ZRANGEBYSCORE", "ZREVRANGEBYSCORE", "SMEMBERS", "EXISTS"}


class RedisCommands:
    """Every command the bot sends under `prefix` while in use, by name (Redis MONITOR)."""

    def __init__(self, redis_url: str, prefix: str) -> None:
        self.redis_url, self.prefix = redis_url, prefix
        self.counts: collections.Counter[str] = collections.Counter()
        self._stop = f"bench-stop-{uuid.uuid4().hex}"

    def __enter__(self) -> RedisCommands:
        self._client = redis.Redis.from_url(self.redis_url)
        self._monitor = self._client.monitor()
        self._monitor.__enter__()
        self._thread = threading.Thread(target=self._listen, daemon=True)
        self._thread.start()
        return self

    def _listen(self) -> None:
        while True:
            seen = self._monitor.next_command()
            command = seen["command"]
            if self._stop in command:
                return
            if seen["client_type"] != "lua" and self.prefix in command:
                self.counts[command.split(" ", 1)[0].upper()] += 1

    def __exit__(self, *exc: object) -> None:
        with redis.Redis.from_url(self.redis_url) as client:
            client.echo(self._stop)
        self._thread.join(timeout=30)
        self._monitor.__exit__(None, None, None)
        self._client.close()


def populate(rt: Runtime, fake: FakeSlack, n_open: int, n_private: int, viewers: list[str]) -> None:
    slack = SlackDriver(fake, SECRET, app=rt.app)
    for i in range(n_open):
        private = " --private" if i < n_private else ""
        slack.command(f"Customer {i:02d}: checkout down{private}", user="U0DECLARER")
        if private:
            room = next(c for c in fake.channels.values() if c.name.endswith(f"customer-{i:02d}"))
            for user in viewers[i * 25 : i * 25 + 25]:
                fake.join(room.id, user)
    # the refreshes those declarations started find no viewer yet; let them finish
    deadline = time.monotonic() + 30
    while rt.redis.exists(rt.store.keys.home_refresher) and time.monotonic() < deadline:
        time.sleep(0.1)
    now = rt.clock()
    for i, user in enumerate(viewers):
        rt.store.note_home_viewer(user, now - timedelta(minutes=10 * i))


def refresh(rt: Runtime, fake: FakeSlack, redis_url: str, prefix: str) -> dict[str, object]:
    rt.home._members.clear()  # a cold refresh: no member list known yet
    fake.reset_calls()
    with RedisCommands(redis_url, prefix) as commands:
        start = time.monotonic()
        done = rt.home.refresh_viewers()
        seconds = time.monotonic() - start
    calls = collections.Counter(c.method for c in fake.calls)
    return {
        "seconds": seconds,
        "publish": calls["views.publish"],
        "members": calls["conversations.members"],
        "other": sum(calls.values()) - calls["views.publish"] - calls["conversations.members"],
        "429": sum(1 for c in fake.calls if c.status == 429),
        "reads": sum(n for name, n in commands.counts.items() if name in READS),
        "scripts": commands.counts["EVALSHA"] + commands.counts["EVAL"],
        "commands": sum(commands.counts.values()),
        "loads": done.reads,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--viewers", type=int, default=500)
    parser.add_argument("--open", type=int, default=50)
    parser.add_argument("--private", type=int, default=10)
    parser.add_argument("--time-scale", type=float, default=10.0)
    args = parser.parse_args()
    prefix = f"warroom-bench-{uuid.uuid4().hex[:8]}"
    viewers = [f"U0V{i:05d}" for i in range(args.viewers)]
    with tempfile.TemporaryDirectory() as tmp, FakeSlack() as fake:
        fake.add_user("U0DECLARER", "dana")
        for user in viewers:
            fake.add_user(user, user.lower())
        settings = settings_for(fake, REDIS_URL, prefix, Path(tmp))
        rt = build_runtime(
            settings, listener_executor=InlineExecutor(), create_window=0.01, publish_window=0
        )
        try:
            populate(rt, fake, args.open, args.private, viewers)
            fast = refresh(rt, fake, REDIS_URL, prefix)
            window = 60.0 / args.time_scale
            rt.home.window = window
            fake.set_rate_limit("views.publish", 100, window=window)
            paced = refresh(rt, fake, REDIS_URL, prefix)
        finally:
            rt.close()
            drop_prefix(REDIS_URL, prefix)
    print(
        f"{args.viewers} viewers, {args.open} open escalations ({args.private} private), "
        f"one refresh; Slack's pace compressed {args.time_scale:g}x and scaled back"
    )
    rows = [
        ("views.publish calls", f"{fast['publish']}", f"{paced['publish']}"),
        ("conversations.members calls", f"{fast['members']}", f"{paced['members']}"),
        ("other Slack calls", f"{fast['other']}", f"{paced['other']}"),
        ("views.publish answered 429", f"{fast['429']}", f"{paced['429']}"),
        ("escalation + 30-day history loads", f"{fast['loads']}", f"{paced['loads']}"),
        ("Redis reads (GET, MGET, LRANGE, ...)", f"{fast['reads']}", f"{paced['reads']}"),
        ("Redis scripts (publish turns)", f"{fast['scripts']}", f"{paced['scripts']}"),
        ("Redis commands in all", f"{fast['commands']}", f"{paced['commands']}"),
        (
            "time to the last viewer",
            f"{fast['seconds']:.1f} s",
            f"{paced['seconds'] * args.time_scale:.0f} s",
        ),
    ]
    print(f"| {'per refresh':<38} | {'unpaced':>9} | {'at Slack pace':>13} |")
    print(f"|{'-' * 40}|{'-' * 11}|{'-' * 15}|")
    for name, a, b in rows:
        print(f"| {name:<38} | {a:>9} | {b:>13} |")


if __name__ == "__main__":
    main()

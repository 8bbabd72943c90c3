"""How fast a declaration is acked and how fast its war room is complete.

Drives the production Bolt app in-process with signed `/escalate` requests, against the
loopback Slack fake and a real Redis (REDIS_URL, default 127.0.0.1:6379, under a throwaway key
prefix). Run: python -m bench.declare [--n 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import redis
import yaml

from bot.runtime import build_runtime
from bot.settings import Settings
from tests.fakes.slack_api import FakeSlack
from tests.slack_driver import SlackDriver

SECRET = "bench-secret"
ROOM_METHODS_MINIMUM = 6  # create, invite, brief, topic, exec notice, pin


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def scenario(latency: float, n: int, concurrent: bool, redis_url: str) -> dict[str, float]:
    prefix = f"warroom-bench-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory() as tmp, FakeSlack() as fake:
        for i in range(n):
            fake.add_user(f"U0USER{i:03d}", f"user{i}")
        for uid in ("U0VPSUPRT", "U0INCCMDR", "U0OTHERIC", "U0CSMGR01"):
            fake.add_user(uid, uid.lower())
        fake.add_channel("exec-escalations")
        config = Path(tmp) / "warroom.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "vp": ["U0VPSUPRT"],
                    "incident_commanders": ["U0INCCMDR", "U0OTHERIC"],
                    "exec_channel": "exec-escalations",
                    "responders": {"arr_churn_risk": ["U0CSMGR01"]},
                }
            )
        )
        settings = Settings(
            slack_bot_token=fake.bot_token,
            slack_signing_secret=SECRET,
            slack_api_url=fake.url,
            redis_url=redis_url,
            redis_prefix=prefix,
            config_file=config,
            memory_dir=Path(tmp) / "Agent_Memory",
            workers=max(16, n),
        )
        runtime = build_runtime(settings)
        driver = SlackDriver(fake, SECRET, app=runtime.app)
        fake.latency = latency
        fake.reset_calls()
        sent: dict[str, float] = {}
        acks: list[float] = []

        def declare(i: int) -> None:
            customer = f"Customer {i:03d}"
            start = time.monotonic()
            sent[customer] = start
            reply = driver.command(f"{customer}: checkout fails --arr 250k", user=f"U0USER{i:03d}")
            acks.append(time.monotonic() - start)
            assert reply.status == 200, reply

        try:
            if concurrent:
                with ThreadPoolExecutor(n) as pool:
                    list(pool.map(declare, range(n)))
            else:
                for i in range(n):
                    declare(i)
                    _wait_for_pins(fake, i + 1)
            _wait_for_pins(fake, n)
            room_times = []
            for customer, start in sent.items():
                slug = customer.lower().replace(" ", "-")
                channel = next(c for c in fake.channels.values() if c.name.endswith(slug))
                pin = next(c for c in fake.calls_to("pins.add") if c.args["channel"] == channel.id)
                room_times.append(pin.finished - start)
            calls = [c for c in fake.calls if c.method != "auth.test"]
        finally:
            runtime.close()
            client = redis.Redis.from_url(redis_url)
            keys = list(client.scan_iter(match=f"{prefix}:*"))
            if keys:
                client.delete(*keys)
            client.close()
    return {
        "ack_p50": pct(acks, 50) * 1000,
        "ack_p99": pct(acks, 99) * 1000,
        "calls": len(calls) / n,
        "room_p50": pct(room_times, 50) * 1000,
        "room_p99": pct(room_times, 99) * 1000,
        "room_mean": statistics.mean(room_times) * 1000,
    }


def _wait_for_pins(fake: FakeSlack, count: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while len(fake.calls_to("pins.add")) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {len(fake.calls_to('pins.add'))} of {count} rooms completed")
        time.sleep(0.005)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=20, help="declarations per scenario")
    args = parser.parse_args()
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    rows = []
    for latency in (0.0, 0.1):
        for concurrent in (True, False):
            r = scenario(latency, args.n, concurrent, redis_url)
            rows.append((latency, "concurrent" if concurrent else "one at a time", r))
    print(f"{args.n} declarations per row; Web API minimum per room: {ROOM_METHODS_MINIMUM} calls")
    head = (
        f"| {'Slack latency':>13} | {'arrival':<13} | {'ack p50':>8} | {'ack p99':>8} | "
        f"{'calls/room':>10} | {'room p50':>9} | {'room p99':>9} |"
    )
    print(head)
    print("|" + "|".join("-" * (len(c)) for c in head.split("|")[1:-1]) + "|")
    for latency, mode, r in rows:
        print(
            f"| {latency * 1000:>10.0f} ms | {mode:<13} | {r['ack_p50']:>5.1f} ms | "
            f"{r['ack_p99']:>5.1f} ms | {r['calls']:>10.1f} | {r['room_p50']:>6.0f} ms | "
            f"{r['room_p99']:>6.0f} ms |"
        )


if __name__ == "__main__":
    main()

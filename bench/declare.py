"""How fast a declaration is acked and how fast its war room is complete.

Starts `warroom run` as a subprocess (gunicorn, one worker) and sends it signed `/escalate`
requests over HTTP, as Slack would; Slack is the loopback fake in this process, with an added
latency per Web API call; Redis is real (REDIS_URL, default 127.0.0.1:6379, under a throwaway
key prefix). The ack is timed at the client; a room is complete when its pin is made.
Run: python -m bench.declare [--n 20]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import tempfile
import threading
import time
import urllib.request
import uuid
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

from bench.common import REDIS_URL, SECRET, declaring_workspace, drop_prefix, pct
from loopback.harness import WarroomProcess, warroom_env
from loopback.slack import FakeSlack

ROOM_METHODS_MINIMUM = 6  # create, invite, brief, topic, exec notice, pin


def scenario(latency: float, n: int, concurrent: bool, redis_url: str) -> dict[str, float]:
    """One row: n declarations against a fresh `warroom run` process."""
    prefix = f"warroom-bench-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory() as tmp, FakeSlack() as fake:
        config = declaring_workspace(fake, Path(tmp), n)
        env = warroom_env(
            fake,
            redis_url,
            prefix,
            Path(tmp),
            config,
            signing_secret=SECRET,
            WARROOM_LOG_LEVEL="WARNING",
        )
        process = WarroomProcess(env, fake, Path(tmp) / "warroom.log")
        driver = process.driver()
        url = f"{process.base}/slack/events"
        try:
            process.start()
            fake.latency = latency
            fake.reset_calls()
            requests = []
            for i in range(n):
                request = driver.requests.slash_command(
                    command="/escalate",
                    text=f"Customer {i:03d}: checkout fails --arr 250k",
                    user_id=f"U0USER{i:03d}",
                    user_name=f"user{i}",
                    channel_id="C0SUPPORT",
                    channel_name="support",
                    response_url=fake.new_response_url(),
                    trigger_id=fake.new_trigger_id(),
                )
                requests.append((f"Customer {i:03d}", request.body, request.headers(SECRET)))
            # The client runs in a process of its own, so the fake's threads in this one
            # cannot delay the acks it times.
            with ProcessPoolExecutor(1, mp_context=mp.get_context("spawn")) as client:
                if concurrent:
                    timed = client.submit(send_all, url, requests).result()
                else:
                    timed = []
                    for i, request in enumerate(requests):
                        timed += client.submit(send_all, url, [request]).result()
                        _wait_for_pins(fake, i + 1)
            sent = {customer: start for customer, start, _ in timed}
            acks = [ack for _, _, ack in timed]
            _wait_for_pins(fake, n)
            room_times = []
            for customer, start in sent.items():
                slug = customer.lower().replace(" ", "-")
                channel = next(c for c in fake.channels.values() if c.name.endswith(slug))
                pin = next(c for c in fake.calls_to("pins.add") if c.args["channel"] == channel.id)
                room_times.append(pin.finished - start)
            calls = [c for c in fake.calls if c.method != "auth.test"]
        finally:
            process.stop()
            drop_prefix(redis_url, prefix)
    return {
        "ack_p50": pct(acks, 50) * 1000,
        "ack_p99": pct(acks, 99) * 1000,
        "calls": len(calls) / n,
        "room_p50": pct(room_times, 50) * 1000,
        "room_p99": pct(room_times, 99) * 1000,
        "room_mean": statistics.mean(room_times) * 1000,
    }


def send_all(url: str, requests: list[tuple[str, str, dict]]) -> list[tuple[str, float, float]]:
    """POST every request at once; (customer, start, ack seconds) for each."""
    barrier = threading.Barrier(len(requests))

    def one(request: tuple[str, str, dict]) -> tuple[str, float, float]:
        customer, body, headers = request
        req = urllib.request.Request(url, data=body.encode(), headers=headers, method="POST")
        barrier.wait()
        start = time.monotonic()
        with urllib.request.urlopen(req, timeout=10) as r:
            r.read()
            assert r.status == 200
        return customer, start, time.monotonic() - start

    with ThreadPoolExecutor(len(requests)) as pool:
        return list(pool.map(one, requests))


def _wait_for_pins(fake: FakeSlack, count: int, timeout: float = 60) -> None:
    """Until `count` pins have been answered (a call is recorded when it arrives)."""
    deadline = time.monotonic() + timeout
    while sum(1 for c in fake.calls_to("pins.add") if c.finished) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {len(fake.calls_to('pins.add'))} of {count} rooms completed")
        time.sleep(0.005)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=20, help="declarations per scenario")
    args = parser.parse_args()
    redis_url = REDIS_URL
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

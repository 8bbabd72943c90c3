"""Whether slow clients can hold the front door shut: the acks of signed declarations while
connections that sent only headers hang on.

Starts `warroom run` as a subprocess (one worker) on the loopback Slack and real Redis
(REDIS_URL, under a throwaway key prefix). Each row opens `--slow` connections that send the
headers of `POST /slack/events` and then nothing, and while they hang sends `--n` signed
`/escalate` at once from a process of its own, timing each ack at the client. An ack not
received within 10 s counts as lost (Slack gives up after 3).
The last row's clients never finish their headers: they trickle a byte every half second.
Run: python -m bench.frontdoor [--slow 40] [--n 20]
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing as mp
import socket
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

from bench.common import REDIS_URL, SECRET, declaring_workspace, drop_prefix, pct
from loopback.harness import WarroomProcess, warroom_env
from loopback.slack import FakeSlack

FORGED = "v0=" + "0" * 64
SLACK_ACK_LIMIT = 3.0

# What the slow clients send before they fall silent: (row label, Content-Length, headers);
# headers TRICKLED: the request line and a header, then a byte every half second, never the
# end of the headers (slowloris).
TRICKLED = {"trickled": "1"}
SLOW_KINDS: list[tuple[str, int, dict[str, str] | None]] = [
    ("none", 0, None),
    ("unsigned, 1 MB declared", 1_000_000, {}),
    ("fresh-looking signature, 2 KB declared", 2000, {"X-Slack-Signature": FORGED}),
    ("headers trickled (slowloris)", 1_000_000, TRICKLED),
]


def hold(port: int, length: int, headers: dict[str, str]) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    if headers is TRICKLED:
        sock.sendall(f"POST /slack/events HTTP/1.1\r\nContent-Length: {length}\r\n".encode())
        return sock
    if "X-Slack-Signature" in headers:
        headers = {**headers, "X-Slack-Request-Timestamp": str(int(time.time()))}
    lines = [
        "POST /slack/events HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        "Content-Type: application/x-www-form-urlencoded",
        f"Content-Length: {length}",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    return sock


def scenario(slow: int, n: int, kind: tuple[str, int, dict[str, str] | None]) -> list[float | None]:
    """The ack time of each of `n` declarations (None: lost) while `slow` clients hang."""
    _, length, headers = kind
    prefix = f"warroom-bench-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory() as tmp, FakeSlack() as fake:
        config = declaring_workspace(fake, Path(tmp), n)
        env = warroom_env(
            fake, REDIS_URL, prefix, Path(tmp), config, signing_secret=SECRET,
            WARROOM_LOG_LEVEL="WARNING",
        )  # fmt: skip
        process = WarroomProcess(env, fake, Path(tmp) / "warroom.log")
        driver = process.driver()
        try:
            process.start()
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
                requests.append((request.body, request.headers(SECRET)))
            with (
                ExitStack() as stack,
                ProcessPoolExecutor(1, mp_context=mp.get_context("spawn")) as client,
            ):
                socks = []
                if headers is not None:
                    for _ in range(slow):
                        socks.append(stack.enter_context(hold(process.port, length, headers)))
                stop = threading.Event()
                if headers is TRICKLED:
                    threading.Thread(target=trickle, args=(socks, stop), daemon=True).start()
                try:
                    url = f"{process.base}/slack/events"
                    return client.submit(send_all, url, requests).result()
                finally:
                    stop.set()
        finally:
            process.stop()
            drop_prefix(REDIS_URL, prefix)


def trickle(socks: list[socket.socket], stop: threading.Event) -> None:
    """One more byte of headers on each connection every half second, until `stop`."""
    while not stop.wait(0.5):
        for sock in socks:
            # Closed by the server (its headers were too slow): nothing more to send.
            with contextlib.suppress(OSError):
                sock.sendall(b"X")


def send_all(url: str, requests: list[tuple[str, dict]]) -> list[float | None]:
    """POST every request at once; the ack seconds of each, None when none came in 10 s."""
    barrier = threading.Barrier(len(requests))

    def one(request: tuple[str, dict]) -> float | None:
        body, headers = request
        req = urllib.request.Request(url, data=body.encode(), headers=headers, method="POST")
        barrier.wait()
        start = time.monotonic()
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                r.read()
                if r.status != 200:
                    return None
        except (OSError, urllib.error.URLError):
            return None
        return time.monotonic() - start

    with ThreadPoolExecutor(len(requests)) as pool:
        return list(pool.map(one, requests))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--slow", type=int, default=40, help="slow clients per row")
    parser.add_argument("--n", type=int, default=20, help="signed declarations per row")
    args = parser.parse_args()
    print(
        f"{args.n} signed /escalate at once while {args.slow} connections hang after their "
        "headers (none: baseline)"
    )
    head = (
        f"| {'slow clients send':<40} | {'acked':>7} | {'ack p50':>8} | {'ack p99':>8} | "
        f"{'within 3 s':>10} |"
    )
    print(head)
    print("|" + "|".join("-" * len(c) for c in head.split("|")[1:-1]) + "|")
    for kind in SLOW_KINDS:
        acks = scenario(args.slow, args.n, kind)
        got = [a for a in acks if a is not None]
        within = sum(1 for a in got if a <= SLACK_ACK_LIMIT)
        p50 = f"{pct(got, 50) * 1000:>5.0f} ms" if got else "       -"
        # A lost ack is slower than any that came: p99 is known only when all came.
        p99 = f"{pct(got, 99) * 1000:>5.0f} ms" if len(got) == len(acks) else "    lost"
        print(
            f"| {kind[0]:<40} | {len(got):>3}/{len(acks):<3} | {p50:>8} | {p99:>8} | "
            f"{within:>7}/{len(acks):<2} |"
        )


if __name__ == "__main__":
    main()

"""The front door (bot/asgi.py) in process: what it refuses on the headers alone, before any
body is read; what it refuses while reading; and what it lets through to Bolt."""

from __future__ import annotations

import asyncio
import contextlib
import resource
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from bot.asgi import FrontDoor
from bot.runtime import Runtime
from bot.wsgi import WarroomWSGI
from loopback.harness import _children
from loopback.slack.client import FORM, signed_headers
from tests.conftest import SIGNING_SECRET
from tests.processes import start_warroom

BODY = (
    "command=%2Fescalate&text=help&user_id=U0DECLARER&team_id=T0TEAM"
    "&trigger_id=t1&response_url=http%3A%2F%2F127.0.0.1%3A1%2Fr"
)


def scope(headers: dict[str, str], path: str = "/slack/events") -> dict[str, Any]:
    return {
        "type": "http",
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "root_path": "",
        "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "server": ("127.0.0.1", 3000),
        "client": ("127.0.0.1", 50000),
    }


def call(door: FrontDoor, headers: dict[str, str], receive: Any) -> tuple[int, bytes]:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(door(scope(headers), receive, send))
    (start,) = [m for m in sent if m["type"] == "http.response.start"]
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], body


async def never_read() -> dict[str, Any]:
    raise AssertionError("the body was read")


def body_of(data: bytes, *, chunks: int = 1) -> Any:
    size = -(-len(data) // chunks)
    messages = [
        {"type": "http.request", "body": data[i : i + size], "more_body": True}
        for i in range(0, len(data), size)
    ]
    messages[-1]["more_body"] = False

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    return receive


@pytest.fixture
def door(runtime: Runtime) -> FrontDoor:
    return FrontDoor(WarroomWSGI(runtime), threads=2)


FORGED = "v0=" + "0" * 64


def signed() -> dict[str, str]:
    """Headers signed now (a module-level constant would go stale in a long run)."""
    return signed_headers(SIGNING_SECRET, BODY, content_type=FORM)


def stamped(offset: int, signature: str = FORGED) -> dict[str, str]:
    return {
        "x-slack-request-timestamp": str(int(time.time()) + offset),
        "x-slack-signature": signature,
    }


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        (lambda: {"content-type": FORM}, 401),
        (lambda: {"x-slack-signature": FORGED}, 401),
        (lambda: {"x-slack-request-timestamp": str(int(time.time()))}, 401),
        (lambda: stamped(-400), 401),
        (lambda: stamped(+400), 401),
        (lambda: {"x-slack-request-timestamp": "-5", "x-slack-signature": FORGED}, 401),
        (lambda: stamped(0, signature="sha1"), 401),
        (lambda: {**signed(), "content-length": "1000000"}, 413),
        (lambda: {**signed(), "content-length": "1e3"}, 400),
    ],
    ids=[
        "nothing",
        "no timestamp",
        "no signature",
        "stale",
        "ahead",
        "negative",
        "not v0",
        "too large",
        "length not a number",
    ],
)
def test_refused_on_the_headers_without_reading_the_body(
    door: FrontDoor, headers: Callable[[], dict[str, str]], status: int
) -> None:
    assert call(door, headers(), never_read)[0] == status


def test_a_body_larger_than_the_cap_without_a_length_is_refused(runtime: Runtime) -> None:
    door = FrontDoor(WarroomWSGI(runtime), threads=2, max_body=1000)
    status, _ = call(door, signed(), body_of(b"x" * 4000, chunks=8))
    assert status == 413


def test_a_body_that_does_not_come_is_dropped(runtime: Runtime) -> None:
    door = FrontDoor(WarroomWSGI(runtime), threads=2, body_timeout=0.05)

    async def hang() -> dict[str, Any]:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    assert call(door, signed(), hang)[0] == 408
    text = runtime.metrics.render().decode()
    assert 'warroom_http_requests_total{path="/slack/events",status="408"} 1.0' in text


def test_a_signed_request_in_pieces_reaches_bolt(door: FrontDoor) -> None:
    status, body = call(door, signed(), body_of(BODY.encode(), chunks=5))
    assert status == 200 and b"escalate" in body


def test_a_forged_signature_with_good_headers_is_refused_by_bolt(door: FrontDoor) -> None:
    headers = {**signed(), "x-slack-signature": FORGED}
    assert call(door, headers, body_of(BODY.encode()))[0] == 401


# -- the connections, on a real `warroom run` --------------------------------------------------


def trickle(port: int, stop: threading.Event) -> socket.socket:
    """A slowloris client: the request line and a few headers, then one byte every so often,
    never the blank line that ends them."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(b"POST /slack/events HTTP/1.1\r\nHost: warroom\r\nContent-Length: 1000000\r\n")
    return sock


def keep_trickling(socks: list[socket.socket], stop: threading.Event) -> None:
    while not stop.wait(0.5):
        for sock in socks:
            with contextlib.suppress(OSError):
                sock.sendall(b"X")


@pytest.fixture
def door_process(fake_slack, redis_url, prefix, tmp_path, config_file) -> Iterator[Any]:
    process = start_warroom(
        fake_slack,
        redis_url,
        prefix,
        tmp_path,
        config_file,
        WARROOM_MAX_CONNECTIONS=100,
        WARROOM_HEADER_TIMEOUT_SECONDS=2,
    )
    yield process
    process.stop()


def test_slow_header_clients_cannot_hold_the_door_shut(door_process) -> None:
    """Defect: a client that trickles its headers held its connection for as long as it
    liked; enough of them used up the worker's file descriptors (here 256), and signed
    `/escalate` requests were never acked. Now the one that waited longest for its headers
    is closed when the cap is reached."""
    (worker,) = _children(door_process.proc.pid)
    resource.prlimit(worker, resource.RLIMIT_NOFILE, (256, 256))
    stop = threading.Event()
    socks = [trickle(door_process.port, stop) for _ in range(300)]
    trickler = threading.Thread(target=keep_trickling, args=(socks, stop), daemon=True)
    trickler.start()
    try:
        driver = door_process.driver()
        replies = [driver.command(f"Customer{i}: checkout fails") for i in range(5)]
    finally:
        stop.set()
        trickler.join()
        for sock in socks:
            sock.close()
    assert [r.status for r in replies] == [200] * 5


def test_a_connection_whose_headers_do_not_come_is_closed(door_process) -> None:
    sock = trickle(door_process.port, threading.Event())
    sock.settimeout(30)  # far past the 2 s the door gives the headers
    with sock:
        assert sock.recv(1024) == b""  # closed by the server

"""The sandbox serves only its own page: requests another web page could make (a foreign
Host after DNS rebinding, a foreign Origin, a form or text body no page needs permission to
send) are refused before they reach the workspace or the bot, over real HTTP."""

from __future__ import annotations

import http.client
import json
from typing import Any
from urllib.parse import urlsplit

import pytest

from bot.sandbox import workspace
from bot.sandbox.interactions import Interactions
from bot.sandbox.web import WorkspacePage
from loopback.slack import SlackEmulator

DANA = workspace.SUPPORT_LEAD
DECLARE = {"as": DANA, "channel": "support", "text": "/escalate Acme Corp: checkout fails"}


def request(
    emulator: SlackEmulator,
    method: str,
    path: str,
    headers: dict[str, str],
    body: bytes | None = None,
) -> tuple[int, Any]:
    """Send exactly these headers (Host included) to the sandbox's server."""
    port = urlsplit(emulator.root).port
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        for name, value in headers.items():
            conn.putheader(name, value)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        response = conn.getresponse()
        data = response.read()
    finally:
        conn.close()
    try:
        return response.status, json.loads(data)
    except ValueError:
        return response.status, data


def own(emulator: SlackEmulator) -> str:
    return urlsplit(emulator.root).netloc  # 127.0.0.1:<port>


def nothing_happened(emulator: SlackEmulator, acts: Interactions, version: int) -> None:
    assert not [c for c in emulator.calls if c.method == "conversations.create"]
    assert not acts.deliveries  # the bot was never called
    assert emulator.version == version  # nothing anyone sees changed


def test_a_foreign_page_cannot_open_a_room(
    emulator: SlackEmulator, page: WorkspacePage, acts: Interactions
) -> None:
    # What the issue saw: a page at evil.example, its host renamed to 127.0.0.1, posting
    # text (a "simple" request the browser sends without asking first).
    version = emulator.version
    status, answer = request(
        emulator,
        "POST",
        "/ui/send",
        {
            "Host": "evil.example",
            "Origin": "http://evil.example",
            "Content-Type": "text/plain",
        },
        json.dumps(DECLARE).encode(),
    )
    assert status == 403 and answer["ok"] is False
    nothing_happened(emulator, acts, version)


@pytest.mark.parametrize(
    "headers",
    [
        # DNS rebinding: the browser thinks it talks to evil.example, so says so.
        {"Host": "evil.example:3100", "Content-Type": "application/json"},
        {"Content-Type": "application/json"},  # no Host at all
        # Another page, same machine: the browser names the page it comes from.
        {"Origin": "http://evil.example", "Content-Type": "application/json"},
        {"Origin": "null", "Content-Type": "application/json"},
        {"Origin": "http://127.0.0.1:1", "Content-Type": "application/json"},
        # A form or a text body: no preflight, so any page can send one.
        {"Content-Type": "application/x-www-form-urlencoded"},
        {"Content-Type": "text/plain"},
        {"Content-Type": "multipart/form-data; boundary=x"},
        {},
    ],
    ids=[
        "foreign-host",
        "no-host",
        "foreign-origin",
        "null-origin",
        "other-port-origin",
        "form",
        "text",
        "multipart",
        "no-content-type",
    ],
)
def test_each_sign_of_another_page_is_refused(
    emulator: SlackEmulator, page: WorkspacePage, acts: Interactions, headers: dict[str, str]
) -> None:
    if "Host" not in headers and headers != {"Content-Type": "application/json"}:
        headers = {"Host": own(emulator), **headers}
    version = emulator.version
    status, answer = request(emulator, "POST", "/ui/send", headers, json.dumps(DECLARE).encode())
    assert status == 403, answer
    nothing_happened(emulator, acts, version)


def test_a_rebound_page_cannot_read_the_workspace(
    emulator: SlackEmulator, page: WorkspacePage
) -> None:
    for path in (f"/ui/state?as={DANA}", "/", "/static/app.js"):
        status, _ = request(emulator, "GET", path, {"Host": "evil.example"})
        assert status == 403, path
        origin = {"Host": own(emulator), "Origin": "http://evil.example"}
        assert request(emulator, "GET", path, origin)[0] == 403, path


def test_the_own_page_is_served_by_either_name(
    emulator: SlackEmulator, page: WorkspacePage, acts: Interactions
) -> None:
    port = urlsplit(emulator.root).port
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"LOCALHOST:{port}"):
        status, state = request(emulator, "GET", f"/ui/state?as={DANA}", {"Host": host})
        assert status == 200 and state["me"] == DANA
    status, answer = request(
        emulator,
        "POST",
        "/ui/send",
        {
            "Host": f"localhost:{port}",
            "Origin": f"http://localhost:{port}",
            "Content-Type": "application/json; charset=utf-8",
        },
        json.dumps(DECLARE).encode(),
    )
    assert status == 200 and answer["ok"], answer
    assert [c.method for c in emulator.calls].count("conversations.create") == 1

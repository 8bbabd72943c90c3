"""Tests for loopback/socket_mode.py and FakeSlack's apps.connections.open.

The protocol is driven by the real ``slack_sdk.socket_mode.SocketModeClient``, so what
passes here is what the bot will see; what the SDK never does on purpose (reuse a URL,
close first, stay after a disconnect) is driven by the websockets library's client. The
WebSocket framing itself is the websockets library's, tested there.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.socket_mode import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from loopback.slack import FakeSlack, SlackError

URL_SHAPE = re.compile(r"ws://127\.0\.0\.1:\d+/link/\?ticket=[^&]+&app_id=A0FAKEAPP")


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack() as slack:
        yield slack
    # stop() joins every thread the Socket Mode server started.
    assert not [t for t in threading.enumerate() if t.name.startswith("FakeSocketMode")]


class Client:
    """The real SocketModeClient, with what it saw and a way to choose its acks."""

    def __init__(self, fake: FakeSlack) -> None:
        self.messages: list[dict[str, Any]] = []
        self.requests: list[SocketModeRequest] = []
        self.respond: Callable[[SocketModeRequest], dict[str, Any] | None] = lambda r: {
            "text": f"got {r.payload.get('text')}"
        }
        self.sdk = SocketModeClient(
            app_token=fake.app_token,
            web_client=WebClient(token=fake.bot_token, base_url=fake.url),
            # Raw listeners see every message; the SDK keeps disconnects from the others.
            on_message_listeners=[lambda raw: self.messages.append(json.loads(raw))],
        )
        self.sdk.socket_mode_request_listeners.append(self._on_request)

    def _on_request(self, client: Any, request: SocketModeRequest) -> None:
        self.requests.append(request)
        payload = self.respond(request)
        client.send_socket_mode_response(
            SocketModeResponse(envelope_id=request.envelope_id, payload=payload)
        )


@pytest.fixture
def client(fake: FakeSlack) -> Iterator[Client]:
    c = Client(fake)
    c.sdk.connect()
    fake.socket_mode.wait_connected()
    yield c
    # The SDK's close() waits out its 3 s receive timeout; Slack hanging up is quicker.
    c.sdk.auto_reconnect_enabled = False
    fake.socket_mode.stop()
    c.sdk.close()


def eventually(check: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


# ---------------------------------------------------------------- apps.connections.open


def test_apps_connections_open_answers_a_single_use_socket_url(fake: FakeSlack) -> None:
    web = WebClient(base_url=fake.url)
    first = web.apps_connections_open(app_token=fake.app_token)
    second = web.apps_connections_open(app_token=fake.app_token)
    assert URL_SHAPE.fullmatch(first["url"]) and URL_SHAPE.fullmatch(second["url"])
    assert first["url"] != second["url"]
    calls = fake.calls_to("apps.connections.open")
    assert [c.status for c in calls] == [200, 200]
    assert calls[0].response == {"ok": True, "url": first["url"]}


@pytest.mark.parametrize(
    ("token", "error"),
    [
        ("xoxb-test-token", "not_allowed_token_type"),  # the bot token is the wrong kind
        ("xapp-1-someone-elses", "invalid_auth"),
        (None, "not_authed"),
    ],
)
def test_apps_connections_open_wants_the_app_token(
    fake: FakeSlack, token: str | None, error: str
) -> None:
    web = WebClient(token=token, base_url=fake.url)
    with pytest.raises(SlackApiError) as info:
        web.api_call("apps.connections.open")
    assert info.value.response.status_code == 200
    assert info.value.response["error"] == error
    assert fake.calls_to("apps.connections.open")[0].response["error"] == error
    assert not fake.socket_mode.running  # nothing issued, nothing started


def test_apps_connections_open_wants_the_token_in_the_header(fake: FakeSlack) -> None:
    body = f"token={fake.app_token}".encode()
    request = urllib.request.Request(f"{fake.url}apps.connections.open", data=body)
    request.add_header("Content-Type", "application/x-www-form-urlencoded")
    with urllib.request.urlopen(request, timeout=5) as response:
        assert json.loads(response.read()) == {"ok": False, "error": "not_authed"}


def test_the_app_token_is_configurable() -> None:
    with FakeSlack(app_token="xapp-1-other") as slack:
        url = WebClient(base_url=slack.url).apps_connections_open(app_token="xapp-1-other")["url"]
        assert URL_SHAPE.fullmatch(url)


# ---------------------------------------------------------------- the real client


def test_the_client_gets_hello_then_envelopes_and_its_acks_are_recorded(
    fake: FakeSlack, client: Client
) -> None:
    eventually(lambda: bool(client.messages))
    hello = client.messages[0]
    assert hello["type"] == "hello" and hello["num_connections"] == 1
    assert hello["connection_info"] == {"app_id": fake.app_id}

    payload = {"command": "/escalate", "text": "Acme: down", "response_url": "x"}
    sent = time.monotonic()
    envelope_id = fake.socket_mode.send_envelope("slash_commands", payload)
    assert fake.socket_mode.wait_for_ack(envelope_id) == {"text": "got Acme: down"}
    acked = time.monotonic()

    (request,) = client.requests
    assert request.envelope_id == envelope_id and request.type == "slash_commands"
    assert request.payload == payload and request.accepts_response_payload is True
    (ack,) = fake.socket_mode.acks(envelope_id)
    assert ack.connection == 1
    assert ack.message == {"envelope_id": envelope_id, "payload": {"text": "got Acme: down"}}
    latency = fake.socket_mode.ack_latency(envelope_id)
    assert latency is not None and 0 <= latency <= acked - sent  # from the send to the ack
    assert fake.socket_mode.envelopes()[0].payload == payload


def test_an_ack_without_payload_reads_as_empty(fake: FakeSlack, client: Client) -> None:
    client.respond = lambda r: None
    event = {"type": "event_callback", "event": {"type": "app_mention", "text": "hi"}}
    envelope_id = fake.socket_mode.send_envelope("events_api", event)
    assert fake.socket_mode.wait_for_ack(envelope_id) == {}
    (request,) = client.requests
    assert request.accepts_response_payload is False
    assert (request.retry_attempt, request.retry_reason) == (0, "")


def test_accepts_response_payload_follows_the_envelope_kind(
    fake: FakeSlack, client: Client
) -> None:
    cases: list[tuple[str, dict[str, Any], bool | None, bool]] = [
        ("slash_commands", {"text": "x"}, None, True),
        ("interactive", {"type": "view_submission"}, None, True),
        ("interactive", {"type": "block_actions"}, None, False),
        ("events_api", {"type": "event_callback"}, None, False),
        ("interactive", {"type": "block_actions"}, True, True),
    ]
    for kind, payload, override, expected in cases:
        envelope_id = fake.socket_mode.send_envelope(
            kind, payload, accepts_response_payload=override
        )
        fake.socket_mode.wait_for_ack(envelope_id)
        assert client.requests[-1].accepts_response_payload is expected, (kind, payload)
        assert fake.socket_mode.envelopes()[-1].accepts_response_payload is expected


def test_disconnect_makes_the_client_reconnect_with_a_fresh_url(
    fake: FakeSlack, client: Client
) -> None:
    assert fake.socket_mode.disconnect("refresh_requested") == 1
    assert not fake.socket_mode.connected.is_set()  # the retired connection takes no envelopes
    new = fake.socket_mode.wait_connected(count=2)
    assert new.id == 2 and fake.socket_mode.connected.is_set()
    assert len(fake.calls_to("apps.connections.open")) == 2
    old, _ = fake.socket_mode.connections()
    assert old.retired and old.ticket != new.ticket
    assert {"type": "disconnect", "reason": "refresh_requested"}.items() <= next(
        m for m in client.messages if m.get("type") == "disconnect"
    ).items()

    envelope_id = fake.socket_mode.send_envelope("slash_commands", {"text": "again"})
    # The SDK's switch to the new session waits out the old session's 3 s receive timeout,
    # so this envelope is read late: allow for it.
    assert fake.socket_mode.wait_for_ack(envelope_id, timeout=8) == {"text": "got again"}
    assert fake.socket_mode.acks(envelope_id)[0].connection == 2
    # The client hangs up the old connection itself (without a close frame).
    eventually(lambda: fake.socket_mode.connections()[0].closed is not None)
    assert fake.socket_mode.connections()[0].close_code == 1006


def test_pings_are_answered_both_ways(fake: FakeSlack, client: Client) -> None:
    asked = time.monotonic()
    round_trip = fake.socket_mode.ping(b"are you there")
    assert 0 <= round_trip <= time.monotonic() - asked  # the time to the pong, measured
    # The SDK pings on connect and tracks the pongs to detect a stale connection.
    eventually(lambda: client.sdk.current_session.last_ping_pong_time is not None)
    assert fake.socket_mode.pings_received >= 1


# ---------------------------------------------------------------- what the SDK never does


@pytest.fixture
def ws(fake: FakeSlack) -> Iterator[Callable[..., ClientConnection]]:
    """Opens a WebSocket to a freshly issued URL (or the one given), closed at the end."""
    with contextlib.ExitStack() as opened:

        def open_(url: str | None = None) -> ClientConnection:
            if url is None:
                web = WebClient(base_url=fake.url)
                url = web.apps_connections_open(app_token=fake.app_token)["url"]
            return opened.enter_context(connect(url, open_timeout=5, close_timeout=1))

        yield open_


def refused_status(url: str) -> int:
    with pytest.raises(InvalidStatus) as info, connect(url, open_timeout=5):
        pass
    return info.value.response.status_code


def test_a_url_is_single_use_and_only_issued_ones_open(
    fake: FakeSlack, ws: Callable[..., ClientConnection]
) -> None:
    url = WebClient(base_url=fake.url).apps_connections_open(app_token=fake.app_token)["url"]
    assert refused_status(url.replace("ticket=", "ticket=x")) == 401  # not issued
    assert refused_status(url.replace("/link/", "/other/")) == 404
    first = ws(url)  # refusals did not use the ticket up
    assert json.loads(first.recv(timeout=5))["type"] == "hello"
    assert refused_status(url) == 401  # but a connection does
    assert [s for s, _ in fake.socket_mode.refused] == [401, 404, 401]


def test_a_client_that_closes_first_is_recorded_with_its_code(
    fake: FakeSlack, ws: Callable[..., ClientConnection]
) -> None:
    client = ws()
    client.recv(timeout=5)  # hello
    assert fake.socket_mode.connected.is_set()
    client.close(1000, "bye")
    eventually(lambda: fake.socket_mode.connections()[0].close_code == 1000)
    assert not fake.socket_mode.connected.is_set()


def test_disconnect_can_close_the_connection_server_side(
    fake: FakeSlack, ws: Callable[..., ClientConnection]
) -> None:
    client = ws()
    client.recv(timeout=5)  # hello
    fake.socket_mode.disconnect("warning", close_after=0.1)
    assert json.loads(client.recv(timeout=5)) == {
        "type": "disconnect",
        "reason": "warning",
        "debug_info": {"host": "applink-fake"},
    }
    with pytest.raises(ConnectionClosed) as info:
        client.recv(timeout=5)
    assert info.value.rcvd is not None and info.value.rcvd.code == 1001


def test_stop_closes_connections_and_joins_its_threads(
    fake: FakeSlack, ws: Callable[..., ClientConnection]
) -> None:
    client = ws()
    client.recv(timeout=5)  # hello
    fake.stop()
    with pytest.raises(ConnectionClosed) as info:
        client.recv(timeout=5)
    assert info.value.rcvd is not None and info.value.rcvd.code == 1001
    fake.stop()  # idempotent
    assert not fake.socket_mode.running
    assert not [t for t in threading.enumerate() if t.name.startswith("FakeSocketMode")]


def test_waiting_for_nothing_times_out(fake: FakeSlack) -> None:
    with pytest.raises(TimeoutError):
        fake.socket_mode.send_envelope("slash_commands", {}, timeout=0.05)
    with pytest.raises(TimeoutError):
        fake.socket_mode.wait_for_ack("never-sent", timeout=0.05)
    with pytest.raises(TimeoutError):
        fake.socket_mode.wait_connected(0.05)


def test_a_stopped_fake_starts_no_socket_server(fake: FakeSlack) -> None:
    # An apps.connections.open still in flight while the fake stops must not restart it.
    fake.stop()
    with pytest.raises(SlackError, match="service_unavailable"):
        fake._apps_connections_open({})
    assert not fake.socket_mode.running

"""``SlackEmulator``: the Slack workspace behind a loopback Web API server.

The real ``slack_sdk.WebClient(token=..., base_url=emulator.url)`` talks to it. This module
owns the server side: routing (``/api/<method>``, ``/response/<token>``, pages mounted by
``mount``), authentication by the bot token (the app-level token for
``apps.connections.open``), injected latency and faults, and recording every call as a
``Call``. Unknown methods are refused with HTTP 404 ``unknown_method``, so wiring mistakes
fail loudly. The state is ``workspace``; the methods are ``methods.*``.

Socket Mode: ``apps.connections.open`` answers a single-use ``ws://`` URL of
``emulator.socket_mode``, the server ``socket_mode_factory(app_id)`` built; without one the
method answers an error.

Behaviour that Slack does not document precisely and that this emulator had to pick is
marked "Not documented" in comments.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import urlsplit

from loopback.server import LoopbackServer, send_bytes
from loopback.slack.faults import FaultInjection
from loopback.slack.methods import METHODS, Method
from loopback.slack.page import Pages
from loopback.slack.records import Call, SlackError, SocketModeServerLike
from loopback.slack.responses import Responses
from loopback.slack.wire import parse_args, send

if TYPE_CHECKING:
    from loopback.socket_mode import SocketModeServer

# Methods that change nothing a person could see: they do not advance ``version``.
_READ_ONLY = frozenset(
    {
        "api.test",
        "apps.connections.open",
        "auth.test",
        "chat.getPermalink",
        "conversations.history",
        "conversations.info",
        "conversations.members",
        "conversations.replies",
        "pins.list",
        "usergroups.users.list",
        "users.conversations",
        "users.info",
        "users.list",
    }
)


class SlackEmulator(Pages, Responses, FaultInjection, LoopbackServer):
    """A stateful Slack workspace behind a loopback Web API server."""

    name = "SlackEmulator"

    def __init__(
        self,
        *,
        latency: float = 0.0,
        socket_mode_factory: Callable[[str], SocketModeServerLike] | None = None,
        **workspace: Any,
    ) -> None:
        """``latency``: seconds every Web API call takes; ``socket_mode_factory``: builds the
        Socket Mode server from the app id; ``workspace``: the bot's and the team's ids,
        names and tokens (see ``Workspace``)."""
        Pages.__init__(self, **workspace)
        LoopbackServer.__init__(self)
        self._methods: dict[str, Method] = {
            **METHODS,
            "apps.connections.open": SlackEmulator._apps_connections_open,
        }
        FaultInjection.__init__(self, self._methods)
        # Slack's Socket Mode side; its server starts on the first apps.connections.open.
        self.socket_mode = socket_mode_factory(self.app_id) if socket_mode_factory else None
        self._latency = float(latency)
        self._mounts = []

    # ------------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        """The Web API's base URL, for ``WebClient(base_url=...)``."""
        return f"{self.root}/api/" if self.root else ""

    def start(self, *, host: str = "127.0.0.1", port: int = 0) -> Self:
        """Serve on ``host:port`` (a free port by default); raises OSError if it is taken."""
        LoopbackServer.start(self, host=host, port=port)
        with self._lock:
            self._stopped = False
        return self

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            self._change.notify_all()  # pages waiting for a change get their answer now
        LoopbackServer.stop(self)
        # Taking the lock waits out an apps.connections.open that may be starting the
        # Socket Mode server; later ones see the emulator stopped and start nothing.
        with self._lock:
            socket_mode = self.socket_mode
        if socket_mode is not None:
            socket_mode.stop()

    @property
    def latency(self) -> float:
        with self._lock:
            return self._latency

    @latency.setter
    def latency(self, seconds: float) -> None:
        with self._lock:
            self._latency = float(seconds)

    # ------------------------------------------------------------------ routing

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        arrived = time.monotonic()
        parts = urlsplit(request.path)
        path, query = parts.path, parts.query
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length) if length > 0 else b""
        if path.startswith("/api/"):
            self._handle_api(request, path[len("/api/") :].strip("/"), query, body, arrived)
        elif path.startswith("/response/") and request.command == "POST":
            self._handle_response_url(request, path[len("/response/") :].strip("/"), body)
        else:
            with self._lock:
                route = next((r for p, r in self._mounts if path.startswith(p)), None)
            if route is None:
                send(request, 404, {"ok": False, "error": "not_found"})
                return
            try:
                status, data, content_type, headers = route(
                    request.command, path, query, body, request.headers
                )
            except Exception as exc:  # a bug in the page: answer it, keep serving
                status, content_type, headers = 500, "text/plain; charset=utf-8", {}
                data = f"error: {exc!r}\n".encode()
            send_bytes(request, status, data, content_type, headers)

    def _handle_api(
        self,
        request: BaseHTTPRequestHandler,
        method: str,
        query: str,
        body: bytes,
        arrived: float,
    ) -> None:
        args, parse_error = parse_args(request.headers.get("Content-Type"), query, body)
        call = Call(method=method, args=args, started=arrived)
        with self._lock:
            self.calls.append(call)
            delay = self._latency
        delay += self._delay(method)
        # Sleep outside the lock so concurrent calls overlap like they do on Slack.
        if delay > 0:
            time.sleep(delay)
        with self._lock:
            status, payload, headers = self._dispatch(
                method, args, parse_error, request.headers.get("Authorization")
            )
            # A JSON round trip detaches the record from live state.
            encoded = json.dumps(payload)
            call.response = json.loads(encoded)
            call.status = status
            call.finished = time.monotonic()
            if payload.get("ok") and method not in _READ_ONLY:
                self._bump()
            lost = self._answer_lost(method) if payload.get("ok") else None
        if lost == 0:
            call.status = 0  # done, and the caller hears nothing: the connection drops
            request.close_connection = True
            request.connection.shutdown(socket.SHUT_RDWR)
            return
        if lost is not None:
            call.status = lost
            send(request, lost, "<html>Bad Gateway</html>", content_type="text/html")
            return
        send(request, status, encoded, headers, content_type="application/json")

    def _dispatch(
        self, method: str, args: dict[str, Any], parse_error: str | None, authorization: str | None
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        handler = self._methods.get(method)
        if handler is None:
            return 404, {"ok": False, "error": "unknown_method"}, {}
        if parse_error:
            return 200, {"ok": False, "error": parse_error}, {}
        if method == "apps.connections.open":
            # Socket Mode takes the app-level token, not the bot token.
            auth_error = self._app_auth_error(authorization)
            if auth_error:
                return 200, {"ok": False, "error": auth_error}, {}
        # api.test is the one method Slack answers without a token.
        elif method != "api.test":
            auth_error = self._auth_error(authorization, args)
            if auth_error:
                return 200, {"ok": False, "error": auth_error}, {}

        refusal = self._refusal(method)
        if refusal is not None:
            return refusal
        try:
            result = handler(self, args)
        except SlackError as exc:
            return 200, {"ok": False, "error": exc.error, **exc.extra}, {}
        except Exception as exc:  # a bug in the emulator: make it loud, not a silent ok
            return 500, {"ok": False, "error": "fake_slack_bug", "detail": repr(exc)}, {}
        return 200, {"ok": True, **result}, {}

    # ------------------------------------------------------------------ authentication

    def _auth_error(self, authorization: str | None, args: dict[str, Any]) -> str | None:
        token: str | None = None
        if authorization:
            scheme, _, value = authorization.partition(" ")
            if scheme.lower() != "bearer":
                return "invalid_auth"
            token = value.strip()
        elif args.get("token"):
            token = str(args["token"])
        if not token:
            return "not_authed"
        if token != self.bot_token:
            return "invalid_auth"
        return None

    def _app_auth_error(self, authorization: str | None) -> str | None:
        """Auth of the methods that take the app-level (xapp-) token, not the bot token."""
        # Slack: the app token goes in the Authorization header; "passing it as a POST
        # parameter will result in an error". Not documented: which error; not_authed here.
        if not authorization:
            return "not_authed"
        scheme, _, value = authorization.partition(" ")
        token = value.strip()
        if scheme.lower() != "bearer" or not token:
            return "invalid_auth"
        if token == self.app_token:
            return None
        if token == self.bot_token:
            return "not_allowed_token_type"
        return "invalid_auth"

    # ------------------------------------------------------------------ Socket Mode

    def _apps_connections_open(self, args: dict[str, Any]) -> dict[str, Any]:
        if not self.serving:
            # The emulator is stopping: starting the Socket Mode server now would outlive it.
            raise SlackError("service_unavailable")
        if self.socket_mode is None:
            # Not documented: the error for an app without Socket Mode turned on.
            raise SlackError("not_allowed")
        return {"url": self.socket_mode.issue_url()}


class FakeSlack(SlackEmulator):
    """The emulator as the tests use it: ``socket_mode`` is a ``loopback.socket_mode``
    server, started on the first ``apps.connections.open``."""

    socket_mode: SocketModeServer

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("socket_mode_factory", _socket_mode_server)
        super().__init__(**kwargs)


def _socket_mode_server(app_id: str) -> SocketModeServer:
    # Imported here: the Socket Mode server needs websockets, a test dependency, and the
    # sandbox uses the emulator without it.
    from loopback.socket_mode import SocketModeServer

    return SocketModeServer(app_id=app_id)

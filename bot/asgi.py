"""The front door of `warroom run`: what a request must show before a thread answers it.

gunicorn's asyncio worker (`bot.connections.Worker`: headers within a deadline, connections
capped) holds the connections; a request reaches one of the threads that
run the WSGI app (`bot.wsgi`, through a2wsgi) only once its whole body is here. So a client
that sends headers and then nothing, or trickles its body, costs a socket and never a thread:
the signed requests that Slack wants acked within 3 seconds keep finding one free.

Before the body is read, a request to `/slack/events` is refused when it cannot be Slack's:
no signature or timestamp headers, a timestamp more than five minutes off (401), or a
declared length over `MAX_BODY` (413). A body that is not all here within `BODY_TIMEOUT`
is dropped (408). Other paths (`/healthz`, `/metrics`) take no body at all. The signature
itself is checked by Bolt on the full body, as before.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from a2wsgi import WSGIMiddleware

from bot.wsgi import DESK_WEBHOOK, MAX_WEBHOOK_BODY, WarroomWSGI
from bot.wsgi import create_app as create_wsgi_app

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

SLACK_PATH = "/slack/events"
# Zendesk's webhook: signed like Slack's requests (its own headers), read the same way.
DESK_PATH = DESK_WEBHOOK
DESK_MAX_BODY = MAX_WEBHOOK_BODY
# Slack's payloads are a few KB; the largest, a modal's submission with its whole view, stay
# well under 100 KB. Half a MB leaves room and keeps a flood of big bodies cheap to refuse.
MAX_BODY = 512 * 1024
# Slack waits 3 s for the ack, body included: a body still coming after 5 s can only be a
# client holding the connection.
BODY_TIMEOUT = 5.0
# Bolt refuses a timestamp more than five minutes from now; so does the door, earlier.
SIGNATURE_AGE = 5 * 60


class FrontDoor:
    """An ASGI app: checks a request's headers, reads its body in full on the event loop, then
    lets a thread of the WSGI app answer it."""

    def __init__(
        self,
        app: WarroomWSGI,
        *,
        threads: int = 32,
        max_body: int = MAX_BODY,
        body_timeout: float = BODY_TIMEOUT,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.app = app
        self.runtime = app.runtime
        self.max_body = max_body
        self.body_timeout = body_timeout
        self.now = now
        self.threads = WSGIMiddleware(app, workers=threads)
        # Read by the worker that holds the connections (`bot.connections.Worker`).
        settings = app.runtime.settings
        self.header_timeout = settings.header_timeout_seconds
        self.max_connections = settings.max_connections

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":  # nothing here speaks WebSocket
            await send({"type": "websocket.close", "code": 1000})
            return
        path = scope["path"]
        if path in (SLACK_PATH, DESK_PATH):
            refusal = (self._refusal if path == SLACK_PATH else self._desk_refusal)(_headers(scope))
            if refusal is not None:
                await self._refuse(path, send, *refusal)
                return
            body = await self._read_body(receive)
            if body is None:  # gone before its body was all here
                return
            if isinstance(body, tuple):
                await self._refuse(path, send, *body)
                return
            scope = _with_length(scope, len(body))
        else:
            # Health checks and metrics are GETs: whatever body comes along is never read.
            body = b""
        await self.threads(scope, _replay(body, receive), send)

    def _refusal(self, headers: dict[str, str]) -> tuple[int, str] | None:
        """Why a request to /slack/events cannot be Slack's, judged on its headers alone."""
        length = headers.get("content-length")
        if length is not None:
            if not length.isdigit():
                return 400, "Bad Request"
            if int(length) > self.max_body:
                return 413, "Payload Too Large"
        signature = headers.get("x-slack-signature", "")
        stamp = headers.get("x-slack-request-timestamp", "")
        if not signature.startswith("v0=") or not stamp.isdigit():
            return 401, "Unauthorized"
        if abs(self.now() - int(stamp)) > SIGNATURE_AGE:
            return 401, "Unauthorized"
        return None

    def _desk_refusal(self, headers: dict[str, str]) -> tuple[int, str] | None:
        """Why a request to the desk's webhook cannot be the desk's, judged on its headers;
        the signature itself is checked on the full body by the WSGI app."""
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > DESK_MAX_BODY):
            return (413, "Payload Too Large") if length.isdigit() else (400, "Bad Request")
        if not headers.get("x-zendesk-webhook-signature") or not headers.get(
            "x-zendesk-webhook-signature-timestamp"
        ):
            return 401, "Unauthorized"
        return None

    async def _read_body(self, receive: Receive) -> bytes | tuple[int, str] | None:
        """The whole body, a refusal when it is too large or too slow, or None when the client
        went away."""
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(self.body_timeout):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return None
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size > self.max_body:  # a chunked body declares no length
                        return 413, "Payload Too Large"
                    chunks.append(chunk)
                    if not message.get("more_body", False):
                        return b"".join(chunks)
        except TimeoutError:
            log.debug("a request's body did not arrive within %s s", self.body_timeout)
            return 408, "Request Timeout"

    async def _refuse(self, path: str, send: Send, status: int, reason: str) -> None:
        body = f"{reason.lower()}\n".encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"text/plain"),
                    (b"content-length", str(len(body)).encode()),
                    # The unread body is still on the wire: the connection cannot carry
                    # another request.
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
        self.runtime.metrics.requests.labels(path, str(status)).inc()


def _headers(scope: Scope) -> dict[str, str]:
    return {
        name.decode("latin-1").lower(): value.decode("latin-1")
        for name, value in scope.get("headers", [])
    }


def _with_length(scope: Scope, length: int) -> Scope:
    """The scope of a body now read in full: its exact length, however it came (a chunked
    body declares none, and the WSGI app reads CONTENT_LENGTH bytes)."""
    headers = [
        (name, value)
        for name, value in scope.get("headers", [])
        if name.lower() not in (b"content-length", b"transfer-encoding")
    ]
    return {**scope, "headers": [*headers, (b"content-length", str(length).encode())]}


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body already read, as the one message a WSGI thread asks for; then whatever the
    connection says next (its disconnect)."""
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def replayed() -> Message:
        return pending.pop() if pending else await receive()

    return replayed


async def _lifespan(receive: Receive, send: Send) -> None:
    """The runtime is built and started by the factory, before the worker serves; the worker's
    shutdown is handled where the WSGI app's is."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def create_app(threads: int = 32) -> FrontDoor:
    """gunicorn's factory for its `asgi` worker: the WSGI app with its runtime, behind the
    door; `threads` answer requests whose body is here."""
    return FrontDoor(create_wsgi_app(), threads=threads)

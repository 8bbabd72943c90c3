"""The connections the front door holds: gunicorn's asyncio worker, with two bounds of its own.

gunicorn's `asgi` worker gives a connection all the time it wants to send its request's
headers, and takes as many connections as come. A client that trickles its headers a byte at
a time (slowloris) holds its connection for as long as it likes; enough of them use up the
process's file descriptors, and Slack's signed requests find the door shut. So `Worker`:

- closes a connection whose request headers are not all here within `header_timeout` seconds
  of it opening (or of the last response, on a connection kept alive);
- holds at most `max_connections`: one more arriving closes the connection that has waited
  longest for its headers, or, when none is waiting, the new one. Slack sends its headers at
  once, so its requests are never the ones left waiting.

Both bounds come from the app (`bot.asgi.FrontDoor`, from the settings). gunicorn's worker
makes its listeners' protocol by a name of its module, which `Worker` points at `_Protocol`
in its own process; gunicorn is held to the release it was written for in pyproject.toml.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from gunicorn.asgi.protocol import ASGIProtocol
from gunicorn.workers import gasgi

log = logging.getLogger(__name__)

# Used when the app names none (see `bot.asgi.FrontDoor`).
HEADER_TIMEOUT = 5.0
MAX_CONNECTIONS = 1000


class _Protocol(ASGIProtocol):  # type: ignore[misc]
    """One connection: timed until its request's headers are all here."""

    worker: Worker

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._await_headers()
        worker = self.worker
        if worker.nr_conns > worker.max_connections:
            # The oldest of those still sending headers (this one, if it is the only one).
            oldest = next(iter(worker.waiting))
            log.debug("%d connections: closing the one waiting longest", worker.nr_conns)
            oldest._shut()

    def _on_headers_complete(self) -> Any:
        self._headers_here()
        return super()._on_headers_complete()

    def _arm_keepalive_timer(self) -> None:
        super()._arm_keepalive_timer()
        self._await_headers()  # the next request's

    def connection_lost(self, exc: Exception | None) -> None:
        self._headers_here()
        super().connection_lost(exc)

    def _await_headers(self) -> None:
        self._headers_here()
        if self._closed:
            return
        handle = self.worker.loop.call_later(self.worker.header_timeout, self._too_slow)
        self.worker.waiting[self] = handle

    def _headers_here(self) -> None:
        handle = self.worker.waiting.pop(self, None)
        if handle is not None:
            handle.cancel()

    def _too_slow(self) -> None:
        log.debug("a request's headers did not arrive within %s s", self.worker.header_timeout)
        self._shut()

    def _shut(self) -> None:
        self._headers_here()
        # As gunicorn closes a connection kept alive too long: close, and wake its handler.
        self._keepalive_timeout()


class Worker(gasgi.ASGIWorker):  # type: ignore[misc]
    """gunicorn's asgi worker, with a deadline for headers and a cap on connections
    (`--worker-class bot.connections.Worker`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Connections still sending their request's headers, oldest first, with their timers.
        self.waiting: dict[_Protocol, asyncio.TimerHandle] = {}

    @property
    def header_timeout(self) -> float:
        return float(getattr(self.asgi, "header_timeout", HEADER_TIMEOUT))

    @property
    def max_connections(self) -> int:
        return int(getattr(self.asgi, "max_connections", MAX_CONNECTIONS))

    async def _serve(self) -> None:
        gasgi.ASGIProtocol = _Protocol  # the listeners this worker opens make ours
        await super()._serve()

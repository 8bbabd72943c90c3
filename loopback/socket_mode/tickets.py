"""Socket Mode's single-use connection URLs: a ticket each, issued by
``apps.connections.open`` and spent by the handshake that succeeds with it; handshakes with
an unknown or spent ticket, or to another path, are refused with an HTTP error."""

from __future__ import annotations

import secrets
import threading
from urllib.parse import parse_qs, urlsplit

from websockets.http11 import Request, Response
from websockets.sync.server import ServerConnection


def ticket_of(request: Request) -> str:
    return (parse_qs(urlsplit(request.path).query).get("ticket") or [""])[-1]


class Tickets:
    """The tickets issued so far, and the handshakes refused."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._used: dict[str, bool] = {}  # ticket -> used
        self._refused: list[tuple[int, str]] = []  # handshakes answered with an HTTP error

    def issue(self) -> str:
        ticket = secrets.token_urlsafe(16)
        with self._lock:
            self._used[ticket] = False
        return ticket

    def refused(self) -> list[tuple[int, str]]:
        with self._lock:
            return list(self._refused)

    def check(self, ws: ServerConnection, request: Request) -> Response | None:
        """Refuse a URL this server did not issue, or whose ticket is spent
        (``process_request``: before the WebSocket handshake is checked)."""
        path = urlsplit(request.path).path
        if path.rstrip("/") != "/link":
            return self._refuse(ws, 404, f"no such path {path!r}")
        with self._lock:
            used = self._used.get(ticket_of(request))
        if used is None:
            return self._refuse(ws, 401, "unknown ticket")
        if used:
            # Not documented: Slack's URLs are single-use; a client reconnecting must call
            # apps.connections.open again.
            return self._refuse(ws, 401, "ticket already used")
        return None

    def take(self, ws: ServerConnection, request: Request, response: Response) -> Response | None:
        """Use the ticket up once the handshake succeeds, so a refused one keeps it
        (``process_response``); the second of two racing handshakes is refused."""
        if response.status_code != 101:
            return None
        ticket = ticket_of(request)
        with self._lock:
            used = self._used.get(ticket)
            self._used[ticket] = True
        return self._refuse(ws, 401, "ticket already used") if used else None

    def _refuse(self, ws: ServerConnection, status: int, why: str) -> Response:
        with self._lock:
            self._refused.append((status, why))
        return ws.respond(status, why)

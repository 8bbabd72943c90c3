"""``SocketModeServer``: Slack's side of Socket Mode on the websockets library's threaded
server. Envelopes go to the newest live connection; acks, connections and the client's pings
are recorded; ``disconnect`` retires connections and may close them after a while."""

from __future__ import annotations

import copy
import functools
import json
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any, Self

from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode
from websockets.sync.server import Server, ServerConnection, serve

from loopback.server import Served
from loopback.socket_mode.records import (
    CLOSE_ABNORMAL,
    CLOSE_GOING_AWAY,
    CLOSE_WAIT,
    HANDSHAKE_TIMEOUT,
    MAX_MESSAGE_BYTES,
    RESPONDING_INTERACTIONS,
    TICK,
    Ack,
    ConnectionInfo,
    Envelope,
)
from loopback.socket_mode.tickets import Tickets, ticket_of


@dataclass
class _Conn:
    ws: ServerConnection
    info: ConnectionInfo
    close_at: float | None = None  # server-side close deadline (monotonic)
    close_sent: bool = False


class _Connection(ServerConnection):
    """A connection that tells its server of the pings the client sends."""

    def __init__(self, *args: Any, on_ping: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._on_ping = on_ping

    def process_event(self, event: Any) -> None:
        super().process_event(event)
        if isinstance(event, Frame) and event.opcode is Opcode.PING:
            self._on_ping()


class SocketModeServer(Served):
    """Slack's side of Socket Mode, on 127.0.0.1. Start it, issue URLs, push envelopes."""

    def __init__(self, *, app_id: str = "A0FAKEAPP", host_name: str = "applink-fake") -> None:
        self.app_id = app_id
        self.host_name = host_name  # what hello/disconnect report as debug_info.host
        self.port = 0
        # Set while at least one open, not retired connection exists.
        self.connected = threading.Event()

        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._tickets = Tickets()
        self._conns: list[_Conn] = []  # open connections, oldest first
        self._connections: list[ConnectionInfo] = []  # every handshake, oldest first
        self._envelopes: dict[str, Envelope] = {}
        self._acks: list[Ack] = []
        self._received: list[Any] = []  # every text message, JSON-decoded when it parses
        self._pings_received = 0
        self._server: Server | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> Self:
        with self._lock:
            if self._server is not None:
                raise RuntimeError("SocketModeServer is already started")
            self._start_locked()
        return self

    def ensure_started(self) -> Self:
        """Start unless running; safe to call from many threads at once."""
        with self._lock:
            if self._server is None:
                self._start_locked()
        return self

    def _start_locked(self) -> None:
        server = serve(
            self._serve,
            "127.0.0.1",
            0,
            process_request=self._tickets.check,
            process_response=self._tickets.take,
            create_connection=functools.partial(_Connection, on_ping=self._count_ping),  # type: ignore[arg-type]
            compression=None,
            open_timeout=HANDSHAKE_TIMEOUT,
            # Slack's side does not ping; the client's pings are answered all the same.
            ping_interval=None,
            close_timeout=CLOSE_WAIT,
            max_size=MAX_MESSAGE_BYTES,
        )
        self.port = int(server.socket.getsockname()[1])
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, name=f"FakeSocketMode:{self.port}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Close every connection (close frame 1001) and join every thread. Idempotent."""
        with self._lock:
            server, thread = self._server, self._thread
            self._server = self._thread = None
            for conn in self._conns:
                conn.close_sent = True
            self._update_connected()
        if server is None:
            return
        # Closes open connections with 1001 (going away) and waits for their handlers.
        server.shutdown(code=CLOSE_GOING_AWAY, reason="server stopping")
        if thread is not None:
            thread.join()

    # ------------------------------------------------------------------ URLs

    def issue_url(self) -> str:
        """A fresh single-use connection URL, as apps.connections.open returns it."""
        self.ensure_started()
        ticket = self._tickets.issue()
        # Slack's shape: wss://wss-primary.slack.com/link/?ticket=...&app_id=...
        return f"ws://127.0.0.1:{self.port}/link/?ticket={ticket}&app_id={self.app_id}"

    # ------------------------------------------------------------------ driving the client

    def wait_connected(self, timeout: float = 5.0, *, count: int = 1) -> ConnectionInfo:
        """Wait until ``count`` connections have ever opened and one is open and not retired;
        return the newest such connection."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                live = self._live()
                if len(self._connections) >= count and live is not None:
                    return copy.copy(live.info)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"no Socket Mode connection in {timeout} s "
                        f"({len(self._connections)} opened, {count} wanted)"
                    )
                self._changed.wait(remaining)

    def send_envelope(
        self,
        type: str,
        payload: dict[str, Any],
        *,
        accepts_response_payload: bool | None = None,
        envelope_id: str | None = None,
        timeout: float = 5.0,
        **extra: Any,
    ) -> str:
        """Send an envelope on the newest live connection (waiting up to ``timeout`` for one)
        and return its envelope id. ``extra`` adds top-level fields (e.g. retry_attempt)."""
        if accepts_response_payload is None:
            accepts_response_payload = type == "slash_commands" or (
                type == "interactive" and payload.get("type") in RESPONDING_INTERACTIONS
            )
        envelope_id = envelope_id or str(uuid.uuid4())
        message: dict[str, Any] = {
            "envelope_id": envelope_id,
            "type": type,
            "payload": payload,
            "accepts_response_payload": accepts_response_payload,
        }
        if type == "events_api":
            # Slack adds these to every events_api envelope; 0 and "" on a first delivery.
            message.setdefault("retry_attempt", 0)
            message.setdefault("retry_reason", "")
        message.update(extra)
        data = json.dumps(message)
        deadline = time.monotonic() + timeout
        while True:
            info = self.wait_connected(max(0.0, deadline - time.monotonic()))
            with self._lock:
                conn = next((c for c in self._conns if c.info.id == info.id), None)
                # Recorded before it is sent, so an ack can never arrive for an unknown id.
                self._envelopes[envelope_id] = Envelope(
                    envelope_id=envelope_id,
                    type=type,
                    payload=copy.deepcopy(payload),
                    accepts_response_payload=accepts_response_payload,
                    connection=info.id,
                    sent=time.monotonic(),
                )
            if conn is not None and _send(conn, data):
                return envelope_id
            # The connection went away between the choice and the send: try the next one.
            if time.monotonic() >= deadline:
                raise TimeoutError(f"could not deliver envelope {envelope_id}")
            time.sleep(TICK)

    def wait_for_ack(self, envelope_id: str, timeout: float = 3.0) -> Any:
        """The payload of the first ack of ``envelope_id`` ({} if it had none). Slack wants
        acks within 3 seconds, hence the default."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for ack in self._acks:
                    if ack.envelope_id == envelope_id:
                        return copy.deepcopy(ack.payload)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"envelope {envelope_id} was not acked in {timeout} s")
                self._changed.wait(remaining)

    def disconnect(
        self, reason: str = "refresh_requested", *, close_after: float | None = None
    ) -> int:
        """Send ``{"type": "disconnect", "reason": ...}`` on every live connection and retire
        them: no more envelopes go there, and the client is expected to open a new one.

        Slack's reasons: ``warning`` (this connection closes soon), ``refresh_requested``
        (routine recycling), ``link_disabled`` (Socket Mode was turned off). With
        ``close_after`` the server also closes them after that many seconds, unless the client
        did first. Not documented: how long Slack waits; it is in the order of seconds.
        Returns how many connections were told.
        """
        message = {"type": "disconnect", "reason": reason, "debug_info": {"host": self.host_name}}
        with self._lock:
            targets = [c for c in self._conns if not c.info.retired]
            for conn in targets:
                conn.info.retired = True
                if close_after is not None:
                    conn.close_at = time.monotonic() + close_after
            self._update_connected()
        return sum(_send(conn, json.dumps(message)) for conn in targets)

    def ping(self, payload: bytes = b"", timeout: float = 5.0) -> float:
        """Ping the newest live connection; return the seconds until its pong came back."""
        if len(payload) > 125:
            raise ValueError("a ping payload is at most 125 bytes")
        info = self.wait_connected(timeout)
        with self._lock:
            conn = next((c for c in self._conns if c.info.id == info.id), None)
        started = time.monotonic()
        try:
            if conn is None:
                raise ConnectionError("the connection closed before the ping went out")
            pong = conn.ws.ping(payload)
        except ConnectionClosed as e:
            raise ConnectionError("the connection closed before the ping went out") from e
        if not pong.wait(timeout):
            raise TimeoutError(f"no pong in {timeout} s")
        return time.monotonic() - started

    # ------------------------------------------------------------------ what happened

    def connections(self) -> list[ConnectionInfo]:
        """Every connection that completed its handshake, oldest first (copies)."""
        with self._lock:
            return [copy.copy(c) for c in self._connections]

    def envelopes(self) -> list[Envelope]:
        with self._lock:
            return [copy.deepcopy(e) for e in self._envelopes.values()]

    def acks(self, envelope_id: str | None = None) -> list[Ack]:
        """Acks received, in arrival order; those of one envelope when ``envelope_id`` is given."""
        with self._lock:
            return [
                copy.deepcopy(a)
                for a in self._acks
                if envelope_id is None or a.envelope_id == envelope_id
            ]

    def ack_latency(self, envelope_id: str) -> float | None:
        """Seconds from sending an envelope to its first ack; None while unacked."""
        with self._lock:
            envelope = self._envelopes.get(envelope_id)
            ack = next((a for a in self._acks if a.envelope_id == envelope_id), None)
            if envelope is None or ack is None:
                return None
            return ack.received - envelope.sent

    @property
    def received(self) -> list[Any]:
        """Every text message from clients, JSON-decoded when it parses."""
        with self._lock:
            return copy.deepcopy(self._received)

    @property
    def refused(self) -> list[tuple[int, str]]:
        """Connections refused for their URL: (HTTP status, why)."""
        return self._tickets.refused()

    @property
    def pings_received(self) -> int:
        with self._lock:
            return self._pings_received

    # ------------------------------------------------------------------ a connection

    def _serve(self, ws: ServerConnection) -> None:
        """One connection, from hello to close, on its own thread."""
        assert ws.request is not None
        with self._lock:
            info = ConnectionInfo(
                id=len(self._connections) + 1, ticket=ticket_of(ws.request), opened=time.monotonic()
            )
            conn = _Conn(ws, info)
            self._connections.append(info)
            self._conns.append(conn)
            hello = {
                "type": "hello",
                "num_connections": len(self._conns),
                "debug_info": {
                    "host": self.host_name,
                    "build_number": 1,
                    # Slack's hint of how long it will keep this connection (seconds).
                    "approximate_connection_time": 18060,
                },
                "connection_info": {"app_id": self.app_id},
            }
            # Under the lock, so the hello goes out before any envelope can pick this
            # connection; `connected` is set first, so a client that sees hello sees it set.
            self._update_connected()
            _send(conn, json.dumps(hello))
        code = CLOSE_ABNORMAL
        try:
            while True:
                if conn.close_at is not None and time.monotonic() >= conn.close_at:
                    conn.close_at = None
                    with self._lock:
                        conn.close_sent = True
                        self._update_connected()
                    ws.close(CLOSE_GOING_AWAY, "disconnected")
                try:
                    message = ws.recv(timeout=TICK)
                except TimeoutError:
                    continue
                if isinstance(message, str):
                    self._on_text(conn, message)
        except ConnectionClosed as closed:
            code = closed.rcvd.code if closed.rcvd is not None else CLOSE_ABNORMAL
        finally:
            with self._lock:
                self._conns.remove(conn)
                info.closed = time.monotonic()
                info.close_code = code
                self._update_connected()

    def _on_text(self, conn: _Conn, text: str) -> None:
        try:
            message: Any = json.loads(text)
        except ValueError:
            message = text
        with self._lock:
            self._received.append(message)
            if isinstance(message, dict) and isinstance(message.get("envelope_id"), str):
                self._acks.append(
                    Ack(
                        envelope_id=message["envelope_id"],
                        payload=message.get("payload") or {},
                        connection=conn.info.id,
                        received=time.monotonic(),
                        message=message,
                    )
                )
            self._changed.notify_all()

    def _count_ping(self) -> None:
        with self._lock:
            self._pings_received += 1

    # ------------------------------------------------------------------ (lock held)

    def _live(self) -> _Conn | None:
        for conn in reversed(self._conns):
            if not conn.info.retired and not conn.close_sent:
                return conn
        return None

    def _update_connected(self) -> None:
        if self._live() is not None:
            self.connected.set()
        else:
            self.connected.clear()
        self._changed.notify_all()


def _send(conn: _Conn, text: str) -> bool:
    """Send one text message; False if the connection has closed."""
    try:
        conn.ws.send(text)
    except ConnectionClosed:
        return False
    return True

"""A loopback fake of Slack's Socket Mode endpoint, for tests.

This module owns ``SocketModeServer``: a minimal WebSocket server (RFC 6455, standard
library only) on 127.0.0.1 that speaks Slack's Socket Mode protocol to a real client such
as ``slack_sdk.socket_mode.SocketModeClient``. ``FakeSlack`` issues its URLs from
``apps.connections.open``; tests then push envelopes and read the acks.

The WebSocket side: the HTTP/1.1 upgrade handshake with ``Sec-WebSocket-Accept``, text
frames both ways (client frames must be masked, server frames never are), fragmented
messages, ping/pong, and the close handshake.

The Socket Mode side: a ``hello`` message as soon as a connection opens; envelopes
``{"envelope_id", "type", "payload", "accepts_response_payload"}`` sent with
``send_envelope``; acks ``{"envelope_id", "payload"?}`` recorded by envelope id, whichever
connection they arrive on; ``disconnect`` messages that retire a connection, after which
the client opens a new one with a fresh URL. Envelopes always go to the newest open
connection that has not been retired.

Behaviour that Slack does not document precisely and that this fake had to pick is marked
"Not documented" in comments.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import copy
import hashlib
import json
import secrets
import selectors
import socket
import struct
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455, section 1.3

OP_CONTINUATION = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA

CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_PROTOCOL_ERROR = 1002
CLOSE_INVALID_DATA = 1007
CLOSE_TOO_BIG = 1009
CLOSE_ABNORMAL = 1006  # never sent on the wire: "closed without a close frame"

MAX_HANDSHAKE_BYTES = 16_384
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
HANDSHAKE_TIMEOUT = 5.0
SEND_TIMEOUT = 5.0
# How often a connection thread looks up from its socket to notice stop() and deadlines.
TICK = 0.05
# After the server sends a close frame, how long it waits for the client's before hanging up.
CLOSE_WAIT = 0.5

# Envelope types whose ack may carry a response payload. Not documented as a list: slash
# commands take their reply in the ack, as do view submissions (response_action) and
# block_suggestion (options); events and other interactions do not.
_RESPONDING_INTERACTIONS = {"view_submission", "block_suggestion"}


def accept_key(key: str) -> str:
    """The ``Sec-WebSocket-Accept`` value a server answers to ``Sec-WebSocket-Key``."""
    digest = hashlib.sha1((key.strip() + WS_GUID).encode("ascii")).digest()
    return base64.b64encode(digest).decode("ascii")


def _xor(data: bytes, mask: bytes) -> bytes:
    if not data:
        return b""
    n = len(data)
    key = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big")


def encode_frame(
    opcode: int, payload: bytes, *, fin: bool = True, mask: bytes | None = None
) -> bytes:
    """One WebSocket frame. Servers send unmasked frames; clients pass a 4-byte ``mask``."""
    head = bytearray([(0x80 if fin else 0) | opcode])
    mask_bit = 0x80 if mask is not None else 0
    n = len(payload)
    if n < 126:
        head.append(mask_bit | n)
    elif n < 1 << 16:
        head.append(mask_bit | 126)
        head += struct.pack("!H", n)
    else:
        head.append(mask_bit | 127)
        head += struct.pack("!Q", n)
    if mask is not None:
        if len(mask) != 4:
            raise ValueError("a WebSocket mask is 4 bytes")
        head += mask
        payload = _xor(payload, mask)
    return bytes(head) + payload


def close_payload(code: int, reason: str = "") -> bytes:
    return struct.pack("!H", code) + reason.encode("utf-8")


class _ProtocolError(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass
class _Frame:
    fin: bool
    opcode: int
    payload: bytes


def _take_frame(buf: bytearray) -> _Frame | None:
    """Remove and return the first complete client frame in ``buf``; None if incomplete."""
    if len(buf) < 2:
        return None
    b1, b2 = buf[0], buf[1]
    if b1 & 0x70:
        raise _ProtocolError(CLOSE_PROTOCOL_ERROR, "reserved bits set without an extension")
    opcode = b1 & 0x0F
    if opcode not in (OP_CONTINUATION, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG):
        raise _ProtocolError(CLOSE_PROTOCOL_ERROR, f"unknown opcode {opcode:#x}")
    if not b2 & 0x80:
        # RFC 6455 5.1: a server must close the connection on an unmasked client frame.
        raise _ProtocolError(CLOSE_PROTOCOL_ERROR, "client frames must be masked")
    length = b2 & 0x7F
    offset = 2
    if length == 126:
        if len(buf) < 4:
            return None
        length = struct.unpack("!H", buf[2:4])[0]
        offset = 4
    elif length == 127:
        if len(buf) < 10:
            return None
        length = struct.unpack("!Q", buf[2:10])[0]
        offset = 10
    fin = bool(b1 & 0x80)
    if opcode >= OP_CLOSE and (length > 125 or not fin):
        raise _ProtocolError(CLOSE_PROTOCOL_ERROR, "control frames are short and unfragmented")
    if length > MAX_MESSAGE_BYTES:
        raise _ProtocolError(CLOSE_TOO_BIG, "frame too big")
    end = offset + 4 + length
    if len(buf) < end:
        return None
    mask = bytes(buf[offset : offset + 4])
    payload = _xor(bytes(buf[offset + 4 : end]), mask)
    del buf[:end]
    return _Frame(fin, opcode, payload)


@dataclass
class Envelope:
    """One envelope as the server sent it."""

    envelope_id: str
    type: str
    payload: dict[str, Any]
    accepts_response_payload: bool
    connection: int  # ConnectionInfo.id it went out on
    sent: float  # time.monotonic()


@dataclass
class Ack:
    """One acknowledgement as the client sent it."""

    envelope_id: str
    payload: Any  # the ack's "payload", {} when it carried none
    connection: int
    received: float  # time.monotonic()
    message: dict[str, Any]  # the whole ack


@dataclass
class ConnectionInfo:
    """One WebSocket connection that completed its handshake."""

    id: int
    ticket: str
    opened: float  # time.monotonic()
    closed: float | None = None
    # The code the client's close frame carried; 1006 when the socket just went away.
    close_code: int | None = None
    retired: bool = False  # a disconnect message was sent on it: no more envelopes


@dataclass
class _Conn:
    sock: socket.socket
    info: ConnectionInfo | None = None
    send_lock: threading.Lock = field(default_factory=threading.Lock)
    buffer: bytearray = field(default_factory=bytearray)
    close_at: float | None = None  # server-side close deadline (monotonic)
    close_sent: bool = False


class SocketModeServer:
    """Slack's side of Socket Mode, on 127.0.0.1. Start it, issue URLs, push envelopes."""

    def __init__(self, *, app_id: str = "A0FAKEAPP", host_name: str = "applink-fake") -> None:
        self.app_id = app_id
        self.host_name = host_name  # what hello/disconnect report as debug_info.host
        self.port = 0
        # Set while at least one open, not retired connection exists.
        self.connected = threading.Event()

        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._tickets: dict[str, bool] = {}  # ticket -> used
        self._conns: list[_Conn] = []  # open connections, oldest first
        self._connections: list[ConnectionInfo] = []  # every handshake, oldest first
        self._envelopes: dict[str, Envelope] = {}
        self._acks: list[Ack] = []
        self._received: list[Any] = []  # every text message, JSON-decoded when it parses
        self._refused: list[tuple[int, str]] = []  # handshakes answered with an HTTP error
        self._pongs: list[tuple[int, bytes]] = []
        self._pings_received = 0

        self._listener: socket.socket | None = None
        self._accept_thread: threading.Thread | None = None
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()

    # ------------------------------------------------------------------ lifecycle

    @property
    def running(self) -> bool:
        return self._listener is not None

    def start(self) -> SocketModeServer:
        with self._lock:
            if self._listener is not None:
                raise RuntimeError("SocketModeServer is already started")
            self._start_locked()
        return self

    def ensure_started(self) -> SocketModeServer:
        """Start unless running; safe to call from many threads at once."""
        with self._lock:
            if self._listener is None:
                self._start_locked()
        return self

    def _start_locked(self) -> None:
        self._stopping.clear()
        listener = socket.create_server(("127.0.0.1", 0))
        listener.settimeout(TICK)
        self.port = int(listener.getsockname()[1])
        self._listener = listener
        self._accept_thread = threading.Thread(
            target=self._accept_loop,
            args=(listener,),
            name=f"FakeSocketMode:{self.port}",
            daemon=True,
        )
        self._accept_thread.start()

    def stop(self) -> None:
        """Close every connection (close frame 1001) and join every thread. Idempotent."""
        with self._lock:
            listener, accept_thread = self._listener, self._accept_thread
            self._listener = self._accept_thread = None
        if listener is None:
            return
        self._stopping.set()
        if accept_thread is not None:
            accept_thread.join()
        listener.close()
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join()
        with self._lock:
            self._threads.clear()

    def __enter__(self) -> SocketModeServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ URLs

    def issue_url(self) -> str:
        """A fresh single-use connection URL, as apps.connections.open returns it."""
        self.ensure_started()
        ticket = secrets.token_urlsafe(16)
        with self._lock:
            self._tickets[ticket] = False
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
                    assert live.info is not None
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
                type == "interactive" and payload.get("type") in _RESPONDING_INTERACTIONS
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
        data = encode_frame(OP_TEXT, json.dumps(message).encode("utf-8"))
        deadline = time.monotonic() + timeout
        while True:
            info = self.wait_connected(max(0.0, deadline - time.monotonic()))
            with self._lock:
                conn = next((c for c in self._conns if c.info and c.info.id == info.id), None)
                # Recorded before it is sent, so an ack can never arrive for an unknown id.
                self._envelopes[envelope_id] = Envelope(
                    envelope_id=envelope_id,
                    type=type,
                    payload=copy.deepcopy(payload),
                    accepts_response_payload=accepts_response_payload,
                    connection=info.id,
                    sent=time.monotonic(),
                )
            if conn is not None and self._send(conn, data):
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
        data = encode_frame(OP_TEXT, json.dumps(message).encode("utf-8"))
        with self._lock:
            targets = [c for c in self._conns if c.info and not c.info.retired]
            for conn in targets:
                assert conn.info is not None
                conn.info.retired = True
                if close_after is not None:
                    conn.close_at = time.monotonic() + close_after
            self._update_connected()
        return sum(self._send(conn, data) for conn in targets)

    def ping(self, payload: bytes = b"", timeout: float = 5.0) -> float:
        """Ping the newest live connection; return the seconds until its pong came back."""
        if len(payload) > 125:
            raise ValueError("a ping payload is at most 125 bytes")
        info = self.wait_connected(timeout)
        with self._lock:
            conn = next((c for c in self._conns if c.info and c.info.id == info.id), None)
            seen = len(self._pongs)
        started = time.monotonic()
        if conn is None or not self._send(conn, encode_frame(OP_PING, payload)):
            raise ConnectionError("the connection closed before the ping went out")
        with self._changed:
            while True:
                if any(p == (info.id, payload) for p in self._pongs[seen:]):
                    return time.monotonic() - started
                remaining = started + timeout - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"no pong in {timeout} s")
                self._changed.wait(remaining)

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
        """Handshakes answered with an HTTP error: (status, why)."""
        with self._lock:
            return list(self._refused)

    @property
    def pings_received(self) -> int:
        with self._lock:
            return self._pings_received

    # ------------------------------------------------------------------ internals (lock held)

    def _live(self) -> _Conn | None:
        for conn in reversed(self._conns):
            if conn.info is not None and not conn.info.retired and not conn.close_sent:
                return conn
        return None

    def _update_connected(self) -> None:
        if self._live() is not None:
            self.connected.set()
        else:
            self.connected.clear()
        self._changed.notify_all()

    # ------------------------------------------------------------------ socket plumbing

    def _accept_loop(self, listener: socket.socket) -> None:
        while not self._stopping.is_set():
            try:
                sock, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn = _Conn(sock)
            thread = threading.Thread(
                target=self._serve,
                args=(conn,),
                name=f"FakeSocketMode:{self.port}:conn",
                daemon=True,
            )
            with self._lock:
                self._threads = [t for t in self._threads if t.is_alive()]
                self._threads.append(thread)
            thread.start()

    def _send(self, conn: _Conn, data: bytes) -> bool:
        with conn.send_lock:
            try:
                conn.sock.sendall(data)
            except OSError:
                return False
        return True

    def _serve(self, conn: _Conn) -> None:
        sock = conn.sock
        sock.settimeout(SEND_TIMEOUT)
        selector = selectors.DefaultSelector()
        try:
            selector.register(sock, selectors.EVENT_READ)
            if self._handshake(conn, selector):
                self._run(conn, selector)
        except OSError:
            pass  # the peer vanished; nothing left to tell it
        finally:
            selector.close()
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
            with self._lock:
                if conn in self._conns:
                    self._conns.remove(conn)
                if conn.info is not None:
                    conn.info.closed = time.monotonic()
                    if conn.info.close_code is None:
                        conn.info.close_code = CLOSE_ABNORMAL
                self._update_connected()

    def _recv_some(self, conn: _Conn, selector: selectors.BaseSelector) -> bytes | None:
        """Bytes that arrived within one tick: b"" at end of stream, None if none came."""
        if not selector.select(TICK):
            return None
        try:
            return conn.sock.recv(65_536)
        except (ConnectionResetError, ConnectionAbortedError):
            return b""

    def _handshake(self, conn: _Conn, selector: selectors.BaseSelector) -> bool:
        deadline = time.monotonic() + HANDSHAKE_TIMEOUT
        data = bytearray()
        while b"\r\n\r\n" not in data:
            if len(data) > MAX_HANDSHAKE_BYTES:
                return self._refuse(conn, 400, "handshake too long")
            if self._stopping.is_set() or time.monotonic() > deadline:
                return False
            chunk = self._recv_some(conn, selector)
            if chunk == b"":
                return False
            if chunk:
                data += chunk
        head, _, rest = bytes(data).partition(b"\r\n\r\n")
        conn.buffer += rest  # frames the client sent right behind its request
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or parts[0] != "GET" or parts[2] != "HTTP/1.1":
            return self._refuse(conn, 400, f"not a WebSocket request line: {lines[0]!r}")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        target = urlsplit(parts[1])
        if target.path.rstrip("/") != "/link":
            return self._refuse(conn, 404, f"no such path {target.path!r}")
        if headers.get("upgrade", "").lower() != "websocket" or "upgrade" not in {
            token.strip().lower() for token in headers.get("connection", "").split(",")
        }:
            return self._refuse(conn, 400, "not an upgrade to websocket")
        if headers.get("sec-websocket-version") != "13":
            return self._refuse(conn, 426, "Sec-WebSocket-Version must be 13")
        key = headers.get("sec-websocket-key", "")
        try:
            valid_key = len(base64.b64decode(key, validate=True)) == 16
        except (binascii.Error, ValueError):
            valid_key = False
        if not valid_key:
            return self._refuse(conn, 400, "Sec-WebSocket-Key must be 16 bytes in base64")
        ticket = (parse_qs(target.query).get("ticket") or [""])[-1]
        with self._lock:
            used = self._tickets.get(ticket)
            if used is False:
                self._tickets[ticket] = True
        if used is None:
            return self._refuse(conn, 401, "unknown ticket")
        if used:
            # Not documented: Slack's URLs are single-use; a client reconnecting must call
            # apps.connections.open again.
            return self._refuse(conn, 401, "ticket already used")
        response = (
            "HTTP/1.1 101 Switching Protocols\r\n"
            "Upgrade: websocket\r\n"
            "Connection: Upgrade\r\n"
            f"Sec-WebSocket-Accept: {accept_key(key)}\r\n"
            "\r\n"
        )
        if not self._send(conn, response.encode("ascii")):
            return False
        with self._lock:
            conn.info = ConnectionInfo(
                id=len(self._connections) + 1, ticket=ticket, opened=time.monotonic()
            )
            self._connections.append(conn.info)
            self._conns.append(conn)
            live = sum(1 for c in self._conns if c.info is not None)
            hello = {
                "type": "hello",
                "num_connections": live,
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
            sent = self._send(conn, encode_frame(OP_TEXT, json.dumps(hello).encode("utf-8")))
        return sent

    def _refuse(self, conn: _Conn, status: int, why: str) -> bool:
        reasons = {400: "Bad Request", 401: "Unauthorized", 404: "Not Found"}
        reason = reasons.get(status, "Upgrade Required")
        body = why.encode("utf-8")
        extra = "Sec-WebSocket-Version: 13\r\n" if status == 426 else ""
        response = (
            f"HTTP/1.1 {status} {reason}\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\n"
            f"{extra}"
            "Connection: close\r\n"
            "\r\n"
        ).encode("ascii") + body
        with self._lock:
            self._refused.append((status, why))
        self._send(conn, response)
        return False

    def _run(self, conn: _Conn, selector: selectors.BaseSelector) -> None:
        assert conn.info is not None
        fragments: list[bytes] = []
        fragment_opcode = 0
        close_deadline: float | None = None
        while True:
            now = time.monotonic()
            if not conn.close_sent:
                if self._stopping.is_set():
                    self._start_close(conn, CLOSE_GOING_AWAY, "server stopping")
                elif conn.close_at is not None and now >= conn.close_at:
                    self._start_close(conn, CLOSE_GOING_AWAY, "disconnected")
                if conn.close_sent:
                    close_deadline = now + CLOSE_WAIT
            elif close_deadline is not None and now >= close_deadline:
                return
            try:
                while (frame := _take_frame(conn.buffer)) is not None:
                    if frame.opcode == OP_CLOSE:
                        self._on_close_frame(conn, frame.payload)
                        return
                    if frame.opcode == OP_PING:
                        with self._lock:
                            self._pings_received += 1
                        self._send(conn, encode_frame(OP_PONG, frame.payload))
                    elif frame.opcode == OP_PONG:
                        with self._lock:
                            self._pongs.append((conn.info.id, frame.payload))
                            self._changed.notify_all()
                    elif frame.opcode == OP_CONTINUATION:
                        if not fragments:
                            raise _ProtocolError(CLOSE_PROTOCOL_ERROR, "continuation of nothing")
                        fragments.append(frame.payload)
                    elif fragments:
                        raise _ProtocolError(CLOSE_PROTOCOL_ERROR, "new message inside a message")
                    else:
                        fragment_opcode = frame.opcode
                        fragments.append(frame.payload)
                    if frame.opcode in (OP_TEXT, OP_BINARY, OP_CONTINUATION):
                        if sum(len(f) for f in fragments) > MAX_MESSAGE_BYTES:
                            raise _ProtocolError(CLOSE_TOO_BIG, "message too big")
                        if frame.fin:
                            message = b"".join(fragments)
                            fragments = []
                            if fragment_opcode == OP_TEXT:
                                self._on_text(conn, message)
            except _ProtocolError as e:
                if not conn.close_sent:
                    self._start_close(conn, e.code, e.reason)
                return
            chunk = self._recv_some(conn, selector)
            if chunk == b"":
                return
            if chunk:
                conn.buffer += chunk

    def _start_close(self, conn: _Conn, code: int, reason: str) -> None:
        with self._lock:
            conn.close_sent = True
            self._update_connected()
        self._send(conn, encode_frame(OP_CLOSE, close_payload(code, reason)))

    def _on_close_frame(self, conn: _Conn, payload: bytes) -> None:
        assert conn.info is not None
        code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
        with self._lock:
            conn.info.close_code = code
            answer = not conn.close_sent
            conn.close_sent = True
            self._update_connected()
        if answer:
            # Answer the close handshake by echoing the status code (RFC 6455 5.5.1).
            self._send(conn, encode_frame(OP_CLOSE, payload[:2]))

    def _on_text(self, conn: _Conn, data: bytes) -> None:
        assert conn.info is not None
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise _ProtocolError(CLOSE_INVALID_DATA, "text frame is not UTF-8") from e
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

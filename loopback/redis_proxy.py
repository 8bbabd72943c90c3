"""A Redis in between: a loopback TCP proxy that speaks RESP and fails what a test says, when it
says, in front of a real Redis.

`RedisProxy(upstream_port).start()` listens on a free port; point the app's REDIS_URL at
`proxy.url`. Commands pass through one at a time per connection (a pipeline is a run of
commands), so a fault can hit exactly one of them:

- `drop_before(command, key)`: the connection is closed instead of sending the command:
  Redis never sees it (a blip: the client sees a connection error);
- `drop_after(command, key, skip=0)`: the command reaches Redis and runs, then the connection is
  closed before the answer comes back: Redis did it, the client does not know (`skip`: the
  first that many matching commands pass, so a test can hit the Nth);
- `pause(seconds)`: nothing passes for a while (Redis paused, between any two writes).

`command` is a Redis command name (`SET`, `HSET`, `EVALSHA`, ...), or "*" for any; `key` a
substring the command's arguments must contain (`":event:"`), or "" for any. Each fault hits
`times` commands, then is spent. `seen` records every command that went through (name and
key); `fired` every fault that hit, (when, command name).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["RedisProxy"]

_CRLF = b"\r\n"


class _Closed(Exception):
    pass


class _Reader:
    """Reads RESP values off a socket, keeping their raw bytes to pass them on."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise _Closed
        self.buffer += chunk

    def _line(self) -> bytes:
        while _CRLF not in self.buffer:
            self._fill()
        line, _, self.buffer = self.buffer.partition(_CRLF)
        return line

    def _exactly(self, n: int) -> bytes:
        while len(self.buffer) < n:
            self._fill()
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def value(self) -> tuple[bytes, object]:
        """One RESP value: its raw bytes and what it holds (bytes, int, list or None)."""
        line = self._line()
        kind, rest = line[:1], line[1:]
        raw = line + _CRLF
        if kind in (b"+", b"-", b",", b"#", b"(", b"_"):  # simple; RESP3 double, bool, big, null
            return raw, rest
        if kind == b":":
            return raw, int(rest)
        if kind in (b"$", b"=", b"!"):  # bulk; RESP3 verbatim string and blob error
            n = int(rest)
            if n < 0:
                return raw, None
            data = self._exactly(n + 2)
            return raw + data, data[:-2]
        if kind in (b"*", b"~", b">", b"%", b"|"):  # array; RESP3 set, push, map, attribute
            n = int(rest) * (2 if kind in (b"%", b"|") else 1)
            items = []
            for _ in range(max(n, 0)):
                item_raw, item = self.value()
                raw += item_raw
                items.append(item)
            if kind == b"|":  # an attribute comes before the value it describes
                value_raw, value = self.value()
                return raw + value_raw, value
            return raw, items if int(rest) >= 0 else None
        # An inline command (`PING\r\n`), as redis-cli sends: words separated by spaces.
        return raw, line.split()


@dataclass
class _Fault:
    when: str  # "before" | "after"
    command: str
    key: str
    times: int
    skip: int = 0

    def hits(self, name: str, args: list[bytes]) -> bool:
        if self.times <= 0 or self.command not in (name, "*"):
            return False
        if self.key and not any(self.key.encode() in a for a in args):
            return False
        if self.skip > 0:
            self.skip -= 1
            return False
        return True


@dataclass
class RedisProxy:
    upstream_port: int
    upstream_host: str = "127.0.0.1"
    port: int = 0
    seen: list[tuple[str, str]] = field(default_factory=list)
    fired: list[tuple[str, str]] = field(default_factory=list)
    _faults: list[_Fault] = field(default_factory=list)
    _paused_until: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: socket.socket | None = None
    _open: set[socket.socket] = field(default_factory=set)
    _stopped: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisProxy:
        server = socket.create_server(("127.0.0.1", self.port))
        self.port = server.getsockname()[1]
        self._server = server
        threading.Thread(target=self._accept, name="redis-proxy", daemon=True).start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        if self._server is not None:
            self._server.close()
        with self._lock:
            for sock in list(self._open):
                _close(sock)

    # -- what a test asks ----------------------------------------------------------------
    def drop_before(self, command: str, key: str = "", *, times: int = 1) -> None:
        self._add(_Fault("before", command.upper(), key, times))

    def drop_after(self, command: str, key: str = "", *, times: int = 1, skip: int = 0) -> None:
        """`skip`: let that many matching commands through first (hit the (skip+1)th)."""
        self._add(_Fault("after", command.upper(), key, times, skip))

    def pause(self, seconds: float) -> None:
        with self._lock:
            self._paused_until = time.monotonic() + seconds

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
            self._paused_until = 0.0

    def spent(self) -> bool:
        """Whether every fault asked for has hit."""
        with self._lock:
            return all(f.times <= 0 for f in self._faults)

    def _add(self, fault: _Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def _fault_for(self, name: str, args: list[bytes]) -> str | None:
        with self._lock:
            for fault in self._faults:
                if fault.hits(name, args):
                    fault.times -= 1
                    self.fired.append((fault.when, name))
                    return fault.when
        return None

    # -- the plumbing --------------------------------------------------------------------
    def _accept(self) -> None:
        assert self._server is not None
        while not self._stopped.is_set():
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection((self.upstream_host, self.upstream_port))
        except OSError:
            _close(client)
            return
        with self._lock:
            self._open.update((client, upstream))
        commands, answers = _Reader(client), _Reader(upstream)
        try:
            while True:
                raw, parsed = commands.value()
                words = [w if isinstance(w, bytes) else str(w).encode() for w in parsed or ()]  # type: ignore[union-attr]
                name = words[0].decode(errors="replace").upper() if words else ""
                self._wait_while_paused()
                fault = self._fault_for(name, words[1:])
                self.seen.append(
                    (name, words[1].decode(errors="replace") if len(words) > 1 else "")
                )
                if fault == "before":
                    return
                upstream.sendall(raw)
                answer, _ = answers.value()
                if fault == "after":
                    return
                client.sendall(answer)
        except (_Closed, OSError, ValueError):
            return
        finally:
            for sock in (client, upstream):
                _close(sock)
            with self._lock:
                self._open.difference_update((client, upstream))

    def _wait_while_paused(self, sleep: Callable[[float], None] = time.sleep) -> None:
        while True:
            with self._lock:
                left = self._paused_until - time.monotonic()
            if left <= 0 or self._stopped.is_set():
                return
            sleep(min(left, 0.05))


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()

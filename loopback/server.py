"""The one loopback HTTP server the fakes are built on: 127.0.0.1, a free port or a given one,
a thread per request, start/stop/``url``/context manager, and no access log.

A fake subclasses ``LoopbackServer`` and implements ``handle(request)``; the request is the
standard library's ``BaseHTTPRequestHandler``, so a fake reads ``request.path``,
``request.headers`` and ``request.rfile`` and answers through ``send_response`` and
``wfile`` as usual.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_request(
    url: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    *,
    timeout: float = 5.0,
) -> tuple[int, bytes, dict[str, str]]:
    """GET ``url`` (or POST ``body``): status, body and headers of any HTTP answer; no
    answer at all raises OSError."""
    request = urllib.request.Request(url, data=body, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as r:
            return r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as e:
        with e:
            return e.code, e.read(), dict(e.headers)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # The default backlog of 5 drops connections when many clients call at once, and the
    # client's SYN retry then adds a full second to those calls.
    request_queue_size = 128
    owner: LoopbackServer


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.owner._track(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.owner._untrack(self.connection)

    def _serve(self) -> None:
        if self.command not in self.server.owner.http_methods:
            # What BaseHTTPRequestHandler answers for a method it has no do_ for.
            self.send_error(501, f"Unsupported method ({self.command!r})")
            return
        self.server.owner.handle(self)

    do_GET = do_POST = do_PUT = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:
        # Keep output clean; every fake records the requests it answers.
        pass


class _KeepAliveHandler(_Handler):
    # HTTP/1.1 keep-alive: clients with a connection pool reuse sockets, and streams can be
    # sent with chunked transfer encoding.
    protocol_version = "HTTP/1.1"


class Served:
    """A loopback server's lifecycle: ``start`` returns it serving, ``stop`` is idempotent,
    and a ``with`` block does both."""

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class LoopbackServer(Served):
    """A threaded HTTP server on 127.0.0.1; subclasses answer requests in ``handle``."""

    name = "Loopback"  # threads are named "<name>:<port>"
    http_methods: tuple[str, ...] = ("GET", "POST")
    keep_alive = False  # HTTP/1.1 with persistent connections (else HTTP/1.0)

    def __init__(self) -> None:
        self.root = ""  # http://127.0.0.1:<port> while serving
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._connections_lock = threading.Lock()
        self._connections: set[socket.socket] = set()

    @property
    def url(self) -> str:
        """The base URL a client is given; the root unless a fake serves under a path."""
        return self.root

    @property
    def serving(self) -> bool:
        return self._server is not None

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        raise NotImplementedError

    def start(self, *, host: str = "127.0.0.1", port: int = 0) -> Self:
        """Serve on ``host:port`` (a free port by default); raises OSError if it is taken."""
        if self._server is not None:
            raise RuntimeError(f"{type(self).__name__} is already started")
        server = _Server((host, port), _KeepAliveHandler if self.keep_alive else _Handler)
        server.owner = self
        host, port = server.server_address[:2]
        self.root = f"http://{host}:{port}"
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.01},
            name=f"{self.name}:{port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and join the server thread; idempotent."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None:
            return
        server.shutdown()
        if self.keep_alive:
            # Idle keep-alive connections block their handler thread in a read; shutting
            # the socket down ends that read, so every connection is closed by the time
            # stop() returns.
            with self._connections_lock:
                open_sockets = list(self._connections)
            for sock in open_sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        server.server_close()
        if thread is not None:
            thread.join()

    def _track(self, sock: socket.socket) -> None:
        with self._connections_lock:
            self._connections.add(sock)

    def _untrack(self, sock: socket.socket) -> None:
        with self._connections_lock:
            self._connections.discard(sock)


def send_bytes(
    request: BaseHTTPRequestHandler,
    status: int,
    data: bytes,
    content_type: str,
    headers: dict[str, str] | None = None,
) -> None:
    """Answer ``request`` with ``data``; a client that already hung up gets nothing."""
    try:
        request.send_response(status)
        request.send_header("Content-Type", content_type)
        request.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            request.send_header(name, value)
        request.end_headers()
        request.wfile.write(data)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the client gave up (e.g. its timeout); nothing to answer

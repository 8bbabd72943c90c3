"""A loopback fake of the Anthropic Messages API, for tests.

This module owns ``FakeAnthropic``: a real HTTP/1.1 server on 127.0.0.1 that the real
``anthropic.Anthropic(api_key=..., base_url=fake.url)`` talks to. It serves
``POST /v1/messages`` only, both as one JSON ``Message`` and as a server-sent event
stream (``"stream": true``), and records every such request as a ``Request``.

What it checks, as the API does: the API key (``x-api-key``, or ``Authorization:
Bearer`` which the 2.x SDKs send), the ``anthropic-version`` header, and the request
body fields a Messages call uses, answering the documented error shape
``{"type": "error", "error": {"type": ..., "message": ...}, "request_id": ...}`` with a
``request-id`` header. Under ``anthropic-version: 2026-10-21`` (what SDK 2.x sends)
``temperature``, ``top_p`` and ``top_k`` are refused, as that version documents.

What it answers: queued texts (``reply_with``), or a text computed from the request
(``respond``), or a deterministic default (``default_reply``). Token counts are
approximate (``approx_tokens``: one token per 4 characters) and drive ``usage``,
``max_tokens`` truncation and prompt caching: the prefix up to each ``cache_control``
breakpoint (order: tools, system, messages) is written to the cache the first time it
is seen and read from it afterwards, once it is at least ``min_cache_tokens`` long.

Faults for the next requests: HTTP errors (``fail_next``, with ``retry-after``, or as
an ``error`` event inside a started stream), malformed 200 bodies (``malformed_next``),
a forced ``stop_reason`` (``stop_reason_next``) and a slow answer (``hang_next``).
Faults and queued replies are used by requests that pass authentication and
validation, in arrival order; a request that fails (injected error, bad body, client
timeout) does not use up a queued reply, so a retry gets it.

Timing: ``latency`` passes before any response starts; a stream sends one
``text_delta`` per word (``split_deltas``) with ``token_delay`` between them, and a
non-streaming answer waits as long as that stream would take. ``stop()`` drops requests
still waiting, closes idle keep-alive connections and joins every handler thread.

Behaviour that the docs leave open and this fake had to pick is marked "Not
documented" in comments.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import re
import secrets
import select
import socket
import string
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import urlsplit

# Error type per HTTP status, from the API's errors page.
ERROR_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}
DEFAULT_ERROR_MESSAGES: dict[int, str] = {
    400: "Invalid request",
    401: "invalid x-api-key",
    402: "Your credit balance is too low to access the Anthropic API.",
    403: "Your API key does not have permission to use the specified resource.",
    404: "Not found",
    409: "Conflict",
    413: "Request exceeds the maximum allowed number of bytes.",
    429: "This request would exceed your organization's rate limit. Please try again later.",
    500: "Internal server error",
    504: "Request timed out",
    529: "Overloaded",
}
STOP_REASONS = (
    "end_turn",
    "max_tokens",
    "stop_sequence",
    "tool_use",
    "pause_turn",
    "refusal",
    "model_context_window_exceeded",
)
# The versions the API accepts in the anthropic-version header.
API_VERSIONS = ("2023-01-01", "2023-06-01", "2026-10-21")
# Sampling parameters that anthropic-version 2026-10-21 refuses with a 400.
SAMPLING_PARAMS = ("temperature", "top_p", "top_k")
# Top-level body fields of POST /v1/messages; anything else is "Extra inputs are not
# permitted", like the API's validation. (user_profile_id and workspace_id are headers.)
BODY_FIELDS = frozenset(
    {
        "model",
        "max_tokens",
        "messages",
        "system",
        "stream",
        "metadata",
        "stop_sequences",
        "tools",
        "tool_choice",
        "thinking",
        "service_tier",
        "cache_control",
        "container",
        "diagnostics",
        "inference_geo",
        "output_config",
        "speed",
        "context_management",
        "mcp_servers",
        *SAMPLING_PARAMS,
    }
)
MAX_CACHE_BREAKPOINTS = 4  # "A maximum of 4 blocks with cache_control may be provided."
# The prompt caching docs give 1024 tokens as the minimum cacheable prompt for most
# models (Sonnet 4.x, Opus 4/4.1); others need 512, 2048 or 4096. 1024 is the default.
DEFAULT_MIN_CACHE_TOKENS = 1024
CHARS_PER_TOKEN = 4

MalformedKind = Literal["truncated", "missing_content", "disconnect"]
Reply = str | Sequence[str]


def approx_tokens(text: str) -> int:
    """The fake's token count for ``text``: one token per 4 characters, rounded up."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def split_deltas(text: str) -> list[str]:
    """How the fake streams ``text``: one ``text_delta`` per word (with its whitespace)."""
    chunks = re.findall(r"\s*\S+\s*", text)
    return chunks or ([text] if text else [])


def _block_text(block: Any) -> str:
    if not isinstance(block, dict):
        return ""
    if block.get("type") == "text":
        return str(block.get("text", ""))
    if block.get("type") == "tool_result":
        return _content_text(block.get("content"))
    return ""


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(t for t in (_block_text(b) for b in content) if t)
    return ""


_ENTRY_MARKERS = ("-", "*", "•")


def default_reply(body: dict[str, Any]) -> str:
    """The text answered when no reply is queued and no ``respond`` handler is set.

    Counts the "timeline entries" of the user text: non-empty lines that start with a
    bullet (``-``, ``*``, ``•``) or a digit (a timestamp), so a test can check that a
    draft was asked with the timeline it expects.
    """
    user = "\n".join(
        _content_text(m.get("content"))
        for m in body.get("messages") or []
        if isinstance(m, dict) and m.get("role") == "user"
    )
    entries = 0
    for line in user.splitlines():
        stripped = line.strip()
        if stripped and (stripped.startswith(_ENTRY_MARKERS) or stripped[0].isdigit()):
            entries += 1
    noun = "entry" if entries == 1 else "entries"
    return f"Draft based on {entries} timeline {noun}."


@dataclass
class Request:
    """One ``POST /v1/messages`` as the fake received and answered it."""

    body: dict[str, Any]
    headers: dict[str, str]  # lower-cased names
    stream: bool
    started: float  # time.monotonic() when the request arrived
    finished: float = 0.0  # time.monotonic() when the last byte was sent
    status: int = 0  # HTTP status sent; 499 if the client left before the answer
    request_id: str = ""
    error_type: str | None = None  # error.type answered (also for a mid-stream error)
    reply: list[str] | None = None  # the text blocks sent, after truncation
    stop_reason: str | None = None
    usage: dict[str, Any] | None = None
    deltas: int = 0  # text_delta events sent (streaming), or that generation took
    malformed: str | None = None  # the malformed_next kind answered, if any
    disconnected: bool = False  # the client went away before the answer was complete

    @property
    def text(self) -> str:
        """The reply text, all blocks joined."""
        return "".join(self.reply or [])

    def system_text(self) -> str:
        """All system text: the ``system`` field, then any ``role: system`` messages."""
        parts = [_content_text(self.body.get("system"))]
        parts += [
            _content_text(m.get("content")) for m in self._messages() if m.get("role") == "system"
        ]
        return "\n".join(p for p in parts if p)

    def user_text(self) -> str:
        """All text of the user messages, joined with newlines."""
        texts = [
            _content_text(m.get("content")) for m in self._messages() if m.get("role") == "user"
        ]
        return "\n".join(t for t in texts if t)

    def cache_controls(self) -> list[dict[str, Any]]:
        """The blocks that carry ``cache_control``: tools, then system, then messages."""
        found = [t for t in self.body.get("tools") or [] if _has_cache_control(t)]
        system = self.body.get("system")
        if isinstance(system, list):
            found += [b for b in system if _has_cache_control(b)]
        for message in self._messages():
            content = message.get("content")
            if isinstance(content, list):
                found += [b for b in content if _has_cache_control(b)]
        return found

    def _messages(self) -> list[dict[str, Any]]:
        messages = self.body.get("messages")
        if not isinstance(messages, list):
            return []
        return [m for m in messages if isinstance(m, dict)]


def _has_cache_control(block: Any) -> bool:
    return isinstance(block, dict) and block.get("cache_control") is not None


class _BadRequest(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass
class _Fault:
    status: int
    remaining: int
    retry_after: float | None
    message: str
    mid_stream: bool


@dataclass
class _Malformed:
    kind: MalformedKind
    remaining: int


@dataclass
class _Plan:
    """What to answer one valid request with, decided under the lock."""

    fault: _Fault | None = None
    malformed: MalformedKind | None = None
    stop_reason: str | None = None
    queued: Reply | None = None
    handler: Callable[[dict[str, Any]], Reply] | None = None


@dataclass
class _Answer:
    blocks: list[str]
    stop_reason: str
    stop_sequence: str | None
    usage: dict[str, Any]
    output_tokens: int
    stop_details: dict[str, Any] | None = None


@dataclass
class _Segment:
    """One cacheable unit of the prompt, in the API's order: tools, system, messages."""

    canonical: str
    tokens: int
    cache_control: dict[str, Any] | None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # The default backlog of 5 drops connections when many clients call at once, and
    # the client's SYN retry then adds a full second to those calls.
    request_queue_size = 128
    fake: FakeAnthropic


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    # HTTP/1.1 keep-alive, as the API serves: the SDK's connection pool reuses sockets,
    # and streams are sent with chunked transfer encoding.
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        self.server.fake._track(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.fake._untrack(self.connection)

    def do_POST(self) -> None:
        self.server.fake._handle(self)

    def do_GET(self) -> None:
        self.server.fake._handle(self)

    def do_PUT(self) -> None:
        self.server.fake._handle(self)

    def do_DELETE(self) -> None:
        self.server.fake._handle(self)

    def log_message(self, format: str, *args: Any) -> None:
        # Keep test output clean; every Messages call is in FakeAnthropic.requests.
        pass


class _ClientGone(Exception):
    """The client closed the connection (its timeout, or it closed a stream early)."""


class _Stopped(Exception):
    """The fake is stopping: a waiting request is dropped without an answer."""


def _random_id(prefix: str) -> str:
    alphabet = string.ascii_letters + string.digits
    return prefix + "01" + "".join(secrets.choice(alphabet) for _ in range(22))


class FakeAnthropic:
    """A loopback Anthropic Messages API; see the module docstring."""

    def __init__(
        self,
        *,
        api_key: str = "sk-ant-test",
        latency: float = 0.0,
        token_delay: float = 0.0,
        min_cache_tokens: int = DEFAULT_MIN_CACHE_TOKENS,
    ) -> None:
        self.api_key = api_key
        self.latency = float(latency)  # seconds before any response starts
        self.token_delay = float(token_delay)  # seconds between text deltas
        self.min_cache_tokens = int(min_cache_tokens)
        self.url = ""
        self.requests: list[Request] = []
        # A respond() handler that raised: its request was answered with a 500.
        self.handler_errors: list[BaseException] = []
        self._lock = threading.Lock()
        self._replies: deque[Reply] = deque()
        self._handler: Callable[[dict[str, Any]], Reply] | None = None
        self._faults: deque[_Fault] = deque()
        self._malformed: deque[_Malformed] = deque()
        self._stop_reasons: deque[str] = deque()
        self._hangs: deque[float] = deque()
        self._cache: set[str] = set()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._connections: set[socket.socket] = set()

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> FakeAnthropic:
        if self._server is not None:
            raise RuntimeError("FakeAnthropic is already started")
        self._stopping.clear()
        server = _Server(("127.0.0.1", 0), _Handler)
        server.fake = self
        host, port = server.server_address[:2]
        self.url = f"http://{host}:{port}"
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.01},
            name=f"FakeAnthropic:{port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None:
            return
        # Wakes requests waiting out latency, hang_next or token_delay.
        self._stopping.set()
        server.shutdown()
        # Idle keep-alive connections block their handler thread in a read; shutting
        # the socket down ends that read, so server_close() can join every thread and
        # every connection socket is closed by the time stop() returns.
        with self._lock:
            open_sockets = list(self._connections)
        for sock in open_sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        server.server_close()
        if thread is not None:
            thread.join()

    def __enter__(self) -> FakeAnthropic:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _track(self, sock: socket.socket) -> None:
        with self._lock:
            self._connections.add(sock)

    def _untrack(self, sock: socket.socket) -> None:
        with self._lock:
            self._connections.discard(sock)

    # ------------------------------------------------------------------ scripting

    def reply_with(self, *texts: Reply) -> None:
        """Queue the texts of the next replies, first in first out.

        A ``str`` is one text block; a list of strings is one reply of several text
        blocks. When the queue is empty the ``respond`` handler, else ``default_reply``,
        gives the text.
        """
        for text in texts:
            if not isinstance(text, str) and not all(isinstance(t, str) for t in text):
                raise TypeError(f"a reply is a str or a list of str, not {text!r}")
            with self._lock:
                self._replies.append(text if isinstance(text, str) else list(text))

    def respond(self, handler: Callable[[dict[str, Any]], Reply] | None) -> None:
        """Compute replies from the request body (when no reply is queued); None unsets."""
        with self._lock:
            self._handler = handler

    def fail_next(
        self,
        status: int,
        *,
        times: int = 1,
        retry_after: float | None = None,
        message: str | None = None,
        mid_stream: bool = False,
    ) -> None:
        """Answer the next ``times`` requests with an HTTP error ``status``.

        ``retry_after`` (seconds) is sent as the ``retry-after`` header, which the SDK
        honours before its own backoff; the API sends whole seconds, fractions are
        allowed here to keep tests fast. With ``mid_stream`` a streaming request gets a
        200 and some text, then an ``error`` event (the API's way to fail a stream that
        has started); a non-streaming request gets the HTTP error as usual.
        """
        if status not in ERROR_TYPES:
            raise ValueError(f"no error type for status {status}; one of {sorted(ERROR_TYPES)}")
        if times < 1:
            raise ValueError("times must be at least 1")
        fault = _Fault(
            status=status,
            remaining=times,
            retry_after=retry_after,
            message=message or DEFAULT_ERROR_MESSAGES[status],
            mid_stream=mid_stream,
        )
        with self._lock:
            self._faults.append(fault)

    def malformed_next(self, *, times: int = 1, kind: MalformedKind = "truncated") -> None:
        """Answer the next ``times`` requests with a 200 that is not a valid Message.

        ``truncated``: the JSON body (or the ``message_start`` event's data) is cut in
        half. ``missing_content``: a Message without ``content``. ``disconnect``: the
        connection closes half way through the body or the stream.

        What SDK 2.14 makes of them (pinned in tests/unit/test_fake_anthropic.py):
        truncated raises ``json.JSONDecodeError``; missing_content returns a Message
        whose ``content`` is None (no response validation by default) or, streamed,
        raises ``AttributeError``; disconnect raises ``anthropic.APIConnectionError``
        (retried like one) or, streamed, a bare ``httpx2.RemoteProtocolError``. The
        garbled answer does not use up a queued reply.
        """
        if kind not in ("truncated", "missing_content", "disconnect"):
            raise ValueError(f"unknown malformed kind {kind!r}")
        if times < 1:
            raise ValueError("times must be at least 1")
        with self._lock:
            self._malformed.append(_Malformed(kind=kind, remaining=times))

    def stop_reason_next(self, reason: str) -> None:
        """The next reply ends with ``stop_reason`` = ``reason`` (queued, FIFO)."""
        if reason not in STOP_REASONS:
            raise ValueError(f"unknown stop_reason {reason!r}; one of {STOP_REASONS}")
        with self._lock:
            self._stop_reasons.append(reason)

    def hang_next(self, seconds: float) -> None:
        """The next valid request waits ``seconds`` (on top of ``latency``) before its answer.

        If the client gives up meanwhile (its timeout), the request is recorded with
        status 499 and any queued reply is left for the next request.
        """
        with self._lock:
            self._hangs.append(float(seconds))

    def forget_cache(self) -> None:
        """Empty the prompt cache (the API's entries expire after 5 minutes or 1 hour)."""
        with self._lock:
            self._cache.clear()

    def reset(self) -> None:
        """Forget recorded requests, queued replies, faults and the prompt cache."""
        with self._lock:
            self.requests.clear()
            self.handler_errors.clear()
            self._replies.clear()
            self._handler = None
            self._faults.clear()
            self._malformed.clear()
            self._stop_reasons.clear()
            self._hangs.clear()
            self._cache.clear()

    # ------------------------------------------------------------------ HTTP

    def _handle(self, handler: _Handler) -> None:
        arrived = time.monotonic()
        request_id = _random_id("req_")
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length > 0 else b""
        path = urlsplit(handler.path).path.rstrip("/")
        if handler.command != "POST" or path != "/v1/messages":
            self._send_not_found(handler, f"Not found: {handler.command} {path}", request_id)
            return

        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
        body = parsed if isinstance(parsed, dict) else {}
        headers = {name.lower(): value for name, value in handler.headers.items()}
        record = Request(
            body=body,
            headers=headers,
            stream=body.get("stream") is True,
            started=arrived,
            request_id=request_id,
        )
        with self._lock:
            self.requests.append(record)

        try:
            self._answer(handler, record, raw, parsed)
        except _Stopped:
            record.disconnected = True
            handler.close_connection = True
        except _ClientGone:
            record.disconnected = True
            if not record.status:
                # Not documented: nginx's "client closed request", as nothing was sent.
                record.status = 499
            handler.close_connection = True
        except (BrokenPipeError, ConnectionResetError):
            record.disconnected = True
            handler.close_connection = True
        finally:
            record.finished = time.monotonic()

    def _answer(self, handler: _Handler, record: Request, raw: bytes, parsed: Any) -> None:
        self._pause(handler, self.latency)
        auth_error = self._auth_error(record.headers)
        if auth_error:
            self._fail(handler, record, 401, auth_error)
            return
        version = record.headers.get("anthropic-version")
        if not version:
            self._fail(handler, record, 400, "anthropic-version: header is required")
            return
        if version not in API_VERSIONS:
            # Not documented: the wording for an unknown version.
            self._fail(handler, record, 400, f"anthropic-version: unknown version {version!r}")
            return
        if not isinstance(parsed, dict):
            message = "Request body must be a JSON object" if raw else "Request body is empty"
            self._fail(handler, record, 400, message)
            return
        try:
            segments = _validate(parsed, version)
        except _BadRequest as bad:
            self._fail(handler, record, 400, bad.message)
            return

        with self._lock:
            hang = self._hangs.popleft() if self._hangs else 0.0
        # Wait before taking a reply, so a client that gives up leaves it for its retry.
        self._pause(handler, hang)
        plan = self._plan(record.stream)
        fault = plan.fault
        if fault is not None and not (fault.mid_stream and record.stream):
            headers = {}
            if fault.retry_after is not None:
                headers["retry-after"] = _seconds(fault.retry_after)
            self._fail(handler, record, fault.status, fault.message, headers)
            return

        try:
            blocks = self._reply_blocks(plan, parsed)
        except Exception as exc:  # a test's respond() handler raised
            with self._lock:
                self.handler_errors.append(exc)
            self._fail(handler, record, 500, f"respond() handler raised {exc!r}")
            return
        answer = self._compose(parsed, segments, blocks, plan.stop_reason)
        record.reply = answer.blocks
        record.stop_reason = answer.stop_reason
        record.usage = answer.usage
        if record.stream:
            self._stream(handler, record, parsed, answer, plan.malformed, fault)
        else:
            self._json(handler, record, parsed, answer, plan.malformed)

    def _auth_error(self, headers: dict[str, str]) -> str | None:
        key = headers.get("x-api-key")
        if key is None:
            scheme, _, token = headers.get("authorization", "").partition(" ")
            key = token.strip() if scheme.lower() == "bearer" else None
        if key is None:
            return "x-api-key header is required"
        if key != self.api_key:
            return "invalid x-api-key"
        return None

    def _plan(self, stream: bool) -> _Plan:
        """Take this request's share of the scripted faults and replies."""
        plan = _Plan()
        with self._lock:
            if self._faults:
                fault = self._faults[0]
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults.popleft()
                plan.fault = fault
                if not (fault.mid_stream and stream):
                    return plan
            if plan.fault is None and self._malformed:
                malformed = self._malformed[0]
                malformed.remaining -= 1
                if malformed.remaining <= 0:
                    self._malformed.popleft()
                plan.malformed = malformed.kind
                # A garbled answer does not use up the queued reply: a retry gets it.
                return plan
            if self._stop_reasons:
                plan.stop_reason = self._stop_reasons.popleft()
            if self._replies:
                plan.queued = self._replies.popleft()
            else:
                plan.handler = self._handler
        return plan

    @staticmethod
    def _reply_blocks(plan: _Plan, body: dict[str, Any]) -> list[str]:
        if plan.malformed is not None:
            return ["This reply is garbled on the wire."]
        reply: Reply
        if plan.queued is not None:
            reply = plan.queued
        elif plan.handler is not None:
            reply = plan.handler(body)
        else:
            reply = default_reply(body)
        if isinstance(reply, str):
            return [reply]
        blocks = list(reply)
        if not all(isinstance(b, str) for b in blocks):
            raise TypeError(f"a reply is a str or a list of str, not {reply!r}")
        return blocks

    def _compose(
        self,
        body: dict[str, Any],
        segments: list[_Segment],
        blocks: list[str],
        forced: str | None,
    ) -> _Answer:
        max_tokens = body["max_tokens"]
        stop_reason, stop_sequence = "end_turn", None
        # The model stops at the first stop sequence it writes, leaving it out.
        stops = [s for s in body.get("stop_sequences") or [] if s]
        if stops:
            for i, text in enumerate(blocks):
                hits = [(text.find(s), s) for s in stops if s in text]
                if hits:
                    at, stop_sequence = min(hits)
                    blocks = [*blocks[:i], text[:at]]
                    stop_reason = "stop_sequence"
                    break
        output = sum(approx_tokens(b) for b in blocks)
        if output > max_tokens:
            # Generation ends at max_tokens: keep that many tokens' worth of text.
            budget, kept = max_tokens * CHARS_PER_TOKEN, []
            for text in blocks:
                if budget <= 0:
                    break
                kept.append(text[:budget])
                budget -= len(text)
            blocks, output = kept, max_tokens
            stop_reason, stop_sequence = "max_tokens", None
        if max_tokens == 0:
            # max_tokens 0 warms the prompt cache without generating anything.
            blocks, output, stop_reason = [], 0, "max_tokens"
        else:
            # "output_tokens will be non-zero, even for an empty string response".
            output = max(output, 1)
        stop_details = None
        if forced is not None:
            stop_reason = forced
            stop_sequence = stops[0] if forced == "stop_sequence" and stops else None
            if forced == "refusal":
                stop_details = {"type": "refusal", "category": None, "explanation": None}
        usage = self._usage(body["model"], segments)
        usage["output_tokens"] = output
        return _Answer(blocks, stop_reason, stop_sequence, usage, output, stop_details)

    def _usage(self, model: str, segments: list[_Segment]) -> dict[str, Any]:
        """Input token counts, with prompt caching applied (and the cache updated)."""
        total = sum(s.tokens for s in segments)
        digest = hashlib.sha256(model.encode())
        prefix_tokens = 0
        breakpoints: list[tuple[str, int, str]] = []  # (prefix hash, prefix tokens, ttl)
        for segment in segments:
            digest.update(segment.canonical.encode())
            digest.update(b"\x00")
            prefix_tokens += segment.tokens
            control = segment.cache_control
            if control is not None and prefix_tokens >= self.min_cache_tokens:
                breakpoints.append((digest.hexdigest(), prefix_tokens, control.get("ttl", "5m")))
        read, created = 0, {"5m": 0, "1h": 0}
        with self._lock:
            # A hit is the longest cached prefix; what follows it up to the last
            # breakpoint is written, each stretch at the TTL of the breakpoint ending it.
            hit = max((i for i, b in enumerate(breakpoints) if b[0] in self._cache), default=-1)
            if hit >= 0:
                read = breakpoints[hit][1]
            done = read
            for _, tokens, ttl in breakpoints[hit + 1 :]:
                created[ttl] += tokens - done
                done = tokens
            self._cache.update(key for key, _, _ in breakpoints)
        creation = created["5m"] + created["1h"]
        return {
            "input_tokens": total - read - creation,
            "cache_creation_input_tokens": creation,
            "cache_read_input_tokens": read,
            "cache_creation": {
                "ephemeral_5m_input_tokens": created["5m"],
                "ephemeral_1h_input_tokens": created["1h"],
            },
            "output_tokens": 0,
            "service_tier": "standard",
        }

    def _message(self, body: dict[str, Any], answer: _Answer, *, final: bool) -> dict[str, Any]:
        usage = dict(answer.usage)
        if not final:
            # The message_start event's usage, as in the streaming docs' example.
            usage["output_tokens"] = min(1, answer.output_tokens)
        return {
            "id": _random_id("msg_"),
            "type": "message",
            "role": "assistant",
            "model": body["model"],
            "content": [{"type": "text", "text": t} for t in answer.blocks] if final else [],
            "stop_reason": answer.stop_reason if final else None,
            "stop_sequence": answer.stop_sequence if final else None,
            "stop_details": answer.stop_details if final else None,
            "usage": usage,
        }

    def _json(
        self,
        handler: _Handler,
        record: Request,
        body: dict[str, Any],
        answer: _Answer,
        malformed: MalformedKind | None,
    ) -> None:
        # The whole answer waits for generation: as long as streaming its deltas takes.
        deltas = sum(len(split_deltas(b)) for b in answer.blocks)
        record.deltas = deltas
        self._pause(handler, max(deltas - 1, 0) * self.token_delay)
        message = self._message(body, answer, final=True)
        record.malformed = malformed
        if malformed == "missing_content":
            del message["content"]
        data = json.dumps(message).encode()
        if malformed == "truncated":
            data = data[: len(data) // 2]
        record.status = 200
        if malformed == "disconnect":
            # Announce the full length, send half, then close the connection.
            self._start_response(handler, 200, "application/json", record.request_id, len(data))
            handler.wfile.write(data[: len(data) // 2])
            handler.close_connection = True
            record.disconnected = True
            return
        self._start_response(handler, 200, "application/json", record.request_id, len(data))
        handler.wfile.write(data)

    def _stream(
        self,
        handler: _Handler,
        record: Request,
        body: dict[str, Any],
        answer: _Answer,
        malformed: MalformedKind | None,
        fault: _Fault | None,
    ) -> None:
        record.status = 200
        record.malformed = malformed
        self._start_response(handler, 200, "text/event-stream", record.request_id, None)
        start = self._message(body, answer, final=False)
        if malformed == "missing_content":
            del start["content"]
        start_event = {"type": "message_start", "message": start}
        if malformed == "truncated":
            data = json.dumps(start_event)
            self._event(handler, "message_start", data[: len(data) // 2])
        else:
            self._event(handler, "message_start", start_event)
        first = True
        for index, text in enumerate(answer.blocks):
            self._event(
                handler,
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": index,
                    "content_block": {"type": "text", "text": ""},
                },
            )
            if index == 0:
                self._event(handler, "ping", {"type": "ping"})
            for chunk in split_deltas(text):
                if not first:
                    self._pause(handler, self.token_delay)
                first = False
                self._event(
                    handler,
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": index,
                        "delta": {"type": "text_delta", "text": chunk},
                    },
                )
                record.deltas += 1
                if malformed == "disconnect" or (fault is not None and record.deltas >= 2):
                    break
            if malformed == "disconnect":
                # End the connection without the closing chunk: a dropped stream.
                handler.close_connection = True
                record.disconnected = True
                return
            if fault is not None:
                break
            self._event(
                handler, "content_block_stop", {"type": "content_block_stop", "index": index}
            )
        if fault is not None:
            # The docs' example: an overloaded_error sent as an event of a started stream.
            record.error_type = ERROR_TYPES[fault.status]
            self._event(handler, "error", self._error_body(record, fault.status, fault.message))
            self._end_chunks(handler)
            return
        usage = {
            key: answer.usage[key]
            for key in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
        }
        # message_delta usage is cumulative (streaming docs).
        usage["output_tokens"] = answer.output_tokens
        self._event(
            handler,
            "message_delta",
            {
                "type": "message_delta",
                "delta": {
                    "stop_reason": answer.stop_reason,
                    "stop_sequence": answer.stop_sequence,
                    "stop_details": answer.stop_details,
                },
                "usage": usage,
            },
        )
        self._event(handler, "message_stop", {"type": "message_stop"})
        self._end_chunks(handler)

    # ------------------------------------------------------------------ wire helpers

    def _pause(self, handler: _Handler, seconds: float) -> None:
        """Wait ``seconds``; raise _ClientGone if the client hangs up meanwhile.

        Raises _Stopped as soon as the fake is stopping, so stop() never waits out a
        hang: the request's connection is closed without an answer.
        """
        deadline = time.monotonic() + seconds
        while True:
            if self._stopping.is_set():
                raise _Stopped()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self._stopping.wait(min(remaining, 0.02))
            if _peer_closed(handler.connection):
                raise _ClientGone()

    def _error_body(self, record: Request, status: int, message: str) -> dict[str, Any]:
        return {
            "type": "error",
            "error": {"type": ERROR_TYPES[status], "message": message},
            "request_id": record.request_id,
        }

    def _fail(
        self,
        handler: _Handler,
        record: Request,
        status: int,
        message: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        record.status = status
        record.error_type = ERROR_TYPES[status]
        data = json.dumps(self._error_body(record, status, message)).encode()
        self._start_response(
            handler, status, "application/json", record.request_id, len(data), headers
        )
        handler.wfile.write(data)

    def _send_not_found(self, handler: _Handler, message: str, request_id: str) -> None:
        body = {
            "type": "error",
            "error": {"type": "not_found_error", "message": message},
            "request_id": request_id,
        }
        data = json.dumps(body).encode()
        try:
            self._pause(handler, self.latency)
            self._start_response(handler, 404, "application/json", request_id, len(data))
            handler.wfile.write(data)
        except (_ClientGone, _Stopped, BrokenPipeError, ConnectionResetError):
            handler.close_connection = True

    @staticmethod
    def _start_response(
        handler: _Handler,
        status: int,
        content_type: str,
        request_id: str,
        length: int | None,
        headers: dict[str, str] | None = None,
    ) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("request-id", request_id)
        handler.send_header("anthropic-organization-id", "fake-org")
        if length is None:
            handler.send_header("Transfer-Encoding", "chunked")
            handler.send_header("Cache-Control", "no-cache")
        else:
            handler.send_header("Content-Length", str(length))
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()

    @staticmethod
    def _event(handler: _Handler, name: str, data: dict[str, Any] | str) -> None:
        payload = data if isinstance(data, str) else json.dumps(data)
        chunk = f"event: {name}\ndata: {payload}\n\n".encode()
        handler.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")

    @staticmethod
    def _end_chunks(handler: _Handler) -> None:
        handler.wfile.write(b"0\r\n\r\n")


def _seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _peer_closed(sock: socket.socket) -> bool:
    """Whether the client has closed its end (readable, and a peek reads nothing)."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        if not readable:
            return False
        return sock.recv(1, socket.MSG_PEEK) == b""
    except (OSError, ValueError):
        return True


# ---------------------------------------------------------------------- validation


def _validate(body: dict[str, Any], version: str) -> list[_Segment]:
    """Check ``body`` like the API does; return its prompt as cacheable segments."""
    for name in body:
        if name not in BODY_FIELDS:
            raise _BadRequest(f"{name}: Extra inputs are not permitted")
    model = body.get("model")
    if model is None:
        raise _BadRequest("model: Field required")
    if not isinstance(model, str) or not model:
        raise _BadRequest("model: Input should be a valid string")
    max_tokens = body.get("max_tokens")
    if max_tokens is None:
        raise _BadRequest("max_tokens: Field required")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool):
        raise _BadRequest("max_tokens: Input should be a valid integer")
    # 0 is allowed: the SDK documents max_tokens=0 as pre-warming the prompt cache.
    if max_tokens < 0:
        raise _BadRequest("max_tokens: Input should be greater than or equal to 0")
    if "stream" in body and not isinstance(body["stream"], bool):
        raise _BadRequest("stream: Input should be a valid boolean")
    for name in SAMPLING_PARAMS:
        if name not in body:
            continue
        if version == "2026-10-21":
            # Not documented word for word: the version removes sampling parameters.
            raise _BadRequest(f"{name}: is not supported in API version 2026-10-21")
        value = body[name]
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise _BadRequest(f"{name}: Input should be a valid number")
        if name in ("temperature", "top_p") and not 0 <= value <= 1:
            raise _BadRequest(f"{name}: Input should be between 0 and 1")
        if name == "top_k" and (not isinstance(value, int) or value < 0):
            raise _BadRequest("top_k: Input should be a non-negative integer")
    metadata = body.get("metadata")
    if metadata is not None:
        if not isinstance(metadata, dict):
            raise _BadRequest("metadata: Input should be a valid dictionary")
        for key, value in metadata.items():
            if key != "user_id":
                raise _BadRequest(f"metadata.{key}: Extra inputs are not permitted")
            if value is not None and not isinstance(value, str):
                raise _BadRequest("metadata.user_id: Input should be a valid string")
    stops = body.get("stop_sequences")
    if stops is not None and (
        not isinstance(stops, list) or not all(isinstance(s, str) for s in stops)
    ):
        raise _BadRequest("stop_sequences: Input should be a valid list of strings")

    segments: list[_Segment] = []
    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list) or not all(isinstance(t, dict) for t in tools):
            raise _BadRequest("tools: Input should be a valid list")
        for i, tool in enumerate(tools):
            segments.append(_segment(f"tools.{i}", {"tool": tool}, tool))
    segments += _validate_system(body.get("system"))
    segments += _validate_messages(body.get("messages"), version)
    top_control = body.get("cache_control")
    if top_control is not None:
        _check_cache_control("cache_control", top_control)
        # "applies a cache_control marker to the last cacheable block in the request"
        if segments and segments[-1].cache_control is None:
            segments[-1].cache_control = top_control
    ttls = [s.cache_control.get("ttl", "5m") for s in segments if s.cache_control is not None]
    if len(ttls) > MAX_CACHE_BREAKPOINTS:
        raise _BadRequest(
            f"A maximum of {MAX_CACHE_BREAKPOINTS} blocks with cache_control may be provided. "
            f"Found {len(ttls)}."
        )
    # The caching docs' rule for mixed TTLs: 1h breakpoints come before 5m ones. (The
    # wording of the error is not documented.)
    if "1h" in ttls and "5m" in ttls[: len(ttls) - ttls[::-1].index("1h")]:
        raise _BadRequest("cache_control: a ttl='1h' block must not come after a ttl='5m' block")
    return segments


def _segment(where: str, identity: dict[str, Any], block: dict[str, Any]) -> _Segment:
    control = block.get("cache_control")
    if control is not None:
        _check_cache_control(f"{where}.cache_control", control)
    # The cached prefix is the content; moving a breakpoint does not change it.
    content = {k: v for k, v in block.items() if k != "cache_control"}
    canonical = json.dumps({**identity, "block": content}, sort_keys=True)
    text = content.get("text") if content.get("type") == "text" else None
    tokens = approx_tokens(text) if isinstance(text, str) else approx_tokens(json.dumps(content))
    return _Segment(canonical=canonical, tokens=tokens, cache_control=control)


def _check_cache_control(where: str, control: Any) -> None:
    if not isinstance(control, dict):
        raise _BadRequest(f"{where}: Input should be a valid dictionary")
    if control.get("type") != "ephemeral":
        raise _BadRequest(f"{where}.type: Input should be 'ephemeral'")
    for key in control:
        if key not in ("type", "ttl"):
            raise _BadRequest(f"{where}.{key}: Extra inputs are not permitted")
    if "ttl" in control and control["ttl"] not in ("5m", "1h"):
        raise _BadRequest(f"{where}.ttl: Input should be '5m' or '1h'")


def _validate_text_block(where: str, block: Any) -> dict[str, Any]:
    if not isinstance(block, dict):
        raise _BadRequest(f"{where}: Input should be a valid dictionary")
    if block.get("type") != "text":
        raise _BadRequest(f"{where}.type: Input should be 'text'")
    if not isinstance(block.get("text"), str):
        raise _BadRequest(f"{where}.text: Field required")
    if not block["text"]:
        raise _BadRequest(f"{where.split('.')[0]}: text content blocks must be non-empty")
    return block


def _validate_system(system: Any) -> list[_Segment]:
    if system is None:
        return []
    if isinstance(system, str):
        return [_segment("system", {"system": True}, {"type": "text", "text": system})]
    if not isinstance(system, list):
        raise _BadRequest("system: Input should be a valid string or a list of text blocks")
    return [
        _segment(f"system.{i}", {"system": True}, _validate_text_block(f"system.{i}", block))
        for i, block in enumerate(system)
    ]


def _validate_messages(messages: Any, version: str) -> list[_Segment]:
    if messages is None:
        raise _BadRequest("messages: Field required")
    if not isinstance(messages, list):
        raise _BadRequest("messages: Input should be a valid list")
    if not messages:
        raise _BadRequest("messages: at least one message is required")
    segments: list[_Segment] = []
    previous_role = None
    for i, message in enumerate(messages):
        where = f"messages.{i}"
        if not isinstance(message, dict):
            raise _BadRequest(f"{where}: Input should be a valid dictionary")
        role = message.get("role")
        if role not in ("user", "assistant", "system"):
            raise _BadRequest(f"{where}.role: Input should be 'user', 'assistant' or 'system'")
        # Consecutive user or assistant turns are combined, as the API documents, so
        # they are not an error. Not documented in detail: a system message is accepted
        # only right after a user turn ("subject to placement rules").
        if role == "system" and previous_role != "user":
            raise _BadRequest(f"{where}: a system message must follow a user message")
        for key in message:
            if key not in ("role", "content"):
                raise _BadRequest(f"{where}.{key}: Extra inputs are not permitted")
        content = message.get("content")
        last_assistant = role == "assistant" and i == len(messages) - 1
        if content is None:
            raise _BadRequest(f"{where}.content: Field required")
        if isinstance(content, str):
            if not content and not last_assistant:
                raise _BadRequest(
                    f"{where}: all messages must have non-empty content except for the "
                    "optional final assistant message"
                )
            block = {"type": "text", "text": content}
            segments.append(_segment(f"{where}.content", {"role": role}, block))
        elif isinstance(content, list):
            if not content and not last_assistant:
                raise _BadRequest(
                    f"{where}: all messages must have non-empty content except for the "
                    "optional final assistant message"
                )
            for j, block in enumerate(content):
                at = f"{where}.content.{j}"
                if not isinstance(block, dict) or not isinstance(block.get("type"), str):
                    raise _BadRequest(f"{at}.type: Field required")
                _check_block(at, role, block, version)
                segments.append(_segment(at, {"role": role}, block))
        else:
            raise _BadRequest(f"{where}.content: Input should be a valid string or list")
        previous_role = role
    return segments


def _check_block(where: str, role: str, block: dict[str, Any], version: str) -> None:
    kind = block["type"]
    if kind == "text":
        _validate_text_block(where, block)
    elif role == "system":
        raise _BadRequest(f"{where}.type: Input should be 'text'")
    if version != "2026-10-21":
        return
    # The two content rules that API version 2026-10-21 added.
    if role == "user" and kind == "text" and block.get("citations"):
        raise _BadRequest(
            f"{where}.citations: citations on user text blocks are not supported in "
            "API version 2026-10-21"
        )
    if role == "assistant" and kind == "document":
        raise _BadRequest(
            f"{where}: document blocks in assistant messages are not supported in "
            "API version 2026-10-21"
        )

"""``FakeAnthropic``: the Messages API on the loopback server. It checks a request's key,
version and body, takes the request's share of the scripted replies and faults, and
answers as JSON or as an event stream (``wire``) what ``answers`` composed."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import Any, Self
from urllib.parse import urlsplit

from loopback.anthropic.answers import compose, prompt_usage, reply_blocks
from loopback.anthropic.records import (
    API_VERSIONS,
    DEFAULT_ERROR_MESSAGES,
    DEFAULT_MIN_CACHE_TOKENS,
    ERROR_TYPES,
    STOP_REASONS,
    BadRequest,
    Fault,
    Malformed,
    MalformedKind,
    Plan,
    Reply,
    Request,
    random_id,
)
from loopback.anthropic.validation import validate
from loopback.anthropic.wire import (
    ClientGone,
    Stopped,
    fail,
    peer_closed,
    seconds,
    send_json,
    send_stream,
    start_response,
)
from loopback.server import LoopbackServer


class FakeAnthropic(LoopbackServer):
    """A loopback Anthropic Messages API; see the package docstring."""

    name = "FakeAnthropic"
    http_methods = ("GET", "POST", "PUT", "DELETE")
    # HTTP/1.1 keep-alive, as the API serves: the SDK's connection pool reuses sockets,
    # and streams are sent with chunked transfer encoding.
    keep_alive = True

    def __init__(
        self,
        *,
        api_key: str = "sk-ant-test",
        latency: float = 0.0,
        token_delay: float = 0.0,
        min_cache_tokens: int = DEFAULT_MIN_CACHE_TOKENS,
    ) -> None:
        super().__init__()
        self.api_key = api_key
        self.latency = float(latency)  # seconds before any response starts
        self.token_delay = float(token_delay)  # seconds between text deltas
        self.min_cache_tokens = int(min_cache_tokens)
        self.requests: list[Request] = []
        # A respond() handler that raised: its request was answered with a 500.
        self.handler_errors: list[BaseException] = []
        self._lock = threading.Lock()
        self._replies: deque[Reply] = deque()
        self._handler: Callable[[dict[str, Any]], Reply] | None = None
        self._faults: deque[Fault] = deque()
        self._malformed: deque[Malformed] = deque()
        self._stop_reasons: deque[str] = deque()
        self._hangs: deque[float] = deque()
        self._cache: set[str] = set()
        self._stopping = threading.Event()

    def start(self, *, host: str = "127.0.0.1", port: int = 0) -> Self:
        self._stopping.clear()
        return super().start(host=host, port=port)

    def stop(self) -> None:
        """Drop requests still waiting, close idle keep-alive connections, join threads."""
        if self.serving:
            # Wakes requests waiting out latency, hang_next or token_delay.
            self._stopping.set()
        super().stop()

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
        fault = Fault(
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

        What the locked SDK (constraints.txt) makes of them, pinned in
        tests/unit/test_fake_anthropic.py: truncated raises ``json.JSONDecodeError``;
        missing_content returns a Message whose ``content`` is None (no response validation
        by default) or, streamed, raises ``AttributeError``; disconnect raises
        ``anthropic.APIConnectionError``, streamed or not (2.14 let a bare
        ``httpx2.RemoteProtocolError`` out of a stream). The garbled answer does not use up a
        queued reply.
        """
        if kind not in ("truncated", "missing_content", "disconnect"):
            raise ValueError(f"unknown malformed kind {kind!r}")
        if times < 1:
            raise ValueError("times must be at least 1")
        with self._lock:
            self._malformed.append(Malformed(kind=kind, remaining=times))

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
    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        arrived = time.monotonic()
        request_id = random_id("req_")
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
        except Stopped:
            record.disconnected = True
            handler.close_connection = True
        except ClientGone:
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

    def _answer(
        self, handler: BaseHTTPRequestHandler, record: Request, raw: bytes, parsed: Any
    ) -> None:
        self._pause(handler, self.latency)
        auth_error = self._auth_error(record.headers)
        if auth_error:
            fail(handler, record, 401, auth_error)
            return
        version = record.headers.get("anthropic-version")
        if not version:
            fail(handler, record, 400, "anthropic-version: header is required")
            return
        if version not in API_VERSIONS:
            # Not documented: the wording for an unknown version.
            fail(handler, record, 400, f"anthropic-version: unknown version {version!r}")
            return
        if not isinstance(parsed, dict):
            message = "Request body must be a JSON object" if raw else "Request body is empty"
            fail(handler, record, 400, message)
            return
        try:
            segments = validate(parsed, version)
        except BadRequest as bad:
            fail(handler, record, 400, bad.message)
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
                headers["retry-after"] = seconds(fault.retry_after)
            fail(handler, record, fault.status, fault.message, headers)
            return

        try:
            blocks = reply_blocks(plan, parsed)
        except Exception as exc:  # a test's respond() handler raised
            with self._lock:
                self.handler_errors.append(exc)
            fail(handler, record, 500, f"respond() handler raised {exc!r}")
            return
        with self._lock:
            usage = prompt_usage(parsed["model"], segments, self._cache, self.min_cache_tokens)
        answer = compose(parsed, segments, blocks, plan.stop_reason, usage)
        record.reply = answer.blocks
        record.stop_reason = answer.stop_reason
        record.usage = answer.usage
        if record.stream:
            send_stream(
                handler,
                record,
                parsed,
                answer,
                plan.malformed,
                fault,
                self._pause,
                self.token_delay,
            )
        else:
            send_json(
                handler, record, parsed, answer, plan.malformed, self._pause, self.token_delay
            )

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

    def _plan(self, stream: bool) -> Plan:
        """Take this request's share of the scripted faults and replies."""
        plan = Plan()
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

    def _pause(self, handler: BaseHTTPRequestHandler, seconds: float) -> None:
        """Wait ``seconds``; raise ClientGone if the client hangs up meanwhile.

        Raises Stopped as soon as the fake is stopping, so stop() never waits out a
        hang: the request's connection is closed without an answer.
        """
        deadline = time.monotonic() + seconds
        while True:
            if self._stopping.is_set():
                raise Stopped()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self._stopping.wait(min(remaining, 0.02))
            if peer_closed(handler.connection):
                raise ClientGone()

    def _send_not_found(
        self, handler: BaseHTTPRequestHandler, message: str, request_id: str
    ) -> None:
        body = {
            "type": "error",
            "error": {"type": "not_found_error", "message": message},
            "request_id": request_id,
        }
        data = json.dumps(body).encode()
        try:
            self._pause(handler, self.latency)
            start_response(handler, 404, "application/json", request_id, len(data))
            handler.wfile.write(data)
        except (ClientGone, Stopped, BrokenPipeError, ConnectionResetError):
            handler.close_connection = True

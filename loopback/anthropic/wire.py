"""The Messages API's answers on the wire: the response head (``request-id`` and the
other headers the API sends), the error body, a Message as one JSON body, and a Message as a
server-sent event stream in chunked transfer encoding; with the malformed answers and
mid-stream errors the fake can be told to give."""

from __future__ import annotations

import json
import select
import socket
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import Any

from loopback.anthropic.answers import message
from loopback.anthropic.records import (
    ERROR_TYPES,
    Answer,
    Fault,
    MalformedKind,
    Request,
    split_deltas,
)

# Waits a number of seconds for a request, or raises ClientGone / Stopped.
Pause = Callable[[BaseHTTPRequestHandler, float], None]


class ClientGone(Exception):
    """The client closed the connection (its timeout, or it closed a stream early)."""


class Stopped(Exception):
    """The fake is stopping: a waiting request is dropped without an answer."""


def start_response(
    handler: BaseHTTPRequestHandler,
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


def event(handler: BaseHTTPRequestHandler, name: str, data: dict[str, Any] | str) -> None:
    payload = data if isinstance(data, str) else json.dumps(data)
    chunk = f"event: {name}\ndata: {payload}\n\n".encode()
    handler.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")


def end_chunks(handler: BaseHTTPRequestHandler) -> None:
    handler.wfile.write(b"0\r\n\r\n")


def error_body(record: Request, status: int, message: str) -> dict[str, Any]:
    return {
        "type": "error",
        "error": {"type": ERROR_TYPES[status], "message": message},
        "request_id": record.request_id,
    }


def fail(
    handler: BaseHTTPRequestHandler,
    record: Request,
    status: int,
    message: str,
    headers: dict[str, str] | None = None,
) -> None:
    record.status = status
    record.error_type = ERROR_TYPES[status]
    data = json.dumps(error_body(record, status, message)).encode()
    start_response(handler, status, "application/json", record.request_id, len(data), headers)
    handler.wfile.write(data)


def send_json(
    handler: BaseHTTPRequestHandler,
    record: Request,
    body: dict[str, Any],
    answer: Answer,
    malformed: MalformedKind | None,
    pause: Pause,
    token_delay: float,
) -> None:
    """A Message as one JSON body, after as long as generating it takes."""
    # The whole answer waits for generation: as long as streaming its deltas takes.
    deltas = sum(len(split_deltas(b)) for b in answer.blocks)
    record.deltas = deltas
    pause(handler, max(deltas - 1, 0) * token_delay)
    reply = message(body, answer, final=True)
    record.malformed = malformed
    if malformed == "missing_content":
        del reply["content"]
    data = json.dumps(reply).encode()
    if malformed == "truncated":
        data = data[: len(data) // 2]
    record.status = 200
    if malformed == "disconnect":
        # Announce the full length, send half, then close the connection.
        start_response(handler, 200, "application/json", record.request_id, len(data))
        handler.wfile.write(data[: len(data) // 2])
        handler.close_connection = True
        record.disconnected = True
        return
    start_response(handler, 200, "application/json", record.request_id, len(data))
    handler.wfile.write(data)


def send_stream(
    handler: BaseHTTPRequestHandler,
    record: Request,
    body: dict[str, Any],
    answer: Answer,
    malformed: MalformedKind | None,
    fault: Fault | None,
    pause: Pause,
    token_delay: float,
) -> None:
    """A Message as a server-sent event stream, one text delta per word."""
    record.status = 200
    record.malformed = malformed
    start_response(handler, 200, "text/event-stream", record.request_id, None)
    start = message(body, answer, final=False)
    if malformed == "missing_content":
        del start["content"]
    start_event = {"type": "message_start", "message": start}
    if malformed == "truncated":
        data = json.dumps(start_event)
        event(handler, "message_start", data[: len(data) // 2])
    else:
        event(handler, "message_start", start_event)
    first = True
    for index, text in enumerate(answer.blocks):
        event(
            handler,
            "content_block_start",
            {
                "type": "content_block_start",
                "index": index,
                "content_block": {"type": "text", "text": ""},
            },
        )
        if index == 0:
            event(handler, "ping", {"type": "ping"})
        for chunk in split_deltas(text):
            if not first:
                pause(handler, token_delay)
            first = False
            event(
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
        event(handler, "content_block_stop", {"type": "content_block_stop", "index": index})
    if fault is not None:
        # The docs' example: an overloaded_error sent as an event of a started stream.
        record.error_type = ERROR_TYPES[fault.status]
        event(handler, "error", error_body(record, fault.status, fault.message))
        end_chunks(handler)
        return
    usage = {
        key: answer.usage[key]
        for key in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
    }
    # message_delta usage is cumulative (streaming docs).
    usage["output_tokens"] = answer.output_tokens
    event(
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
    event(handler, "message_stop", {"type": "message_stop"})
    end_chunks(handler)


def seconds(value: float) -> str:
    """A ``retry-after`` value: whole seconds as the API sends them, fractions for tests."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def peer_closed(sock: socket.socket) -> bool:
    """Whether the client has closed its end (readable, and a peek reads nothing)."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        if not readable:
            return False
        return sock.recv(1, socket.MSG_PEEK) == b""
    except (OSError, ValueError):
        return True

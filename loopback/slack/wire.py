"""The Web API on the wire: reading a request's arguments from its query string and its
body (form, JSON or multipart, as slack_sdk sends them) and answering JSON or text."""

from __future__ import annotations

import contextlib
import json
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs

from loopback.server import send_bytes
from loopback.slack.records import JSON_VALUED_ARGS


def parse_args(
    content_type: str | None, query: str, body: bytes
) -> tuple[dict[str, Any], str | None]:
    """Merge query string and body into one dict; second value is a parse error code."""
    args: dict[str, Any] = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
    error: str | None = None
    if body:
        mime = (content_type or "").split(";", 1)[0].strip().lower()
        if not mime:
            error = "missing_post_type"
        elif mime == "application/x-www-form-urlencoded":
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError:
                error = "invalid_form_data"
            else:
                form = parse_qs(text, keep_blank_values=True)
                args.update({k: v[-1] for k, v in form.items()})
        elif mime == "application/json":
            try:
                data = json.loads(body)
            except ValueError:
                error = "invalid_json"
            else:
                if isinstance(data, dict):
                    args.update(data)
                else:
                    error = "json_not_object"
        elif mime == "multipart/form-data":
            # slack_sdk sends api_call(data=...) as multipart; plain fields only.
            parsed = BytesParser(policy=HTTP).parsebytes(
                b"Content-Type: " + (content_type or "").encode() + b"\r\n\r\n" + body
            )
            if not parsed.is_multipart():
                error = "invalid_form_data"
            else:
                for part in parsed.iter_parts():
                    name = part.get_param("name", header="content-disposition")
                    payload = part.get_payload(decode=True)
                    if isinstance(name, str) and isinstance(payload, bytes):
                        args[name] = payload.decode("utf-8", "replace")
        else:
            error = "invalid_post_type"
    for key in JSON_VALUED_ARGS:
        value = args.get(key)
        if isinstance(value, str):
            # Undecodable values stay strings; the method reports them as malformed.
            with contextlib.suppress(ValueError):
                args[key] = json.loads(value)
    return args, error


def send(
    request: BaseHTTPRequestHandler,
    status: int,
    body: str | dict[str, Any],
    headers: dict[str, str] | None = None,
    *,
    content_type: str = "application/json",
) -> None:
    """Answer with ``body`` (a dict is sent as JSON) as UTF-8 text."""
    data = (body if isinstance(body, str) else json.dumps(body)).encode("utf-8")
    send_bytes(request, status, data, f"{content_type}; charset=utf-8", headers or {})

"""What the fake Messages API knows and keeps: the API's error types, versions, body fields
and limits; the fake's token count and streaming pace; a recorded ``Request``; and the
scripted faults and replies a request takes its share of."""

from __future__ import annotations

import math
import re
import secrets
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

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


class BadRequest(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass
class Fault:
    status: int
    remaining: int
    retry_after: float | None
    message: str
    mid_stream: bool


@dataclass
class Malformed:
    kind: MalformedKind
    remaining: int


@dataclass
class Plan:
    """What to answer one valid request with, decided under the lock."""

    fault: Fault | None = None
    malformed: MalformedKind | None = None
    stop_reason: str | None = None
    queued: Reply | None = None
    handler: Callable[[dict[str, Any]], Reply] | None = None


@dataclass
class Answer:
    blocks: list[str]
    stop_reason: str
    stop_sequence: str | None
    usage: dict[str, Any]
    output_tokens: int
    stop_details: dict[str, Any] | None = None


@dataclass
class Segment:
    """One cacheable unit of the prompt, in the API's order: tools, system, messages."""

    canonical: str
    tokens: int
    cache_control: dict[str, Any] | None


def random_id(prefix: str) -> str:
    alphabet = string.ascii_letters + string.digits
    return prefix + "01" + "".join(secrets.choice(alphabet) for _ in range(22))

"""The Anthropic Messages API on 127.0.0.1, for the tests and the benchmarks.

This package owns ``FakeAnthropic``: a real HTTP/1.1 server on 127.0.0.1 that the real
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

The modules: ``records`` (the API's constants, a recorded ``Request``, scripted faults),
``validation`` (the request body), ``answers`` (the reply and its usage), ``wire`` (JSON and
event-stream answers) and ``api`` (the server).
"""

from loopback.anthropic.api import FakeAnthropic
from loopback.anthropic.records import (
    API_VERSIONS,
    CHARS_PER_TOKEN,
    DEFAULT_ERROR_MESSAGES,
    DEFAULT_MIN_CACHE_TOKENS,
    ERROR_TYPES,
    STOP_REASONS,
    Request,
    approx_tokens,
    default_reply,
    split_deltas,
)

__all__ = [
    "API_VERSIONS",
    "CHARS_PER_TOKEN",
    "DEFAULT_ERROR_MESSAGES",
    "DEFAULT_MIN_CACHE_TOKENS",
    "ERROR_TYPES",
    "STOP_REASONS",
    "FakeAnthropic",
    "Request",
    "approx_tokens",
    "default_reply",
    "split_deltas",
]

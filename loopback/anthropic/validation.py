"""The Messages API's request validation: the body fields, their types and limits, the
cache_control breakpoints; a valid prompt comes back as cacheable segments."""

from __future__ import annotations

import json
from typing import Any

from loopback.anthropic.records import (
    BODY_FIELDS,
    MAX_CACHE_BREAKPOINTS,
    SAMPLING_PARAMS,
    BadRequest,
    Segment,
    approx_tokens,
)


def validate(body: dict[str, Any], version: str) -> list[Segment]:
    """Check ``body`` like the API does; return its prompt as cacheable segments."""
    for name in body:
        if name not in BODY_FIELDS:
            raise BadRequest(f"{name}: Extra inputs are not permitted")
    model = body.get("model")
    if model is None:
        raise BadRequest("model: Field required")
    if not isinstance(model, str) or not model:
        raise BadRequest("model: Input should be a valid string")
    max_tokens = body.get("max_tokens")
    if max_tokens is None:
        raise BadRequest("max_tokens: Field required")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool):
        raise BadRequest("max_tokens: Input should be a valid integer")
    # 0 is allowed: the SDK documents max_tokens=0 as pre-warming the prompt cache.
    if max_tokens < 0:
        raise BadRequest("max_tokens: Input should be greater than or equal to 0")
    if "stream" in body and not isinstance(body["stream"], bool):
        raise BadRequest("stream: Input should be a valid boolean")
    for name in SAMPLING_PARAMS:
        if name not in body:
            continue
        if version == "2026-10-21":
            # Not documented word for word: the version removes sampling parameters.
            raise BadRequest(f"{name}: is not supported in API version 2026-10-21")
        value = body[name]
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise BadRequest(f"{name}: Input should be a valid number")
        if name in ("temperature", "top_p") and not 0 <= value <= 1:
            raise BadRequest(f"{name}: Input should be between 0 and 1")
        if name == "top_k" and (not isinstance(value, int) or value < 0):
            raise BadRequest("top_k: Input should be a non-negative integer")
    metadata = body.get("metadata")
    if metadata is not None:
        if not isinstance(metadata, dict):
            raise BadRequest("metadata: Input should be a valid dictionary")
        for key, value in metadata.items():
            if key != "user_id":
                raise BadRequest(f"metadata.{key}: Extra inputs are not permitted")
            if value is not None and not isinstance(value, str):
                raise BadRequest("metadata.user_id: Input should be a valid string")
    stops = body.get("stop_sequences")
    if stops is not None and (
        not isinstance(stops, list) or not all(isinstance(s, str) for s in stops)
    ):
        raise BadRequest("stop_sequences: Input should be a valid list of strings")

    segments: list[Segment] = []
    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list) or not all(isinstance(t, dict) for t in tools):
            raise BadRequest("tools: Input should be a valid list")
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
        raise BadRequest(
            f"A maximum of {MAX_CACHE_BREAKPOINTS} blocks with cache_control may be provided. "
            f"Found {len(ttls)}."
        )
    # The caching docs' rule for mixed TTLs: 1h breakpoints come before 5m ones. (The
    # wording of the error is not documented.)
    if "1h" in ttls and "5m" in ttls[: len(ttls) - ttls[::-1].index("1h")]:
        raise BadRequest("cache_control: a ttl='1h' block must not come after a ttl='5m' block")
    return segments


def _segment(where: str, identity: dict[str, Any], block: dict[str, Any]) -> Segment:
    control = block.get("cache_control")
    if control is not None:
        _check_cache_control(f"{where}.cache_control", control)
    # The cached prefix is the content; moving a breakpoint does not change it.
    content = {k: v for k, v in block.items() if k != "cache_control"}
    canonical = json.dumps({**identity, "block": content}, sort_keys=True)
    text = content.get("text") if content.get("type") == "text" else None
    tokens = approx_tokens(text) if isinstance(text, str) else approx_tokens(json.dumps(content))
    return Segment(canonical=canonical, tokens=tokens, cache_control=control)


def _check_cache_control(where: str, control: Any) -> None:
    if not isinstance(control, dict):
        raise BadRequest(f"{where}: Input should be a valid dictionary")
    if control.get("type") != "ephemeral":
        raise BadRequest(f"{where}.type: Input should be 'ephemeral'")
    for key in control:
        if key not in ("type", "ttl"):
            raise BadRequest(f"{where}.{key}: Extra inputs are not permitted")
    if "ttl" in control and control["ttl"] not in ("5m", "1h"):
        raise BadRequest(f"{where}.ttl: Input should be '5m' or '1h'")


def _validate_text_block(where: str, block: Any) -> dict[str, Any]:
    if not isinstance(block, dict):
        raise BadRequest(f"{where}: Input should be a valid dictionary")
    if block.get("type") != "text":
        raise BadRequest(f"{where}.type: Input should be 'text'")
    if not isinstance(block.get("text"), str):
        raise BadRequest(f"{where}.text: Field required")
    if not block["text"]:
        raise BadRequest(f"{where.split('.')[0]}: text content blocks must be non-empty")
    return block


def _validate_system(system: Any) -> list[Segment]:
    if system is None:
        return []
    if isinstance(system, str):
        return [_segment("system", {"system": True}, {"type": "text", "text": system})]
    if not isinstance(system, list):
        raise BadRequest("system: Input should be a valid string or a list of text blocks")
    return [
        _segment(f"system.{i}", {"system": True}, _validate_text_block(f"system.{i}", block))
        for i, block in enumerate(system)
    ]


def _validate_messages(messages: Any, version: str) -> list[Segment]:
    if messages is None:
        raise BadRequest("messages: Field required")
    if not isinstance(messages, list):
        raise BadRequest("messages: Input should be a valid list")
    if not messages:
        raise BadRequest("messages: at least one message is required")
    segments: list[Segment] = []
    previous_role = None
    for i, message in enumerate(messages):
        where = f"messages.{i}"
        if not isinstance(message, dict):
            raise BadRequest(f"{where}: Input should be a valid dictionary")
        role = message.get("role")
        if role not in ("user", "assistant", "system"):
            raise BadRequest(f"{where}.role: Input should be 'user', 'assistant' or 'system'")
        # Consecutive user or assistant turns are combined, as the API documents, so
        # they are not an error. Not documented in detail: a system message is accepted
        # only right after a user turn ("subject to placement rules").
        if role == "system" and previous_role != "user":
            raise BadRequest(f"{where}: a system message must follow a user message")
        for key in message:
            if key not in ("role", "content"):
                raise BadRequest(f"{where}.{key}: Extra inputs are not permitted")
        content = message.get("content")
        last_assistant = role == "assistant" and i == len(messages) - 1
        if content is None:
            raise BadRequest(f"{where}.content: Field required")
        if isinstance(content, str):
            if not content and not last_assistant:
                raise BadRequest(
                    f"{where}: all messages must have non-empty content except for the "
                    "optional final assistant message"
                )
            block = {"type": "text", "text": content}
            segments.append(_segment(f"{where}.content", {"role": role}, block))
        elif isinstance(content, list):
            if not content and not last_assistant:
                raise BadRequest(
                    f"{where}: all messages must have non-empty content except for the "
                    "optional final assistant message"
                )
            for j, block in enumerate(content):
                at = f"{where}.content.{j}"
                if not isinstance(block, dict) or not isinstance(block.get("type"), str):
                    raise BadRequest(f"{at}.type: Field required")
                _check_block(at, role, block, version)
                segments.append(_segment(at, {"role": role}, block))
        else:
            raise BadRequest(f"{where}.content: Input should be a valid string or list")
        previous_role = role
    return segments


def _check_block(where: str, role: str, block: dict[str, Any], version: str) -> None:
    kind = block["type"]
    if kind == "text":
        _validate_text_block(where, block)
    elif role == "system":
        raise BadRequest(f"{where}.type: Input should be 'text'")
    if version != "2026-10-21":
        return
    # The two content rules that API version 2026-10-21 added.
    if role == "user" and kind == "text" and block.get("citations"):
        raise BadRequest(
            f"{where}.citations: citations on user text blocks are not supported in "
            "API version 2026-10-21"
        )
    if role == "assistant" and kind == "document":
        raise BadRequest(
            f"{where}: document blocks in assistant messages are not supported in "
            "API version 2026-10-21"
        )

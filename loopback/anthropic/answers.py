"""What the fake Messages API answers a valid request with: the reply's text blocks (queued,
computed or the default), cut at a stop sequence or at max_tokens, the usage with prompt
caching applied, and the Message object itself."""

from __future__ import annotations

import hashlib
from typing import Any

from loopback.anthropic.records import (
    CHARS_PER_TOKEN,
    Answer,
    Plan,
    Reply,
    Segment,
    approx_tokens,
    default_reply,
    random_id,
)


def reply_blocks(plan: Plan, body: dict[str, Any]) -> list[str]:
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


def compose(
    body: dict[str, Any],
    segments: list[Segment],
    blocks: list[str],
    forced: str | None,
    usage: dict[str, Any],
) -> Answer:
    """The answer to ``body``: its text cut at a stop sequence or at max_tokens, the
    stop reason, and ``usage`` (the prompt's, from ``prompt_usage``) with the output."""
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
    usage = {**usage, "output_tokens": output}
    return Answer(blocks, stop_reason, stop_sequence, usage, output, stop_details)


def prompt_usage(
    model: str, segments: list[Segment], cache: set[str], min_cache_tokens: int
) -> dict[str, Any]:
    """Input token counts, with prompt caching applied (and ``cache`` updated: the caller
    holds its lock)."""
    total = sum(s.tokens for s in segments)
    digest = hashlib.sha256(model.encode())
    prefix_tokens = 0
    breakpoints: list[tuple[str, int, str]] = []  # (prefix hash, prefix tokens, ttl)
    for segment in segments:
        digest.update(segment.canonical.encode())
        digest.update(b"\x00")
        prefix_tokens += segment.tokens
        control = segment.cache_control
        if control is not None and prefix_tokens >= min_cache_tokens:
            breakpoints.append((digest.hexdigest(), prefix_tokens, control.get("ttl", "5m")))
    read, created = 0, {"5m": 0, "1h": 0}
    # A hit is the longest cached prefix; what follows it up to the last
    # breakpoint is written, each stretch at the TTL of the breakpoint ending it.
    hit = max((i for i, b in enumerate(breakpoints) if b[0] in cache), default=-1)
    if hit >= 0:
        read = breakpoints[hit][1]
    done = read
    for _, tokens, ttl in breakpoints[hit + 1 :]:
        created[ttl] += tokens - done
        done = tokens
    cache.update(key for key, _, _ in breakpoints)
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


def message(body: dict[str, Any], answer: Answer, *, final: bool) -> dict[str, Any]:
    usage = dict(answer.usage)
    if not final:
        # The message_start event's usage, as in the streaming docs' example.
        usage["output_tokens"] = min(1, answer.output_tokens)
    return {
        "id": random_id("msg_"),
        "type": "message",
        "role": "assistant",
        "model": body["model"],
        "content": [{"type": "text", "text": t} for t in answer.blocks] if final else [],
        "stop_reason": answer.stop_reason if final else None,
        "stop_sequence": answer.stop_sequence if final else None,
        "stop_details": answer.stop_details if final else None,
        "usage": usage,
    }

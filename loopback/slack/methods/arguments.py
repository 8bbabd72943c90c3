"""How the Web API methods read the arguments they share: cursors and limits, time bounds,
and message content (text, blocks, attachments, metadata) with Slack's limits (those of
Block Kit are ``blockkit``'s)."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from loopback.slack.blockkit import check_message_blocks
from loopback.slack.records import (
    MAX_ATTACHMENTS,
    MAX_TEXT_CHARS,
    SlackError,
    truthy,
    ts_key,
)


def paginate(
    items: list[Any], args: dict[str, Any], default_limit: int, max_limit: int
) -> tuple[list[Any], str]:
    """One page of ``items`` by the ``cursor`` and ``limit`` arguments; the next cursor."""
    offset = 0
    cursor = args.get("cursor")
    if cursor:
        try:
            kind, _, number = base64.b64decode(str(cursor), validate=True).decode().partition(":")
            offset = int(number)
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise SlackError("invalid_cursor") from None
        if kind != "offset" or offset < 0:
            raise SlackError("invalid_cursor")
    try:
        limit = int(args.get("limit") or 0) or default_limit
    except (TypeError, ValueError):
        raise SlackError("invalid_limit") from None
    if limit < 0:
        raise SlackError("invalid_limit")
    limit = min(limit, max_limit)
    page = items[offset : offset + limit]
    more = offset + limit < len(items)
    next_cursor = base64.b64encode(f"offset:{offset + limit}".encode()).decode() if more else ""
    return page, next_cursor


def ts_bounds(args: dict[str, Any]) -> tuple[int, int, bool]:
    """The ``oldest``/``latest``/``inclusive`` window, in microseconds."""
    inclusive = truthy(args.get("inclusive"))
    try:
        oldest = ts_key(args["oldest"]) if args.get("oldest") else 0
    except ValueError:
        raise SlackError("invalid_ts_oldest") from None
    latest_arg = args.get("latest")
    try:
        latest = ts_key(latest_arg) if latest_arg and latest_arg != "now" else 2**63
    except ValueError:
        raise SlackError("invalid_ts_latest") from None
    return oldest, latest, inclusive


def in_bounds(ts: str, oldest: int, latest: int, inclusive: bool) -> bool:
    key = ts_key(ts)
    if inclusive:
        return oldest <= key <= latest
    return oldest < key < latest


def validate_content(args: dict[str, Any], *, cumulative: bool = True) -> None:
    """Refuse a message's content as chat.postMessage and chat.update do (and a response
    URL, which is not held to the cumulative text limit of blocks: see ``blockkit``)."""
    text = args.get("text")
    blocks = args.get("blocks")
    attachments = args.get("attachments")
    has_blocks = isinstance(blocks, list) and len(blocks) > 0
    has_attachments = isinstance(attachments, list) and len(attachments) > 0
    has_markdown = bool(args.get("markdown_text"))
    if not text and not has_blocks and not has_attachments and not has_markdown:
        # A string blocks value that did not decode as JSON is a format error.
        if isinstance(blocks, str) and blocks.strip():
            raise SlackError("invalid_blocks_format")
        raise SlackError("no_text")
    if text is not None and len(str(text)) > MAX_TEXT_CHARS:
        raise SlackError("msg_too_long")
    if blocks is not None:
        if isinstance(blocks, str):
            raise SlackError("invalid_blocks_format")
        if not isinstance(blocks, list) or not all(
            isinstance(b, dict) and isinstance(b.get("type"), str) for b in blocks
        ):
            raise SlackError("invalid_blocks")
        check_message_blocks(blocks, cumulative=cumulative)
    if attachments is not None:
        if not isinstance(attachments, list) or not all(isinstance(a, dict) for a in attachments):
            raise SlackError("invalid_attachments")
        if len(attachments) > MAX_ATTACHMENTS:
            raise SlackError("too_many_attachments")
    metadata = args.get("metadata")
    if (
        metadata is not None
        and metadata != {}
        and not (
            isinstance(metadata, dict)
            and isinstance(metadata.get("event_type"), str)
            and isinstance(metadata.get("event_payload"), dict)
        )
    ):
        raise SlackError("invalid_metadata_format")

"""Zendesk's webhooks: a request is Zendesk's when its `X-Zendesk-Webhook-Signature` is
base64(HMAC-SHA256(secret, timestamp + body)) with the timestamp it carries in
`X-Zendesk-Webhook-Signature-Timestamp`, and that timestamp is recent. A comment event
(`zen:event-type:ticket.comment_added`) is read into a `CommentSeen`; any other event is
nothing to us. While the secret is rotated, the one before it signs too.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any

from bot.domain.tickets import CommentSeen

COMMENT_ADDED = "zen:event-type:ticket.comment_added"
SIGNATURE = "x-zendesk-webhook-signature"
TIMESTAMP = "x-zendesk-webhook-signature-timestamp"
# A signature older (or newer) than this is refused: a captured request cannot be replayed
# later. Within it, replays are refused by the signature having been seen (the service).
MAX_AGE_SECONDS = 5 * 60
# Zendesk's event payloads are a few KB; a comment's body is at most 64 KB.
MAX_BODY = 256 * 1024


class WebhookRefused(Exception):
    """Not a request we act on; `status` is what to answer."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def verify(
    secrets: str | tuple[str | None, ...], headers: dict[str, str], body: bytes, now: datetime
) -> str:
    """The request's signature when it is Zendesk's and recent; WebhookRefused otherwise.
    `secrets`: the current signing secret, or it and the one before it while it is rotated
    (either signs). `headers` are lower-cased names."""
    if len(body) > MAX_BODY:
        raise WebhookRefused(413, "payload too large")
    keys = [k for k in ((secrets,) if isinstance(secrets, str) else secrets) if k]
    signature = headers.get(SIGNATURE, "").strip()
    stamp = headers.get(TIMESTAMP, "").strip()
    if not signature or not stamp or not keys:
        raise WebhookRefused(401, "unsigned")
    matched = False
    for key in keys:  # every key compared: the time taken tells nothing of which matched
        expected = base64.b64encode(
            hmac.new(key.encode(), stamp.encode() + body, hashlib.sha256).digest()
        ).decode()
        matched = hmac.compare_digest(signature.encode(), expected.encode()) or matched
    if not matched:
        raise WebhookRefused(401, "bad signature")
    at = _timestamp(stamp)
    if at is None or abs((now - at).total_seconds()) > MAX_AGE_SECONDS:
        raise WebhookRefused(401, "stale timestamp")
    return signature


def _timestamp(stamp: str) -> datetime | None:
    """Zendesk sends an ISO 8601 time (`2026-12-04T21:00:00Z`); seconds since the epoch are
    read too."""
    try:
        if stamp.isdigit():
            return datetime.fromtimestamp(int(stamp), UTC)
        at = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except (ValueError, OverflowError):
        return None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def comment_of(body: bytes) -> CommentSeen | None:
    """The comment a `ticket.comment_added` event reports; None for any other event. A body
    that is not such an event's JSON raises WebhookRefused(400)."""
    try:
        payload: Any = json.loads(body)
    except ValueError:
        raise WebhookRefused(400, "not JSON") from None
    if not isinstance(payload, dict) or payload.get("type") != COMMENT_ADDED:
        return None
    try:
        detail = payload["detail"]
        comment = payload["event"]["comment"]
        author = comment.get("author") or {}
        return CommentSeen(
            ticket_id=int(detail["id"]),
            comment_id=int(comment["id"]),
            author_id=int(author["id"]) if str(author.get("id") or "").isdigit() else None,
            author_name=str(author.get("name") or "")[:200],
            # Left out (a trigger's own body): unknown, never taken for "not staff".
            author_is_staff=staff if isinstance(staff := author.get("is_staff"), bool) else None,
            public=bool(comment.get("is_public")),
            body=str(comment.get("body") or ""),
        )
    except (KeyError, TypeError, ValueError):
        raise WebhookRefused(400, "not a comment event") from None

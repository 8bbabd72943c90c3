"""What Slack issues when a person acts, and what it does with the app's answers to it:
``response_url`` endpoints (served under /response/, up to five uses each, refusing the
content Slack refuses) and ``trigger_id`` values. A response URL or trigger issued for a
person's action carries that person, so answers to it become what Slack shows them (an
ephemeral message, a modal)."""

from __future__ import annotations

import copy
import json
import secrets
import time
from http.server import BaseHTTPRequestHandler
from typing import Any

from loopback.slack.blockkit import check_message_blocks
from loopback.slack.records import (
    MAX_TEXT_CHARS,
    RESPONSE_URL_USES,
    Message,
    ResponseTarget,
    SlackError,
    Trigger,
    truthy,
)
from loopback.slack.wire import send
from loopback.slack.workspace import Workspace


class Responses(Workspace):
    """Response URLs and trigger ids of the workspace."""

    root: str  # the server's http://host:port

    def new_response_url(self, target: ResponseTarget | None = None) -> str:
        """A response_url. With a ``target``, answers posted to it are also shown as Slack
        shows them: to that person in that channel (or to everyone, or in place of the
        message whose button was clicked)."""
        token = secrets.token_urlsafe(12)
        with self._lock:
            self.responses[token] = []
            if target is not None:
                self._response_targets[token] = target
        return f"{self.root}/response/{token}"

    def responses_to(self, url: str) -> list[dict[str, Any]]:
        token = url.rstrip("/").rsplit("/", 1)[-1]
        with self._lock:
            if token not in self.responses:
                raise KeyError(f"{url} was not issued by this emulator")
            return copy.deepcopy(self.responses[token])

    def new_trigger_id(self, *, view_id: str | None = None, user: str | None = None) -> str:
        """Issue a trigger id, usable once within ``trigger_ttl`` seconds.

        ``view_id`` marks the trigger as coming from an interaction inside that
        modal, which is where views.push puts the new view. Without it, views.push
        uses the most recently opened modal. ``user`` is who acted: a modal opened with
        the trigger is shown to them (``modal_stack``).
        """
        with self._lock:
            # Slack's documented trigger_id format: "132456.7890123.abcdef".
            trigger_id = f"{int(time.time())}.{next(self._ids)}.{secrets.token_hex(16)}"
            self._triggers[trigger_id] = Trigger(time.monotonic(), view_id, user=user)
        return trigger_id

    def _handle_response_url(
        self, request: BaseHTTPRequestHandler, token: str, body: bytes
    ) -> None:
        with self._lock:
            posted = self.responses.get(token)
            if posted is None:
                # Slack's documented 404 body for a hook URL it does not know.
                status, reply = 404, "no_service"
            elif len(posted) >= RESPONSE_URL_USES:
                # Not documented: the body Slack sends once the 5 uses are spent.
                status, reply = 404, "used_url"
            else:
                try:
                    payload = json.loads(body or b"null")
                except ValueError:
                    payload = None
                refusal = _refusal(payload) if isinstance(payload, dict) else None
                if refusal is not None:
                    # Not documented: the status and body for content Slack refuses here;
                    # incoming webhooks answer their documented errors as HTTP 400 with the
                    # code as the body, and this emulator does the same.
                    status, reply = 400, refusal
                elif isinstance(payload, dict):
                    posted.append(payload)
                    status, reply = 200, "ok"
                    target = self._response_targets.get(token)
                    if target is not None:
                        self._show_response(target, payload)
                        self._bump()
                else:
                    status, reply = 400, "invalid_payload"
        send(request, status, reply, {}, content_type="text/plain")

    def _show_response(self, target: ResponseTarget, payload: dict[str, Any]) -> None:
        """What the person sees of an answer posted to their response_url (lock held).

        Not documented precisely: which message ``replace_original``/``delete_original``
        act on for a slash command (none: there is no original; a new message is shown).
        """
        channel = self.channels.get(target.channel)
        if channel is None:
            return
        original = None
        if target.message_ts:
            original = next(
                (
                    m
                    for m in channel.messages
                    if m.ts == target.message_ts
                    and m.ephemeral_for in (None, target.user)
                    and m.user == self.bot_user_id
                ),
                None,
            )
        if original is not None and truthy(payload.get("delete_original")):
            channel.messages.remove(original)
            return
        text = str(payload.get("text") or "")
        blocks = payload.get("blocks") if isinstance(payload.get("blocks"), list) else None
        if original is not None and truthy(payload.get("replace_original")):
            original.text, original.blocks = text, blocks
            original.edited, original.edited_ts = True, self._next_ts()
            return
        public = payload.get("response_type") == "in_channel"
        thread = payload.get("thread_ts") or target.thread_ts
        channel.messages.append(
            Message(
                ts=self._next_ts(),
                user=self.bot_user_id,
                text=text,
                blocks=blocks,
                thread_ts=self._thread_root(channel, thread),
                channel=channel.id,
                ephemeral_for=None if public else target.user,
            )
        )


def _refusal(payload: dict[str, Any]) -> str | None:
    """Why Slack would refuse a message posted to a response_url, or None: the limits of
    chat.postMessage, less the cumulative text of blocks (see ``blockkit``)."""
    text = payload.get("text")
    if text is not None and len(str(text)) > MAX_TEXT_CHARS:
        return "msg_too_long"
    blocks = payload.get("blocks")
    if blocks is None:
        return None
    if not isinstance(blocks, list) or not all(
        isinstance(b, dict) and isinstance(b.get("type"), str) for b in blocks
    ):
        return "invalid_blocks"
    try:
        check_message_blocks(blocks, cumulative=False)
    except SlackError as e:
        return e.error
    return None

"""Slack's client side: the requests Slack sends an app's Request URL, built and signed in
one place.

``RequestBuilder`` makes, for one installation of an app (team, app id, verification token),
a slash command's form, a ``block_actions`` / ``view_submission`` / ``view_closed`` payload,
or an Events API envelope (with Slack's retry headers when it redelivers). A
``SlackRequest`` is signed as Slack signs (v0: ``X-Slack-Signature`` over the timestamp and
body, which the app checks with ``slack_sdk.signature.SignatureVerifier``) when it is sent,
and ``post`` sends one over HTTP. The tests' driver, the sandbox's people and the benchmarks
all build their requests here.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from slack_sdk.signature import SignatureVerifier

from loopback.server import http_request

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"


def signed_headers(
    secret: str, body: str, *, content_type: str, timestamp: int | None = None
) -> dict[str, str]:
    """Content type, ``X-Slack-Request-Timestamp`` and ``X-Slack-Signature`` for ``body``."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    return {
        "content-type": content_type,
        "x-slack-request-timestamp": ts,
        "x-slack-signature": SignatureVerifier(secret).generate_signature(timestamp=ts, body=body),
    }


@dataclass
class SlackRequest:
    """One request as Slack sends it to an app, before signing."""

    kind: str  # "slash_command", "block_actions", ..., "event:app_mention"
    body: str
    content_type: str
    extra_headers: dict[str, str] = field(default_factory=dict)  # e.g. X-Slack-Retry-Num

    def headers(self, secret: str, *, timestamp: int | None = None) -> dict[str, str]:
        """The headers Slack sends with this body, signed with the app's signing secret."""
        signed = signed_headers(
            secret, self.body, content_type=self.content_type, timestamp=timestamp
        )
        return {**signed, **self.extra_headers}


@dataclass
class Reply:
    """The app's answer to one request."""

    status: int
    body: str
    headers: dict[str, Any]

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    @property
    def text(self) -> str:
        """The text of a JSON ack ("" when the ack had no body)."""
        data = self.json() if self.body.startswith("{") else None
        return str(data.get("text", "")) if isinstance(data, dict) else self.body


def post(url: str, body: str, headers: dict[str, str], *, timeout: float) -> Reply:
    """POST ``body`` to ``url``; any HTTP status is a ``Reply``, no answer raises OSError."""
    status, data, answer_headers = http_request(url, body.encode(), headers, timeout=timeout)
    return Reply(status, data.decode("utf-8", "replace"), answer_headers)


def person(user_id: str, name: str, team_id: str) -> dict[str, Any]:
    """The ``user`` object of an interaction payload."""
    return {"id": user_id, "username": name, "name": name, "team_id": team_id}


class RequestBuilder:
    """What Slack sends one app installed in one workspace."""

    def __init__(
        self,
        *,
        team_id: str,
        team_domain: str,
        api_app_id: str,
        verification_token: str,
        bot_user_id: str | None = None,
    ) -> None:
        self.team_id = team_id
        self.team_domain = team_domain
        self.api_app_id = api_app_id
        self.verification_token = verification_token
        self.bot_user_id = bot_user_id  # named in events' authorizations when given

    def slash_command(
        self,
        *,
        command: str,
        text: str,
        user_id: str,
        user_name: str,
        channel_id: str,
        channel_name: str,
        response_url: str,
        trigger_id: str,
    ) -> SlackRequest:
        form = {
            "token": self.verification_token,
            "team_id": self.team_id,
            "team_domain": self.team_domain,
            "channel_id": channel_id,
            "channel_name": channel_name,
            "user_id": user_id,
            "user_name": user_name,
            "command": command,
            "text": text,
            "api_app_id": self.api_app_id,
            "is_enterprise_install": "false",
            "response_url": response_url,
            "trigger_id": trigger_id,
        }
        return SlackRequest("slash_command", urlencode(form), FORM)

    def block_actions(
        self,
        *,
        user: dict[str, Any],
        trigger_id: str,
        container: dict[str, Any],
        actions: list[dict[str, Any]],
        **where: Any,
    ) -> SlackRequest:
        """A click; ``where`` is what Slack adds for the surface clicked: ``channel``,
        ``message``, ``view``, ``state``, ``response_url``."""
        payload: dict[str, Any] = {
            **self._interaction("block_actions", user),
            "enterprise": None,
            "is_enterprise_install": False,
            "trigger_id": trigger_id,
            "container": container,
            **where,
            "actions": actions,
        }
        return self.interactive(payload)

    def view_submission(
        self, *, user: dict[str, Any], view: dict[str, Any], trigger_id: str
    ) -> SlackRequest:
        payload = {
            **self._interaction("view_submission", user),
            "trigger_id": trigger_id,
            "view": view,
            "response_urls": [],
            "is_enterprise_install": False,
            "enterprise": None,
        }
        return self.interactive(payload)

    def view_closed(self, *, user: dict[str, Any], view: dict[str, Any]) -> SlackRequest:
        payload = {**self._interaction("view_closed", user), "view": view, "is_cleared": True}
        return self.interactive(payload)

    def interactive(self, payload: dict[str, Any]) -> SlackRequest:
        """Any interaction payload, as Slack posts it: a form with one ``payload`` field."""
        body = urlencode({"payload": json.dumps(payload)})
        return SlackRequest(str(payload.get("type") or "interactive"), body, FORM)

    def event(
        self,
        event: dict[str, Any],
        *,
        event_id: str | None = None,
        retry_num: int | None = None,
        retry_reason: str = "http_timeout",
    ) -> SlackRequest:
        """An Events API envelope; ``retry_num`` marks a redelivery as Slack's headers do."""
        envelope: dict[str, Any] = {
            "token": self.verification_token,
            "team_id": self.team_id,
            "api_app_id": self.api_app_id,
            "event": event,
            "type": "event_callback",
            "event_id": event_id or f"Ev{uuid.uuid4().hex[:10].upper()}",
            "event_time": int(time.time()),
        }
        if self.bot_user_id is not None:
            envelope["authorizations"] = [
                {
                    "enterprise_id": None,
                    "team_id": self.team_id,
                    "user_id": self.bot_user_id,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ]
            envelope["is_ext_shared_channel"] = False
        retry = {}
        if retry_num is not None:
            retry = {"x-slack-retry-num": str(retry_num), "x-slack-retry-reason": retry_reason}
        return SlackRequest(f"event:{event['type']}", json.dumps(envelope), JSON, retry)

    def app_home_opened(
        self, user: str, channel: str, view: dict[str, Any] | None = None
    ) -> SlackRequest:
        """The person opens the app's Home tab (with the view it shows, if any)."""
        event: dict[str, Any] = {
            "type": "app_home_opened",
            "user": user,
            "channel": channel,
            "tab": "home",
            "event_ts": f"{time.time():.6f}",
        }
        if view is not None:
            event["view"] = view
        return self.event(event)

    def _interaction(self, kind: str, user: dict[str, Any]) -> dict[str, Any]:
        return {
            "type": kind,
            "user": user,
            "api_app_id": self.api_app_id,
            "token": self.verification_token,
            "team": {"id": self.team_id, "domain": self.team_domain},
        }

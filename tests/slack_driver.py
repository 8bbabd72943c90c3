"""Sends Slack's requests to the app, signed as Slack signs them: one driver for every test.

In-process it calls `App.dispatch`; against a running server it POSTs over HTTP.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from itertools import count
from typing import Any
from urllib.parse import urlencode

from slack_bolt import App
from slack_bolt.request import BoltRequest
from slack_sdk.signature import SignatureVerifier

from bot.sandbox.signing import signed_headers
from tests.fakes.slack_api import FakeSlack

_ids = count(1)


@dataclass
class Reply:
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


class SlackDriver:
    def __init__(
        self,
        fake: FakeSlack,
        signing_secret: str,
        *,
        app: App | None = None,
        url: str | None = None,
    ) -> None:
        assert (app is None) != (url is None), "give an app or a URL"
        self.fake = fake
        self.secret = signing_secret
        self.verifier = SignatureVerifier(signing_secret)
        self.app = app
        self.url = url
        self.last_response_url: str | None = None

    # -- signing ---------------------------------------------------------------------------
    def headers(
        self, body: str, *, timestamp: int | None = None, content_type: str
    ) -> dict[str, str]:
        return signed_headers(self.secret, body, content_type=content_type, timestamp=timestamp)

    def send(self, body: str, headers: dict[str, str]) -> Reply:
        if self.app is not None:
            resp = self.app.dispatch(BoltRequest(body=body, headers=headers))
            return Reply(resp.status, resp.body, dict(resp.headers))
        req = urllib.request.Request(
            self.url,
            data=body.encode(),
            headers=headers,
            method="POST",  # type: ignore[arg-type]
        )
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return Reply(r.status, r.read().decode(), dict(r.headers))
        except urllib.error.HTTPError as e:
            with e:
                return Reply(e.code, e.read().decode(), dict(e.headers))

    # -- Slack's request kinds -------------------------------------------------------------
    def command(
        self,
        text: str,
        *,
        user: str = "U0DECLARER",
        channel: str = "C0SUPPORT",
        command: str = "/escalate",
        trigger_id: str | None = None,
    ) -> Reply:
        self.last_response_url = self.fake.new_response_url()
        form = {
            "token": "legacy-verification-token",
            "team_id": self.fake.team_id,
            "team_domain": "acme-support",
            "channel_id": channel,
            "channel_name": "support",
            "user_id": user,
            "user_name": user.lower(),
            "command": command,
            "text": text,
            "api_app_id": "A0WARROOM",
            "is_enterprise_install": "false",
            "response_url": self.last_response_url,
            "trigger_id": trigger_id or self.fake.new_trigger_id(),
        }
        body = urlencode(form)
        return self.send(body, self.headers(body, content_type="application/x-www-form-urlencoded"))

    def interactive(self, payload: dict[str, Any]) -> Reply:
        body = urlencode({"payload": json.dumps(payload)})
        return self.send(body, self.headers(body, content_type="application/x-www-form-urlencoded"))

    def click(
        self, channel: str, action_id: str, value: str, *, user: str = "U0DECLARER", ts: str = ""
    ) -> Reply:
        self.last_response_url = self.fake.new_response_url()
        return self.interactive(
            {
                "type": "block_actions",
                "team": {"id": self.fake.team_id},
                "user": {"id": user, "username": user.lower()},
                "api_app_id": "A0WARROOM",
                "trigger_id": self.fake.new_trigger_id(),
                "channel": {"id": channel},
                "container": {"type": "message", "message_ts": ts, "channel_id": channel},
                "message": {"ts": ts},
                "response_url": self.last_response_url,
                "actions": [
                    {
                        "type": "button",
                        "action_id": action_id,
                        "block_id": f"step:{value}",
                        "value": value,
                        "action_ts": f"{time.time():.6f}",
                    }
                ],
            }
        )

    def submit_view(
        self, view: dict[str, Any], values: dict[str, Any], *, user: str = "U0DECLARER"
    ) -> Reply:
        submitted = {**view, "state": {"values": values}}
        return self.interactive(
            {
                "type": "view_submission",
                "team": {"id": self.fake.team_id},
                "user": {"id": user, "username": user.lower()},
                "api_app_id": "A0WARROOM",
                "trigger_id": self.fake.new_trigger_id(),
                "view": submitted,
            }
        )

    def event(
        self, event: dict[str, Any], *, retry_num: int | None = None, event_id: str | None = None
    ) -> Reply:
        envelope = {
            "token": "legacy-verification-token",
            "team_id": self.fake.team_id,
            "api_app_id": "A0WARROOM",
            "type": "event_callback",
            "event_id": event_id or f"Ev{next(_ids):08d}",
            "event_time": int(time.time()),
            "event": event,
        }
        body = json.dumps(envelope)
        headers = self.headers(body, content_type="application/json")
        if retry_num is not None:
            headers["x-slack-retry-num"] = str(retry_num)
            headers["x-slack-retry-reason"] = "http_timeout"
        return self.send(body, headers)

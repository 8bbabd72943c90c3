"""Sends Slack's requests to the app under test, signed as Slack signs them: one driver for
the tests and the benchmarks.

The app is given as a Bolt ``App`` (the driver calls ``App.dispatch`` in-process) or as the
URL of a running server (it POSTs over HTTP). The requests are built by
``loopback.slack.client``; response URLs and trigger ids come from the emulator.
"""

from __future__ import annotations

import time
from itertools import count
from typing import Any

from slack_bolt import App
from slack_bolt.request import BoltRequest

from loopback.slack.client import FORM, Reply, RequestBuilder, SlackRequest, post, signed_headers
from loopback.slack.emulator import SlackEmulator

__all__ = ["Reply", "SlackDriver"]

_ids = count(1)


class SlackDriver:
    """Slack's side of the app's Request URL, for one person at a time."""

    def __init__(
        self,
        fake: SlackEmulator,
        signing_secret: str,
        *,
        app: App | None = None,
        url: str | None = None,
    ) -> None:
        assert (app is None) != (url is None), "give an app or a URL"
        self.fake = fake
        self.secret = signing_secret
        self.app = app
        self.url = url
        self.last_response_url: str | None = None
        self.requests = RequestBuilder(
            team_id=fake.team_id,
            team_domain="acme-support",
            api_app_id="A0WARROOM",
            verification_token="legacy-verification-token",
        )

    # -- the wire --------------------------------------------------------------------------
    def headers(
        self, body: str, *, timestamp: int | None = None, content_type: str
    ) -> dict[str, str]:
        return signed_headers(self.secret, body, content_type=content_type, timestamp=timestamp)

    def send(self, body: str, headers: dict[str, str]) -> Reply:
        if self.app is not None:
            resp = self.app.dispatch(BoltRequest(body=body, headers=headers))
            return Reply(resp.status, resp.body, dict(resp.headers))
        assert self.url is not None
        return post(self.url, body, headers, timeout=10)

    def deliver(self, request: SlackRequest) -> Reply:
        return self.send(request.body, request.headers(self.secret))

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
        return self.deliver(
            self.requests.slash_command(
                command=command,
                text=text,
                user_id=user,
                user_name=user.lower(),
                channel_id=channel,
                channel_name="support",
                response_url=self.last_response_url,
                trigger_id=trigger_id or self.fake.new_trigger_id(),
            )
        )

    def interactive(self, payload: dict[str, Any]) -> Reply:
        body = self.requests.interactive(payload).body
        return self.send(body, self.headers(body, content_type=FORM))

    def click(
        self, channel: str, action_id: str, value: str, *, user: str = "U0DECLARER", ts: str = ""
    ) -> Reply:
        self.last_response_url = self.fake.new_response_url()
        action = {
            "type": "button",
            "action_id": action_id,
            "block_id": f"step:{value}",
            "value": value,
            "action_ts": f"{time.time():.6f}",
        }
        return self.deliver(
            self.requests.block_actions(
                user=self._user(user),
                trigger_id=self.fake.new_trigger_id(),
                container={"type": "message", "message_ts": ts, "channel_id": channel},
                channel={"id": channel},
                message={"ts": ts},
                response_url=self.last_response_url,
                actions=[action],
            )
        )

    def submit_view(
        self, view: dict[str, Any], values: dict[str, Any], *, user: str = "U0DECLARER"
    ) -> Reply:
        return self.deliver(
            self.requests.view_submission(
                user=self._user(user),
                view={**view, "state": {"values": values}},
                trigger_id=self.fake.new_trigger_id(),
            )
        )

    def event(
        self, event: dict[str, Any], *, retry_num: int | None = None, event_id: str | None = None
    ) -> Reply:
        return self.deliver(
            self.requests.event(
                event, event_id=event_id or f"Ev{next(_ids):08d}", retry_num=retry_num
            )
        )

    def _user(self, user: str) -> dict[str, Any]:
        return {"id": user, "username": user.lower()}

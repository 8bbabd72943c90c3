"""`@vp ...` in a war room: one app_mention listener; the work runs after the ack."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App, BoltContext

from bot.listeners.errors import guarded
from bot.services.mentions import Mentions
from bot.slack.gateway import SlackGateway
from bot.slack.mentions import parse_mention

_SKIP = "warroom_skip"


def register(app: App, mentions: Mentions, gateway: SlackGateway) -> None:
    def ack_mention(ack: Ack, body: dict[str, Any], context: BoltContext) -> None:
        ack()
        # Slack redelivers events it thinks we missed: answer each event once.
        if not mentions.first_delivery(str(body.get("event_id") or "")):
            context[_SKIP] = True

    def answer(event: dict[str, Any], context: BoltContext) -> None:
        if context.get(_SKIP):
            return
        channel, user = event["channel"], event.get("user", "")
        thread = event.get("thread_ts") or event["ts"]

        def run() -> None:
            mention = parse_mention(event.get("text", ""), gateway.user_name)
            text = mentions.answer(channel, user, thread, mention)
            if text:
                gateway.post_text(channel, text, thread_ts=thread)

        def refuse(text: str) -> None:  # refusals and mistakes: only the person sees them
            gateway.tell(channel, user, text, thread_ts=thread)

        guarded("answering", refuse, run)

    app.event("app_mention")(ack=ack_mention, lazy=[answer])

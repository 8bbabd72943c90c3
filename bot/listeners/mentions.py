"""`@vp ...` in a war room: one app_mention listener; the work runs after the ack."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App, BoltContext

from bot.domain.errors import Unavailable
from bot.listeners.errors import guarded
from bot.services.mentions import Mentions
from bot.slack.gateway import SlackGateway
from bot.slack.mentions import caller_of, parse_mention
from bot.slack.messages import from_another_team

_SKIP = "warroom_skip"


def register(app: App, mentions: Mentions, gateway: SlackGateway) -> None:
    def ack_mention(ack: Ack, body: dict[str, Any], context: BoltContext) -> None:
        if from_another_team(body):
            # A customer's person in their shared channel: the bot answers no one there (its
            # only words in that channel are approved letters); their words reach the war room
            # as a message.
            ack()
            context[_SKIP] = True
            return
        # Slack redelivers events it thinks we missed: answer each event once. The delivery
        # is claimed before any work; when the claim cannot be made, nothing is done and the
        # error answer makes Slack deliver it again, and that delivery is the one processed.
        try:
            first = mentions.first_delivery(str(body.get("event_id") or ""))
        except Unavailable:
            context[_SKIP] = True
            raise
        ack()
        if not first:
            context[_SKIP] = True

    def answer(event: dict[str, Any], context: BoltContext) -> None:
        if context.get(_SKIP):
            return
        channel, caller = event["channel"], caller_of(event)
        thread = event.get("thread_ts") or event["ts"]

        def run() -> None:
            mention = parse_mention(event.get("text", ""), gateway.user_name)
            text = mentions.answer(channel, caller.id, thread, mention)
            if text:  # keyed by the mention: a post whose answer was lost is found, not redone
                gateway.post_text(channel, text, thread_ts=thread, key=f"answer:{event['ts']}")

        def refuse(text: str) -> None:
            # Refusals and mistakes: only the person sees them. A bot sees no ephemeral
            # message, so it is answered in its thread (now and then).
            if caller.is_bot:
                if mentions.may_tell_bot(caller.id):
                    gateway.post_text(channel, text, thread_ts=thread)
            else:
                gateway.tell(channel, caller.id, text, thread_ts=thread)

        guarded("answering", refuse, run)

    app.event("app_mention")(ack=ack_mention, lazy=[answer])

"""Messages in the channels the bot is in: a customer's words in their shared channel (Slack
Connect) come back to the war room. Everything else is acknowledged and left alone."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import Ack, App, BoltContext

from bot.services.replies import CustomerReplies
from bot.slack.messages import SharedMessage, external_message

log = logging.getLogger(__name__)

_REPLY = "warroom_customer_reply"


def register(app: App, replies: CustomerReplies) -> None:
    def ack_message(ack: Ack, body: dict[str, Any], context: BoltContext) -> None:
        # Our own people's messages (every message of a war room) are answered at once, with
        # no I/O. A customer's is claimed before the ack, as mentions are: a redelivery is
        # dropped, and a claim that cannot be made is answered with an error, so Slack's
        # retry is the one processed.
        message = external_message(body)
        if message is not None and replies.first_delivery(str(body.get("event_id") or "")):
            context[_REPLY] = message
        ack()

    def capture(context: BoltContext) -> None:
        message = context.get(_REPLY)
        if not isinstance(message, SharedMessage):
            return
        try:
            replies.shared_message(message)
        except Exception:
            log.exception("a customer's message in %s was not brought to the room", message.channel)

    app.event("message")(ack=ack_message, lazy=[capture])

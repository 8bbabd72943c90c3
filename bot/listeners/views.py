"""The declaration form's submission: validate in place, then open the room after the ack."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import Ack, App, BoltContext

from bot.domain.errors import Unavailable
from bot.listeners.errors import guarded
from bot.services.declaring import Declaring, ReplyTo
from bot.services.room import RoomChanges
from bot.slack import blocks
from bot.slack.brief import read_facts_form
from bot.slack.forms import read_form
from bot.slack.gateway import SlackGateway
from bot.slack.ids import BlockId, CallbackId

log = logging.getLogger(__name__)

_CLAIM = "warroom_claim"
_CUSTOMER = "warroom_customer"
_WAIT = "warroom_wait"


def register(app: App, declaring: Declaring, gateway: SlackGateway) -> None:
    def ack_form(
        ack: Ack, body: dict[str, Any], view: dict[str, Any], context: BoltContext
    ) -> None:
        result = read_form(view["state"]["values"], body["user"]["id"], declaring.known_criteria)
        if isinstance(result, dict):
            return ack(response_action="errors", errors=result)
        try:
            # A double submit of the same form carries the same view id: one room.
            accepted = declaring.accept(result, view["id"], ReplyTo(user=result.declarer))
        except Unavailable as e:
            return ack(response_action="errors", errors={BlockId.CUSTOMER: e.message[:150]})
        ack()
        if accepted.mine:
            context.update(
                {_CLAIM: accepted.token, _WAIT: accepted.wait, _CUSTOMER: result.customer}
            )

    def open_room(body: dict[str, Any], context: BoltContext) -> None:
        if not context.get(_CLAIM):
            return
        user = body["user"]["id"]
        wait = context.get(_WAIT, 0.0)
        if wait >= 1:
            try:  # the app's DM with the declarer; the room opens whether or not it arrives
                gateway.post_text(user, blocks.queued_notice(context[_CUSTOMER], wait))
            except Exception:
                log.exception("could not tell %s their room is queued", user)
        declaring.open_when_due(context[_CLAIM], wait)

    app.view(CallbackId.DECLARE_FORM)(ack=ack_form, lazy=[open_room])


def register_facts(app: App, room: RoomChanges, gateway: SlackGateway) -> None:
    """The form from the brief that records what the customer may be told."""

    def ack_facts(ack: Ack) -> None:
        ack()

    def save_facts(body: dict[str, Any], view: dict[str, Any]) -> None:
        user = body["user"]["id"]
        guarded(
            "saving what the customer may be told",
            lambda text: gateway.post_text(user, text),
            lambda: room.set_facts(
                view["private_metadata"], user, read_facts_form(view["state"]["values"])
            ),
        )

    app.view(CallbackId.FACTS_FORM)(ack=ack_facts, lazy=[save_facts])

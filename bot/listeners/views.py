"""The declaration form's submission: validate in place, then open the room after the ack."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from slack_bolt import Ack, App, BoltContext

from bot.domain.declaration import Declaration
from bot.domain.errors import Unavailable
from bot.listeners.errors import guarded
from bot.services.declaring import Declaring
from bot.services.room import RoomChanges
from bot.slack import blocks
from bot.slack.brief import read_facts_form
from bot.slack.forms import read_form
from bot.slack.gateway import SlackGateway
from bot.slack.ids import BlockId, CallbackId

_CLAIM = "warroom_claim"
_DECLARATION = "warroom_declaration"
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
            accepted = declaring.accept(result, token=view["id"])
        except Unavailable as e:
            return ack(response_action="errors", errors={BlockId.CUSTOMER: e.message[:150]})
        ack()
        if accepted.mine:
            context.update({_CLAIM: accepted.token, _DECLARATION: asdict(result)})
            context[_WAIT] = accepted.wait

    def open_room(body: dict[str, Any], context: BoltContext) -> None:
        if not context.get(_CLAIM):
            return
        user = body["user"]["id"]

        def reply(text: str) -> None:
            gateway.post_text(user, text)  # the app's DM with the declarer

        decl = Declaration(**context[_DECLARATION])
        wait = context.get(_WAIT, 0.0)
        if wait >= 1:
            reply(blocks.queued_notice(decl.customer, wait))
        declaring.open_war_room_after(
            wait,
            decl,
            context[_CLAIM],
            reply,
            lambda work: guarded("opening the war room", reply, work),
        )

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

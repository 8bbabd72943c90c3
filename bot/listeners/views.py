"""The declaration form's submission: validate in place, then open the room after the ack."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from slack_bolt import Ack, App, BoltContext

from bot.domain.declaration import Declaration
from bot.domain.errors import Unavailable
from bot.listeners.errors import guarded
from bot.service import EscalationService
from bot.slack.forms import read_form
from bot.slack.ids import BlockId, CallbackId

_CLAIM = "warroom_claim"
_DECLARATION = "warroom_declaration"
_WAIT = "warroom_wait"


def register(app: App, service: EscalationService) -> None:
    def ack_form(
        ack: Ack, body: dict[str, Any], view: dict[str, Any], context: BoltContext
    ) -> None:
        user = body["user"]["id"]
        result = read_form(view["state"]["values"], user, service.protocol.criterion_ids)
        if isinstance(result, dict):
            return ack(response_action="errors", errors=result)
        try:
            # A double submit of the same form carries the same view id: one room.
            claim = service.claim(result, token=view["id"])
            wait = service.reserve_creation(result, claim.token) if claim.mine else 0.0
        except Unavailable as e:
            return ack(response_action="errors", errors={BlockId.CUSTOMER: e.message[:150]})
        ack()
        if claim.mine:
            context[_CLAIM] = claim.token
            context[_DECLARATION] = asdict(result)
            context[_WAIT] = wait

    def open_room(body: dict[str, Any], context: BoltContext) -> None:
        if not context.get(_CLAIM):
            return
        user = body["user"]["id"]

        def reply(text: str) -> None:
            service.gateway.post_text(user, text)  # the app's DM with the declarer

        decl = Declaration(**context[_DECLARATION])
        wait = context.get(_WAIT, 0.0)
        if wait >= 1:
            reply(
                f"🚨 Your war room for *{decl.customer}* is queued behind others; it opens in "
                f"about {round(wait)} s."
            )
        service.open_war_room_after(
            wait,
            decl,
            context[_CLAIM],
            reply,
            lambda work: guarded("opening the war room", reply, work),
        )

    app.view(CallbackId.DECLARE_FORM)(ack=ack_form, lazy=[open_room])

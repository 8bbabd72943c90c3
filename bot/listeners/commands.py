"""`/escalate`: parse and claim on the ack path; open the room after the ack."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from slack_bolt import Ack, App, BoltContext, Respond

from bot.domain.declaration import Declaration
from bot.domain.errors import Unavailable
from bot.listeners.errors import guarded
from bot.services.declaring import Declaring, ReplyTo
from bot.slack import blocks
from bot.slack.parse import USAGE, USAGE_HINT, Help, InvalidCommand, OpenForm, parse_escalate

# Keys the ack leaves in the context for the lazy half (Bolt deep-copies the context).
_FORM = "warroom_open_form"
_CLAIM = "warroom_claim"
_WAIT = "warroom_wait"


def register(app: App, declaring: Declaring) -> None:
    def ack_escalate(ack: Ack, command: dict[str, Any], context: BoltContext) -> None:
        try:
            parsed = parse_escalate(command.get("text") or "", declaring.known_criteria)
        except InvalidCommand as e:
            declaring.refused()
            return ack(response_type="ephemeral", text=blocks.usage_message(e.problems, USAGE_HINT))
        if isinstance(parsed, Help):
            return ack(response_type="ephemeral", text=USAGE)
        if isinstance(parsed, OpenForm):
            context[_FORM] = True
            return ack()
        decl = Declaration(declarer=command["user_id"], **asdict(parsed))
        try:
            accepted = declaring.accept(
                decl,
                command.get("trigger_id") or command["user_id"],
                ReplyTo(response_url=command.get("response_url"), user=command["user_id"]),
            )
        except Unavailable as e:
            return ack(response_type="ephemeral", text=e.message)
        if accepted.mine:
            context.update({_CLAIM: accepted.token, _WAIT: accepted.wait})
        per_minute = declaring.pacing.creates_per_minute
        ack(
            response_type="ephemeral",
            text=blocks.declaration_ack(decl.customer, accepted, per_minute),
        )

    def open_room(command: dict[str, Any], context: BoltContext, respond: Respond) -> None:
        def reply(text: str) -> None:
            respond(text=text, response_type="ephemeral", replace_original=False)

        if context.get(_FORM):
            guarded("opening the form", reply, lambda: declaring.open_form(command["trigger_id"]))
        elif context.get(_CLAIM):
            # The declaration waits in Redis; whatever happens here, the declarer is told.
            declaring.open_when_due(context[_CLAIM], context.get(_WAIT, 0.0))

    app.command("/escalate")(ack=ack_escalate, lazy=[open_room])

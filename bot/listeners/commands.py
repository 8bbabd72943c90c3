"""`/escalate`: parse and claim on the ack path; open the room after the ack."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from slack_bolt import Ack, App, BoltContext, Respond

from bot.domain.declaration import Declaration
from bot.domain.errors import InvalidInput, Unavailable
from bot.listeners.errors import guarded
from bot.service import EscalationService
from bot.slack import blocks
from bot.slack.parse import USAGE, Declare, Help, OpenForm, parse_escalate

# Keys the ack leaves in the context for the lazy half (Bolt deep-copies the context).
_FORM = "warroom_open_form"
_CLAIM = "warroom_claim"
_DECLARATION = "warroom_declaration"
_WAIT = "warroom_wait"


def register(app: App, service: EscalationService) -> None:
    def ack_escalate(ack: Ack, command: dict[str, Any], context: BoltContext) -> None:
        try:
            parsed = parse_escalate(command.get("text") or "", service.protocol.criterion_ids)
        except InvalidInput as e:
            service.metrics.declarations.labels("invalid").inc()
            return ack(response_type="ephemeral", text=blocks.usage_message(e.message, USAGE))
        if isinstance(parsed, Help):
            return ack(response_type="ephemeral", text=USAGE)
        if isinstance(parsed, OpenForm):
            context[_FORM] = True
            return ack()
        ack(response_type="ephemeral", text=_accept(service, parsed, command, context))

    def open_room(command: dict[str, Any], context: BoltContext, respond: Respond) -> None:
        def reply(text: str) -> None:
            respond(text=text, response_type="ephemeral", replace_original=False)

        if context.get(_FORM):
            guarded("opening the form", reply, lambda: service.open_form(command["trigger_id"]))
        elif context.get(_CLAIM):
            decl = Declaration(**context[_DECLARATION])
            service.open_war_room_after(
                context.get(_WAIT, 0.0),
                decl,
                context[_CLAIM],
                reply,
                lambda work: guarded("opening the war room", reply, work),
            )

    app.command("/escalate")(ack=ack_escalate, lazy=[open_room])


def _accept(
    service: EscalationService, parsed: Declare, command: dict[str, Any], context: BoltContext
) -> str:
    """Claim the declaration; the answer the caller sees at once."""
    decl = Declaration(
        customer=parsed.customer,
        summary=parsed.summary,
        declarer=command["user_id"],
        arr=parsed.arr,
        ic=parsed.ic,
        criteria=parsed.criteria,
        private=parsed.private,
    )
    try:
        claim = service.claim(decl, token=command.get("trigger_id") or command["user_id"])
    except Unavailable as e:
        return e.message
    if not claim.mine:
        if claim.channel_id:
            return f"This escalation is already open: {blocks.channel_link(claim.channel_id)}."
        return "This escalation is already being opened; its link follows in a moment."
    context[_CLAIM] = claim.token
    context[_DECLARATION] = asdict(decl)
    try:
        wait = service.reserve_creation(decl, claim.token)
    except Unavailable as e:
        return e.message
    context[_WAIT] = wait
    if wait >= 1:
        return (
            f"🚨 Your war room for *{decl.customer}* is queued: Slack lets an app create about "
            f"{service.creates_per_minute:g} channels a minute, and others came first. It opens "
            f"in about {round(wait)} s; the link follows here."
        )
    return f"🚨 Opening a war room for *{decl.customer}*…"

"""A draft's buttons (Approve, Edit, Regenerate) and the edit form."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App, BoltContext, Respond

from bot.listeners.errors import guarded
from bot.services.drafting import DraftDesk
from bot.slack.gateway import SlackGateway
from bot.slack.ids import VALUE, ActionId, BlockId, CallbackId

_TEXT = "warroom_draft_text"


def register(app: App, desk: DraftDesk, gateway: SlackGateway) -> None:
    def ack_button(ack: Ack) -> None:
        ack()

    def _reply(respond: Respond):  # type: ignore[no-untyped-def]
        return lambda text: respond(text=text, response_type="ephemeral", replace_original=False)

    def approve(body: dict[str, Any], action: dict[str, Any], respond: Respond) -> None:
        guarded(
            "approving the update",
            _reply(respond),
            lambda: desk.approve(action["value"], body["user"]["id"]),
        )

    def regenerate(body: dict[str, Any], action: dict[str, Any], respond: Respond) -> None:
        guarded(
            "drafting the update again",
            _reply(respond),
            lambda: desk.regenerate(action["value"], body["user"]["id"]),
        )

    def edit(body: dict[str, Any], action: dict[str, Any], respond: Respond) -> None:
        guarded(
            "opening the editor",
            _reply(respond),
            lambda: desk.open_editor(action["value"], body["trigger_id"]),
        )

    app.action(ActionId.DRAFT_APPROVE)(ack=ack_button, lazy=[approve])
    app.action(ActionId.DRAFT_REGENERATE)(ack=ack_button, lazy=[regenerate])
    app.action(ActionId.DRAFT_EDIT)(ack=ack_button, lazy=[edit])

    def ack_edit(ack: Ack, view: dict[str, Any], context: BoltContext) -> None:
        text = ((view["state"]["values"].get(BlockId.DRAFT_TEXT) or {}).get(VALUE) or {}).get(
            "value"
        ) or ""
        if not text.strip():
            return ack(response_action="errors", errors={BlockId.DRAFT_TEXT: "Write the update."})
        ack()
        context[_TEXT] = text

    def save_edit(body: dict[str, Any], view: dict[str, Any], context: BoltContext) -> None:
        if _TEXT not in context:
            return
        user = body["user"]["id"]
        guarded(
            "saving the edited update",
            lambda text: gateway.post_text(user, text),
            lambda: desk.save_edit(view["private_metadata"], user, context[_TEXT]),
        )

    app.view(CallbackId.EDIT_DRAFT)(ack=ack_edit, lazy=[save_edit])

"""A draft's buttons (Approve, Edit, Regenerate; Send on an approved letter) and the edit form.
Each button carries the draft's id and the version it showed; the form carries the version it
opened."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from slack_bolt import Ack, App, BoltContext, Respond

from bot.listeners.errors import guarded
from bot.services.drafting import DraftDesk
from bot.services.sending import Sending
from bot.slack.draft_view import read_button_value, read_edit_form, read_send_value
from bot.slack.gateway import SlackGateway
from bot.slack.ids import ActionId, BlockId, CallbackId

_TEXT = "warroom_draft_text"


def register(app: App, desk: DraftDesk, gateway: SlackGateway) -> None:
    def ack_button(ack: Ack) -> None:
        ack()

    def on_click(what: str, act: Callable[[str, int, dict[str, Any]], object]) -> Callable:
        def lazy(body: dict[str, Any], action: dict[str, Any], respond: Respond) -> None:
            draft_id, seen = read_button_value(action["value"])
            guarded(
                what,
                lambda text: respond(text=text, response_type="ephemeral", replace_original=False),
                lambda: act(draft_id, seen, body),
            )

        return lazy

    approve = on_click(
        "approving the update", lambda d, v, body: desk.approve(d, v, body["user"]["id"])
    )
    regenerate = on_click(
        "drafting the update again", lambda d, v, body: desk.regenerate(d, v, body["user"]["id"])
    )
    edit = on_click(
        "opening the editor",
        lambda d, v, body: desk.open_editor(d, v, body["user"]["id"], body["trigger_id"]),
    )
    app.action(ActionId.DRAFT_APPROVE)(ack=ack_button, lazy=[approve])
    app.action(ActionId.DRAFT_REGENERATE)(ack=ack_button, lazy=[regenerate])
    app.action(ActionId.DRAFT_EDIT)(ack=ack_button, lazy=[edit])

    def ack_edit(ack: Ack, view: dict[str, Any], context: BoltContext) -> None:
        text = read_edit_form(view["state"]["values"])
        if not text.strip():
            return ack(response_action="errors", errors={BlockId.DRAFT_TEXT: "Write the update."})
        ack()
        context[_TEXT] = text

    def save_edit(body: dict[str, Any], view: dict[str, Any], context: BoltContext) -> None:
        if _TEXT not in context:
            return
        user = body["user"]["id"]
        draft_id, seen = read_button_value(view["private_metadata"])
        guarded(
            "saving the edited update",
            lambda text: gateway.post_text(user, text),
            lambda: desk.save_edit(draft_id, seen, user, context[_TEXT]),
        )

    app.view(CallbackId.EDIT_DRAFT)(ack=ack_edit, lazy=[save_edit])


def register_send(app: App, sending: Sending) -> None:
    """Send: acknowledged at once; the letter goes out after the ack."""

    def ack_button(ack: Ack) -> None:
        ack()

    def send(body: dict[str, Any], action: dict[str, Any], respond: Respond) -> None:
        draft_id, seen, shown = read_send_value(action["value"])
        guarded(
            "sending the letter",
            lambda text: respond(text=text, response_type="ephemeral", replace_original=False),
            lambda: sending.send(draft_id, seen, body["user"]["id"], shown=shown),
        )

    app.action(ActionId.DRAFT_SEND)(ack=ack_button, lazy=[send])

"""Buttons of the brief: "Mark done" on a step, "Edit" on what the customer may be told."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App, Respond

from bot.listeners.errors import guarded
from bot.services.room import RoomChanges
from bot.slack.ids import ActionId


def register(app: App, room: RoomChanges) -> None:
    def ack_button(ack: Ack) -> None:
        ack()

    def privately(respond: Respond):  # type: ignore[no-untyped-def]
        return lambda text: respond(text=text, response_type="ephemeral", replace_original=False)

    def step_done(body: dict[str, Any], action: dict[str, Any], respond: Respond) -> None:
        guarded(
            "marking the step done",
            privately(respond),
            lambda: room.mark_done(body["channel"]["id"], action["value"], body["user"]["id"]),
        )

    def facts_form(body: dict[str, Any], respond: Respond) -> None:
        guarded(
            "opening the form",
            privately(respond),
            lambda: room.open_facts_form(
                body["channel"]["id"], body["user"]["id"], body["trigger_id"]
            ),
        )

    app.action(ActionId.STEP_DONE)(ack=ack_button, lazy=[step_done])
    app.action(ActionId.FACTS_FORM)(ack=ack_button, lazy=[facts_form])

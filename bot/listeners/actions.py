"""Buttons: a brief's "Mark done"."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App, Respond

from bot.listeners.errors import guarded
from bot.services.room import RoomChanges
from bot.slack.ids import ActionId


def register(app: App, room: RoomChanges) -> None:
    def ack_step_done(ack: Ack) -> None:
        ack()

    def step_done(body: dict[str, Any], action: dict[str, Any], respond: Respond) -> None:
        def reply(text: str) -> None:
            respond(text=text, response_type="ephemeral", replace_original=False)

        guarded(
            "marking the step done",
            reply,
            lambda: room.mark_done(body["channel"]["id"], action["value"], body["user"]["id"]),
        )

    app.action(ActionId.STEP_DONE)(ack=ack_step_done, lazy=[step_done])

"""Reactions in a war room: the pin reaction (📌 by default) puts a message on the timeline."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App

from bot.listeners.errors import guarded
from bot.services.room import RoomChanges
from bot.slack.gateway import SlackGateway


def register(app: App, room: RoomChanges, gateway: SlackGateway, reaction: str) -> None:
    def ack_reaction(ack: Ack) -> None:
        ack()

    def pin(event: dict[str, Any]) -> None:
        item = event.get("item") or {}
        if event.get("reaction") != reaction or item.get("type") != "message":
            return
        channel, user = item.get("channel", ""), event.get("user", "")
        guarded(
            "putting the message on the timeline",
            lambda text: gateway.tell(channel, user, text),
            lambda: room.pin_message(channel, item.get("ts", ""), user),
        )

    app.event("reaction_added")(ack=ack_reaction, lazy=[pin])

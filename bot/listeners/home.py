"""The App Home tab, published when someone opens it."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App

from bot.listeners.errors import guarded
from bot.services.home import Home


def register(app: App, home: Home) -> None:
    def ack_opened(ack: Ack) -> None:
        ack()

    def publish(event: dict[str, Any]) -> None:
        if event.get("tab", "home") != "home":
            return
        user = event["user"]
        guarded("showing your App Home", lambda _text: None, lambda: home.publish(user))

    app.event("app_home_opened")(ack=ack_opened, lazy=[publish])

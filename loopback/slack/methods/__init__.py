"""The Web API methods the emulator implements, by family; each is a function
``(workspace, args) -> result`` called with the workspace's lock held, raising
``SlackError`` for Slack's ``{"ok": false}`` answers. ``apps.connections.open`` is the
emulator's own (it starts the Socket Mode server)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from loopback.slack.methods import chat, conversations, team, views

Method = Callable[[Any, dict[str, Any]], dict[str, Any]]

METHODS: dict[str, Method] = {
    **team.METHODS,
    **chat.METHODS,
    **conversations.METHODS,
    **views.METHODS,
}

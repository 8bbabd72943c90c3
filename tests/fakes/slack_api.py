"""The loopback Slack of the tests: the sandbox's emulator, with Socket Mode served by
``tests.fakes.socket_mode``.

The emulator itself lives in ``bot.sandbox.slack_emulator`` (one Slack for the tests and for
``warroom sandbox``); this module only re-exports it and plugs in the tests' Socket Mode
server, which the package cannot import.
"""

from __future__ import annotations

from typing import Any

from bot.sandbox.slack_emulator import *  # noqa: F403
from bot.sandbox.slack_emulator import (
    Call,
    Channel,
    Message,
    ResponseTarget,
    SlackEmulator,
    SlackError,
    channel_name_error,
)
from tests.fakes.socket_mode import SocketModeServer

__all__ = [
    "Call",
    "Channel",
    "FakeSlack",
    "Message",
    "ResponseTarget",
    "SlackEmulator",
    "SlackError",
    "channel_name_error",
]


class FakeSlack(SlackEmulator):
    """The emulator; ``socket_mode`` is a ``SocketModeServer`` started on first use."""

    socket_mode: SocketModeServer

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("socket_mode_factory", lambda app_id: SocketModeServer(app_id=app_id))
        super().__init__(**kwargs)

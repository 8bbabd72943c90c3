"""`warroom sandbox`: a local Slack-like workspace in the browser with the bot running in it.

The Slack it runs is ``loopback.slack`` (the emulator the tests use too, and its request
builder). The package owns the rest: people's actions and how Slack delivers them to the app
(``interactions``), the web page (``web`` and ``static/``), the fictional workspace
(``workspace``), the Redis it runs on (``state``), the drill (``drill``, its pace and controls
in ``pacing``) and the command itself (``app``). Importing it starts nothing.
"""

from __future__ import annotations


def main(argv: list[str] | None = None) -> int:
    """`warroom sandbox [--port N] [--clock-scale X] [--drill] [--no-browser] [--keep DIR]`."""
    from bot.sandbox.app import main as run

    return run(argv)

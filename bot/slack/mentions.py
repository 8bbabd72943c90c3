"""Reading `@vp ...` mentions (pure): which command, and its argument."""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.slack.parse import USER_MENTION

_LEADING_MENTION = re.compile(rf"^\s*{USER_MENTION.pattern}[\s,:]*")

COMMANDS = ("help", "status", "ic", "done", "update", "resolve", "timeline", "draft", "review")


@dataclass(frozen=True)
class Mention:
    command: str  # one of COMMANDS, or "" for free text
    argument: str  # the rest, as typed
    text: str  # everything after the bot's mention


def parse_mention(text: str) -> Mention:
    rest = _LEADING_MENTION.sub("", text or "", count=1).strip()
    word, _, argument = rest.partition(" ")
    command = word.lower().rstrip(":,.!?")
    if command in COMMANDS:
        return Mention(command, argument.strip(), rest)
    return Mention("", rest, rest)

"""Reading `@vp ...` mentions (pure): which command, and its argument as the person read it."""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.slack.text import USER_MENTION, Names, readable

_LEADING_MENTION = re.compile(rf"^\s*{USER_MENTION.pattern}[\s,:]*")

COMMANDS = ("help", "status", "ic", "done", "update", "resolve", "timeline", "draft", "review")


@dataclass(frozen=True)
class Mention:
    command: str  # one of COMMANDS, or "" for free text
    argument: str  # the rest, as the person read it (mentions by name, Slack's escaping undone)
    text: str  # everything after the bot's mention, as read
    wire_argument: str  # the rest as Slack sent it: `ic <@U123>` needs the mention itself


def parse_mention(wire: str, names: Names = lambda _user: None) -> Mention:
    rest = _LEADING_MENTION.sub("", wire or "", count=1).strip()
    word, _, argument = rest.partition(" ")
    command = word.lower().rstrip(":,.!?")
    said = readable(rest, names)
    if command in COMMANDS:
        return Mention(command, readable(argument.strip(), names), said, argument.strip())
    return Mention("", said, said, rest)

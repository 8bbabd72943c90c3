"""Reading `@vp ...` mentions (pure): which command, and its argument as the person read it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from bot.domain.errors import InvalidInput
from bot.slack.text import USER_MENTION, Names, inert, readable
from protocols.durations import parse_duration

_LEADING_MENTION = re.compile(rf"^\s*{USER_MENTION.pattern}[\s,:]*")

COMMANDS = (
    "help",
    "status",
    "ic",
    "done",
    "update",
    "resolve",
    "timeline",
    "draft",
    "review",
    "impact",
    "workaround",
    "doing",
    "eta",
    "advice",
    "fixed",
    "cause",
    "action",
    "ticket",
)


@dataclass(frozen=True)
class Mention:
    command: str  # one of COMMANDS, or "" for free text
    argument: str  # the rest, as the person read it (mentions by name, Slack's escaping undone)
    text: str  # everything after the bot's mention, as read
    wire_argument: str  # the rest as Slack sent it: `ic <@U123>` needs the mention itself
    # The argument's first word as Slack sent it, a Slack entity whole (`<@U1|Dana Smith>`),
    # and what follows it as read: `action <@U1|Dana Smith> fix it` is `fix it` for Dana.
    head: str = ""
    tail: str = ""


# A first word: a Slack entity whole (its label may hold spaces), or up to the next space.
_HEAD = re.compile(r"\s*(<[^<>]*>|\S+)[\s,:]*(.*)", re.DOTALL)


def parse_mention(wire: str, names: Names = lambda _user: None) -> Mention:
    rest = _LEADING_MENTION.sub("", wire or "", count=1).strip()
    word, _, argument = rest.partition(" ")
    command = word.lower().rstrip(":,.!?")
    said = readable(rest, names)
    if command in COMMANDS:
        argument = argument.strip()
        parts = _HEAD.fullmatch(argument)
        head, tail = (parts.group(1), parts.group(2).strip()) if parts else ("", "")
        return Mention(
            command, readable(argument, names), said, argument, head, readable(tail, names)
        )
    return Mention("", said, said, rest)


@dataclass(frozen=True)
class Caller:
    """Who a mention counts against: a person by their user id, or a bot, a workflow or an
    integration by its bot id (they often carry no user at all)."""

    id: str
    is_bot: bool


# Events that name no one still count, all against one shared allowance.
UNKNOWN_CALLER = "unknown"


def caller_of(event: dict[str, Any]) -> Caller:
    """The caller an event counts against. A bot's messages count against its bot id even
    when they also carry the bot's user id: one bot, one allowance."""
    bot = event.get("bot_id") or (event.get("bot_profile") or {}).get("id")
    if bot:
        return Caller(str(bot), is_bot=True)
    user = event.get("user")
    return Caller(str(user), is_bot=False) if user else Caller(UNKNOWN_CALLER, is_bot=True)


_OPTION = re.compile(r"(?:^|\s)--(?P<name>[a-z]+)(?:[ =]+(?P<value>\S+))?")


def take_option(text: str, name: str) -> tuple[str, str | None]:
    """`text` without its `--name VALUE`, and VALUE: None when the option is not there, "" when
    it has no value. Other words are left as they were."""
    for m in _OPTION.finditer(text):
        if m.group("name") == name:
            rest = (text[: m.start()] + text[m.end() :]).strip()
            return " ".join(rest.split(" ")) if rest else "", m.group("value") or ""
    return text, None


def duration_option(text: str, name: str) -> tuple[str, timedelta | None]:
    """`text` without `--name 3d`, and the duration (None when not given)."""
    rest, value = take_option(text, name)
    if value is None:
        return text, None
    try:
        return rest, parse_duration(value)
    except ValueError:
        shown = value.replace("`", "'")[:20]
        raise InvalidInput(
            f"`--{name}` takes a duration like 30m, 3h or 2d, not `{inert(shown)}`."
        ) from None

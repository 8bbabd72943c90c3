"""People's text at the boundary with Slack: read once from Slack's wire form, made inert once
on its way back into any message (pure).

Slack sends text with `&`, `<` and `>` escaped and with entities for mentions, channels, user
groups, broadcasts and links (`<@U123|dana>`, `<#C1|general>`, `<!subteam^S1|@sec>`, `<!here>`,
`<https://x|label>`). `readable` turns that into what a person read: entities become their
labels (`@dana`, `#general`, `@here`, `label (https://x)`), the escaping is undone, once. What
the bot stores and hands to the domain and the model is that readable text.

On the way out, `inert` escapes `&`, `<` and `>` again, once, so nothing a person typed can
become markup: no broadcast, no group ping, no mention, no disguised link. Text that carries
people's words also goes out with `verbatim` on (see `bot.slack.blocks`), so Slack does not
turn a bare URL into a link or `@here` into a broadcast either. The bot's own mentions and
links (`mention`, `channel_link`, `slack_time`) are the only markup in a message.

`clip` shortens mrkdwn to Slack's limits without cutting an entity or an escape in half.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime

__all__ = [
    "ENTITY",
    "USER_MENTION",
    "Names",
    "channel_link",
    "clip",
    "group_mention",
    "inert",
    "mention",
    "named",
    "readable",
    "slack_time",
    "unescape",
]

# A user mention as Slack sends it: `<@U123>` or `<@U123|name>` (`W...` ids too).
USER_MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^<>]*)?>")
# Any Slack entity: `<...>` with no angle bracket inside.
ENTITY = re.compile(r"<([^<>]*)>")

_ESCAPES = {"&amp;": "&", "&lt;": "<", "&gt;": ">"}
_ESCAPE_RE = re.compile("|".join(_ESCAPES))
_BROADCASTS = ("!here", "!channel", "!everyone")

# Looks a user's name up by id (None when it cannot be known).
Names = Callable[[str], str | None]


def unescape(text: str) -> str:
    """Undo Slack's escaping of `&`, `<` and `>` (in one pass, so `&amp;lt;` stays `&lt;`)."""
    return _ESCAPE_RE.sub(lambda m: _ESCAPES[m.group(0)], text)


def _label(body: str, names: Names) -> str:
    """How a person reads the Slack entity `<body>`: `@dana`, `#general`, a link's text."""
    target, _, label = body.partition("|")
    label = label.strip()
    if target.startswith("!subteam^"):
        return label or "@" + target.removeprefix("!subteam^")
    if target.startswith(_BROADCASTS):
        return "@" + target[1:].partition("^")[0]
    if target.startswith("!date^"):
        return label or "a date"
    if target.startswith("@"):
        user = target[1:]
        return "@" + (label.lstrip("@") or names(user) or user)
    if target.startswith("#"):
        return "#" + (label.lstrip("#") or target[1:])
    if target.startswith("mailto:"):
        return label or target.removeprefix("mailto:")
    # Slack links what people type (`acme.com` arrives as `<http://acme.com|acme.com>`): a
    # label that is the address is shown as typed; any other label with the address beside
    # it, so that no text can pass for a link to somewhere else.
    if label and label.rstrip("/") not in (target.rstrip("/"), _bare(target)):
        return f"{label} ({target})"
    return label or target


def _bare(url: str) -> str:
    return re.sub(r"^[a-z]+://", "", url).rstrip("/")


def readable(wire: str, names: Names = lambda _user: None) -> str:
    """Slack's wire text as the person read it: entities rendered as their labels (a user's
    name from `names` when the mention carries none), then the escaping undone, once."""
    return unescape(ENTITY.sub(lambda m: _label(m.group(1), names), wire))


def inert(text: str) -> str:
    """Readable text, safe inside mrkdwn: `&`, `<` and `>` escaped, once."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def named(user_id: str, names: Names) -> str:
    """A person by name, as text that notifies no one: `@Dana Smith` (the id when the name
    cannot be known), escaped like anything people can set."""
    return inert("@" + (names(user_id) or user_id))


def mention(user_id: str) -> str:
    """A mention the bot means (the IC, a VP): the only user mentions in its messages."""
    return f"<@{user_id}>"


def group_mention(group_id: str) -> str:
    """A user group the bot means to call on (a criterion's approvers)."""
    return f"<!subteam^{group_id}>"


def channel_link(channel_id: str) -> str:
    return f"<#{channel_id}>"


def slack_time(at: datetime, fmt: str = "{date_short_pretty} at {time}") -> str:
    """A time every reader sees in their own timezone, with a UTC fallback."""
    fallback = at.strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(at.timestamp())}^{fmt}|{fallback}>"


# Where a cut would split something: inside an escape (`&am`) or an entity (`<@U0BO`).
_OPEN_ESCAPE = re.compile(r"&[a-z]{0,3}$")
_OPEN_ENTITY = re.compile(r"<[^>]*$")


def clip(mrkdwn: str, limit: int) -> str:
    """At most `limit` characters, ending in `…` when cut, never inside an escape or entity."""
    if len(mrkdwn) <= limit:
        return mrkdwn
    head = mrkdwn[: max(0, limit - 1)]
    for unfinished in (_OPEN_ESCAPE, _OPEN_ENTITY):
        cut = unfinished.search(head)
        if cut is not None:
            head = head[: cut.start()]
    return head + "…"

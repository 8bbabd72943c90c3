"""Which `message` events are a customer's words: a person of another organisation posting
in a channel shared with them (Slack Connect). Pure: reads the event, calls nothing.

Slack sends the app every message of the channels its bot is in; in a shared channel each
message event names the poster's team (`user_team`, also `team` and `user_profile.team`),
and the envelope names the team the app is installed in (`authorizations[].team_id`, else
`team_id`). A message whose poster's team is another is the customer's. The app's own
messages, other bots' (`bot_id`), and everything that is not a new message (edits, deletions,
joins, topic changes: a `subtype`) are not replies. A reply in a thread and a file shared
with words are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Subtypes that are still a person saying something new.
_SAID = frozenset({"thread_broadcast", "file_share"})


@dataclass(frozen=True)
class SharedMessage:
    channel: str
    user: str
    team: str  # the poster's team
    ts: str
    text: str  # Slack's wire form (escaped, with entities)
    name: str  # the poster's name as the event gives it ("" when it gives none)
    thread_ts: str | None = None  # the thread it was posted in (one of our letters, perhaps)


def our_team(body: dict[str, Any]) -> str:
    """The team the app is installed in, as the envelope names it."""
    for authorization in body.get("authorizations") or ():
        if isinstance(authorization, dict) and authorization.get("team_id"):
            return str(authorization["team_id"])
    return str(body.get("team_id") or "")


def poster_team(event: dict[str, Any]) -> str:
    """The team of the person who posted `event`, as the event names it ("" when it does not)."""
    profile = event.get("user_profile") if isinstance(event.get("user_profile"), dict) else {}
    return str(event.get("user_team") or profile.get("team") or event.get("team") or "")


def from_another_team(body: dict[str, Any]) -> bool:
    """Whether the event in `body` was posted by a person of another organisation (a
    customer's person in a channel shared with them)."""
    team = poster_team(body.get("event") or {})
    ours = our_team(body)
    return bool(team and ours and team != ours)


def external_message(body: dict[str, Any]) -> SharedMessage | None:
    """The event in `body` when it is a new message from a person of another team, else
    None."""
    event = body.get("event") or {}
    if event.get("type") != "message" or event.get("subtype") not in (None, *_SAID):
        return None
    if event.get("bot_id") or event.get("bot_profile") or not event.get("user"):
        return None
    profile = event.get("user_profile") if isinstance(event.get("user_profile"), dict) else {}
    team = poster_team(event)
    if not from_another_team(body):
        return None
    text = str(event.get("text") or "")
    if not text.strip() and event.get("subtype") == "file_share":
        # A file shared without words (a screenshot of the error) is still the customer
        # speaking: the room is told of it, by name; the file itself is not read.
        files = [f for f in event.get("files") or () if isinstance(f, dict)]
        names = ", ".join(str(f.get("name") or f.get("title") or "a file")[:100] for f in files)
        text = f"(shared a file: {names})" if names else ""
    if not text.strip() or not event.get("channel") or not event.get("ts"):
        return None
    name = str(profile.get("real_name") or profile.get("display_name") or "").strip()
    return SharedMessage(
        channel=str(event["channel"]),
        user=str(event["user"]),
        team=team,
        ts=str(event["ts"]),
        text=text,
        name=name,
        thread_ts=str(event["thread_ts"]) if event.get("thread_ts") else None,
    )

"""The ``conversations.*`` methods: create, info, members, invite, setTopic, setPurpose,
archive, join, history, replies; and ``users.conversations``, the channels the app is in."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from loopback.slack.methods.arguments import in_bounds, paginate, ts_bounds
from loopback.slack.records import (
    MAX_INVITEES,
    MAX_TOPIC_CHARS,
    Channel,
    SlackError,
    channel_name_error,
    invalid_arguments,
    truthy,
    ts_key,
)
from loopback.slack.shapes import channel_object, message_object

if TYPE_CHECKING:
    from loopback.slack.workspace import Workspace


def create(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    name = "" if args.get("name") is None else str(args["name"])
    error = channel_name_error(name)
    if error:
        raise SlackError(error)
    # Archived channels keep their names, so they block reuse too.
    if ws._channel_named(name) is not None:
        raise SlackError("name_taken")
    channel = ws._new_channel(
        name, truthy(args.get("is_private")), {ws.bot_user_id}, ws.bot_user_id
    )
    return {"channel": channel_object(ws, channel)}


def info(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    channel = ws._require_channel(args)
    obj = channel_object(ws, channel)
    if truthy(args.get("include_num_members")):
        obj["num_members"] = len(channel.members)
    return {"channel": obj}


def members(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    channel = ws._require_channel(args)
    page, next_cursor = paginate(sorted(channel.members), args, 100, 1000)
    return {"members": page, "response_metadata": {"next_cursor": next_cursor}}


def invite(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    channel = ws._require_channel(args)
    if channel.is_im:
        raise SlackError("method_not_supported_for_channel_type")
    users = list(dict.fromkeys(u.strip() for u in str(args.get("users") or "").split(",")))
    users = [u for u in users if u]
    if not users:
        raise SlackError("no_user")
    if len(users) > MAX_INVITEES:
        raise SlackError("too_many_users")
    if channel.is_archived:
        raise SlackError("is_archived")
    if ws.bot_user_id not in channel.members:
        raise SlackError("not_in_channel")

    errors: list[dict[str, Any]] = []
    valid: list[str] = []
    for user_id in users:
        error = _invite_error(ws, channel, user_id)
        if error:
            errors.append({"user": user_id, "ok": False, "error": error})
        else:
            valid.append(user_id)
    force = truthy(args.get("force"))
    # Slack: if any invite fails, nobody is invited and an error comes back,
    # except that removed (deleted) users fail "silently": the others still join.
    # With force=true the valid ids are invited and the invalid ones disregarded.
    hard_failures = [e for e in errors if e["error"] != "cant_invite"]
    if hard_failures and not force:
        raise SlackError(errors[0]["error"], errors=errors)
    channel.members.update(valid)
    if errors and (not force or not valid):
        raise SlackError(errors[0]["error"], errors=errors)
    result: dict[str, Any] = {"channel": channel_object(ws, channel)}
    if errors:
        # Not documented: how a forced partial success reports the skipped ids.
        result["errors"] = errors
    return result


def _invite_error(ws: Workspace, channel: Channel, user_id: str) -> str | None:
    user = ws._users.get(user_id)
    if user is None:
        return "user_not_found"
    if user_id == ws.bot_user_id:
        return "cant_invite_self"
    if user["deleted"]:
        # Not documented: the code for a removed user. cant_invite is the closest.
        return "cant_invite"
    if user_id in channel.members:
        return "already_in_channel"
    return None


def _set_text_field(ws: Workspace, args: dict[str, Any], field_name: str) -> Channel:
    channel = ws._require_channel(args)
    if field_name not in args or args[field_name] is None:
        raise invalid_arguments(f"[ERROR] missing required field: {field_name}")
    if channel.is_archived:
        raise SlackError("is_archived")
    if ws.bot_user_id not in channel.members:
        raise SlackError("not_in_channel")
    value = str(args[field_name])
    if len(value) > MAX_TOPIC_CHARS:
        raise SlackError("too_long")
    stamp = (ws.bot_user_id, int(time.time()))
    if field_name == "topic":
        channel.topic, channel.topic_set = value, stamp
    else:
        channel.purpose, channel.purpose_set = value, stamp
    return channel


def set_topic(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    channel = _set_text_field(ws, args, "topic")
    return {"channel": channel_object(ws, channel)}


def set_purpose(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    _set_text_field(ws, args, "purpose")
    # The documented success response of setPurpose is a bare {"ok": true}.
    return {}


def archive(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    channel = ws._require_channel(args)
    if channel.is_im:
        raise SlackError("method_not_supported_for_channel_type")
    if channel.is_archived:
        raise SlackError("already_archived")
    if ws.bot_user_id not in channel.members:
        raise SlackError("not_in_channel")
    channel.is_archived = True
    return {}


def join(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    channel = ws._require_channel(args)
    if channel.is_im:
        raise SlackError("method_not_supported_for_channel_type")
    if channel.is_archived:
        raise SlackError("is_archived")
    if ws.bot_user_id in channel.members:
        return {
            "channel": channel_object(ws, channel),
            "warning": "already_in_channel",
            "response_metadata": {"warnings": ["already_in_channel"]},
        }
    channel.members.add(ws.bot_user_id)
    return {"channel": channel_object(ws, channel)}


_LISTABLE_TYPES = frozenset({"public_channel", "private_channel", "mpim", "im"})


def users_conversations(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    """The conversations the caller (the app; ``user`` is for user tokens) is a member of,
    of the ``types`` asked for (public channels by default), a page at a time."""
    types = {t.strip() for t in str(args.get("types") or "public_channel").split(",")}
    if not types or not types <= _LISTABLE_TYPES:
        raise SlackError("invalid_types")
    exclude_archived = truthy(args.get("exclude_archived"))
    found = [
        channel
        for channel in sorted(ws.channels.values(), key=lambda c: c.id)
        if not channel.is_im
        and ("private_channel" if channel.is_private else "public_channel") in types
        and ws.bot_user_id in channel.members
        and not (exclude_archived and channel.is_archived)
    ]
    page, next_cursor = paginate(found, args, 100, 999)
    return {
        "channels": [channel_object(ws, c) for c in page],
        "response_metadata": {"next_cursor": next_cursor},
    }


def history(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    channel = ws._require_channel(args)
    if not channel.is_im and ws.bot_user_id not in channel.members:
        # Documented: only user tokens can read public channels they are not in.
        raise SlackError("not_in_channel")
    oldest, latest, inclusive = ts_bounds(args)
    top_level = [
        m
        for m in channel.messages
        if m.ephemeral_for is None
        and (not m.thread_ts or m.thread_ts == m.ts or m.reply_broadcast)
        and in_bounds(m.ts, oldest, latest, inclusive)
    ]
    newest_first = sorted(top_level, key=lambda m: ts_key(m.ts), reverse=True)
    page, next_cursor = paginate(newest_first, args, 100, 999)
    with_metadata = truthy(args.get("include_all_metadata"))
    return {
        "messages": [message_object(ws, channel, m, with_metadata=with_metadata) for m in page],
        "has_more": bool(next_cursor),
        "pin_count": len(channel.pins),
        "response_metadata": {"next_cursor": next_cursor},
    }


def replies(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    channel = ws._require_channel(args)
    message = ws._find_message(channel, args.get("ts"))
    if message is None:
        raise SlackError("thread_not_found")
    parent_ts = message.thread_ts or message.ts
    parent = ws._find_message(channel, parent_ts)
    thread = ([parent] if parent is not None else []) + ws._replies(channel, parent_ts)
    oldest, latest, inclusive = ts_bounds(args)
    thread = [m for m in thread if in_bounds(m.ts, oldest, latest, inclusive)]
    page, next_cursor = paginate(thread, args, 1000, 1000)
    with_metadata = truthy(args.get("include_all_metadata"))
    return {
        "messages": [message_object(ws, channel, m, with_metadata=with_metadata) for m in page],
        "has_more": bool(next_cursor),
        "response_metadata": {"next_cursor": next_cursor},
    }


METHODS = {
    "conversations.archive": archive,
    "conversations.create": create,
    "conversations.history": history,
    "conversations.info": info,
    "conversations.invite": invite,
    "conversations.join": join,
    "conversations.members": members,
    "conversations.replies": replies,
    "conversations.setPurpose": set_purpose,
    "conversations.setTopic": set_topic,
    "users.conversations": users_conversations,
}

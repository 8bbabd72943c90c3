"""The methods about the workspace and its people: ``api.test``, ``auth.test``, ``pins.*``,
``users.info``, ``users.list`` and ``usergroups.users.list``."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from loopback.slack.methods.arguments import paginate
from loopback.slack.records import SlackError
from loopback.slack.shapes import message_object, permalink

if TYPE_CHECKING:
    from loopback.slack.workspace import Workspace


def api_test(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    echo = {k: v for k, v in args.items() if k != "token"}
    if echo.get("error"):
        raise SlackError(str(echo["error"]), args=echo)
    return {"args": echo}


def auth_test(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    return {
        "url": f"https://{ws.team_domain}.slack.com/",
        "team": ws.team_name,
        "user": ws._users[ws.bot_user_id]["name"],
        "team_id": ws.team_id,
        "user_id": ws.bot_user_id,
        "bot_id": ws.bot_id,
        "is_enterprise_install": False,
    }


def pins_add(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    channel = ws._require_channel(args)
    ts = args.get("timestamp")
    if not ts:
        raise SlackError("no_item_specified")
    if ws.bot_user_id not in channel.members:
        raise SlackError("not_in_channel")
    message = ws._find_message(channel, ts)
    if message is None:
        raise SlackError("message_not_found")
    if message.ts in channel.pins:
        raise SlackError("already_pinned")
    channel.pins.append(message.ts)
    channel.pin_info[message.ts] = (ws.bot_user_id, int(time.time()))
    return {}


def pins_remove(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    channel = ws._require_channel(args)
    ts = args.get("timestamp")
    if not ts:
        raise SlackError("no_item_specified")
    message = ws._find_message(channel, ts)
    if message is None:
        raise SlackError("message_not_found")
    if message.ts not in channel.pins:
        raise SlackError("no_pin")
    channel.pins.remove(message.ts)
    channel.pin_info.pop(message.ts, None)
    return {}


def pins_list(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    channel = ws._require_channel(args)
    items = []
    for ts in reversed(channel.pins):  # most recently pinned first
        message = ws._find_message(channel, ts)
        if message is None:
            continue
        pinned_by, pinned_at = channel.pin_info.get(ts, (ws.bot_user_id, 0))
        item_message = message_object(ws, channel, message)
        item_message["permalink"] = permalink(ws, channel, message)
        items.append(
            {
                "type": "message",
                "channel": channel.id,
                "created": pinned_at,
                "created_by": pinned_by,
                "message": item_message,
            }
        )
    return {"items": items}


def usergroups_users_list(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    group = ws._usergroups.get(str(args.get("usergroup") or ""))
    if group is None:
        raise SlackError("no_such_subteam")
    return {"users": list(group["users"])}


def users_info(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    user = ws._users.get(str(args.get("user") or ""))
    if user is None:
        raise SlackError("user_not_found")
    return {"user": user}


def users_list(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    page, next_cursor = paginate(list(ws._users.values()), args, 1000, 1000)
    return {
        "members": page,
        "cache_ts": int(time.time()),
        "response_metadata": {"next_cursor": next_cursor},
    }


METHODS = {
    "api.test": api_test,
    "auth.test": auth_test,
    "pins.add": pins_add,
    "pins.list": pins_list,
    "pins.remove": pins_remove,
    "usergroups.users.list": usergroups_users_list,
    "users.info": users_info,
    "users.list": users_list,
}

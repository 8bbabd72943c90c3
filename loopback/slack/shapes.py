"""The objects the Web API answers with, built from the workspace's records: a user, a
channel (``conversations.info``'s shape), a message (``conversations.history``'s), a
permalink. Called with the workspace's lock held."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from loopback.slack.records import Channel, Message

if TYPE_CHECKING:
    from loopback.slack.workspace import Workspace


def user_record(
    ws: Workspace,
    user_id: str,
    name: str,
    real_name: str | None,
    deleted: bool,
    is_bot: bool,
    team_id: str | None = None,
) -> dict[str, Any]:
    """A user as users.info answers; `team_id`: a person of another organisation (Slack
    Connect), whose record names their own team."""
    real = real_name if real_name is not None else name
    team = team_id or ws.team_id
    profile: dict[str, Any] = {
        "real_name": real,
        "real_name_normalized": real,
        "display_name": name,
        "display_name_normalized": name,
        "team": team,
    }
    if is_bot and user_id == ws.bot_user_id:
        profile["bot_id"] = ws.bot_id
    return {
        "id": user_id,
        "team_id": team,
        "name": name,
        "deleted": deleted,
        "real_name": real,
        "tz": "Etc/UTC",
        "tz_label": "Coordinated Universal Time",
        "tz_offset": 0,
        "is_admin": False,
        "is_owner": False,
        "is_primary_owner": False,
        "is_restricted": False,
        "is_ultra_restricted": False,
        "is_bot": is_bot,
        "is_app_user": False,
        "updated": int(time.time()),
        "profile": profile,
    }


def channel_object(ws: Workspace, channel: Channel) -> dict[str, Any]:
    if channel.is_im:
        return {
            "id": channel.id,
            "created": channel.created,
            "is_im": True,
            "is_org_shared": False,
            "user": channel.dm_user,
            "is_user_deleted": bool(ws._users.get(channel.dm_user or "", {}).get("deleted")),
            "priority": 0,
        }
    return {
        "id": channel.id,
        "name": channel.name,
        "is_channel": True,
        "is_group": False,
        "is_im": False,
        "is_mpim": False,
        "is_private": channel.is_private,
        "created": channel.created,
        "is_archived": channel.is_archived,
        "is_general": False,
        "unlinked": 0,
        "name_normalized": channel.name,
        "is_shared": bool(channel.shared_with),
        "is_org_shared": False,
        "is_ext_shared": bool(channel.shared_with),
        "is_pending_ext_shared": False,
        "pending_shared": [],
        "context_team_id": ws.team_id,
        "creator": channel.creator,
        "is_member": ws.bot_user_id in channel.members,
        "topic": {
            "value": channel.topic,
            "creator": channel.topic_set[0],
            "last_set": channel.topic_set[1],
        },
        "purpose": {
            "value": channel.purpose,
            "creator": channel.purpose_set[0],
            "last_set": channel.purpose_set[1],
        },
        "previous_names": [],
        **(
            {"connected_team_ids": [ws.team_id, *channel.shared_with]}
            if channel.shared_with
            else {}
        ),
    }


def message_object(
    ws: Workspace, channel: Channel, message: Message, *, with_metadata: bool = True
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "type": "message",
        "user": message.user,
        "text": message.text,
        "ts": message.ts,
        "team": ws.team_id,
    }
    if message.user == ws.bot_user_id:
        out["bot_id"] = ws.bot_id
        out["app_id"] = ws.app_id
    if message.blocks is not None:
        out["blocks"] = message.blocks
    if message.attachments is not None:
        out["attachments"] = message.attachments
    if message.thread_ts:
        out["thread_ts"] = message.thread_ts
        parent = ws._find_message(channel, message.thread_ts)
        if parent is not None:
            out["parent_user_id"] = parent.user
        if message.reply_broadcast:
            out["subtype"] = "thread_broadcast"
    else:
        replies = ws._replies(channel, message.ts)
        if replies:
            out["thread_ts"] = message.ts
            out["reply_count"] = len(replies)
            out["reply_users"] = sorted({r.user for r in replies})
            out["reply_users_count"] = len(out["reply_users"])
            out["latest_reply"] = replies[-1].ts
    if message.edited:
        out["edited"] = {"user": message.user, "ts": message.edited_ts}
    if message.metadata and with_metadata:
        out["metadata"] = message.metadata
    if message.ts in channel.pins:
        out["pinned_to"] = [channel.id]
    return out


def message_event(ws: Workspace, channel: Channel, message: Message) -> dict[str, Any]:
    """The `message` event Slack sends the app for a message just posted. In a channel shared
    with another organisation it names the poster's team (`user_team`, `team`) and the
    channel's (`source_team`), and carries the poster's profile (`user_profile`)."""
    user = ws._users.get(message.user) or {}
    team = str(user.get("team_id") or ws.team_id)
    kind = "im" if channel.is_im else ("group" if channel.is_private else "channel")
    event: dict[str, Any] = {
        "type": "message",
        "user": message.user,
        "text": message.text,
        "ts": message.ts,
        "channel": channel.id,
        "event_ts": message.ts,
        "channel_type": kind,
        "team": team,
        "client_msg_id": f"{channel.id}-{message.ts}",
    }
    if message.user == ws.bot_user_id:
        event["bot_id"] = ws.bot_id
        event["app_id"] = ws.app_id
    if message.blocks is not None:
        event["blocks"] = message.blocks
    if message.thread_ts:
        event["thread_ts"] = message.thread_ts
        if message.reply_broadcast:
            event["subtype"] = "thread_broadcast"
    if channel.shared_with:
        profile = user.get("profile") or {}
        event["user_team"] = team
        event["source_team"] = team
        event["user_profile"] = {
            "real_name": profile.get("real_name", ""),
            "display_name": profile.get("display_name", ""),
            "name": user.get("name", ""),
            "team": team,
            "is_restricted": False,
            "is_ultra_restricted": False,
        }
    return event


def permalink(ws: Workspace, channel: Channel, message: Message) -> str:
    link = (
        f"https://{ws.team_domain}.slack.com/archives/{channel.id}/p{message.ts.replace('.', '')}"
    )
    if message.thread_ts and message.thread_ts != message.ts:
        link += f"?thread_ts={message.thread_ts}&cid={channel.id}"
    return link

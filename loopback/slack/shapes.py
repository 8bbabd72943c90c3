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
    ws: Workspace, user_id: str, name: str, real_name: str | None, deleted: bool, is_bot: bool
) -> dict[str, Any]:
    real = real_name if real_name is not None else name
    profile: dict[str, Any] = {
        "real_name": real,
        "real_name_normalized": real,
        "display_name": name,
        "display_name_normalized": name,
        "team": ws.team_id,
    }
    if is_bot and user_id == ws.bot_user_id:
        profile["bot_id"] = ws.bot_id
    return {
        "id": user_id,
        "team_id": ws.team_id,
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
        "is_shared": False,
        "is_org_shared": False,
        "is_ext_shared": False,
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


def permalink(ws: Workspace, channel: Channel, message: Message) -> str:
    link = (
        f"https://{ws.team_domain}.slack.com/archives/{channel.id}/p{message.ts.replace('.', '')}"
    )
    if message.thread_ts and message.thread_ts != message.ts:
        link += f"?thread_ts={message.thread_ts}&cid={channel.id}"
    return link

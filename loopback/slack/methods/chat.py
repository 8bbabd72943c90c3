"""The ``chat.*`` methods: postMessage, postEphemeral, update, delete, getPermalink."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from loopback.slack.methods.arguments import validate_content
from loopback.slack.records import Channel, Message, SlackError, truthy
from loopback.slack.shapes import message_object, permalink

if TYPE_CHECKING:
    from loopback.slack.workspace import Workspace


def _post_target(ws: Workspace, ref: Any) -> Channel:
    """Where chat.postMessage puts a message: id, '#name', name, or user id (DM)."""
    value = str(ref or "").strip()
    if not value:
        raise SlackError("channel_not_found")
    if value.startswith("#"):
        channel = ws._channel_named(value[1:])
        if channel is None:
            raise SlackError("channel_not_found")
        return channel
    if value in ws.channels:
        return ws.channels[value]
    user = ws._users.get(value)
    if user is not None:
        if user["is_bot"]:
            raise SlackError("cannot_dm_bot")
        if user["deleted"]:
            # Not documented for chat.postMessage; a removed user has no usable DM.
            raise SlackError("channel_not_found")
        return ws._dm_of(value) or ws._open_dm(value)
    channel = ws._channel_named(value)
    if channel is None:
        raise SlackError("channel_not_found")
    return channel


def _text(args: dict[str, Any]) -> str:
    return str(args.get("text") or args.get("markdown_text") or "")


def _post(ws: Workspace, channel: Channel, args: dict[str, Any], **fields: Any) -> Message:
    """The app's message from a method's arguments, added to ``channel`` now."""
    message = Message(
        ts=ws._next_ts(),
        user=ws.bot_user_id,
        text=_text(args),
        blocks=args.get("blocks"),
        attachments=args.get("attachments"),
        channel=channel.id,
        **fields,
    )
    channel.messages.append(message)
    return message


def post_message(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    channel = _post_target(ws, args.get("channel"))
    if channel.is_archived:
        raise SlackError("is_archived")
    # Public channels are postable without joining (chat:write.public). For a
    # private channel the bot is not in, this emulator answers not_in_channel (the
    # project's contract); Slack itself may well say channel_not_found there.
    if channel.is_private and ws.bot_user_id not in channel.members:
        raise SlackError("not_in_channel")
    validate_content(args)
    thread_ts = ws._thread_root(channel, args.get("thread_ts"))
    message = _post(
        ws,
        channel,
        args,
        thread_ts=thread_ts,
        metadata=args.get("metadata") or None,
        reply_broadcast=bool(thread_ts) and truthy(args.get("reply_broadcast")),
    )
    return {
        "channel": channel.id,
        "ts": message.ts,
        "message": message_object(ws, channel, message),
    }


def post_ephemeral(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    channel = _post_target(ws, args.get("channel"))
    if not ws._visible(channel):
        raise SlackError("channel_not_found")
    if channel.is_archived:
        raise SlackError("is_archived")
    user = str(args.get("user") or "")
    if user not in channel.members:
        raise SlackError("user_not_in_channel")
    validate_content(args)
    thread_ts = ws._thread_root(channel, args.get("thread_ts"))
    message = _post(ws, channel, args, thread_ts=thread_ts, ephemeral_for=user)
    return {"message_ts": message.ts}


def _own_message(ws: Workspace, args: dict[str, Any], not_ours: str) -> tuple[Channel, Message]:
    """The app's message that ``channel`` and ``ts`` name; ``not_ours`` if someone else's."""
    channel = ws._require_channel(args)
    message = ws._find_message(channel, args.get("ts"))
    if message is None:
        raise SlackError("message_not_found")
    if message.user != ws.bot_user_id:
        raise SlackError(not_ours)
    return channel, message


def update(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    channel, message = _own_message(ws, args, "cant_update_message")
    if channel.is_archived:
        raise SlackError("is_inactive")
    validate_content(args)
    # Fields left out keep their old value, as the chat.update docs say.
    if "text" in args or "markdown_text" in args:
        message.text = _text(args)
    if "blocks" in args:
        message.blocks = args["blocks"] or None
    if "attachments" in args:
        message.attachments = args["attachments"] or None
    if "metadata" in args:
        message.metadata = args["metadata"] or None
    message.edited = True
    message.edited_ts = ws._next_ts()
    return {
        "channel": channel.id,
        "ts": message.ts,
        "text": message.text,
        "message": message_object(ws, channel, message),
    }


def delete(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    channel, message = _own_message(ws, args, "cant_delete_message")
    channel.messages.remove(message)
    if message.ts in channel.pins:
        channel.pins.remove(message.ts)
        channel.pin_info.pop(message.ts, None)
    return {"channel": channel.id, "ts": message.ts}


def get_permalink(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    channel = ws._require_channel(args)
    message = ws._find_message(channel, args.get("message_ts"))
    if message is None:
        raise SlackError("message_not_found")
    return {"channel": channel.id, "permalink": permalink(ws, channel, message)}


METHODS = {
    "chat.delete": delete,
    "chat.getPermalink": get_permalink,
    "chat.postEphemeral": post_ephemeral,
    "chat.postMessage": post_message,
    "chat.update": update,
}

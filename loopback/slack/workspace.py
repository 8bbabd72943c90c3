"""The Slack workspace's state: users, user groups, channels and their messages and pins,
views, triggers and response URLs; seeding it, reading it, and the lookups every Web API
method shares.

One lock guards all of it; methods whose names start with ``_`` expect it held. ``version``
counts changes a person could see, so a page can wait for the next one.
"""

from __future__ import annotations

import copy
import itertools
import threading
import time
from collections.abc import Iterable
from typing import Any

from loopback.slack import shapes
from loopback.slack.records import (
    DEFAULT_TRIGGER_TTL,
    Call,
    Channel,
    Message,
    ResponseTarget,
    SlackError,
    Trigger,
    channel_name_error,
)


class Workspace:
    """A Slack workspace in memory, as the emulator's Web API sees and changes it."""

    def __init__(
        self,
        *,
        bot_user_id: str = "UBOT",
        bot_name: str = "warroom",
        bot_token: str = "xoxb-test-token",
        team_id: str = "T0TEAM",
        team_name: str = "Fake Workspace",
        team_domain: str = "fake-workspace",
        app_token: str = "xapp-1-test-app-token",
    ) -> None:
        self.bot_user_id = bot_user_id
        self.bot_token = bot_token
        self.app_token = app_token
        self.team_id = team_id
        self.team_name = team_name
        self.team_domain = team_domain
        self.bot_id = "B0FAKEBOT"
        self.app_id = "A0FAKEAPP"
        # Settable so trigger expiry can be tested without a 3 s sleep.
        self.trigger_ttl = DEFAULT_TRIGGER_TTL

        # One lock guards every piece of state below.
        self._lock = threading.Lock()
        # Signalled (lock held) whenever ``version`` advances, and when the server stops.
        self._change = threading.Condition(self._lock)
        self.version = 0
        self._stopped = False
        self._response_targets: dict[str, ResponseTarget] = {}
        self._modal_owner: dict[str, str] = {}  # root view id -> the user it is shown to
        self.calls: list[Call] = []
        self.channels: dict[str, Channel] = {}
        self.views: dict[str, dict[str, Any]] = {}
        self.home_views: dict[str, dict[str, Any]] = {}
        self.responses: dict[str, list[dict[str, Any]]] = {}
        self._users: dict[str, dict[str, Any]] = {}
        self._usergroups: dict[str, dict[str, Any]] = {}
        self._triggers: dict[str, Trigger] = {}
        self._view_stacks: dict[str, list[str]] = {}  # root view id -> stack of view ids
        self._last_root_view: str | None = None
        self._ids = itertools.count(1)
        self._last_ts_us = 0
        self._users[bot_user_id] = shapes.user_record(
            self, bot_user_id, bot_name, None, False, True
        )

    # ------------------------------------------------------------------ seeding

    def add_user(
        self,
        user_id: str,
        name: str,
        *,
        real_name: str | None = None,
        deleted: bool = False,
        is_bot: bool = False,
        title: str = "",
        email: str | None = None,
        team_id: str | None = None,
    ) -> None:
        """Seed a user; `team_id` another than the workspace's: a person of another
        organisation, who may post in a channel shared with it (see `share_channel`)."""
        with self._lock:
            if user_id in self._users:
                raise ValueError(f"user {user_id} already exists")
            record = shapes.user_record(self, user_id, name, real_name, deleted, is_bot, team_id)
            record["profile"]["title"] = title
            if email:
                record["profile"]["email"] = email
            self._users[user_id] = record
            self._bump()

    def set_email(self, user_id: str, email: str) -> None:
        """A person's email in their profile (users.info shows it with users:read.email)."""
        with self._lock:
            self._users[user_id]["profile"]["email"] = email
            self._bump()

    def add_usergroup(self, group_id: str, handle: str, users: list[str]) -> None:
        with self._lock:
            unknown = [u for u in users if u not in self._users]
            if unknown:
                raise ValueError(f"unknown users for usergroup {group_id}: {unknown}")
            self._usergroups[group_id] = {"id": group_id, "handle": handle, "users": list(users)}

    def add_channel(
        self,
        name: str,
        *,
        private: bool = False,
        members: Iterable[str] = (),
        archived: bool = False,
        bot_is_member: bool = True,
    ) -> str:
        """Seed a channel and return its id. Bad seeds raise: they are test bugs."""
        with self._lock:
            error = channel_name_error(name)
            if error:
                raise ValueError(f"channel name {name!r} is invalid: {error}")
            if self._channel_named(name) is not None:
                raise ValueError(f"channel name {name!r} is taken")
            member_set = set(members)
            unknown = sorted(u for u in member_set if u not in self._users)
            if unknown:
                raise ValueError(f"unknown members {unknown}: add_user them first")
            if bot_is_member:
                member_set.add(self.bot_user_id)
            creator = self.bot_user_id if bot_is_member else next(iter(sorted(member_set)), "")
            channel = self._new_channel(name, private, member_set, creator)
            channel.is_archived = archived
            self._bump()
            return channel.id

    def share_channel(self, channel: str, team_id: str, team_name: str) -> None:
        """Share a channel with another organisation's team (Slack Connect): its people may
        then post there, and conversations.info says it is shared."""
        with self._lock:
            target = self._lookup(channel)
            if target is None or target.is_im:
                raise ValueError(f"no channel {channel!r} to share")
            if team_id == self.team_id:
                raise ValueError("a channel is shared with another team, not the workspace's")
            target.shared_with[team_id] = team_name
            self._bump()

    def team_of(self, user_id: str) -> str:
        """The team a user belongs to (the workspace's, or their own organisation's)."""
        with self._lock:
            return str(self._users[user_id]["team_id"])

    def message_event(self, channel: str, ts: str) -> dict[str, Any]:
        """The `message` event Slack sends the app for the message `ts` (see
        `shapes.message_event`): what `SlackDriver.event` or the sandbox delivers."""
        with self._lock:
            target = self._lookup(channel)
            message = self._find_message(target, ts) if target is not None else None
            if target is None or message is None:
                raise KeyError(f"no message {ts} in {channel!r}")
            return copy.deepcopy(shapes.message_event(self, target, message))

    def add_message(
        self,
        channel: str,
        user: str,
        text: str,
        *,
        thread_ts: str | None = None,
        blocks: list[dict[str, Any]] | None = None,
    ) -> str:
        """Seed a message (e.g. one a human wrote) and return its ts."""
        with self._lock:
            target = self._lookup(channel)
            if target is None:
                raise ValueError(f"no channel {channel!r}")
            if user not in self._users:
                raise ValueError(f"unknown user {user}")
            team = self._users[user]["team_id"]
            if team != self.team_id and team not in target.shared_with:
                raise ValueError(f"{user} is of team {team}, which {channel!r} is not shared with")
            return self._append(target, user, text, blocks=blocks, thread_ts=thread_ts)

    def add_ephemeral(
        self,
        channel: str,
        user: str,
        text: str,
        *,
        blocks: list[dict[str, Any]] | None = None,
        thread_ts: str | None = None,
        author: str | None = None,
    ) -> str:
        """A message only ``user`` sees (how Slack shows an app's ephemeral ack, or its own
        notices as Slackbot); from the app unless ``author`` says otherwise."""
        with self._lock:
            target = self._lookup(channel)
            if target is None:
                raise ValueError(f"no channel {channel!r}")
            return self._append(
                target,
                author or self.bot_user_id,
                text,
                blocks=blocks,
                thread_ts=thread_ts,
                ephemeral_for=user,
            )

    def join(self, channel: str, user: str) -> bool:
        """Add ``user`` to a channel (a person joining it); False if they already were."""
        with self._lock:
            target = self._lookup(channel)
            if target is None or user not in self._users:
                raise ValueError(f"no channel {channel!r} or no user {user!r}")
            if user in target.members:
                return False
            target.members.add(user)
            self._bump()
            return True

    def app_dm(self, user_id: str) -> str:
        """The id of the app's DM with ``user_id`` (its Messages and Home tabs), opened if new."""
        with self._lock:
            channel = self._dm_of(user_id) or self._open_dm(user_id)
            return channel.id

    # ------------------------------------------------------------------ recorded calls

    def calls_to(self, method: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method == method]

    def reset_calls(self) -> None:
        with self._lock:
            self.calls.clear()

    # ------------------------------------------------------------------ state queries

    def channel_by_name(self, name: str) -> Channel | None:
        with self._lock:
            return self._channel_named(name.lstrip("#"))

    def messages_in(self, channel: str) -> list[Message]:
        """Messages of a channel (id, name or '#name'), oldest first, ephemeral included."""
        with self._lock:
            target = self._lookup(channel)
            if target is None:
                raise KeyError(f"no channel {channel!r}")
            return list(target.messages)

    def dm_with(self, user_id: str) -> Channel | None:
        with self._lock:
            return self._dm_of(user_id)

    def user(self, user_id: str) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self._users[user_id])

    def users(self) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(list(self._users.values()))

    def usergroups(self) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(list(self._usergroups.values()))

    def find_channel(self, ref: str) -> Channel | None:
        """A copy of a channel (id, name, '#name', or a user id for their DM with the app)."""
        with self._lock:
            channel = self._lookup(ref)
            return copy.deepcopy(channel) if channel is not None else None

    def message_object(self, channel: str, ts: str) -> dict[str, Any] | None:
        """A message as the Web API returns it (conversations.history's shape), or None."""
        with self._lock:
            target = self._lookup(channel)
            message = self._find_message(target, ts) if target is not None else None
            if target is None or message is None:
                return None
            return copy.deepcopy(shapes.message_object(self, target, message))

    def view(self, view_id: str) -> dict[str, Any] | None:
        """A copy of a stored modal or Home view, or None."""
        with self._lock:
            found = self.views.get(view_id) or next(
                (v for v in self.home_views.values() if v["id"] == view_id), None
            )
            return copy.deepcopy(found) if found is not None else None

    # ------------------------------------------------------------------ lock held

    def _bump(self) -> None:
        self.version += 1
        self._change.notify_all()

    def _next_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):08d}"

    def _next_ts(self) -> str:
        # Unique and strictly increasing, even for calls in the same microsecond.
        now_us = int(time.time() * 1_000_000)
        self._last_ts_us = max(now_us, self._last_ts_us + 1)
        return f"{self._last_ts_us // 1_000_000}.{self._last_ts_us % 1_000_000:06d}"

    def _append(self, channel: Channel, user: str, text: str, **fields: Any) -> str:
        """Add a message to ``channel`` now (its thread_ts filed under the thread's root)."""
        fields["thread_ts"] = self._thread_root(channel, fields.get("thread_ts"))
        message = Message(ts=self._next_ts(), user=user, text=text, channel=channel.id, **fields)
        channel.messages.append(message)
        self._bump()
        return message.ts

    def _new_channel(self, name: str, private: bool, members: set[str], creator: str) -> Channel:
        channel = Channel(
            id=self._next_id("C"),
            name=name,
            is_private=private,
            is_archived=False,
            creator=creator,
            created=int(time.time()),
            members=members,
        )
        self.channels[channel.id] = channel
        return channel

    def _open_dm(self, user_id: str) -> Channel:
        channel = Channel(
            id=self._next_id("D"),
            name="",
            is_private=True,
            is_archived=False,
            creator=self.bot_user_id,
            created=int(time.time()),
            members={self.bot_user_id, user_id},
            is_im=True,
            dm_user=user_id,
        )
        self.channels[channel.id] = channel
        return channel

    def _channel_named(self, name: str) -> Channel | None:
        for channel in self.channels.values():
            if not channel.is_im and channel.name == name:
                return channel
        return None

    def _dm_of(self, user_id: str) -> Channel | None:
        for channel in self.channels.values():
            if channel.is_im and channel.dm_user == user_id:
                return channel
        return None

    def _lookup(self, ref: str) -> Channel | None:
        """Channel by id, '#name', name, or a user id (that user's DM with the bot)."""
        if ref in self.channels:
            return self.channels[ref]
        if ref in self._users:
            return self._dm_of(ref)
        return self._channel_named(ref.lstrip("#"))

    def _visible(self, channel: Channel) -> bool:
        # A bot cannot see private channels (or DMs) it is not in, so most methods
        # answer channel_not_found for them rather than revealing they exist.
        return not channel.is_private or self.bot_user_id in channel.members

    def _require_channel(self, args: dict[str, Any], key: str = "channel") -> Channel:
        channel = self.channels.get(str(args.get(key) or ""))
        if channel is None or not self._visible(channel):
            raise SlackError("channel_not_found")
        return channel

    def _find_message(self, channel: Channel, ts: Any) -> Message | None:
        if not ts:
            return None
        for message in channel.messages:
            if message.ts == str(ts) and message.ephemeral_for is None:
                return message
        return None

    def _thread_root(self, channel: Channel, thread_ts: Any) -> str | None:
        if not thread_ts:
            return None
        parent = self._find_message(channel, thread_ts)
        # Slack files a reply to a reply under the original parent.
        if parent is not None and parent.thread_ts:
            return parent.thread_ts
        # Not documented: a thread_ts naming no message. Kept as given.
        return str(thread_ts)

    def _replies(self, channel: Channel, parent_ts: str) -> list[Message]:
        return [
            m
            for m in channel.messages
            if m.thread_ts == parent_ts and m.ts != parent_ts and m.ephemeral_for is None
        ]

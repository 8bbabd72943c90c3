"""A Slack workspace on 127.0.0.1: the Web API the bot talks to, for tests and the sandbox.

This module owns ``SlackEmulator`` (``FakeSlack`` is the same class under the name the tests
use): a real HTTP server on 127.0.0.1 that the real ``slack_sdk.WebClient(token=...,
base_url=emulator.url)`` talks to. It keeps workspace state (users, user groups, channels,
members, messages, pins, topics, views), records every Web API call with its arguments,
answers the response shapes and error codes that Slack documents for each implemented
method, and refuses unknown methods with HTTP 404 ``unknown_method``. It also serves
``response_url`` endpoints (slash commands, interactivity) and issues ``trigger_id`` values;
a response URL or trigger issued for a person's action carries that person, so answers
to it become what Slack shows them (an ephemeral message, a modal).

What people do in the workspace (post, run a slash command, click, submit a modal) and how
Slack then calls the app is ``bot.sandbox.interactions``; the web page is
``bot.sandbox.web``, served by this same server through ``mount``. ``version`` counts
changes to the workspace and ``wait_for_change`` lets a page wait for the next one.

Socket Mode: ``apps.connections.open``, authenticated by the app-level token
(``app_token``), answers a single-use ``ws://`` URL of ``emulator.socket_mode``, the server
``socket_mode_factory(app_id)`` built (the tests pass theirs); without one the method
answers an error.

Faults are injected per method: a one-off ``{"ok": false}`` error, an HTTP 429
with ``Retry-After``, an HTTP 5xx, or a sliding-window rate limit.

Behaviour that Slack does not document precisely and that this emulator had to pick
is marked "Not documented" in comments.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import copy
import itertools
import json
import math
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

__all__ = [
    "DEFAULT_TRIGGER_TTL",
    "JSON_VALUED_ARGS",
    "MAX_ATTACHMENTS",
    "MAX_BLOCKS",
    "MAX_CHANNEL_NAME_CHARS",
    "MAX_INVITEES",
    "MAX_TEXT_CHARS",
    "MAX_TOPIC_CHARS",
    "RESPONSE_URL_USES",
    "VIEW_STACK_LIMIT",
    "Call",
    "Channel",
    "FakeSlack",
    "Message",
    "ResponseTarget",
    "Route",
    "SlackEmulator",
    "SlackError",
    "SocketModeServerLike",
    "channel_name_error",
]

# Arguments Slack takes as JSON-encoded strings inside form bodies.
JSON_VALUED_ARGS = ("blocks", "attachments", "view", "metadata")

MAX_TEXT_CHARS = 40_000  # chat.postMessage truncates/refuses past this
MAX_BLOCKS = 50  # Block Kit limit per message
MAX_ATTACHMENTS = 100  # too_many_attachments past this
MAX_TOPIC_CHARS = 250  # conversations.setTopic / setPurpose: too_long
MAX_CHANNEL_NAME_CHARS = 80  # conversations.create: invalid_name_maxlength
MAX_INVITEES = 1000  # conversations.invite: up to 1000 users
VIEW_STACK_LIMIT = 3  # views.push: push_limit_reached
RESPONSE_URL_USES = 5  # a response_url may be used up to 5 times
DEFAULT_TRIGGER_TTL = 3.0  # trigger ids expire after 3 seconds

# Methods that change nothing a person could see: they do not advance ``version``.
_READ_ONLY = frozenset(
    {
        "api.test",
        "apps.connections.open",
        "auth.test",
        "chat.getPermalink",
        "conversations.history",
        "conversations.info",
        "conversations.members",
        "conversations.replies",
        "pins.list",
        "usergroups.users.list",
        "users.info",
        "users.list",
    }
)


class SocketModeServerLike(Protocol):
    """What the emulator needs of a Socket Mode server (tests.fakes.socket_mode has one)."""

    def issue_url(self) -> str: ...

    def stop(self) -> None: ...


# A request handler mounted on the emulator's server for paths outside /api/ and /response/:
# (method, path, query, body, headers) -> (status, body, content type, extra headers).
Route = Callable[[str, str, str, bytes, Any], tuple[int, bytes, str, dict[str, str]]]


@dataclass
class Call:
    """One Web API request as the emulator received and answered it."""

    method: str
    args: dict[str, Any]
    started: float  # time.monotonic() when the request arrived
    finished: float = 0.0  # time.monotonic() when the answer was ready
    status: int = 0  # HTTP status sent back
    response: dict[str, Any] = field(default_factory=dict)


@dataclass
class Message:
    ts: str
    user: str
    text: str
    blocks: list[dict[str, Any]] | None
    thread_ts: str | None
    channel: str
    edited: bool = False
    ephemeral_for: str | None = None
    metadata: dict[str, Any] | None = None
    attachments: list[dict[str, Any]] | None = None
    reply_broadcast: bool = False
    edited_ts: str | None = None


@dataclass
class Channel:
    id: str
    name: str
    is_private: bool
    is_archived: bool
    creator: str
    created: int
    members: set[str]
    topic: str = ""
    purpose: str = ""
    messages: list[Message] = field(default_factory=list)
    pins: list[str] = field(default_factory=list)  # message ts, in pin order
    is_im: bool = False
    dm_user: str | None = None  # the other party of a DM
    topic_set: tuple[str, int] = ("", 0)  # (creator, last_set) as Slack reports them
    purpose_set: tuple[str, int] = ("", 0)
    pin_info: dict[str, tuple[str, int]] = field(default_factory=dict)  # ts -> (by, when)


class SlackError(Exception):
    """Raised inside a method handler; becomes ``{"ok": false, "error": ...}``."""

    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra


@dataclass
class _Fault:
    kind: str  # "error" | "ratelimit" | "server"
    remaining: int
    error: str = ""
    retry_after: int = 1
    status: int = 500


@dataclass
class _Window:
    limit: int
    window: float
    stamps: deque[float] = field(default_factory=deque)


@dataclass
class _Trigger:
    issued: float
    view_id: str | None
    used: bool = False
    user: str | None = None  # whose action issued it: a modal it opens is shown to them


@dataclass
class ResponseTarget:
    """Where answers to a response_url go: the person who acted, and where they acted."""

    user: str
    channel: str
    message_ts: str | None = None  # the message whose button was clicked
    thread_ts: str | None = None


def _truthy(value: Any) -> bool:
    # Form bodies carry booleans as "1"/"0" (slack_sdk) or "true"/"false".
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    return isinstance(value, str) and value.strip().lower() in {"1", "true", "yes"}


def _ts_key(ts: Any) -> int:
    """A message ts as integer microseconds, so comparisons are exact."""
    text = str(ts).strip()
    whole, _, frac = text.partition(".")
    if not whole.isdigit() or (frac and not frac.isdigit()):
        raise ValueError(f"not a Slack timestamp: {ts!r}")
    return int(whole) * 1_000_000 + int((frac + "000000")[:6])


def _name_char_ok(char: str) -> bool:
    # Slack: lowercase letters, numbers, hyphens and underscores only.
    return char in "-_" or (char.isalnum() and not char.isupper())


def channel_name_error(name: str) -> str | None:
    """The error conversations.create gives for ``name``, or None if it is valid."""
    if name == "":
        return "invalid_name_required"
    if len(name) > MAX_CHANNEL_NAME_CHARS:
        return "invalid_name_maxlength"
    if not all(_name_char_ok(c) for c in name):
        return "invalid_name_specials"
    if all(c in "-_" for c in name):
        return "invalid_name_punctuation"
    return None


def _invalid_arguments(message: str) -> SlackError:
    # Shape of Slack's invalid_arguments answers, as in the method docs' examples.
    return SlackError("invalid_arguments", response_metadata={"messages": [message]})


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # The default backlog of 5 drops connections when many clients call at once,
    # and the client's SYN retry then adds a full second to those calls.
    request_queue_size = 128
    emulator: SlackEmulator


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        self.server.emulator._handle(self)

    def do_GET(self) -> None:
        self.server.emulator._handle(self)

    def log_message(self, format: str, *args: Any) -> None:
        # Keep output clean; every API call is in SlackEmulator.calls anyway.
        pass


class SlackEmulator:
    """A stateful Slack workspace behind a loopback Web API server."""

    def __init__(
        self,
        *,
        bot_user_id: str = "UBOT",
        bot_name: str = "warroom",
        bot_token: str = "xoxb-test-token",
        team_id: str = "T0TEAM",
        team_name: str = "Fake Workspace",
        team_domain: str = "fake-workspace",
        latency: float = 0.0,
        app_token: str = "xapp-1-test-app-token",
        socket_mode_factory: Callable[[str], SocketModeServerLike] | None = None,
    ) -> None:
        self.bot_user_id = bot_user_id
        self.bot_token = bot_token
        self.app_token = app_token
        self.team_id = team_id
        self.team_name = team_name
        self.team_domain = team_domain
        self.bot_id = "B0FAKEBOT"
        self.app_id = "A0FAKEAPP"
        # Slack's Socket Mode side; its server starts on the first apps.connections.open.
        self.socket_mode = socket_mode_factory(self.app_id) if socket_mode_factory else None
        # Settable so trigger expiry can be tested without a 3 s sleep.
        self.trigger_ttl = DEFAULT_TRIGGER_TTL
        self.url = ""
        self.root = ""

        # One lock guards every piece of state below.
        self._lock = threading.Lock()
        # Signalled (lock held) whenever ``version`` advances, and when the server stops.
        self._change = threading.Condition(self._lock)
        self.version = 0
        self._stopped = False
        self._mounts: list[tuple[str, Route]] = []
        self._response_targets: dict[str, ResponseTarget] = {}
        self._modal_owner: dict[str, str] = {}  # root view id -> the user it is shown to
        self._latency = float(latency)
        self.calls: list[Call] = []
        self.channels: dict[str, Channel] = {}
        self.views: dict[str, dict[str, Any]] = {}
        self.home_views: dict[str, dict[str, Any]] = {}
        self.responses: dict[str, list[dict[str, Any]]] = {}
        self._users: dict[str, dict[str, Any]] = {}
        self._usergroups: dict[str, dict[str, Any]] = {}
        self._faults: dict[str, list[_Fault]] = {}
        self._limits: dict[str, _Window] = {}
        self._triggers: dict[str, _Trigger] = {}
        self._view_stacks: dict[str, list[str]] = {}  # root view id -> stack of view ids
        self._last_root_view: str | None = None
        self._ids = itertools.count(1)
        self._last_ts_us = 0

        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

        self._methods: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "api.test": self._api_test,
            "apps.connections.open": self._apps_connections_open,
            "auth.test": self._auth_test,
            "chat.delete": self._chat_delete,
            "chat.getPermalink": self._chat_get_permalink,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "conversations.archive": self._conversations_archive,
            "conversations.create": self._conversations_create,
            "conversations.history": self._conversations_history,
            "conversations.info": self._conversations_info,
            "conversations.invite": self._conversations_invite,
            "conversations.join": self._conversations_join,
            "conversations.members": self._conversations_members,
            "conversations.replies": self._conversations_replies,
            "conversations.setPurpose": self._conversations_set_purpose,
            "conversations.setTopic": self._conversations_set_topic,
            "pins.add": self._pins_add,
            "pins.list": self._pins_list,
            "pins.remove": self._pins_remove,
            "usergroups.users.list": self._usergroups_users_list,
            "users.info": self._users_info,
            "users.list": self._users_list,
            "views.open": self._views_open,
            "views.publish": self._views_publish,
            "views.push": self._views_push,
            "views.update": self._views_update,
        }
        self._users[bot_user_id] = self._user_record(bot_user_id, bot_name, None, False, True)

    # ------------------------------------------------------------------ lifecycle

    def start(self, *, host: str = "127.0.0.1", port: int = 0) -> SlackEmulator:
        """Serve on ``host:port`` (a free port by default); raises OSError if it is taken."""
        if self._server is not None:
            raise RuntimeError("the emulator is already started")
        server = _Server((host, port), _Handler)
        server.emulator = self
        with self._lock:
            self._stopped = False
        host, port = server.server_address[:2]
        self.root = f"http://{host}:{port}"
        self.url = f"{self.root}/api/"
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.01},
            name=f"SlackEmulator:{port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            self._change.notify_all()  # pages waiting for a change get their answer now
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            # Closes the listening socket and joins in-flight request threads.
            server.server_close()
            if thread is not None:
                thread.join()
        # Taking the lock waits out an apps.connections.open that may be starting the
        # Socket Mode server; later ones see the emulator stopped and start nothing.
        with self._lock:
            socket_mode = self.socket_mode
        if socket_mode is not None:
            socket_mode.stop()

    def __enter__(self) -> SlackEmulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def latency(self) -> float:
        with self._lock:
            return self._latency

    @latency.setter
    def latency(self, seconds: float) -> None:
        with self._lock:
            self._latency = float(seconds)

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
    ) -> None:
        with self._lock:
            if user_id in self._users:
                raise ValueError(f"user {user_id} already exists")
            record = self._user_record(user_id, name, real_name, deleted, is_bot)
            record["profile"]["title"] = title
            self._users[user_id] = record
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
            message = Message(
                ts=self._next_ts(),
                user=user,
                text=text,
                blocks=blocks,
                thread_ts=self._thread_root(target, thread_ts),
                channel=target.id,
            )
            target.messages.append(message)
            self._bump()
            return message.ts

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
            message = Message(
                ts=self._next_ts(),
                user=author or self.bot_user_id,
                text=text,
                blocks=blocks,
                thread_ts=self._thread_root(target, thread_ts),
                channel=target.id,
                ephemeral_for=user,
            )
            target.messages.append(message)
            self._bump()
            return message.ts

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

    # ------------------------------------------------------------------ changes and pages

    def mount(self, prefix: str, route: Route) -> None:
        """Serve paths starting with ``prefix`` (outside /api/ and /response/) by ``route``."""
        with self._lock:
            self._mounts.append((prefix, route))
            # Longest prefix first, so "/" can be a fallback.
            self._mounts.sort(key=lambda m: len(m[0]), reverse=True)

    def wait_for_change(self, since: int, timeout: float) -> int:
        """Block until ``version`` passes ``since`` (or ``timeout``, or stop); the version."""
        with self._change:
            self._change.wait_for(lambda: self.version != since or self._stopped, timeout)
            return self.version

    def touch(self) -> None:
        """Advance ``version``: something a page shows changed outside the Web API."""
        with self._lock:
            self._bump()

    def snapshot(self) -> dict[str, Any]:
        """A deep copy of what a page shows: users, channels with messages, views, modals."""
        with self._lock:
            return {
                "version": self.version,
                "users": copy.deepcopy(list(self._users.values())),
                "usergroups": copy.deepcopy(list(self._usergroups.values())),
                "channels": copy.deepcopy(list(self.channels.values())),
                "home_views": copy.deepcopy(self.home_views),
                "modals": {
                    user: copy.deepcopy([self.views[v] for v in self._view_stacks.get(root, ())])
                    for root, user in self._modal_owner.items()
                    if self._view_stacks.get(root)
                },
            }

    def modal_stack(self, user_id: str) -> list[dict[str, Any]]:
        """The modal views open for ``user_id``, bottom first (empty if none)."""
        with self._lock:
            for root, owner in reversed(list(self._modal_owner.items())):
                stack = self._view_stacks.get(root)
                if owner == user_id and stack:
                    return copy.deepcopy([self.views[v] for v in stack])
            return []

    def close_modal(self, user_id: str, *, all_views: bool = True) -> None:
        """Close the top view (or the whole stack) of the modal ``user_id`` sees."""
        with self._lock:
            for root, owner in reversed(list(self._modal_owner.items())):
                stack = self._view_stacks.get(root)
                if owner != user_id or not stack:
                    continue
                if all_views:
                    stack.clear()
                else:
                    stack.pop()
                if not stack:
                    del self._modal_owner[root]
                self._bump()
                return

    def replace_view(self, view_id: str, view: dict[str, Any]) -> dict[str, Any]:
        """Put ``view`` in place of a modal view (``response_action: update``); the stored view."""
        with self._lock:
            target = self.views.get(view_id)
            if target is None:
                raise KeyError(view_id)
            stored = self._store_view(
                view,
                view_id=view_id,
                root_view_id=target["root_view_id"],
                previous_view_id=target["previous_view_id"],
            )
            self.views[view_id] = stored
            self._bump()
            return copy.deepcopy(stored)

    def push_view(self, view_id: str, view: dict[str, Any]) -> dict[str, Any]:
        """Push ``view`` onto the stack of modal ``view_id`` (``response_action: push``)."""
        with self._lock:
            source = self.views.get(view_id)
            stack = self._view_stacks.get(source["root_view_id"] if source else "")
            if source is None or not stack:
                raise KeyError(view_id)
            if len(stack) >= VIEW_STACK_LIMIT:
                raise SlackError("push_limit_reached")
            stored = self._store_view(
                view, root_view_id=source["root_view_id"], previous_view_id=stack[-1]
            )
            self.views[stored["id"]] = stored
            stack.append(stored["id"])
            self._bump()
            return copy.deepcopy(stored)

    # ------------------------------------------------------------------ recorded calls

    def calls_to(self, method: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method == method]

    def reset_calls(self) -> None:
        with self._lock:
            self.calls.clear()

    # ------------------------------------------------------------------ fault injection

    def fail_next(self, method: str, error: str, *, times: int = 1) -> None:
        self._add_fault(method, _Fault("error", times, error=error))

    def rate_limit_next(self, method: str, *, retry_after: int = 1, times: int = 1) -> None:
        self._add_fault(method, _Fault("ratelimit", times, retry_after=int(retry_after)))

    def server_error_next(self, method: str, *, status: int = 500, times: int = 1) -> None:
        if not 500 <= status <= 599:
            raise ValueError(f"server_error_next needs a 5xx status, got {status}")
        self._add_fault(method, _Fault("server", times, status=status))

    def set_rate_limit(self, method: str, per_minute: int, *, window: float = 60.0) -> None:
        """Allow ``per_minute`` calls per sliding ``window`` seconds, then answer 429."""
        self._check_method(method)
        if per_minute < 1 or window <= 0:
            raise ValueError("per_minute must be >= 1 and window > 0")
        with self._lock:
            self._limits[method] = _Window(per_minute, float(window))

    def clear_rate_limit(self, method: str) -> None:
        with self._lock:
            self._limits.pop(method, None)

    def _add_fault(self, method: str, fault: _Fault) -> None:
        self._check_method(method)
        if fault.remaining < 1:
            raise ValueError("times must be >= 1")
        with self._lock:
            self._faults.setdefault(method, []).append(fault)

    def _check_method(self, method: str) -> None:
        # A typo here would silently never fire; refuse it instead.
        if method not in self._methods:
            raise ValueError(f"the emulator does not implement {method!r}")

    # ------------------------------------------------------------------ response_url / trigger_id

    def new_response_url(self, target: ResponseTarget | None = None) -> str:
        """A response_url. With a ``target``, answers posted to it are also shown as Slack
        shows them: to that person in that channel (or to everyone, or in place of the
        message whose button was clicked)."""
        token = secrets.token_urlsafe(12)
        with self._lock:
            self.responses[token] = []
            if target is not None:
                self._response_targets[token] = target
        return f"{self.root}/response/{token}"

    def responses_to(self, url: str) -> list[dict[str, Any]]:
        token = url.rstrip("/").rsplit("/", 1)[-1]
        with self._lock:
            if token not in self.responses:
                raise KeyError(f"{url} was not issued by this emulator")
            return copy.deepcopy(self.responses[token])

    def new_trigger_id(self, *, view_id: str | None = None, user: str | None = None) -> str:
        """Issue a trigger id, usable once within ``trigger_ttl`` seconds.

        ``view_id`` marks the trigger as coming from an interaction inside that
        modal, which is where views.push puts the new view. Without it, views.push
        uses the most recently opened modal. ``user`` is who acted: a modal opened with
        the trigger is shown to them (``modal_stack``).
        """
        with self._lock:
            # Slack's documented trigger_id format: "132456.7890123.abcdef".
            trigger_id = f"{int(time.time())}.{next(self._ids)}.{secrets.token_hex(16)}"
            self._triggers[trigger_id] = _Trigger(time.monotonic(), view_id, user=user)
        return trigger_id

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
            return copy.deepcopy(self._message_obj(target, message))

    def view(self, view_id: str) -> dict[str, Any] | None:
        """A copy of a stored modal or Home view, or None."""
        with self._lock:
            found = self.views.get(view_id) or next(
                (v for v in self.home_views.values() if v["id"] == view_id), None
            )
            return copy.deepcopy(found) if found is not None else None

    # ------------------------------------------------------------------ HTTP plumbing

    def _handle(self, request: _Handler) -> None:
        arrived = time.monotonic()
        parts = urlsplit(request.path)
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length) if length > 0 else b""
        if parts.path.startswith("/api/"):
            self._handle_api(
                request, parts.path[len("/api/") :].strip("/"), parts.query, body, arrived
            )
        elif parts.path.startswith("/response/") and request.command == "POST":
            self._handle_response_url(request, parts.path[len("/response/") :].strip("/"), body)
        else:
            with self._lock:
                route = next((r for p, r in self._mounts if parts.path.startswith(p)), None)
            if route is None:
                self._send(request, 404, {"ok": False, "error": "not_found"})
                return
            try:
                status, data, content_type, headers = route(
                    request.command, parts.path, parts.query, body, request.headers
                )
            except Exception as exc:  # a bug in the page: answer it, keep serving
                status, content_type, headers = 500, "text/plain; charset=utf-8", {}
                data = f"error: {exc!r}\n".encode()
            self._send_bytes(request, status, data, content_type, headers)

    def _handle_api(
        self, request: _Handler, method: str, query: str, body: bytes, arrived: float
    ) -> None:
        args, parse_error = _parse_args(request.headers.get("Content-Type"), query, body)
        call = Call(method=method, args=args, started=arrived)
        with self._lock:
            self.calls.append(call)
            delay = self._latency
        # Sleep outside the lock so concurrent calls overlap like they do on Slack.
        if delay > 0:
            time.sleep(delay)
        with self._lock:
            status, payload, headers = self._dispatch(method, args, parse_error, request)
            # A JSON round trip detaches the record from live state.
            encoded = json.dumps(payload)
            call.response = json.loads(encoded)
            call.status = status
            call.finished = time.monotonic()
            if payload.get("ok") and method not in _READ_ONLY:
                self._bump()
        self._send(request, status, encoded, headers, content_type="application/json")

    def _dispatch(
        self, method: str, args: dict[str, Any], parse_error: str | None, request: _Handler
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        handler = self._methods.get(method)
        if handler is None:
            return 404, {"ok": False, "error": "unknown_method"}, {}
        if parse_error:
            return 200, {"ok": False, "error": parse_error}, {}
        if method == "apps.connections.open":
            # Socket Mode takes the app-level token, not the bot token.
            auth_error = self._app_auth_error(request.headers.get("Authorization"))
            if auth_error:
                return 200, {"ok": False, "error": auth_error}, {}
        # api.test is the one method Slack answers without a token.
        elif method != "api.test":
            auth_error = self._auth_error(request.headers.get("Authorization"), args)
            if auth_error:
                return 200, {"ok": False, "error": auth_error}, {}

        faults = self._faults.get(method)
        if faults:
            fault = faults[0]
            fault.remaining -= 1
            if fault.remaining <= 0:
                faults.pop(0)
            if fault.kind == "error":
                return 200, {"ok": False, "error": fault.error}, {}
            if fault.kind == "ratelimit":
                return (
                    429,
                    {"ok": False, "error": "ratelimited"},
                    {"Retry-After": str(fault.retry_after)},
                )
            return fault.status, {"ok": False, "error": _server_error_code(fault.status)}, {}

        window = self._limits.get(method)
        if window is not None:
            now = time.monotonic()
            while window.stamps and window.stamps[0] <= now - window.window:
                window.stamps.popleft()
            if len(window.stamps) >= window.limit:
                # The oldest call in the window is the next to leave it.
                wait = window.stamps[0] + window.window - now
                retry_after = max(1, math.ceil(wait))
                return 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(retry_after)}
            # Refused calls do not consume quota; answered ones do.
            window.stamps.append(now)

        try:
            result = handler(args)
        except SlackError as exc:
            return 200, {"ok": False, "error": exc.error, **exc.extra}, {}
        except Exception as exc:  # a bug in the emulator: make it loud, not a silent ok
            return 500, {"ok": False, "error": "fake_slack_bug", "detail": repr(exc)}, {}
        return 200, {"ok": True, **result}, {}

    def _auth_error(self, authorization: str | None, args: dict[str, Any]) -> str | None:
        token: str | None = None
        if authorization:
            scheme, _, value = authorization.partition(" ")
            if scheme.lower() != "bearer":
                return "invalid_auth"
            token = value.strip()
        elif args.get("token"):
            token = str(args["token"])
        if not token:
            return "not_authed"
        if token != self.bot_token:
            return "invalid_auth"
        return None

    def _app_auth_error(self, authorization: str | None) -> str | None:
        """Auth of the methods that take the app-level (xapp-) token, not the bot token."""
        # Slack: the app token goes in the Authorization header; "passing it as a POST
        # parameter will result in an error". Not documented: which error; not_authed here.
        if not authorization:
            return "not_authed"
        scheme, _, value = authorization.partition(" ")
        token = value.strip()
        if scheme.lower() != "bearer" or not token:
            return "invalid_auth"
        if token == self.app_token:
            return None
        if token == self.bot_token:
            return "not_allowed_token_type"
        return "invalid_auth"

    def _handle_response_url(self, request: _Handler, token: str, body: bytes) -> None:
        with self._lock:
            posted = self.responses.get(token)
            if posted is None:
                # Slack's documented 404 body for a hook URL it does not know.
                status, reply = 404, "no_service"
            elif len(posted) >= RESPONSE_URL_USES:
                # Not documented: the body Slack sends once the 5 uses are spent.
                status, reply = 404, "used_url"
            else:
                try:
                    payload = json.loads(body or b"null")
                except ValueError:
                    payload = None
                if isinstance(payload, dict):
                    posted.append(payload)
                    status, reply = 200, "ok"
                    target = self._response_targets.get(token)
                    if target is not None:
                        self._show_response(target, payload)
                        self._bump()
                else:
                    status, reply = 400, "invalid_payload"
        self._send(request, status, reply, {}, content_type="text/plain")

    def _show_response(self, target: ResponseTarget, payload: dict[str, Any]) -> None:
        """What the person sees of an answer posted to their response_url (lock held).

        Not documented precisely: which message ``replace_original``/``delete_original``
        act on for a slash command (none: there is no original; a new message is shown).
        """
        channel = self.channels.get(target.channel)
        if channel is None:
            return
        original = None
        if target.message_ts:
            original = next(
                (
                    m
                    for m in channel.messages
                    if m.ts == target.message_ts
                    and m.ephemeral_for in (None, target.user)
                    and m.user == self.bot_user_id
                ),
                None,
            )
        if original is not None and _truthy(payload.get("delete_original")):
            channel.messages.remove(original)
            return
        text = str(payload.get("text") or "")
        blocks = payload.get("blocks") if isinstance(payload.get("blocks"), list) else None
        if original is not None and _truthy(payload.get("replace_original")):
            original.text, original.blocks = text, blocks
            original.edited, original.edited_ts = True, self._next_ts()
            return
        public = payload.get("response_type") == "in_channel"
        thread = payload.get("thread_ts") or target.thread_ts
        channel.messages.append(
            Message(
                ts=self._next_ts(),
                user=self.bot_user_id,
                text=text,
                blocks=blocks,
                thread_ts=self._thread_root(channel, thread),
                channel=channel.id,
                ephemeral_for=None if public else target.user,
            )
        )

    @staticmethod
    def _send(
        request: _Handler,
        status: int,
        body: str | dict[str, Any],
        headers: dict[str, str] | None = None,
        *,
        content_type: str = "application/json",
    ) -> None:
        data = (body if isinstance(body, str) else json.dumps(body)).encode("utf-8")
        SlackEmulator._send_bytes(
            request, status, data, f"{content_type}; charset=utf-8", headers or {}
        )

    @staticmethod
    def _send_bytes(
        request: _Handler,
        status: int,
        data: bytes,
        content_type: str,
        headers: dict[str, str],
    ) -> None:
        try:
            request.send_response(status)
            request.send_header("Content-Type", content_type)
            request.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                request.send_header(name, value)
            request.end_headers()
            request.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (e.g. its timeout); nothing to answer

    # ------------------------------------------------------------------ state helpers (lock held)

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

    def _user_record(
        self, user_id: str, name: str, real_name: str | None, deleted: bool, is_bot: bool
    ) -> dict[str, Any]:
        real = real_name if real_name is not None else name
        profile: dict[str, Any] = {
            "real_name": real,
            "real_name_normalized": real,
            "display_name": name,
            "display_name_normalized": name,
            "team": self.team_id,
        }
        if is_bot and user_id == self.bot_user_id:
            profile["bot_id"] = self.bot_id
        return {
            "id": user_id,
            "team_id": self.team_id,
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

    def _channel_obj(self, channel: Channel) -> dict[str, Any]:
        if channel.is_im:
            return {
                "id": channel.id,
                "created": channel.created,
                "is_im": True,
                "is_org_shared": False,
                "user": channel.dm_user,
                "is_user_deleted": bool(self._users.get(channel.dm_user or "", {}).get("deleted")),
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
            "context_team_id": self.team_id,
            "creator": channel.creator,
            "is_member": self.bot_user_id in channel.members,
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

    def _message_obj(
        self, channel: Channel, message: Message, *, with_metadata: bool = True
    ) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": "message",
            "user": message.user,
            "text": message.text,
            "ts": message.ts,
            "team": self.team_id,
        }
        if message.user == self.bot_user_id:
            out["bot_id"] = self.bot_id
            out["app_id"] = self.app_id
        if message.blocks is not None:
            out["blocks"] = message.blocks
        if message.attachments is not None:
            out["attachments"] = message.attachments
        if message.thread_ts:
            out["thread_ts"] = message.thread_ts
            parent = self._find_message(channel, message.thread_ts)
            if parent is not None:
                out["parent_user_id"] = parent.user
            if message.reply_broadcast:
                out["subtype"] = "thread_broadcast"
        else:
            replies = self._replies(channel, message.ts)
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

    def _paginate(
        self, items: list[Any], args: dict[str, Any], default_limit: int, max_limit: int
    ) -> tuple[list[Any], str]:
        offset = 0
        cursor = args.get("cursor")
        if cursor:
            try:
                kind, _, number = (
                    base64.b64decode(str(cursor), validate=True).decode().partition(":")
                )
                offset = int(number)
            except (binascii.Error, UnicodeDecodeError, ValueError):
                raise SlackError("invalid_cursor") from None
            if kind != "offset" or offset < 0:
                raise SlackError("invalid_cursor")
        try:
            limit = int(args.get("limit") or 0) or default_limit
        except (TypeError, ValueError):
            raise SlackError("invalid_limit") from None
        if limit < 0:
            raise SlackError("invalid_limit")
        limit = min(limit, max_limit)
        page = items[offset : offset + limit]
        more = offset + limit < len(items)
        next_cursor = base64.b64encode(f"offset:{offset + limit}".encode()).decode() if more else ""
        return page, next_cursor

    def _validate_content(self, args: dict[str, Any]) -> None:
        text = args.get("text")
        blocks = args.get("blocks")
        attachments = args.get("attachments")
        has_blocks = isinstance(blocks, list) and len(blocks) > 0
        has_attachments = isinstance(attachments, list) and len(attachments) > 0
        has_markdown = bool(args.get("markdown_text"))
        if not text and not has_blocks and not has_attachments and not has_markdown:
            # A string blocks value that did not decode as JSON is a format error.
            if isinstance(blocks, str) and blocks.strip():
                raise SlackError("invalid_blocks_format")
            raise SlackError("no_text")
        if text is not None and len(str(text)) > MAX_TEXT_CHARS:
            raise SlackError("msg_too_long")
        if blocks is not None:
            if isinstance(blocks, str):
                raise SlackError("invalid_blocks_format")
            if (
                not isinstance(blocks, list)
                or len(blocks) > MAX_BLOCKS
                or not all(isinstance(b, dict) and isinstance(b.get("type"), str) for b in blocks)
            ):
                raise SlackError("invalid_blocks")
        if attachments is not None:
            if not isinstance(attachments, list) or not all(
                isinstance(a, dict) for a in attachments
            ):
                raise SlackError("invalid_attachments")
            if len(attachments) > MAX_ATTACHMENTS:
                raise SlackError("too_many_attachments")
        metadata = args.get("metadata")
        if (
            metadata is not None
            and metadata != {}
            and not (
                isinstance(metadata, dict)
                and isinstance(metadata.get("event_type"), str)
                and isinstance(metadata.get("event_payload"), dict)
            )
        ):
            raise SlackError("invalid_metadata_format")

    # ------------------------------------------------------------------ api / auth

    def _api_test(self, args: dict[str, Any]) -> dict[str, Any]:
        echo = {k: v for k, v in args.items() if k != "token"}
        if echo.get("error"):
            raise SlackError(str(echo["error"]), args=echo)
        return {"args": echo}

    def _apps_connections_open(self, args: dict[str, Any]) -> dict[str, Any]:
        if self._server is None:
            # The emulator is stopping: starting the Socket Mode server now would outlive it.
            raise SlackError("service_unavailable")
        if self.socket_mode is None:
            # Not documented: the error for an app without Socket Mode turned on.
            raise SlackError("not_allowed")
        return {"url": self.socket_mode.issue_url()}

    def _auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": f"https://{self.team_domain}.slack.com/",
            "team": self.team_name,
            "user": self._users[self.bot_user_id]["name"],
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    # ------------------------------------------------------------------ conversations.*

    def _conversations_create(self, args: dict[str, Any]) -> dict[str, Any]:
        name = "" if args.get("name") is None else str(args["name"])
        error = channel_name_error(name)
        if error:
            raise SlackError(error)
        # Archived channels keep their names, so they block reuse too.
        if self._channel_named(name) is not None:
            raise SlackError("name_taken")
        channel = self._new_channel(
            name, _truthy(args.get("is_private")), {self.bot_user_id}, self.bot_user_id
        )
        return {"channel": self._channel_obj(channel)}

    def _conversations_info(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._require_channel(args)
        obj = self._channel_obj(channel)
        if _truthy(args.get("include_num_members")):
            obj["num_members"] = len(channel.members)
        return {"channel": obj}

    def _conversations_members(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._require_channel(args)
        page, next_cursor = self._paginate(sorted(channel.members), args, 100, 1000)
        return {"members": page, "response_metadata": {"next_cursor": next_cursor}}

    def _conversations_invite(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._require_channel(args)
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
        if self.bot_user_id not in channel.members:
            raise SlackError("not_in_channel")

        errors: list[dict[str, Any]] = []
        valid: list[str] = []
        for user_id in users:
            error = self._invite_error(channel, user_id)
            if error:
                errors.append({"user": user_id, "ok": False, "error": error})
            else:
                valid.append(user_id)
        force = _truthy(args.get("force"))
        # Slack: if any invite fails, nobody is invited and an error comes back,
        # except that removed (deleted) users fail "silently": the others still join.
        # With force=true the valid ids are invited and the invalid ones disregarded.
        hard_failures = [e for e in errors if e["error"] != "cant_invite"]
        if hard_failures and not force:
            raise SlackError(errors[0]["error"], errors=errors)
        channel.members.update(valid)
        if errors and (not force or not valid):
            raise SlackError(errors[0]["error"], errors=errors)
        result: dict[str, Any] = {"channel": self._channel_obj(channel)}
        if errors:
            # Not documented: how a forced partial success reports the skipped ids.
            result["errors"] = errors
        return result

    def _invite_error(self, channel: Channel, user_id: str) -> str | None:
        user = self._users.get(user_id)
        if user is None:
            return "user_not_found"
        if user_id == self.bot_user_id:
            return "cant_invite_self"
        if user["deleted"]:
            # Not documented: the code for a removed user. cant_invite is the closest.
            return "cant_invite"
        if user_id in channel.members:
            return "already_in_channel"
        return None

    def _set_text_field(self, args: dict[str, Any], field_name: str) -> Channel:
        channel = self._require_channel(args)
        if field_name not in args or args[field_name] is None:
            raise _invalid_arguments(f"[ERROR] missing required field: {field_name}")
        if channel.is_archived:
            raise SlackError("is_archived")
        if self.bot_user_id not in channel.members:
            raise SlackError("not_in_channel")
        value = str(args[field_name])
        if len(value) > MAX_TOPIC_CHARS:
            raise SlackError("too_long")
        stamp = (self.bot_user_id, int(time.time()))
        if field_name == "topic":
            channel.topic, channel.topic_set = value, stamp
        else:
            channel.purpose, channel.purpose_set = value, stamp
        return channel

    def _conversations_set_topic(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._set_text_field(args, "topic")
        return {"channel": self._channel_obj(channel)}

    def _conversations_set_purpose(self, args: dict[str, Any]) -> dict[str, Any]:
        self._set_text_field(args, "purpose")
        # The documented success response of setPurpose is a bare {"ok": true}.
        return {}

    def _conversations_archive(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._require_channel(args)
        if channel.is_im:
            raise SlackError("method_not_supported_for_channel_type")
        if channel.is_archived:
            raise SlackError("already_archived")
        if self.bot_user_id not in channel.members:
            raise SlackError("not_in_channel")
        channel.is_archived = True
        return {}

    def _conversations_join(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._require_channel(args)
        if channel.is_im:
            raise SlackError("method_not_supported_for_channel_type")
        if channel.is_archived:
            raise SlackError("is_archived")
        if self.bot_user_id in channel.members:
            return {
                "channel": self._channel_obj(channel),
                "warning": "already_in_channel",
                "response_metadata": {"warnings": ["already_in_channel"]},
            }
        channel.members.add(self.bot_user_id)
        return {"channel": self._channel_obj(channel)}

    def _ts_bounds(self, args: dict[str, Any]) -> tuple[int, int, bool]:
        inclusive = _truthy(args.get("inclusive"))
        try:
            oldest = _ts_key(args["oldest"]) if args.get("oldest") else 0
        except ValueError:
            raise SlackError("invalid_ts_oldest") from None
        latest_arg = args.get("latest")
        try:
            latest = _ts_key(latest_arg) if latest_arg and latest_arg != "now" else 2**63
        except ValueError:
            raise SlackError("invalid_ts_latest") from None
        return oldest, latest, inclusive

    @staticmethod
    def _in_bounds(ts: str, oldest: int, latest: int, inclusive: bool) -> bool:
        key = _ts_key(ts)
        if inclusive:
            return oldest <= key <= latest
        return oldest < key < latest

    def _conversations_history(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._require_channel(args)
        if not channel.is_im and self.bot_user_id not in channel.members:
            # Documented: only user tokens can read public channels they are not in.
            raise SlackError("not_in_channel")
        oldest, latest, inclusive = self._ts_bounds(args)
        top_level = [
            m
            for m in channel.messages
            if m.ephemeral_for is None
            and (not m.thread_ts or m.thread_ts == m.ts or m.reply_broadcast)
            and self._in_bounds(m.ts, oldest, latest, inclusive)
        ]
        newest_first = sorted(top_level, key=lambda m: _ts_key(m.ts), reverse=True)
        page, next_cursor = self._paginate(newest_first, args, 100, 999)
        with_metadata = _truthy(args.get("include_all_metadata"))
        return {
            "messages": [self._message_obj(channel, m, with_metadata=with_metadata) for m in page],
            "has_more": bool(next_cursor),
            "pin_count": len(channel.pins),
            "response_metadata": {"next_cursor": next_cursor},
        }

    def _conversations_replies(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._require_channel(args)
        message = self._find_message(channel, args.get("ts"))
        if message is None:
            raise SlackError("thread_not_found")
        parent_ts = message.thread_ts or message.ts
        parent = self._find_message(channel, parent_ts)
        thread = ([parent] if parent is not None else []) + self._replies(channel, parent_ts)
        oldest, latest, inclusive = self._ts_bounds(args)
        thread = [m for m in thread if self._in_bounds(m.ts, oldest, latest, inclusive)]
        page, next_cursor = self._paginate(thread, args, 1000, 1000)
        with_metadata = _truthy(args.get("include_all_metadata"))
        return {
            "messages": [self._message_obj(channel, m, with_metadata=with_metadata) for m in page],
            "has_more": bool(next_cursor),
            "response_metadata": {"next_cursor": next_cursor},
        }

    # ------------------------------------------------------------------ chat.*

    def _post_target(self, ref: Any) -> Channel:
        """Where chat.postMessage puts a message: id, '#name', name, or user id (DM)."""
        value = str(ref or "").strip()
        if not value:
            raise SlackError("channel_not_found")
        if value.startswith("#"):
            channel = self._channel_named(value[1:])
            if channel is None:
                raise SlackError("channel_not_found")
            return channel
        if value in self.channels:
            return self.channels[value]
        user = self._users.get(value)
        if user is not None:
            if user["is_bot"]:
                raise SlackError("cannot_dm_bot")
            if user["deleted"]:
                # Not documented for chat.postMessage; a removed user has no usable DM.
                raise SlackError("channel_not_found")
            return self._dm_of(value) or self._open_dm(value)
        channel = self._channel_named(value)
        if channel is None:
            raise SlackError("channel_not_found")
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

    def _chat_post_message(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._post_target(args.get("channel"))
        if channel.is_archived:
            raise SlackError("is_archived")
        # Public channels are postable without joining (chat:write.public). For a
        # private channel the bot is not in, this emulator answers not_in_channel (the
        # project's contract); Slack itself may well say channel_not_found there.
        if channel.is_private and self.bot_user_id not in channel.members:
            raise SlackError("not_in_channel")
        self._validate_content(args)
        thread_ts = self._thread_root(channel, args.get("thread_ts"))
        message = Message(
            ts=self._next_ts(),
            user=self.bot_user_id,
            text=str(args.get("text") or args.get("markdown_text") or ""),
            blocks=args.get("blocks"),
            attachments=args.get("attachments"),
            thread_ts=thread_ts,
            channel=channel.id,
            metadata=args.get("metadata") or None,
            reply_broadcast=bool(thread_ts) and _truthy(args.get("reply_broadcast")),
        )
        channel.messages.append(message)
        return {
            "channel": channel.id,
            "ts": message.ts,
            "message": self._message_obj(channel, message),
        }

    def _chat_post_ephemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._post_target(args.get("channel"))
        if not self._visible(channel):
            raise SlackError("channel_not_found")
        if channel.is_archived:
            raise SlackError("is_archived")
        user = str(args.get("user") or "")
        if user not in channel.members:
            raise SlackError("user_not_in_channel")
        self._validate_content(args)
        message = Message(
            ts=self._next_ts(),
            user=self.bot_user_id,
            text=str(args.get("text") or args.get("markdown_text") or ""),
            blocks=args.get("blocks"),
            attachments=args.get("attachments"),
            thread_ts=self._thread_root(channel, args.get("thread_ts")),
            channel=channel.id,
            ephemeral_for=user,
        )
        channel.messages.append(message)
        return {"message_ts": message.ts}

    def _chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._require_channel(args)
        message = self._find_message(channel, args.get("ts"))
        if message is None:
            raise SlackError("message_not_found")
        if message.user != self.bot_user_id:
            raise SlackError("cant_update_message")
        if channel.is_archived:
            raise SlackError("is_inactive")
        self._validate_content(args)
        # Fields left out keep their old value, as the chat.update docs say.
        if "text" in args or "markdown_text" in args:
            message.text = str(args.get("text") or args.get("markdown_text") or "")
        if "blocks" in args:
            message.blocks = args["blocks"] or None
        if "attachments" in args:
            message.attachments = args["attachments"] or None
        if "metadata" in args:
            message.metadata = args["metadata"] or None
        message.edited = True
        message.edited_ts = self._next_ts()
        return {
            "channel": channel.id,
            "ts": message.ts,
            "text": message.text,
            "message": self._message_obj(channel, message),
        }

    def _chat_delete(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._require_channel(args)
        message = self._find_message(channel, args.get("ts"))
        if message is None:
            raise SlackError("message_not_found")
        if message.user != self.bot_user_id:
            raise SlackError("cant_delete_message")
        channel.messages.remove(message)
        if message.ts in channel.pins:
            channel.pins.remove(message.ts)
            channel.pin_info.pop(message.ts, None)
        return {"channel": channel.id, "ts": message.ts}

    def _chat_get_permalink(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._require_channel(args)
        message = self._find_message(channel, args.get("message_ts"))
        if message is None:
            raise SlackError("message_not_found")
        return {"channel": channel.id, "permalink": self._permalink(channel, message)}

    def _permalink(self, channel: Channel, message: Message) -> str:
        link = (
            f"https://{self.team_domain}.slack.com/archives/{channel.id}/"
            f"p{message.ts.replace('.', '')}"
        )
        if message.thread_ts and message.thread_ts != message.ts:
            link += f"?thread_ts={message.thread_ts}&cid={channel.id}"
        return link

    # ------------------------------------------------------------------ pins.*

    def _pins_add(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._require_channel(args)
        ts = args.get("timestamp")
        if not ts:
            raise SlackError("no_item_specified")
        if self.bot_user_id not in channel.members:
            raise SlackError("not_in_channel")
        message = self._find_message(channel, ts)
        if message is None:
            raise SlackError("message_not_found")
        if message.ts in channel.pins:
            raise SlackError("already_pinned")
        channel.pins.append(message.ts)
        channel.pin_info[message.ts] = (self.bot_user_id, int(time.time()))
        return {}

    def _pins_remove(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._require_channel(args)
        ts = args.get("timestamp")
        if not ts:
            raise SlackError("no_item_specified")
        message = self._find_message(channel, ts)
        if message is None:
            raise SlackError("message_not_found")
        if message.ts not in channel.pins:
            raise SlackError("no_pin")
        channel.pins.remove(message.ts)
        channel.pin_info.pop(message.ts, None)
        return {}

    def _pins_list(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._require_channel(args)
        items = []
        for ts in reversed(channel.pins):  # most recently pinned first
            message = self._find_message(channel, ts)
            if message is None:
                continue
            pinned_by, pinned_at = channel.pin_info.get(ts, (self.bot_user_id, 0))
            item_message = self._message_obj(channel, message)
            item_message["permalink"] = self._permalink(channel, message)
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

    # ------------------------------------------------------------------ users / usergroups

    def _usergroups_users_list(self, args: dict[str, Any]) -> dict[str, Any]:
        group = self._usergroups.get(str(args.get("usergroup") or ""))
        if group is None:
            raise SlackError("no_such_subteam")
        return {"users": list(group["users"])}

    def _users_info(self, args: dict[str, Any]) -> dict[str, Any]:
        user = self._users.get(str(args.get("user") or ""))
        if user is None:
            raise SlackError("user_not_found")
        return {"user": user}

    def _users_list(self, args: dict[str, Any]) -> dict[str, Any]:
        page, next_cursor = self._paginate(list(self._users.values()), args, 1000, 1000)
        return {
            "members": page,
            "cache_ts": int(time.time()),
            "response_metadata": {"next_cursor": next_cursor},
        }

    # ------------------------------------------------------------------ views.*

    def _check_trigger(self, args: dict[str, Any]) -> _Trigger:
        trigger_id = args.get("trigger_id") or args.get("interactivity_pointer")
        if not trigger_id:
            raise _invalid_arguments("[ERROR] missing required field: trigger_id")
        trigger = self._triggers.get(str(trigger_id))
        if trigger is None:
            raise SlackError("invalid_trigger_id")
        if trigger.used:
            raise SlackError("exchanged_trigger_id")
        if time.monotonic() - trigger.issued > self.trigger_ttl:
            raise SlackError("expired_trigger_id")
        return trigger

    def _require_view(self, args: dict[str, Any], allowed_types: set[str]) -> dict[str, Any]:
        view = args.get("view")
        if view is None:
            raise _invalid_arguments("[ERROR] missing required field: view")
        if not isinstance(view, dict):
            raise _invalid_arguments("[ERROR] failed to parse view: not a JSON object")
        view_type = view.get("type")
        if not view_type:
            raise _invalid_arguments("[ERROR] missing required field: type")
        if view_type not in allowed_types:
            raise _invalid_arguments(f"[ERROR] unsupported view type: {view_type}")
        if view_type == "modal" and not view.get("title"):
            raise _invalid_arguments("[ERROR] missing required field: title")
        if "blocks" in view and not isinstance(view["blocks"], list):
            raise _invalid_arguments("[ERROR] blocks must be an array")
        return view

    def _all_views(self) -> list[dict[str, Any]]:
        return [*self.views.values(), *self.home_views.values()]

    def _store_view(
        self,
        view: dict[str, Any],
        *,
        view_id: str | None = None,
        root_view_id: str | None = None,
        previous_view_id: str | None = None,
    ) -> dict[str, Any]:
        new_id = view_id or self._next_id("V")
        external_id = view.get("external_id") or ""
        if external_id and any(
            v.get("external_id") == external_id and v["id"] != new_id for v in self._all_views()
        ):
            raise SlackError("duplicate_external_id")
        stored = copy.deepcopy(view)
        stored.setdefault("blocks", [])
        stored.setdefault("private_metadata", "")
        stored.setdefault("callback_id", "")
        stored.setdefault("external_id", "")
        stored.setdefault("clear_on_close", False)
        stored.setdefault("notify_on_close", False)
        stored.update(
            id=new_id,
            team_id=self.team_id,
            state={"values": {}},
            hash=f"{int(time.time())}.{secrets.token_hex(4)}",
            root_view_id=root_view_id or new_id,
            previous_view_id=previous_view_id,
            app_id=self.app_id,
            bot_id=self.bot_id,
        )
        return stored

    def _views_open(self, args: dict[str, Any]) -> dict[str, Any]:
        trigger = self._check_trigger(args)
        view = self._require_view(args, {"modal"})
        stored = self._store_view(view)
        trigger.used = True
        self.views[stored["id"]] = stored
        self._view_stacks[stored["id"]] = [stored["id"]]
        self._last_root_view = stored["id"]
        if trigger.user is not None:
            self._modal_owner[stored["id"]] = trigger.user
        return {"view": stored}

    def _views_push(self, args: dict[str, Any]) -> dict[str, Any]:
        trigger = self._check_trigger(args)
        view = self._require_view(args, {"modal"})
        if trigger.view_id is not None:
            source = self.views.get(trigger.view_id)
            root_id = source["root_view_id"] if source else None
        else:
            root_id = self._last_root_view
        stack = self._view_stacks.get(root_id or "")
        if not stack:
            raise SlackError("not_found")
        if len(stack) >= VIEW_STACK_LIMIT:
            raise SlackError("push_limit_reached")
        stored = self._store_view(view, root_view_id=root_id, previous_view_id=stack[-1])
        trigger.used = True
        self.views[stored["id"]] = stored
        stack.append(stored["id"])
        return {"view": stored}

    def _views_update(self, args: dict[str, Any]) -> dict[str, Any]:
        view_id = args.get("view_id")
        external_id = args.get("external_id")
        target = None
        for candidate in self._all_views():
            if (view_id and candidate["id"] == view_id) or (
                not view_id and external_id and candidate.get("external_id") == external_id
            ):
                target = candidate
                break
        if target is None:
            raise SlackError("not_found")
        if args.get("hash") and args["hash"] != target["hash"]:
            raise SlackError("hash_conflict")
        view = self._require_view(args, {target["type"]})
        stored = self._store_view(
            view,
            view_id=target["id"],
            root_view_id=target["root_view_id"],
            previous_view_id=target["previous_view_id"],
        )
        if target["id"] in self.views:
            self.views[target["id"]] = stored
        else:
            for user_id, home in self.home_views.items():
                if home["id"] == target["id"]:
                    self.home_views[user_id] = stored
        return {"view": stored}

    def _views_publish(self, args: dict[str, Any]) -> dict[str, Any]:
        user_id = str(args.get("user_id") or "")
        user = self._users.get(user_id)
        if user is None or user["deleted"]:
            raise _invalid_arguments("invalid `user_id`")
        view = self._require_view(args, {"home"})
        current = self.home_views.get(user_id)
        if args.get("hash") and current is not None and args["hash"] != current["hash"]:
            raise SlackError("hash_conflict")
        stored = self._store_view(view, view_id=current["id"] if current else None)
        self.home_views[user_id] = stored
        return {"view": stored}


def _server_error_code(status: int) -> str:
    # Slack's generic codes for its own failures.
    return "service_unavailable" if status == 503 else "internal_error"


def _parse_args(
    content_type: str | None, query: str, body: bytes
) -> tuple[dict[str, Any], str | None]:
    """Merge query string and body into one dict; second value is a parse error code."""
    args: dict[str, Any] = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
    error: str | None = None
    if body:
        mime = (content_type or "").split(";", 1)[0].strip().lower()
        if not mime:
            error = "missing_post_type"
        elif mime == "application/x-www-form-urlencoded":
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError:
                error = "invalid_form_data"
            else:
                form = parse_qs(text, keep_blank_values=True)
                args.update({k: v[-1] for k, v in form.items()})
        elif mime == "application/json":
            try:
                data = json.loads(body)
            except ValueError:
                error = "invalid_json"
            else:
                if isinstance(data, dict):
                    args.update(data)
                else:
                    error = "json_not_object"
        elif mime == "multipart/form-data":
            # slack_sdk sends api_call(data=...) as multipart; plain fields only.
            parsed = BytesParser(policy=HTTP).parsebytes(
                b"Content-Type: " + (content_type or "").encode() + b"\r\n\r\n" + body
            )
            if not parsed.is_multipart():
                error = "invalid_form_data"
            else:
                for part in parsed.iter_parts():
                    name = part.get_param("name", header="content-disposition")
                    payload = part.get_payload(decode=True)
                    if isinstance(name, str) and isinstance(payload, bytes):
                        args[name] = payload.decode("utf-8", "replace")
        else:
            error = "invalid_post_type"
    for key in JSON_VALUED_ARGS:
        value = args.get(key)
        if isinstance(value, str):
            # Undecodable values stay strings; the method reports them as malformed.
            with contextlib.suppress(ValueError):
                args[key] = json.loads(value)
    return args, error


# The name the tests have always used.
FakeSlack = SlackEmulator

"""What the Slack emulator keeps and answers with: its records (calls, channels, messages,
triggers, response targets), Slack's limits, and the rules every method shares (channel
names, timestamps, booleans in form bodies, the error a method raises)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

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


class SocketModeServerLike(Protocol):
    """What the emulator needs of a Socket Mode server (``loopback.socket_mode`` has one)."""

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
    # The other organisations' teams a Slack Connect channel is shared with (team id -> name).
    shared_with: dict[str, str] = field(default_factory=dict)


@dataclass
class Trigger:
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


class SlackError(Exception):
    """Raised inside a method handler; becomes ``{"ok": false, "error": ...}``."""

    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra


def invalid_arguments(message: str) -> SlackError:
    # Shape of Slack's invalid_arguments answers, as in the method docs' examples.
    return SlackError("invalid_arguments", response_metadata={"messages": [message]})


def truthy(value: Any) -> bool:
    # Form bodies carry booleans as "1"/"0" (slack_sdk) or "true"/"false".
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    return isinstance(value, str) and value.strip().lower() in {"1", "true", "yes"}


def ts_key(ts: Any) -> int:
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

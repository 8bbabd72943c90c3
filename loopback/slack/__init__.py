"""Slack on 127.0.0.1: a stateful workspace behind a real Web API server (``SlackEmulator``;
``FakeSlack`` is the same with Socket Mode served), for the tests, the sandbox and the
benchmarks.

The modules: ``records`` (what it keeps, Slack's limits), ``workspace`` (state, seeding,
queries), ``shapes`` (the objects the API answers), ``methods`` (the Web API, by family),
``blockkit`` (Slack's limits on blocks and views), ``faults`` (injected errors and rate
limits), ``responses`` (response URLs, trigger ids), ``page`` (what the sandbox page needs),
``wire`` and ``emulator`` (the server). The client side, what Slack sends an app, is
``client`` (building and signing requests) and ``driver`` (sending them).
"""

from loopback.slack.emulator import FakeSlack, SlackEmulator
from loopback.slack.records import (
    DEFAULT_TRIGGER_TTL,
    JSON_VALUED_ARGS,
    MAX_ATTACHMENTS,
    MAX_BLOCKS,
    MAX_CHANNEL_NAME_CHARS,
    MAX_INVITEES,
    MAX_TEXT_CHARS,
    MAX_TOPIC_CHARS,
    RESPONSE_URL_USES,
    VIEW_STACK_LIMIT,
    Call,
    Channel,
    Message,
    ResponseTarget,
    Route,
    SlackError,
    SocketModeServerLike,
    channel_name_error,
)

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

"""What the Socket Mode fake keeps: its limits and timings, and its records of the envelopes
it sent, the acks it received and the connections it served."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

CLOSE_GOING_AWAY = 1001
CLOSE_ABNORMAL = 1006  # never sent on the wire: "closed without a close frame"

MAX_MESSAGE_BYTES = 16 * 1024 * 1024
HANDSHAKE_TIMEOUT = 5.0
# How often a connection's thread looks up from its socket to notice close deadlines.
TICK = 0.05
# After the server sends a close frame, how long it waits for the client's before hanging up.
CLOSE_WAIT = 0.5

# Envelope types whose ack may carry a response payload. Not documented as a list: slash
# commands take their reply in the ack, as do view submissions (response_action) and
# block_suggestion (options); events and other interactions do not.
RESPONDING_INTERACTIONS = {"view_submission", "block_suggestion"}


@dataclass
class Envelope:
    """One envelope as the server sent it."""

    envelope_id: str
    type: str
    payload: dict[str, Any]
    accepts_response_payload: bool
    connection: int  # ConnectionInfo.id it went out on
    sent: float  # time.monotonic()


@dataclass
class Ack:
    """One acknowledgement as the client sent it."""

    envelope_id: str
    payload: Any  # the ack's "payload", {} when it carried none
    connection: int
    received: float  # time.monotonic()
    message: dict[str, Any]  # the whole ack


@dataclass
class ConnectionInfo:
    """One WebSocket connection that completed its handshake."""

    id: int
    ticket: str
    opened: float  # time.monotonic()
    closed: float | None = None
    # The code the client's close frame carried; 1006 when the socket just went away.
    close_code: int | None = None
    retired: bool = False  # a disconnect message was sent on it: no more envelopes

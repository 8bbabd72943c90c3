"""Slack's Socket Mode endpoint on 127.0.0.1, for the tests.

``SocketModeServer`` is Slack's side of Socket Mode, served by the ``websockets`` library's
threaded server (a test dependency), toward a real client such as Bolt's
``SocketModeHandler``. ``FakeSlack`` issues its URLs from ``apps.connections.open``; tests
then push envelopes and read the acks.

The Socket Mode side: URLs are single-use (a ticket each, ``tickets``); a ``hello`` message
as soon as a connection opens; envelopes ``{"envelope_id", "type", "payload",
"accepts_response_payload"}`` sent with ``send_envelope``; acks ``{"envelope_id",
"payload"?}`` recorded by envelope id, whichever connection they arrive on; ``disconnect``
messages that retire a connection, after which the client opens a new one with a fresh URL.
Envelopes always go to the newest open connection that has not been retired (``server``).

Behaviour that Slack does not document precisely and that this fake had to pick is marked
"Not documented" in comments.
"""

from loopback.socket_mode.records import Ack, ConnectionInfo, Envelope
from loopback.socket_mode.server import SocketModeServer

__all__ = ["Ack", "ConnectionInfo", "Envelope", "SocketModeServer"]

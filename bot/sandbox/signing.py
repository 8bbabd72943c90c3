"""Slack's request signing (v0): the headers Slack puts on every request it sends an app.

The app checks them with ``slack_sdk.signature.SignatureVerifier`` (Bolt does, on every
request); this module produces them the same way, for the sandbox and the tests.
"""

from __future__ import annotations

import time

from slack_sdk.signature import SignatureVerifier

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"


def signed_headers(
    secret: str, body: str, *, content_type: str, timestamp: int | None = None
) -> dict[str, str]:
    """Content type, ``X-Slack-Request-Timestamp`` and ``X-Slack-Signature`` for ``body``."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    return {
        "content-type": content_type,
        "x-slack-request-timestamp": ts,
        "x-slack-signature": SignatureVerifier(secret).generate_signature(timestamp=ts, body=body),
    }

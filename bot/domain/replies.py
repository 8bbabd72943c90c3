"""What a customer wrote back to us, wherever it came from (their Slack Connect channel, an
email, a ticket comment), and how it goes on the timeline (pure).

A reply is known by where it came from and that channel's own id for it (`via` and `ref`: a
message's ts in its channel, a ticket comment's id): the same reply delivered twice is one
reply. Its text is the customer's words as they wrote them: internal material the agent
reads to answer what they asked, never text a letter repeats.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from bot.domain.timeline import Event, EventKind, event

# The most of a reply kept on the timeline: a pasted log is not the customer's question.
TEXT_LIMIT = 4000


class Via(StrEnum):
    SLACK_CONNECT = "slack_connect"
    EMAIL = "email"
    ZENDESK = "zendesk"


@dataclass(frozen=True)
class CustomerReply:
    """One reply, as the channel it came through tells it. `escalation` names the escalation
    when the caller knows it (a linked ticket); otherwise `channel` (the account's shared
    channel) finds the account's open escalation. `text` is readable text, not Slack's wire
    form."""

    via: Via
    ref: str
    author: str  # the person's display name
    organisation: str  # their company, as the account is named ("": the escalation's account)
    text: str
    at: datetime
    escalation: str | None = None
    channel: str | None = None
    # Which of our letters it answers, when the channel says: the thread of the shared
    # channel it was posted in, or the Message-ID an email names in In-Reply-To.
    thread_ts: str | None = None
    in_reply_to: str | None = None

    @property
    def key(self) -> str:
        """What makes two deliveries the same reply."""
        return f"{self.via.value}:{self.ref}"


def reply_event(reply: CustomerReply) -> Event:
    """The reply as a timeline line: the customer's words, with who and where from."""
    text = reply.text.strip()
    if len(text) > TEXT_LIMIT:
        text = text[: TEXT_LIMIT - 1] + "…"
    return event(
        reply.at,
        EventKind.CUSTOMER_REPLY,
        None,
        text,
        who=reply.author,
        organisation=reply.organisation,
        via=reply.via.value,
        ref=reply.ref,
    )

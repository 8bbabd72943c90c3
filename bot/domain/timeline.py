"""Timeline events: the append-only record of what happened in an escalation, and when."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import AwareDatetime, Field

from bot.domain.record import Record


class EventKind(StrEnum):
    DECLARED = "declared"
    IC_ASSIGNED = "ic_assigned"
    WAR_ROOM_READY = "war_room_ready"
    STEP_DONE = "step_done"
    UPDATE = "update"
    # A letter the customer was given: approved, or sent where warroom sends the letters.
    CUSTOMER_UPDATE = "customer_update"
    # Approved, for warroom to send (the sending is the customer update).
    LETTER_APPROVED = "letter_approved"
    LETTER_SENDING = "letter_sending"  # data: draft, route, to, cc, subject, message_id
    LETTER_SENT = "letter_sent"  # data: draft, route, to, cc, subject, message_id/channel, ts
    LETTER_NOT_SENT = "letter_not_sent"  # data: draft, route, result, reason, retry_at
    REVIEW = "review"
    RESOLVED = "resolved"
    REMINDER = "reminder"
    NUDGE = "nudge"
    FOLLOW_UP = "follow_up"
    NOTE = "note"  # something said in the room, pinned to the timeline
    FACT = "fact"  # a customer-facing fact recorded or changed (data: fact, ...)
    CAUSE = "cause"  # a cause put forward: internal until confirmed
    CAUSE_CONFIRMED = "cause_confirmed"
    ACTION = "action"  # an action item taken on (data: id, owner, due_at)
    ACTION_DONE = "action_done"
    ACTION_REMINDER = "action_reminder"
    TICKET = "ticket"  # a support ticket linked, read, or found gone (data: ticket, ...)
    # The customer's own words, come back to the room (data: who, organisation, via, ref):
    # material for the agent, never a letter's text.
    CUSTOMER_REPLY = "customer_reply"


class Event(Record):
    """One line of the timeline. `actor` is a Slack user id, or None for the bot itself."""

    at: AwareDatetime
    kind: EventKind
    actor: str | None = None
    text: str = ""
    data: dict[str, Any] = Field(default_factory=dict)


def event(
    at: datetime, kind: EventKind, actor: str | None = None, text: str = "", **data: Any
) -> Event:
    return Event(at=at, kind=kind, actor=actor, text=text, data=data)

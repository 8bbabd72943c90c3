"""What the VP agent drafts, as kept between posting it and a person acting on it."""

from __future__ import annotations

from enum import StrEnum

from pydantic import AwareDatetime

from bot.domain.record import Record


class DraftKind(StrEnum):
    CUSTOMER_UPDATE = "customer_update"
    REVIEW = "review"
    ANSWER = "answer"


class Draft(Record):
    id: str
    escalation: str
    kind: DraftKind
    channel: str
    ts: str = ""  # the Slack message that shows it
    thread_ts: str | None = None
    text: str = ""
    offline: bool = False
    offline_reason: str = ""
    truncated: bool = False
    flags: tuple[str, ...] = ()
    requested_by: str = ""
    created_at: AwareDatetime
    edited_by: str | None = None
    approved_by: str | None = None
    approved_at: AwareDatetime | None = None
    output_file: str | None = None

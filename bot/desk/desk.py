"""What warroom asks of a support desk, whichever it is, and how a desk's call can fail.

Every failure is a `DeskError` whose `message` is one line fit for the war room (it quotes
nothing the desk said): the room is told that line and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


class DeskError(Exception):
    """A call to the desk did not do what was asked; `message` says so in one line."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class DeskUnavailable(DeskError):
    """Rate-limited past the wait allowed, a server error after the retries, a timeout, no
    connection: worth trying again later."""


class DeskRefused(DeskError):
    """The desk refused the call (credentials, permissions, a closed ticket): trying again
    changes nothing until someone changes something."""


class TicketGone(DeskError):
    """The ticket was deleted, or merged into another (`merged_into`, when known)."""

    def __init__(self, message: str, merged: bool = False) -> None:
        super().__init__(message)
        self.merged = merged


class Unsure(DeskUnavailable):
    """A write was sent and no answer came back: it may have landed."""


@dataclass(frozen=True)
class Person:
    id: int
    name: str
    email: str
    staff: bool
    organization_id: int | None = None


@dataclass(frozen=True)
class Ticket:
    id: int
    url: str  # where an agent opens it
    subject: str
    status: str
    priority: str | None
    tags: tuple[str, ...]
    requester: Person | None
    organization_id: int | None
    organization: str | None
    created_at: datetime | None


class Desk(Protocol):
    """A support desk, as warroom uses it."""

    name: str  # "Zendesk": how the room names it

    def ticket_url(self, ticket_id: int) -> str: ...

    def ticket(self, ticket_id: int) -> Ticket:
        """The ticket with its requester and organisation; TicketGone when deleted or merged."""
        ...

    def agent_by_email(self, email: str) -> Person | None:
        """The staff member with this email, or None."""
        ...

    def count_since(self, organization_id: int, since: datetime) -> int:
        """How many tickets the organisation opened after `since`."""
        ...

    def search_url(self, organization_id: int, since: datetime) -> str:
        """Where an agent sees those tickets."""
        ...

    def has_tag(self, ticket_id: int, tag: str) -> bool: ...

    def set_status(self, ticket_id: int, status: str) -> None: ...

    def add_public_comment(
        self, ticket_id: int, body: str, *, author_id: int, status: str | None, tags: list[str]
    ) -> int:
        """Add `body` as a public comment by `author_id`, set `status` (None: leave it) and
        add `tags`, in one update; the new comment's id. `Unsure` when no answer came."""
        ...

    def close(self) -> None: ...

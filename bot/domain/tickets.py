"""The support tickets linked to an escalation: how a ticket is named (a number or its URL),
what the war room keeps of each, the organisation's other tickets since the impact began,
and which comments on a ticket are the customer's words.

Pure: values in, values out. What the desk answered is given; nothing here calls it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from pydantic import AwareDatetime

from bot.domain.errors import InvalidInput
from bot.domain.record import Record

# At most this many tickets on one escalation: the brief stays readable.
MAX_TICKETS = 10

# `4711`, `#4711`, or a URL whose path ends in the ticket's number: the agent view
# (`/agent/tickets/4711`), the help centre (`/hc/en-us/requests/4711`), the API.
_NUMBER = re.compile(r"#?(\d{1,12})")
_URL = re.compile(
    r"https?://[A-Za-z0-9.-]+(?::\d+)?/(?:agent/tickets|(?:hc/(?:[a-z-]+/)?)?requests|"
    r"api/v2/tickets)/(\d{1,12})(?:\.json)?(?:[/?#].*)?",
    re.IGNORECASE,
)


def parse_ticket_ref(text: str) -> int:
    """The ticket number in `4711`, `#4711` or the ticket's URL; InvalidInput otherwise."""
    given = text.strip().strip("<>").split("|", 1)[0]  # Slack sends links as <url|label>
    if (m := _NUMBER.fullmatch(given)) or (m := _URL.fullmatch(given)):
        number = int(m.group(1))
    else:
        shown = re.sub(r"[<>&`*_~]", "", " ".join(given.split()))[:40]
        raise InvalidInput(
            f"`{shown}` is not a ticket: give its number (4711) or its URL "
            "(https://yours.zendesk.com/agent/tickets/4711)."
        )
    if number <= 0:
        raise InvalidInput("A ticket number is 1 or more, like 4711.")
    return number


def parse_ticket_refs(text: str) -> tuple[int, ...]:
    """Every ticket in `4711, 4712` or `4711 https://.../4712`, in order, without repeats."""
    found: list[int] = []
    for piece in re.split(r"[\s,]+", text.strip()):
        if piece:
            number = parse_ticket_ref(piece)
            if number not in found:
                found.append(number)
    if not found:
        raise InvalidInput("Give the ticket's number (4711) or its URL.")
    if len(found) > MAX_TICKETS:
        raise InvalidInput(f"Link at most {MAX_TICKETS} tickets to one escalation.")
    return tuple(found)


class LinkedTicket(Record):
    """One ticket as the war room last read it. `problem` says why it could not be read
    (deleted, merged, the desk unreachable); the rest is what was read, None until then."""

    id: int
    url: str = ""
    subject: str | None = None
    status: str | None = None
    priority: str | None = None
    tags: tuple[str, ...] = ()
    requester: str | None = None
    requester_id: int | None = None
    organization: str | None = None
    organization_id: int | None = None
    created_at: AwareDatetime | None = None
    read_at: AwareDatetime | None = None
    problem: str | None = None
    gone: bool = False  # deleted or merged: not read again

    @property
    def to_read(self) -> bool:
        """Not read yet, or its last read failed for a reason that may pass."""
        return not self.gone and (self.read_at is None or self.problem is not None)

    @property
    def read(self) -> bool:
        return self.read_at is not None and self.problem is None


class OrgTickets(Record):
    """How many tickets an organisation opened since the impact began, as last counted."""

    organization_id: int
    organization: str
    since: AwareDatetime
    count: int
    link: str
    checked_at: AwareDatetime


def link(tickets: tuple[LinkedTicket, ...], ticket_id: int, url: str) -> tuple[LinkedTicket, ...]:
    """The tickets with `ticket_id` added (unread) if it is not linked yet."""
    if any(t.id == ticket_id for t in tickets):
        return tickets
    if len(tickets) >= MAX_TICKETS:
        raise InvalidInput(f"This escalation already links {MAX_TICKETS} tickets.")
    return (*tickets, LinkedTicket(id=ticket_id, url=url))


def unlink(tickets: tuple[LinkedTicket, ...], ticket_id: int) -> tuple[LinkedTicket, ...]:
    """The tickets without `ticket_id`; the same tuple when it is not linked."""
    if not any(t.id == ticket_id for t in tickets):
        return tickets
    return tuple(t for t in tickets if t.id != ticket_id)


# `ticket remove 4711` (or `unlink`): the words that take a ticket off instead of linking it.
_REMOVE = ("remove", "unlink")


def ticket_command(text: str) -> tuple[bool, str]:
    """What `@vp ticket ...` asks: (remove?, the tickets named). `remove 4711` and
    `unlink 4711` take tickets off; anything else links them."""
    first, _, rest = text.strip().partition(" ")
    if first.lower().rstrip(":,") in _REMOVE:
        return True, rest.strip()
    return False, text.strip()


def replace(tickets: tuple[LinkedTicket, ...], read: LinkedTicket) -> tuple[LinkedTicket, ...]:
    """The tickets with the one of `read.id` replaced by what was read."""
    return tuple(read if t.id == read.id else t for t in tickets)


def organisation_of(tickets: tuple[LinkedTicket, ...]) -> LinkedTicket | None:
    """The first linked ticket that names an organisation: whose other tickets are counted."""
    return next((t for t in tickets if t.organization_id is not None and t.read), None)


@dataclass(frozen=True)
class CommentSeen:
    """A comment Zendesk reports on a ticket, as the webhook told it."""

    ticket_id: int
    comment_id: int
    author_id: int | None
    author_name: str
    author_is_staff: bool | None  # None: the event does not say
    public: bool
    body: str


def is_customer_reply(
    comment: CommentSeen, linked: bool, our_agent_ids: set[int], requester_id: int | None = None
) -> bool:
    """Whether a comment is the customer's words for the war room: a public comment, on a
    linked ticket, by someone on the requester's side (not staff, not our own API agent). An
    author the event does not say is staff or not is the requester's side only when they are
    the requester: an agent's answer is never taken for the customer's words."""
    side = (
        comment.author_is_staff is False
        if comment.author_is_staff is not None
        else comment.author_id is not None and comment.author_id == requester_id
    )
    return (
        linked
        and comment.public
        and side
        and comment.author_id not in our_agent_ids
        and bool(comment.body.strip())
    )


def surge(counts: list[OrgTickets], threshold: int) -> list[OrgTickets]:
    """The organisations whose tickets since their impact began reach `threshold`, most first:
    several at once suggests something wider than one customer's escalation."""
    return sorted((c for c in counts if c.count >= threshold), key=lambda c: -c.count)


def since_for_count(impact_began: datetime | None, declared_at: datetime) -> datetime:
    """From when the organisation's tickets are counted: the impact's start, else the
    declaration."""
    return impact_began or declared_at

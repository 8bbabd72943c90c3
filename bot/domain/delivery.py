"""Where an account's approved letters go, and the record of each one sent (pure).

An account's entry in customer_insights.yaml may name an `email` address (with `cc`, never
bcc) and a `slack_connect` channel shared with the customer; `delivery` there, or in
warroom.yaml for every account, says what Approve and Send do:

    send_button    the approved letter's message shows Send (the default)
    approve_sends  the final approval sends it
    approve_only   warroom sends nothing: people send what they approved (as before routes)
    off            sending is switched off; `off` in warroom.yaml wins over every account

With a support desk set up, the escalation's linked tickets are a route too: the letter goes
on each as a public comment (with or without `email` and `slack_connect`). Without a route
(no `email`, no `slack_connect`, no linked ticket) Approve is the end, as it always was.
When warroom sends a letter, the sending is the fact: the first-contact step, the update
clock and the KPIs count from it, not from the approval.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from datetime import timedelta
from enum import StrEnum
from typing import Any

import idna
from pydantic import AwareDatetime

from bot.domain.record import Record


class DeliveryMode(StrEnum):
    SEND_BUTTON = "send_button"
    APPROVE_SENDS = "approve_sends"
    APPROVE_ONLY = "approve_only"
    OFF = "off"


DEFAULT_MODE = DeliveryMode.SEND_BUTTON


class RouteKind(StrEnum):
    EMAIL = "email"
    SLACK_CONNECT = "slack_connect"
    # The escalation's linked support tickets: the letter as a public comment on each.
    TICKET = "ticket"

    @property
    def label(self) -> str:
        if self is RouteKind.TICKET:
            return "as a ticket comment"
        return "by email" if self is RouteKind.EMAIL else "in the shared Slack channel"


class LetterStatus(StrEnum):
    SENT = "sent"
    FAILED = "failed"  # not sent; `retry_at` says when it is tried again, if it is


class RouteError(ValueError):
    """An account's delivery settings cannot be used; the message names the key's path."""


# One plain ASCII address: a list, a display name or a header's worth of text is not one.
_ADDRESS = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
# A channel's id (public C…, private G…); a name would not survive a rename.
_CHANNEL = re.compile(r"^[CG][A-Z0-9]{8,}$")


class Route(Record):
    """Where one account's letters go, and how (the mode in force for it)."""

    mode: DeliveryMode = DEFAULT_MODE
    email: str | None = None
    cc: tuple[str, ...] = ()
    slack_connect: str | None = None
    # Whose setting the mode is: "warroom.yaml" or the account's entry.
    mode_from: str = "warroom.yaml"
    # The support tickets the escalation links (not deleted or merged), when a desk is set up:
    # the letter goes on each as a public comment. A route of its own, with or without the
    # others.
    tickets: tuple[int, ...] = ()

    @property
    def kinds(self) -> tuple[RouteKind, ...]:
        kinds = []
        if self.email:
            kinds.append(RouteKind.EMAIL)
        if self.slack_connect:
            kinds.append(RouteKind.SLACK_CONNECT)
        if self.tickets:
            kinds.append(RouteKind.TICKET)
        return tuple(kinds)

    @property
    def exists(self) -> bool:
        return bool(self.kinds)

    @property
    def sends(self) -> bool:
        """warroom sends this account's letters (and the sending is the fact)."""
        return self.exists and self.mode in (DeliveryMode.SEND_BUTTON, DeliveryMode.APPROVE_SENDS)

    def where(self, kind: RouteKind) -> tuple[str, ...]:
        """The addresses (to, then cc), the channel or the ticket numbers `kind` goes to."""
        if kind is RouteKind.EMAIL:
            return (self.email or "", *self.cc)
        if kind is RouteKind.TICKET:
            return tuple(str(t) for t in self.tickets)
        return (self.slack_connect or "",)

    @property
    def fingerprint(self) -> str:
        """A short digest of every place this route's letters go (the addresses with their
        copies, the channel, the ticket numbers): a Send button carries the one it showed, so
        a click never sends anywhere the person did not see."""
        where = "\n".join(f"{k.value}={','.join(self.where(k))}" for k in self.kinds)
        return hashlib.sha256(where.encode()).hexdigest()[:16]

    def with_tickets(self, tickets: tuple[int, ...]) -> Route:
        """This route with the escalation's linked tickets added to where letters go."""
        return self.model_copy(update={"tickets": tuple(dict.fromkeys(tickets))})


def route_of(entry: Mapping[str, Any] | None, org_mode: str | None, where: str = "") -> Route:
    """The route of an account's customer_insights.yaml entry (None: no entry), under the
    organisation's mode; RouteError naming `where` (the entry's key path) and the key."""
    entry = entry or {}
    org = _mode(org_mode, "warroom.yaml: delivery") if org_mode else DEFAULT_MODE
    prefix = f"{where}." if where else ""
    email = _ascii_domain(_optional_text(entry.get("email"), f"{prefix}email"))
    if email is not None and not _ADDRESS.match(email):
        raise RouteError(f"{prefix}email: {email!r} is not one plain email address")
    raw_cc = entry.get("cc") or ()
    if isinstance(raw_cc, str):
        raw_cc = (raw_cc,)
    if not isinstance(raw_cc, list | tuple):
        raise RouteError(f"{prefix}cc: a list of email addresses")
    cc: list[str] = []
    for n, item in enumerate(raw_cc):
        address = _ascii_domain(_optional_text(item, f"{prefix}cc[{n}]"))
        if address is None or not _ADDRESS.match(address):
            raise RouteError(f"{prefix}cc[{n}]: {item!r} is not one plain email address")
        if address.lower() != (email or "").lower() and address not in cc:
            cc.append(address)
    if cc and email is None:
        raise RouteError(f"{prefix}cc: copies need an `email` to send to")
    if "bcc" in entry:
        raise RouteError(f"{prefix}bcc: letters are never sent blind; put them in cc")
    channel = _optional_text(entry.get("slack_connect"), f"{prefix}slack_connect")
    if channel is not None and not _CHANNEL.match(channel):
        raise RouteError(
            f"{prefix}slack_connect: {channel!r} is not a channel id (C… or G…; in Slack, the "
            "channel's details show it)"
        )
    own = entry.get("delivery")
    mode, mode_from = org, "warroom.yaml"
    if own is not None and org is not DeliveryMode.OFF:  # the organisation's `off` wins
        mode, mode_from = _mode(own, f"{prefix}delivery"), "the account"
    return Route(mode=mode, email=email, cc=tuple(cc), slack_connect=channel, mode_from=mode_from)


def _ascii_domain(address: str | None) -> str | None:
    """`address` with an internationalised domain in its ASCII form (IDNA 2008, as mail
    servers resolve it: `dana@münchen.example` is `dana@xn--mnchen-3ya.example`); anything
    else as it is, for the address check to judge."""
    if address is None or address.isascii():
        return address
    local, at, domain = address.rpartition("@")
    if not at or not local.isascii():
        return address  # a non-ASCII mailbox name needs SMTPUTF8: not one plain address
    try:
        return f"{local}@{idna.encode(domain, uts46=True).decode('ascii')}"
    except UnicodeError:  # idna.IDNAError is one
        return address


def _mode(value: object, where: str) -> DeliveryMode:
    try:
        return DeliveryMode(str(value).strip())
    except ValueError:
        known = ", ".join(m.value for m in DeliveryMode)
        raise RouteError(f"{where}: {value!r} is not one of {known}") from None


def _optional_text(value: object, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise RouteError(f"{where}: expected text")
    return value.strip() or None


# -- the record of letters sent ------------------------------------------------------------


class SentLetter(Record):
    """One approved letter on one route: where it went, when, and what became of it. Kept on
    the escalation, so a customer's reply can be traced to the letter it answers."""

    draft: str
    version: int
    route: RouteKind
    # The war-room thread the draft lives in (its replies are told there).
    thread_ts: str
    # Email: the addresses (to first); Slack Connect: the channel id; tickets: their numbers.
    to: tuple[str, ...]
    cc: tuple[str, ...] = ()
    subject: str = ""
    status: LetterStatus
    by: str | None = None  # who sent it (None: the final approval did)
    attempts: int = 1
    first_attempt_at: AwareDatetime
    sent_at: AwareDatetime | None = None
    # The delivery's result: delivered, refused, failed, temporary, unknown, posted...
    result: str = ""
    reason: str = ""
    retry_at: AwareDatetime | None = None
    # Email: the Message-ID a reply names in In-Reply-To/References.
    message_id: str | None = None
    # Slack Connect: the shared channel and the message posted there.
    channel: str | None = None
    ts: str | None = None

    @property
    def key(self) -> str:
        return f"{self.draft}:{self.route}"


def retry_after(attempts: int, scale: float = 1.0) -> timedelta | None:
    """How long after attempt number `attempts` the next is made; None: no more (a person
    presses Send again). One, two, four, eight, sixteen minutes: half an hour in all."""
    if attempts >= MAX_ATTEMPTS:
        return None
    return timedelta(minutes=2 ** (attempts - 1)) / scale


MAX_ATTEMPTS = 6


class Outgoing(Record):
    """What an approved letter's message shows of its sending: where Send goes (with the
    subject it goes out with), what became of each route, or why nothing can be sent."""

    route: Route = Route()
    subject: str = ""
    letters: tuple[SentLetter, ...] = ()
    # Why the account's letters cannot be sent (its entry is unusable, email not set up).
    problem: str = ""

    def sent(self, kind: RouteKind) -> SentLetter | None:
        return next(
            (s for s in self.letters if s.route is kind and s.status is LetterStatus.SENT), None
        )

    @property
    def unsent(self) -> tuple[RouteKind, ...]:
        return tuple(k for k in self.route.kinds if self.sent(k) is None)

    @property
    def may_send(self) -> bool:
        """Send is offered: warroom sends this account's letters and a route is still open."""
        return self.route.sends and not self.problem and bool(self.unsent)


_SUBJECT_LINE = re.compile(r"\A[ \t]*subject:[ \t]*(?P<subject>[^\n]*)\n?", re.IGNORECASE)


def has_subject(text: str) -> bool:
    """Whether the letter's first line is `Subject: ...`."""
    return bool(_SUBJECT_LINE.match(text))


def default_subject(customer: str) -> str:
    """The subject of a letter that names none."""
    return f"Update on the issue affecting {' '.join(customer.split())}"


_CLOSING = re.compile(
    r"^(kind(est)? regards|best regards|warm(est)? regards|regards|best wishes|best|sincerely|"
    r"yours sincerely|yours truly|yours|thank you|thanks|many thanks|with thanks|respectfully)"
    r"\s*,?\s*$",
    re.IGNORECASE,
)


def signed_by(body: str) -> str:
    """The name under the letter's closing ("Kind regards,\\nVictoria Vance\\nVP, Support"
    gives "Victoria Vance"), or '' when it has none."""
    lines = [line.strip() for line in body.strip().splitlines() if line.strip()]
    for n in range(len(lines) - 2, max(len(lines) - 5, -1), -1):
        if _CLOSING.match(lines[n]):
            name = lines[n + 1]
            return name if len(name) <= 80 else ""
    return ""

"""Approved letters added to the escalation's ticket: a public comment authored by the signer's
agent (found by email), which is how the requester receives it by mail; the ticket's status
set as configured; the ticket tagged with the escalation. Once per letter and ticket, whatever
the clicks, retries or processes.

Zendesk honours an `Idempotency-Key` only when a ticket is created, not on an update, so the
guard is ours: before the update the record says `sending`; after it, `added` (with the
comment's id) or `failed` (with the reason and whether to try again). The update also tags the
ticket with the letter's own tag, in the same write as the comment: an attempt whose answer
was lost (a timeout, a 5xx) leaves the record `sending`, and the next attempt reads the
ticket's tags first: the tag there means the comment landed, and it is not added again.
While one process adds it, it holds a claim with a lease (SET NX PX); another is told it is
under way. The route plugs into Send like the email and Slack Connect routes:
`TicketLetters.send(TicketLetter(...))`.
"""

from __future__ import annotations

import hashlib
import logging
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

import redis

from bot.desk.desk import Desk, DeskError, DeskRefused, DeskUnavailable, TicketGone, Unsure

log = logging.getLogger(__name__)

LEASE_SECONDS = 120.0  # longer than the update's timeouts and the agent look-up together
KEEP_SECONDS = 90 * 24 * 3600

# Sets fields unless the record already says `added`: a late writer never undoes a comment.
_WRITE_UNLESS_ADDED = """
if redis.call('HGET', KEYS[1], 'status') == 'added' then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


@dataclass(frozen=True)
class TicketLetter:
    """One approved letter (a draft of an escalation at one version) for one ticket."""

    escalation: str
    draft: str
    version: int
    ticket_id: int
    text: str  # exactly the approved text
    signer_email: str

    @property
    def name(self) -> str:
        return f"{self.escalation}/{self.draft}/v{self.version}/ticket-{self.ticket_id}"


class Step(StrEnum):
    ADDED = "added"  # added now
    ALREADY = "already"  # added before: nothing done
    BUSY = "busy"  # another process is adding it now: nothing done
    FAILED = "failed"  # not added: `reason`, and `retry` says whether trying later may help


@dataclass(frozen=True)
class TicketDelivery:
    step: Step
    comment_id: int | None = None
    reason: str = ""  # one line, fit for the war room
    retry: bool = False
    gone: bool = False  # the ticket was deleted or merged: only another ticket will do


def escalation_tag(escalation: str) -> str:
    """The tag that marks a ticket as this escalation's (Zendesk tags: lowercase, no spaces)."""
    return "warroom_" + re.sub(r"[^a-z0-9_-]+", "_", escalation.lower())[:80]


def letter_tag(letter: TicketLetter) -> str:
    """The tag that marks a letter as added (set in the same update as its comment)."""
    digest = hashlib.sha256(f"{letter.escalation}/{letter.draft}/{letter.version}".encode())
    return f"warroom_letter_{digest.hexdigest()[:16]}"


class TicketLetters:
    """The route that adds approved letters to tickets; `send` is safe to call again."""

    def __init__(
        self,
        client: redis.Redis,
        prefix: str,
        desk: Desk,
        *,
        status_on_send: str | None = None,
        lease_seconds: float = LEASE_SECONDS,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.redis = client
        self.prefix = prefix
        self.desk = desk
        self.status_on_send = status_on_send
        self.lease_ms = int(lease_seconds * 1000)
        self.clock = clock
        self._write = client.register_script(_WRITE_UNLESS_ADDED)
        self._release = client.register_script(_RELEASE)

    def _record(self, letter: TicketLetter) -> str:
        return f"{self.prefix}:desk:letter:{letter.name}"

    def status(self, letter: TicketLetter) -> dict[str, str]:
        raw = self.redis.hgetall(self._record(letter))
        return {k.decode(): v.decode() for k, v in raw.items()}

    def send(
        self, letter: TicketLetter, *, before: Callable[[], None] | None = None
    ) -> TicketDelivery:
        """Add the letter to its ticket unless it is there already or being added now;
        `before` is called once the letter is claimed, just before the ticket is updated (the
        caller keeps that the letter is going out: a crash after it leaves the record)."""
        record = self.status(letter)
        if record.get("status") == "added":
            return TicketDelivery(Step.ALREADY, int(record.get("comment_id") or 0))
        token = uuid.uuid4().hex
        claim = f"{self._record(letter)}:claim"
        if not self.redis.set(claim, token, nx=True, px=self.lease_ms):
            return TicketDelivery(Step.BUSY, reason="It is being added to the ticket now.")
        try:
            return self._send_claimed(letter, before)
        finally:
            self._release(keys=[claim], args=[token])

    def _send_claimed(
        self, letter: TicketLetter, before: Callable[[], None] | None = None
    ) -> TicketDelivery:
        key = self._record(letter)
        record = self.status(letter)
        if record.get("status") == "added":
            return TicketDelivery(Step.ALREADY, int(record.get("comment_id") or 0))
        tag = letter_tag(letter)
        digest = hashlib.sha256(letter.text.encode()).hexdigest()
        if record.get("digest") and record["digest"] != digest:
            # The letter is what was approved; another text under its name is a bug upstream.
            return TicketDelivery(
                Step.FAILED, reason="This letter's text differs from the one on record."
            )
        try:
            if record.get("status") == "sending" and self.desk.has_tag(letter.ticket_id, tag):
                # An earlier attempt landed and its answer was lost: it is there once.
                return self._added(letter, key, comment_id=0, found=True)
            author = self.desk.agent_by_email(letter.signer_email)
            if author is None:
                self._fail(key, "no agent", retry=False)
                return TicketDelivery(
                    Step.FAILED,
                    reason=f"{self.desk.name} has no agent with the signer's email "
                    f"({letter.signer_email}, from their Slack profile), so the letter was not "
                    f"added to the ticket: give their {self.desk.name} agent that email.",
                )
            if before is not None:
                before()
            self._write(
                keys=[key],
                args=_fields(
                    status="sending",
                    digest=digest,
                    tag=tag,
                    ticket=letter.ticket_id,
                    at=self.clock().isoformat(),
                    reason="",
                ),
            )
            self.redis.expire(key, KEEP_SECONDS)
            comment_id = self.desk.add_public_comment(
                letter.ticket_id,
                letter.text,
                author_id=author.id,
                status=self.status_on_send,
                tags=[escalation_tag(letter.escalation), tag],
            )
        except Unsure as e:
            # Left `sending`: the next attempt looks for the tag before adding anything.
            log.warning("escalation %s: letter %s: %s", letter.escalation, letter.name, e.message)
            return TicketDelivery(
                Step.FAILED,
                reason=f"{e.message} It may have been added; the next try checks first.",
                retry=True,
            )
        except DeskUnavailable as e:
            self._fail(key, e.message, retry=True)
            return TicketDelivery(Step.FAILED, reason=e.message, retry=True)
        except TicketGone as e:
            self._fail(key, e.message, retry=False)
            return TicketDelivery(Step.FAILED, reason=e.message, gone=True)
        except DeskRefused as e:
            # A merged ticket is closed, and a closed ticket refuses the update: say which.
            merged = self._gone(letter.ticket_id)
            self._fail(key, merged or e.message, retry=False)
            return TicketDelivery(Step.FAILED, reason=merged or e.message, gone=bool(merged))
        except DeskError as e:
            self._fail(key, e.message, retry=False)
            return TicketDelivery(Step.FAILED, reason=e.message)
        return self._added(letter, key, comment_id=comment_id, found=False)

    def _gone(self, ticket_id: int) -> str:
        """Why the ticket is gone (deleted, merged into another), or '' when it is not."""
        try:
            self.desk.ticket(ticket_id)
        except TicketGone as e:
            return e.message
        except DeskError:
            return ""
        return ""

    def _added(
        self, letter: TicketLetter, key: str, *, comment_id: int, found: bool
    ) -> TicketDelivery:
        self._write(
            keys=[key],
            args=_fields(status="added", comment_id=comment_id, added_at=self.clock().isoformat()),
        )
        log.info(
            "escalation %s: letter %s on ticket %s (%s)",
            letter.escalation,
            letter.name,
            letter.ticket_id,
            "found there" if found else "added",
        )
        return TicketDelivery(Step.ALREADY if found else Step.ADDED, comment_id or None)

    def _fail(self, key: str, reason: str, *, retry: bool) -> None:
        self._write(keys=[key], args=_fields(status="failed", reason=reason, retry=int(retry)))
        self.redis.expire(key, KEEP_SECONDS)


def _fields(**values: object) -> list[str]:
    out: list[str] = []
    for name, value in values.items():
        out += [name, str(value)]
    return out

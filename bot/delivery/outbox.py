"""The outbox: each approved letter (an escalation's draft at one version) is emailed once,
whatever the clicks, retries or processes, and the record says what happened.

Before the SMTP transaction the letter is recorded as `sending`, with its Message-ID and the
exact bytes that go out; after it, as `sent` or `failed` with the reason. A letter already
`sent` is not sent again: a repeat call answers with the first result. A process that died
between `sending` and `sent` left the bytes behind: the next call sends those same bytes, with
the same Message-ID (mail clients show a message once per Message-ID), never a new message.
While one process sends, it holds a claim with a lease (SET NX PX); another process asking to
send the same letter is told it is under way.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from enum import StrEnum
from typing import Protocol, TypeVar

import redis

from bot.delivery.mail import recipients
from bot.delivery.smtp import Outcome, SendResult

log = logging.getLogger(__name__)
T = TypeVar("T")

# Longer than an SMTP transaction can take (a few round trips, each bounded by the timeout):
# a claim that lapses while its holder still sends would let a second process send too.
DEFAULT_LEASE_SECONDS = 300.0

# Sets the record's fields unless it already says `sent`: a late writer (a process whose
# lease lapsed) can never undo a delivery. KEYS[1] the record; ARGV field, value, ...
_WRITE_UNLESS_SENT = """
if redis.call('HGET', KEYS[1], 'status') == 'sent' then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
redis.call('HINCRBY', KEYS[1], 'writes', 1)
return 1
"""

# Deletes the claim only if it is still ours. KEYS[1] the claim; ARGV[1] our token.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


# The letter's number in its escalation: the one it was given, or the next. KEYS[1] the
# escalation's numbers (a hash: "draft:version" -> number, and "#" -> the last given);
# ARGV[1] the letter's field.
_NUMBER = """
local given = redis.call('HGET', KEYS[1], ARGV[1])
if given then return tonumber(given) end
local n = redis.call('HINCRBY', KEYS[1], '#', 1)
redis.call('HSET', KEYS[1], ARGV[1], n)
return n
"""


# A connection that dropped: the command may have run, its answer lost.
_LOST = (redis.ConnectionError, redis.TimeoutError)


def _once_more(send: Callable[[], T]) -> T:
    """Send a command that is safe to send twice (a script that answers a repeat as it
    answered the first, a write that sets what is already set); if its answer is lost, send
    it once more."""
    try:
        return send()
    except _LOST:
        return send()


class OutboxError(Exception):
    """The letter cannot go out as asked (its message differs from the one on record)."""


class Status(StrEnum):
    SENDING = "sending"  # handed to SMTP, result not recorded yet (or the process died)
    SENT = "sent"
    FAILED = "failed"


class Step(StrEnum):
    """What a call to `Outbox.deliver` did."""

    SENT = "sent"  # sent it now
    FAILED = "failed"  # tried now and failed: the record says why, and whether to retry
    ALREADY_SENT = "already_sent"  # it was sent before: nothing done
    BUSY = "busy"  # another process is sending it right now: nothing done


class Transport(Protocol):
    def send(self, message: bytes, sender: str, recipients: Sequence[str]) -> SendResult: ...


@dataclass(frozen=True)
class LetterKey:
    """One approved letter: a draft of an escalation at one version."""

    escalation: str
    draft: str
    version: int

    def __str__(self) -> str:
        return f"{self.escalation}/{self.draft}/v{self.version}"


@dataclass(frozen=True)
class OutboxRecord:
    """What the outbox knows of one letter."""

    key: LetterKey
    status: Status
    message_id: str
    message: bytes
    sender: str
    recipients: tuple[str, ...]
    attempts: int
    outcome: Outcome | None = None
    reason: str = ""
    refused: tuple[tuple[str, str], ...] = ()
    first_attempt_at: datetime | None = None
    last_attempt_at: datetime | None = None
    sent_at: datetime | None = None

    @property
    def subject(self) -> str:
        return str(self.headers().get("Subject", ""))

    def headers(self) -> EmailMessage:
        """The message's headers, parsed."""
        parsed = BytesHeaderParser(policy=policy.default).parsebytes(self.message)
        assert isinstance(parsed, EmailMessage)
        return parsed

    @property
    def retry(self) -> bool:
        """Another attempt may deliver it."""
        if self.status is Status.SENDING:
            return True
        return self.status is Status.FAILED and self.outcome in (Outcome.TEMPORARY, Outcome.UNKNOWN)

    @property
    def maybe_delivered(self) -> bool:
        """Some attempt may have reached the customer: it goes out again only as it was."""
        return self.status in (Status.SENT, Status.SENDING) or self.outcome is Outcome.UNKNOWN


@dataclass(frozen=True)
class Delivery:
    step: Step
    record: OutboxRecord


class OutboxKeys:
    """Every Redis key of the outbox, under the deployment's prefix."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def _letter(self, key: LetterKey) -> str:
        return f"{key.escalation}:{key.draft}:{key.version}"

    def record(self, key: LetterKey) -> str:
        """A hash: the letter's status, its bytes, its Message-ID, each attempt's result."""
        return f"{self.prefix}:outbox:{self._letter(key)}"

    def claim(self, key: LetterKey) -> str:
        """Who is sending the letter right now (a token), with a lease."""
        return f"{self.prefix}:outbox-claim:{self._letter(key)}"

    def message_id(self, message_id: str) -> str:
        """The letter (its record's key) a Message-ID belongs to."""
        return f"{self.prefix}:outbox-id:{message_id}"

    def numbers(self, escalation: str) -> str:
        """A hash: each letter's number in the escalation, and the last number given."""
        return f"{self.prefix}:outbox-numbers:{escalation}"

    def escalation(self, escalation: str) -> str:
        """A sorted set: the record keys of an escalation's letters, by first attempt."""
        return f"{self.prefix}:outbox-of:{escalation}"


class Outbox:
    """Sends letters through a transport, each once, with its record in Redis."""

    def __init__(
        self,
        client: redis.Redis,
        prefix: str,
        *,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.redis = client
        self.keys = OutboxKeys(prefix)
        self.lease_ms = int(lease_seconds * 1000)
        self.clock = clock
        self._write = client.register_script(_WRITE_UNLESS_SENT)
        self._release = client.register_script(_RELEASE)
        self._number = client.register_script(_NUMBER)

    @property
    def lease_seconds(self) -> float:
        """How long a sending process holds a letter before another may take it over."""
        return self.lease_ms / 1000

    def get(self, key: LetterKey) -> OutboxRecord | None:
        raw = self.redis.hgetall(self.keys.record(key))
        return _record(key, raw) if raw else None

    def letter_of(self, message_id: str) -> LetterKey | None:
        """The letter that went out (or was going out) as `message_id`; None when none did."""
        name = self.redis.get(self.keys.message_id(message_id))
        if name is None:
            return None
        _, _, rest = name.decode().partition(f"{self.keys.prefix}:outbox:")
        esc, draft, version = rest.rsplit(":", 2)
        return LetterKey(esc, draft, int(version))

    def letters(self, escalation: str) -> list[OutboxRecord]:
        """Every letter of the escalation the outbox has a record of, first attempted first."""
        found = []
        for name in self.redis.zrange(self.keys.escalation(escalation), 0, -1):
            _, _, rest = name.decode().partition(f"{self.keys.prefix}:outbox:")
            esc, draft, version = rest.rsplit(":", 2)
            record = self.get(LetterKey(esc, draft, int(version)))
            if record is not None:
                found.append(record)
        return found

    def deliver(
        self,
        key: LetterKey,
        message: EmailMessage,
        transport: Transport,
        *,
        before: Callable[[OutboxRecord], object] = lambda _record: None,
    ) -> Delivery:
        """Send the letter `key` as `message`, unless it went out already or is going out now.

        The bytes sent are those on record when an earlier attempt may have reached anyone
        (the process died mid-way, the connection dropped after the message was handed over):
        the same message again, with the same Message-ID. After an attempt that certainly
        delivered nothing (refused, or tried too early), `message` goes out, so corrected
        addresses are used; it must keep the letter's Message-ID.

        `before` is called with the record about to go out, once the letter is ours and just
        before the SMTP transaction: where the caller keeps its own record that a letter is
        under way (a process that dies mid-transaction leaves it behind); if it raises,
        nothing is sent.
        """
        first = self.get(key)
        if first is not None and first.status is Status.SENT:
            return Delivery(Step.ALREADY_SENT, first)
        token = uuid.uuid4().hex
        claim = self.keys.claim(key)
        if not self._claim(claim, token):
            current = self.get(key) or first
            if current is None:
                # The claimant has not written its record yet: what we would send is this.
                current = self._new_record(key, message)
            return Delivery(Step.BUSY, current)
        try:
            return self._deliver_claimed(key, message, transport, before)
        finally:
            try:
                self._release(keys=[claim], args=[token])
            except redis.RedisError as e:
                # Its lease ends it; what the transaction did must still reach the caller.
                log.warning("letter %s: claim not released (%s); its lease ends it", key, e)

    def _claim(self, claim: str, token: str) -> bool:
        """Take the letter's claim; a claim whose answer was lost is read back: ours if it
        holds our token."""
        try:
            return bool(self.redis.set(claim, token, nx=True, px=self.lease_ms))
        except _LOST:
            held = self.redis.get(claim)
            return held is not None and held.decode() == token

    def _deliver_claimed(
        self,
        key: LetterKey,
        message: EmailMessage,
        transport: Transport,
        before: Callable[[OutboxRecord], object],
    ) -> Delivery:
        # Read again now that the letter is ours: another process may have finished it
        # between our first look and the claim.
        record = self.get(key)
        if record is not None and record.status is Status.SENT:
            return Delivery(Step.ALREADY_SENT, record)
        given = self._new_record(key, message)
        if record is not None and given.message_id != record.message_id:
            raise OutboxError(
                f"letter {key} went out as {record.message_id} before: it cannot become "
                f"{given.message_id}"
            )
        if record is None:
            self._reserve(key, given.message_id)
        previous = record
        if record is None or not record.maybe_delivered:
            record = given
        now = self.clock()
        first_attempt = (previous and previous.first_attempt_at) or now
        attempts = (previous.attempts if previous else 0) + 1
        sending = _fields(
            status=Status.SENDING,
            message_id=record.message_id,
            message=record.message,
            sender=record.sender,
            recipients=json.dumps(record.recipients),
            attempts=attempts,
            first_attempt_at=first_attempt.isoformat(),
            last_attempt_at=now.isoformat(),
            # The last attempt's result, gone: this one has none yet.
            outcome="",
            reason="",
            refused="[]",
        )
        record_key = self.keys.record(key)
        _once_more(lambda: self._write(keys=[record_key], args=sending))
        _once_more(
            lambda: self.redis.zadd(
                self.keys.escalation(key.escalation),
                {record_key: first_attempt.timestamp()},
                nx=True,
            )
        )

        before(replace(record, attempts=attempts, first_attempt_at=first_attempt))
        result = transport.send(record.message, record.sender, record.recipients)

        delivered = result.outcome is Outcome.DELIVERED
        fields = _fields(
            status=Status.SENT if delivered else Status.FAILED,
            outcome=result.outcome,
            reason=result.reason,
            refused=json.dumps(result.refused),
        )
        sent_at = self.clock() if delivered else None
        if sent_at is not None:
            fields += _fields(sent_at=sent_at.isoformat())
        try:
            self._write(keys=[self.keys.record(key)], args=fields)
            final = self.get(key)
        except redis.RedisError as e:
            # The transaction is over and its result known here: the caller records it (the
            # escalation's record of a sent letter keeps Send from mailing it again), rather
            # than losing it and leaving a resend to the next click.
            log.error("letter %s: %s, and the outbox could not record it (%s)", key, result, e)
            final = None
        if final is None:
            final = replace(
                record,
                status=Status.SENT if delivered else Status.FAILED,
                attempts=attempts,
                outcome=result.outcome,
                reason=result.reason,
                refused=result.refused,
                first_attempt_at=first_attempt,
                last_attempt_at=now,
                sent_at=sent_at,
            )
        level = logging.INFO if delivered else logging.WARNING
        log.log(
            level,
            "escalation %s: letter %s (%s) to %s: %s %s",
            key.escalation,
            key,
            final.message_id,
            ", ".join(final.recipients),
            result.outcome,
            result.reason,
        )
        return Delivery(Step.SENT if delivered else Step.FAILED, final)

    def _reserve(self, key: LetterKey, message_id: str) -> None:
        """Bind `message_id` to this letter for good: a mail client shows one message per id,
        so two letters with one id (two drafts given the same number at once) would lose one."""
        name = self.keys.record(key)
        binding = self.keys.message_id(message_id)
        if _once_more(lambda: self.redis.set(binding, name, nx=True)):
            return
        # Set before, never deleted: reading it now is reading who has it.
        owner = self.redis.get(binding)
        if owner is not None and owner.decode() != name:
            raise OutboxError(
                f"{message_id} belongs to another letter already: give letter {key} its own "
                "number (Outbox.number)"
            )

    def number(self, key: LetterKey) -> int:
        """The letter's number in its escalation (1 for the first): given once, the same at
        every later call, never given to another letter (so its Message-ID is its own)."""
        field = f"{key.draft}:{key.version}"
        numbers = self.keys.numbers(key.escalation)
        return int(_once_more(lambda: self._number(keys=[numbers], args=[field])))

    def first_subject(self, escalation: str) -> str | None:
        """The subject of the escalation's first letter that may have reached the customer:
        the one later letters keep (`Letter.first_subject`), so they stay in its thread."""
        for record in self.letters(escalation):
            if record.maybe_delivered:
                return record.subject
        return None

    def _new_record(self, key: LetterKey, message: EmailMessage) -> OutboxRecord:
        message_id = str(message.get("Message-ID", "")).strip()
        if not message_id:
            raise OutboxError(f"letter {key} has no Message-ID")
        from_ = message.get("From")
        senders = getattr(from_, "addresses", ())
        if len(senders) != 1:
            raise OutboxError(f"letter {key} needs one From address")
        return OutboxRecord(
            key=key,
            status=Status.SENDING,
            message_id=message_id,
            message=message.as_bytes(policy=policy.SMTP),
            sender=senders[0].addr_spec,
            recipients=tuple(recipients(message)),
            attempts=0,
        )


def _fields(**values: object) -> list[str | bytes | int]:
    out: list[str | bytes | int] = []
    for name, value in values.items():
        out += [name, value if isinstance(value, bytes | int) else str(value)]
    return out


def _record(key: LetterKey, raw: dict[bytes, bytes]) -> OutboxRecord:
    def text(name: str) -> str:
        return raw.get(name.encode(), b"").decode()

    def when(name: str) -> datetime | None:
        value = text(name)
        return datetime.fromisoformat(value) if value else None

    outcome = text("outcome")
    return OutboxRecord(
        key=key,
        status=Status(text("status")),
        message_id=text("message_id"),
        message=raw.get(b"message", b""),
        sender=text("sender"),
        recipients=tuple(json.loads(text("recipients") or "[]")),
        attempts=int(text("attempts") or 0),
        outcome=Outcome(outcome) if outcome else None,
        reason=text("reason"),
        refused=tuple((a, b) for a, b in json.loads(text("refused") or "[]")),
        first_attempt_at=when("first_attempt_at"),
        last_attempt_at=when("last_attempt_at"),
        sent_at=when("sent_at"),
    )

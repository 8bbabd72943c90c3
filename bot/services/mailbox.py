"""The customer's email replies, read from the reply mailbox (the letters' Reply-To) and brought
to the war room through the one service that records a customer's words.

The mailbox is shared with the support team: a message that names none of our letters (in
In-Reply-To or References, or, in a bounce, as the returned message) is not ours and is left
as it was, unread and unflagged. Ours are recorded, then flagged; each poll reads only the
messages that came in since the last one read through (a mark per mailbox in Redis, advanced
past a message only once it is done with). A process that dies between recording a reply and
flagging it reads it again next time, and recording it again changes nothing (a reply is
known by its Message-ID). A message whose handling failed (Slack down) stops the poll there:
the next poll starts again from it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from datetime import timedelta

from bot.clock import Clock
from bot.delivery import inbound
from bot.delivery.imap import ImapError, Mailbox, Session
from bot.delivery.outbox import LetterKey, Outbox
from bot.domain.replies import CustomerReply, Via
from bot.services.replies import CustomerReplies, Outcome
from bot.store import Store

log = logging.getLogger(__name__)

# Without a mark (the first poll of a mailbox, or the server numbered its messages anew): the
# messages of the last days, when replies to letters still being answered can be.
FIRST_LOOK = timedelta(days=14)
# Polls that may fail to fetch or read one message before it is left to people (and the poll
# goes past it). A reply that could not be shown (Slack down) is not counted: it waits.
MAX_TRIES = 5


@dataclass
class Polled:
    """What one poll did."""

    read: int = 0  # new messages looked at
    replies: int = 0  # customer replies recorded (or found recorded)
    bounces: int = 0
    automatic: int = 0  # auto-replies to our letters, left out
    not_ours: int = 0
    own: int = 0  # our own people's mail (or our letters) in the letters' thread: left as is
    # Mail naming a letter of ours from a domain the letter did not go to: left to people.
    strangers: int = 0
    error: str = ""  # why the poll stopped early ("" when it did not)
    done: list[int] = field(default_factory=list)  # UIDs read through
    given_up: list[int] = field(default_factory=list)  # UIDs that failed too often, passed


@dataclass
class MailReplies:
    mailbox: Mailbox
    outbox: Outbox
    replies: CustomerReplies
    store: Store
    clock: Clock
    # Our own domains (of the sending and the reply address): mail from them is our people's
    # (a colleague on cc answering all, a letter of ours copied here), not the customer's.
    own_domains: frozenset[str] = frozenset()
    # How long one poll may go on reading (seconds, on the machine's monotonic clock): past
    # it, the poll stops after the message in hand and the next goes on from there. Below the
    # poll's turn, so a slow server or a first look at a big mailbox never has two processes
    # reading at once. At least one message is read a poll, whatever the budget.
    budget_seconds: float = 50.0

    @property
    def name(self) -> str:
        url = self.mailbox.url
        return f"{url.username}@{url.host}:{url.port}/{url.mailbox}"

    def poll(self) -> Polled:
        """Read what came in since the last poll; ImapError, logged, when the mailbox cannot be
        read (the next poll tries again from the same place)."""
        polled = Polled()
        try:
            with self.mailbox.session() as session:
                self._read(session, polled)
        except ImapError as e:
            polled.error = str(e)
            log.warning("reply mailbox %s: %s; tried again at the next poll", self.mailbox.url, e)
        return polled

    def _read(self, session: Session, polled: Polled) -> None:
        started = time.monotonic()
        mark = self.store.mailbox_mark(self.name, session.validity)
        uids = session.since(mark, (self.clock() - FIRST_LOOK).date())
        for start in range(0, len(uids), 100):
            batch = uids[start : start + 100]
            heads = session.headers(batch)
            for uid in batch:
                if polled.read and time.monotonic() - started >= self.budget_seconds:
                    log.info("reply mailbox: the poll's time is up; the next goes on from here")
                    return
                polled.read += 1
                header = heads.get(uid)
                try:
                    handled = header is None or self._one(session, uid, header, polled)
                except ImapError:
                    raise
                except Exception as e:
                    # Slack or Redis failing: this message, and those after it, next time.
                    log.exception(
                        "reply mailbox: message %s not handled; tried again next poll", uid
                    )
                    polled.error = type(e).__name__
                    return
                if not handled:
                    return
                self.store.set_mailbox_mark(self.name, session.validity, uid)
                polled.done.append(uid)

    def _one(self, session: Session, uid: int, header: bytes, polled: Polled) -> bool:
        """Handle one message; False when it must be tried again at the next poll."""
        heads = inbound.heads(header)
        letter = self._letter(heads.answers)
        if letter is None and not heads.report:
            polled.not_ours += 1
            return True
        # A message that cannot be fetched or read, poll after poll (too big for the client, a
        # shape the parser chokes on), must not hold back every reply after it.
        tries = self.store.mailbox_try(self.name, session.validity, uid)
        if tries > MAX_TRIES:
            log.error(
                "reply mailbox %s: message %s could not be read in %d polls; left to people",
                self.mailbox.url,
                uid,
                MAX_TRIES,
            )
            polled.given_up.append(uid)
            return True
        raw = session.message(uid)
        if raw is None:  # gone since (someone moved it)
            return True
        try:
            mail = inbound.read(raw)
        except Exception as e:
            # Bytes the parser chokes on (multiparts nested thousands deep) choke it at every
            # poll: trying again only holds back the replies after it.
            log.error(
                "reply mailbox %s: message %s cannot be parsed (%s); left to people",
                self.mailbox.url,
                uid,
                type(e).__name__,
            )
            polled.given_up.append(uid)
            return True
        self.store.mailbox_read(self.name, session.validity, uid)
        letter = self._letter(mail.answers)
        if letter is None:
            polled.not_ours += 1  # a report about someone else's message
            return True
        key, message_id = letter
        if self.outbox.letter_of(mail.ref) is not None or self._ours(mail.address):
            polled.own += 1  # one of our letters, or one of our people: not the customer's
            return True
        went_to = self._recipients(key)
        if mail.kind is inbound.Kind.BOUNCE:
            # A report is as easy to forge as a reply: only the addresses the letter went to
            # can have failed.
            failed = tuple(a for a in mail.undeliverable if a.casefold() in went_to)
            if mail.undeliverable and not failed:
                polled.strangers += 1
                log.warning(
                    "escalation %s: a report on letter %s names no address it went to; "
                    "left to people",
                    key.escalation,
                    message_id,
                )
                return True
            mail = replace(mail, undeliverable=failed)
        elif not _same_domain(mail.address, went_to):
            # A letter's Message-ID is no secret (a forward, a copy, a guess): whoever names
            # it from outside the domains it went to is not the customer, and their words
            # are not shown, nor given to the agent, as the customer's.
            polled.strangers += 1
            log.warning(
                "escalation %s: mail naming letter %s from a domain it did not go to; "
                "left to people",
                key.escalation,
                message_id,
            )
            return True
        if mail.kind is inbound.Kind.BOUNCE:
            polled.bounces += 1
            done = self.replies.undeliverable(
                key.escalation, message_id, mail.undeliverable, mail.ref
            )
        elif mail.kind is inbound.Kind.AUTO:
            polled.automatic += 1
            log.info("escalation %s: an auto-reply to %s left out", key.escalation, message_id)
            done = None
        else:
            polled.replies += 1
            done = self.replies.received(self._reply(key, message_id, mail))
        if done is not None and done.outcome is Outcome.UNDER_WAY:
            return False  # another process is on it: look again next time
        session.mark(uid)
        return True

    def _ours(self, address: str) -> bool:
        domain = address.rpartition("@")[2]
        return bool(domain) and domain in self.own_domains

    def _recipients(self, key: LetterKey) -> frozenset[str]:
        """The addresses the letter `key` went to, in lower case."""
        record = self.outbox.get(key)
        return frozenset(r.casefold() for r in (record.recipients if record else ()))

    def _letter(self, answers: tuple[str, ...]) -> tuple[LetterKey, str] | None:
        """Our letter the first of `answers` that is one names, with its Message-ID."""
        for message_id in answers:
            key = self.outbox.letter_of(message_id)
            if key is not None:
                return key, message_id
        return None

    def _reply(self, key: LetterKey, message_id: str, mail: inbound.InboundMail) -> CustomerReply:
        text = mail.text or "(no text)"
        if mail.attachments:
            many = "attachment" if mail.attachments == 1 else "attachments"
            text += f"\n(with {mail.attachments} {many})"
        return CustomerReply(
            via=Via.EMAIL,
            ref=mail.ref,
            author=mail.author,
            organisation="",  # the escalation's account
            text=text,
            at=self.clock(),
            escalation=key.escalation,
            in_reply_to=message_id,
        )


def _same_domain(address: str, recipients: frozenset[str]) -> bool:
    """Whether `address` is of a domain one of `recipients` is of (the customer's people
    answer, forward within their company and add colleagues)."""
    domain = address.rpartition("@")[2].casefold()
    return bool(domain) and domain in {r.rpartition("@")[2] for r in recipients}

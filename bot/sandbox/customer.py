"""The customer's side of the sandbox: what Acme Corp's executive sees of warroom's letters, and
how they answer.

This module owns ``CustomerSide``: the executive's inbox, kept by a mail server on this
machine that the bot's `WARROOM_SMTP_URL` points at (every message to their address, grouped
into threads as their mail client groups them: by the first Message-ID of `References`), and
the channel shared with their organisation (Slack Connect) as they see it. They answer by
posting in that channel as themselves (``Interactions.post``): the workspace sends the app the
`message` event Slack would, and the reply arrives in the war room the way a real one does.
Or they answer the newest letter by email (``answer_by_email``): their mail client's reply,
quoting the letter below their words, lands in the team's reply mailbox (an IMAP server on
this machine that the bot's `WARROOM_IMAP_URL` points at), and the bot reads it from there.

A mail server knows nothing of the page: ``watch`` tells the page of each new message by
touching the emulator (the page's long poll waits on the emulator's version).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import TYPE_CHECKING, Any

from bot.sandbox.interactions import Outcome
from bot.sandbox.web import WorkspacePage
from loopback.imap import ImapServer
from loopback.slack import SlackEmulator
from loopback.smtp import MailServer

if TYPE_CHECKING:
    from bot.sandbox.desk import SandboxDesk

# What the page shows of a long thread: the newest messages.
SHOWN_MESSAGES = 50
MAX_REPLY = 4000  # characters of a reply typed on the page
_REPLY_PREFIX = re.compile(r"^(?:(?:re|fwd?)\s*:\s*)+", re.IGNORECASE)


@dataclass
class CustomerSide:
    emulator: SlackEmulator
    mail: MailServer
    account: str  # the account's name ("Acme Corp")
    address: str  # their executive's email address
    person: str | None = None  # the executive's user id in their own organisation, if any
    channel: str | None = None  # the id of the channel shared with them, if any
    desk: SandboxDesk | None = None  # the Zendesk account their tickets are in, if any
    # The team's reply mailbox (the letters' Reply-To), where their email answers land.
    replies: ImapServer | None = None
    name: str = ""  # their name, as their mail client signs their email
    on_email: Callable[[], object] | None = None  # the bot, told to read its mailbox now
    _stop: threading.Event = field(default_factory=threading.Event, init=False, repr=False)
    _thread: threading.Thread | None = field(default=None, init=False, repr=False)

    def state(self) -> dict[str, Any]:
        """What the page's customer panel shows: the inbox's threads, newest first, each
        oldest message first; the shared channel as the executive sees it; and their
        tickets, each with its public comments (never the team's internal notes)."""
        threads = []
        for thread in self.mail.threads(self.address):
            shown = [r.shown() for r in thread[-SHOWN_MESSAGES:]]
            for message in shown:
                message.pop("html", None)  # the page shows the plain text, as sent
            threads.append({"subject": shown[-1]["subject"], "messages": shown})
        threads.reverse()
        found = self.emulator.find_channel(self.channel) if self.channel else None
        channel = (
            WorkspacePage._channel_view(found, self.person)
            if found is not None and self.person
            else None
        )
        return {
            "account": self.account,
            "person": self.person,
            "address": self.address,
            "inbox": threads,
            "channel": channel,
            "tickets": self.desk.conversation(self.account) if self.desk is not None else [],
            "answers_by_email": self.replies is not None and bool(threads),
        }

    def answer_by_email(self, text: str) -> Outcome:
        """Their reply to the newest letter in their inbox, as their mail client sends it (to
        its Reply-To, in its thread, the letter quoted below), into the team's mailbox."""
        text = text.strip()
        if not text:
            return Outcome(False, "Type a reply first.")
        if len(text) > MAX_REPLY:
            return Outcome(False, f"A reply here is at most {MAX_REPLY} characters.")
        if self.replies is None:
            return Outcome(False, "This sandbox has no reply mailbox.")
        inbox = self.mail.inbox(self.address)
        if not inbox:
            return Outcome(False, "No letter to answer yet.")
        letter = inbox[-1]
        shown = letter.shown()
        msg = EmailMessage(policy=policy.SMTP)
        msg["From"] = Address(display_name=self.name, addr_spec=self.address)
        msg["To"] = shown["reply_to"] or shown["from"]
        msg["Subject"] = "Re: " + _REPLY_PREFIX.sub("", shown["subject"])
        msg["Date"] = format_datetime(datetime.now(UTC))
        msg["Message-ID"] = make_msgid(domain=self.address.rpartition("@")[2])
        msg["In-Reply-To"] = letter.message_id
        references = str(letter.message.get("References", "")).split()
        msg["References"] = " ".join([*references, letter.message_id])
        quoted = "\n".join(f"> {line}" if line else ">" for line in shown["text"].splitlines())
        msg.set_content(f"{text}\n\nOn {shown['date']}, {shown['from']} wrote:\n{quoted}\n")
        self.replies.deliver(msg.as_bytes())
        if self.on_email is not None:
            self.on_email()
        self.emulator.touch()
        return Outcome(True)

    def watch(self, poll: float = 0.5) -> CustomerSide:
        """Touch the emulator whenever a message arrives, until ``stop``."""

        def run() -> None:
            seen = len(self.mail.received)
            while not self._stop.is_set():
                try:
                    self.mail.wait_for(seen + 1, timeout=poll)
                except TimeoutError:
                    continue
                seen = len(self.mail.received)
                self.emulator.touch()

        self._thread = threading.Thread(target=run, name="sandbox-inbox", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

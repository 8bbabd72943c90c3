"""The customer's side of the sandbox: what Acme Corp's executive sees of warroom's letters, and
how they answer.

This module owns ``CustomerSide``: the executive's inbox, kept by a mail server on this
machine that the bot's `WARROOM_SMTP_URL` points at (every message to their address, grouped
into threads as their mail client groups them: by the first Message-ID of `References`), and
the channel shared with their organisation (Slack Connect) as they see it. They answer by
posting in that channel as themselves (``Interactions.post``): the workspace sends the app the
`message` event Slack would, and the reply arrives in the war room the way a real one does.

A mail server knows nothing of the page: ``watch`` tells the page of each new message by
touching the emulator (the page's long poll waits on the emulator's version).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bot.sandbox.web import WorkspacePage
from loopback.slack import SlackEmulator
from loopback.smtp import MailServer

if TYPE_CHECKING:
    from bot.sandbox.desk import SandboxDesk

# What the page shows of a long thread: the newest messages.
SHOWN_MESSAGES = 50


@dataclass
class CustomerSide:
    emulator: SlackEmulator
    mail: MailServer
    account: str  # the account's name ("Acme Corp")
    address: str  # their executive's email address
    person: str | None = None  # the executive's user id in their own organisation, if any
    channel: str | None = None  # the id of the channel shared with them, if any
    desk: SandboxDesk | None = None  # the Zendesk account their tickets are in, if any
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
        }

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

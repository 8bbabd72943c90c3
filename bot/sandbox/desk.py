"""The sandbox's Zendesk: a Zendesk account on this machine (``loopback.zendesk``) that the
bot's `WARROOM_ZENDESK_*` settings point at, seeded from the workspace.

This module owns ``SandboxDesk``: the account (an organisation per sandbox account, its
executive as the requester, a Zendesk agent per person who may sign a letter, matched by the
email of their Slack profile, and a ticket per account), what the customer sees of a ticket
(its public comments: internal notes are the team's), and the requester's reply, which
Zendesk's side adds to the ticket and then sends, signed, to the bot's `/zendesk/webhook`,
as the real Zendesk would: the reply reaches the war room through the bot's own path.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import SecretStr

from bot.sandbox import workspace
from bot.sandbox.interactions import Outcome
from loopback.zendesk import ZendeskLoopback

SUBDOMAIN = "northwind"
API_EMAIL = "warroom-api@northwind.example"
# Who may sign a letter (approve and send it): each has a Zendesk agent with the email of
# their Slack profile, which is how the bot finds the agent a letter on a ticket is from.
SIGNERS = (workspace.VP, workspace.IC, workspace.IC2)
MAX_REPLY = 4000  # characters of a reply typed on the page
WEBHOOK_ATTEMPTS = 2


@dataclass(frozen=True)
class SeedTicket:
    account: str
    requester: str  # the executive's name
    email: str
    subject: str
    opened_minutes_ago: int
    description: str
    internal_note: str = ""  # an agent's note on it: the team's, never the customer's


TICKETS = (
    SeedTicket(
        "Globex",
        "Priya Natarajan",
        "priya.natarajan@globex.example",
        "Checkout fails since 09:10",
        40,
        "Since 09:10 UTC about 40% of our EU orders fail at checkout with a 502. Our flash "
        "sale starts tomorrow morning: we need to know when this is fixed.",
        "Gateway deploy v2025.06.3 went out at 09:05: likely related. Not for the customer.",
    ),
    SeedTicket(
        workspace.CUSTOMER_NAME,
        workspace.CUSTOMER_PERSON.real_name,
        workspace.CUSTOMER_EMAIL,
        "Some shoppers cannot pay at checkout",
        25,
        "A few of our shoppers report that the payment step spins and then fails. Is this "
        "on your side?",
    ),
)


@dataclass
class SandboxDesk:
    zendesk: ZendeskLoopback
    webhook_secret: str = field(default_factory=lambda: secrets.token_hex(16))
    webhook_url: str = ""  # the bot's /zendesk/webhook, once it is served
    organizations: dict[str, int] = field(default_factory=dict)  # account -> organisation
    requesters: dict[str, int] = field(default_factory=dict)  # account -> its executive
    agents: dict[str, int] = field(default_factory=dict)  # Slack user id -> Zendesk agent
    tickets: dict[str, list[int]] = field(default_factory=dict)  # account -> its tickets

    @classmethod
    def start(cls) -> SandboxDesk:
        """A new account on a free 127.0.0.1 port, seeded (see ``seed``)."""
        zd = ZendeskLoopback(email=API_EMAIL, token=secrets.token_hex(16), subdomain=SUBDOMAIN)
        desk = cls(zd.start())
        try:
            desk.seed()
        except BaseException:
            zd.stop()
            raise
        return desk

    def stop(self) -> None:
        self.zendesk.stop()

    def seed(self, now: datetime | None = None) -> None:
        now = now or datetime.now(UTC)
        zd = self.zendesk
        for p in workspace.PEOPLE:
            if p.id in SIGNERS:
                self.agents[p.id] = zd.add_user(
                    p.real_name, workspace.person_email(p.name), role="agent"
                )
        for t in TICKETS:
            org = self.organizations.get(t.account) or zd.add_organization(t.account)
            self.organizations[t.account] = org
            requester = self.requesters.get(t.account) or zd.add_user(
                t.requester, t.email, organization_id=org
            )
            self.requesters[t.account] = requester
            ticket = zd.add_ticket(
                t.subject,
                requester,
                priority="urgent",
                tags=("checkout",),
                created_at=now - timedelta(minutes=t.opened_minutes_ago),
                description=t.description,
            )
            if t.internal_note:
                zd.add_comment(ticket, self.agents[workspace.IC], t.internal_note, public=False)
            self.tickets.setdefault(t.account, []).append(ticket)

    def ticket_of(self, account: str) -> int | None:
        """The account's first ticket (the one its escalation is declared from)."""
        found = self.tickets.get(account)
        return found[0] if found else None

    def settings(self) -> dict[str, Any]:
        """The bot's settings that point it at this account."""
        return {
            "zendesk_url": self.zendesk.account_url,
            "zendesk_api_url": self.zendesk.url,
            "zendesk_email": self.zendesk.email,
            "zendesk_token": SecretStr(self.zendesk.token),
            "zendesk_webhook_secret": SecretStr(self.webhook_secret),
        }

    # ------------------------------------------------------------------ the customer's view

    def conversation(self, account: str) -> list[dict[str, Any]]:
        """The account's tickets as its requester sees them: each with its public comments,
        oldest first (who wrote each, when, and whether it was the customer's side)."""
        zd = self.zendesk
        shown = []
        for ticket_id in self.tickets.get(account, ()):
            ticket = zd.ticket(ticket_id)
            requester = zd.account.users[ticket["requester_id"]]
            comments = []
            for c in zd.comments(ticket_id):
                if not c.get("public"):
                    continue
                author = zd.account.users.get(c["author_id"]) or {}
                comments.append(
                    {
                        "id": c["id"],
                        "author": str(author.get("name") or "someone"),
                        "customer": author.get("role") == "end-user",
                        "at": c["created_at"],
                        "text": str(c.get("plain_body") or c.get("body") or ""),
                    }
                )
            shown.append(
                {
                    "id": ticket_id,
                    "subject": ticket["subject"],
                    "status": ticket["status"],
                    "requester": requester["name"],
                    "comments": comments,
                }
            )
        return shown

    def reply(self, account: str, ticket_id: int, text: str) -> Outcome:
        """The requester's public comment on their ticket, then Zendesk's signed webhook to the
        bot. The comment is added once; whether the bot took the webhook is told."""
        text = text.strip()
        if not text:
            return Outcome(False, "Type a reply first.")
        if len(text) > MAX_REPLY:
            return Outcome(False, f"A reply here is at most {MAX_REPLY} characters.")
        if ticket_id not in self.tickets.get(account, ()):
            return Outcome(False, f"Ticket #{ticket_id} is not {account}'s.")
        if not self.webhook_url:
            return Outcome(False, "The bot is not listening for Zendesk yet.")
        comment = self.zendesk.add_comment(ticket_id, self.requesters[account], text)
        # Zendesk sends a webhook again when no answer comes back; the bot takes a comment
        # it has already seen as a replay, so the reply still reaches the room once.
        for attempt in range(WEBHOOK_ATTEMPTS):
            try:
                status, answer = self.zendesk.send_comment_event(
                    self.webhook_url, ticket_id, comment, self.webhook_secret
                )
                break
            except OSError as e:
                if attempt + 1 == WEBHOOK_ATTEMPTS:
                    return Outcome(
                        False, f"The reply is on the ticket; the bot did not answer ({e})."
                    )
        if status != 200:
            said = answer.decode(errors="replace").strip()[:200]
            return Outcome(False, f"The reply is on the ticket; the bot refused it: {said}.")
        return Outcome(True)

"""The escalation's support tickets: linked at declaration or with `@vp ticket`, read from the
desk off the paths that open rooms and answer Slack, shown on the brief; the organisation's
other tickets counted on a timer (a surge told to the IC once); at resolution the tickets set
to the configured status; and the customer's comments on a linked ticket handed on as their
words.

Every desk call runs on `executor` (a pool of its own: a slow desk holds none of Slack's
threads). A failure is told in the room in one line, once: the record says what was last
told (`LinkedTicket.problem`), and only the update that changes it posts.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import datetime

from bot.desk import webhook
from bot.desk.desk import Desk, DeskError, TicketGone, Unsure
from bot.desk.letters import TicketLetter
from bot.domain import tickets as domain
from bot.domain.errors import InvalidInput
from bot.domain.escalation import Escalation, Status
from bot.domain.replies import CustomerReply, Via
from bot.domain.tickets import CommentSeen, LinkedTicket, OrgTickets
from bot.domain.timeline import EventKind, event
from bot.services.base import RoomService
from bot.slack.text import inert, mention, slack_time
from bot.store import Store

log = logging.getLogger(__name__)


@dataclass
class TicketLinks(RoomService):
    desk: Desk
    # Runs every desk call: a pool of its own, so a slow desk holds none of Slack's threads.
    executor: Executor
    store: Store
    # The webhook's signing secret; None: every webhook is refused.
    webhook_secret: str | None = None
    # The secret before it, accepted too while the secret is rotated (Zendesk signs with the
    # new one from when it is changed there; a retry of an older delivery, with this one).
    webhook_previous_secret: str | None = None
    # A refused signature is logged at WARNING at most once in this many seconds.
    refused_log_seconds: float = 60.0
    # What a customer's reply is handed to (the composition root decides).
    on_reply: Callable[[CustomerReply], object] | None = None
    # When handing a customer's comment on fails (Slack down), how long before each try again.
    reply_retry_seconds: tuple[float, ...] = (15.0, 60.0, 300.0)
    _refused_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _refused_logged_at: datetime | None = field(default=None, init=False, repr=False)

    # -- linking --------------------------------------------------------------------------
    def link(self, channel_id: str, user: str, text: str) -> str:
        """`@vp ticket 4711 [4712 ...]`: linked now, read from the desk after."""
        esc = self.escalations.in_channel(channel_id)
        self.allow(esc, user, "link a support ticket")
        wanted = domain.parse_ticket_refs(text)
        now = self.clock()

        def change(e: Escalation) -> tuple[Escalation, list]:  # type: ignore[type-arg]
            linked = e.tickets
            added = []
            for ticket_id in wanted:
                before = linked
                linked = domain.link(linked, ticket_id, self.desk.ticket_url(ticket_id))
                if linked is not before:
                    added.append(ticket_id)
            events = [
                event(now, EventKind.TICKET, user, f"Ticket {t} linked", ticket=t, linked=True)
                for t in added
            ]
            return e.model_copy(update={"tickets": linked}), events

        esc, events = self.escalations.update(esc.id, change)
        if not events:
            return "That ticket is already linked." if len(wanted) == 1 else "Already linked."
        self.briefing.refresh(esc)
        self.read_later(esc.id, [int(e.data["ticket"]) for e in events])
        numbers = ", ".join(f"#{e.data['ticket']}" for e in events)
        return f"🎫 Linked {numbers}; reading it from {self.desk.name} for the brief."

    def unlink(self, channel_id: str, user: str, text: str) -> str:
        """`@vp ticket remove 4711 [4712 ...]`: off the escalation in one write; its comments
        are handed on and letters added to it no more."""
        esc = self.escalations.in_channel(channel_id)
        self.allow(esc, user, "unlink a support ticket")
        wanted = domain.parse_ticket_refs(text)
        now = self.clock()

        def change(e: Escalation) -> tuple[Escalation, list]:  # type: ignore[type-arg]
            linked = e.tickets
            removed = []
            for ticket_id in wanted:
                before = linked
                linked = domain.unlink(linked, ticket_id)
                if linked is not before:
                    removed.append(ticket_id)
            update: dict[str, object] = {"tickets": linked}
            org = e.org_tickets
            first = domain.organisation_of(linked)
            if org is not None and (first is None or first.organization_id != org.organization_id):
                update["org_tickets"] = None  # its organisation is no longer linked
            events = [
                event(now, EventKind.TICKET, user, f"Ticket {t} unlinked",
                      ticket=t, linked=False)
                for t in removed
            ]  # fmt: skip
            return e.model_copy(update=update), events

        esc, events = self.escalations.update(esc.id, change)
        if not events:
            listed = ", ".join(f"#{t.id}" for t in esc.tickets) or "none"
            return (
                f"{'That ticket is' if len(wanted) == 1 else 'Those tickets are'} not linked "
                f"to this escalation (linked: {listed})."
            )
        self.briefing.refresh(esc)
        numbers = ", ".join(f"#{e.data['ticket']}" for e in events)
        return f"🎫 Unlinked {numbers}: off the brief; its comments and letters no more."

    def opened(self, esc: Escalation) -> None:
        """A room just opened with tickets in its declaration: read them, off this path."""
        self.read_later(esc.id, [t.id for t in esc.tickets])

    def read_later(self, esc_id: str, ticket_ids: list[int]) -> None:
        self.executor.submit(self._guarded, esc_id, lambda: self.read_all(esc_id, ticket_ids))

    def _guarded(self, esc_id: str, work: Callable[[], object]) -> None:
        try:
            work()
        except Exception:
            log.exception("escalation %s: reading its tickets failed", esc_id)

    def read_all(
        self, esc_id: str, ticket_ids: Iterable[int], others: list[OrgTickets] | None = None
    ) -> Escalation | None:
        """Read the tickets, count the organisation's, and refresh the brief if what it
        shows changed."""
        before = self.escalations.get(esc_id)
        esc = before
        for ticket_id in ticket_ids:
            esc = self.read(esc_id, ticket_id) or esc
        if esc is not None:
            esc = self.count(esc, others) or esc
            if before is None or _shown(esc) != _shown(before):
                self.briefing.refresh(esc)
        return esc

    def read(self, esc_id: str, ticket_id: int) -> Escalation | None:
        """Read one linked ticket into the record; a problem told in the room once."""
        url = self.desk.ticket_url(ticket_id)
        now = self.clock()
        try:
            t = self.desk.ticket(ticket_id)
            read = LinkedTicket(
                id=ticket_id,
                url=t.url,
                subject=t.subject[:300],
                status=t.status,
                priority=t.priority,
                tags=t.tags[:20],
                requester=t.requester.name[:200] if t.requester else None,
                requester_id=t.requester.id if t.requester else None,
                organization=(t.organization or "")[:200] or None,
                organization_id=t.organization_id,
                created_at=t.created_at,
                read_at=now,
            )
        except TicketGone as e:
            gone = "merged into another ticket" if e.merged else "deleted"
            read = LinkedTicket(
                id=ticket_id, url=url, problem=f"{self.desk.name}: it was {gone}", gone=True
            )
        except DeskError as e:
            current = self.escalations.get(esc_id)
            known = (
                next((x for x in current.tickets if x.id == ticket_id), None) if current else None
            )
            if known is not None and known.read:
                # Read before: what it showed stands, and a passing fault is not news.
                log.warning("escalation %s: reading ticket %s: %s", esc_id, ticket_id, e.message)
                return current
            read = LinkedTicket(id=ticket_id, url=url, problem=e.message)
        # The account, matched by the ticket's organisation when the customer named is not
        # one customer_insights.yaml knows.
        account = None
        if (
            read.organization
            and not self.memory.customer_facts(self._current_customer(esc_id))
            and self.memory.customer_facts(read.organization)
        ):
            account = read.organization
        told: list[str] = []

        def change(e: Escalation) -> tuple[Escalation, list]:  # type: ignore[type-arg]
            before = next((x for x in e.tickets if x.id == ticket_id), None)
            if before is None:
                return e, []  # unlinked meanwhile
            told.clear()
            update: dict[str, object] = {"tickets": domain.replace(e.tickets, read)}
            events = []
            if read.problem and read.problem != before.problem:
                told.append(read.problem)
                events.append(
                    event(now, EventKind.TICKET, None, f"Ticket {ticket_id}: {read.problem}",
                          ticket=ticket_id, problem=read.problem)
                )  # fmt: skip
            if read.read and before.read_at is None:
                events.append(
                    event(now, EventKind.TICKET, None, f"Ticket {ticket_id} read",
                          ticket=ticket_id, organization=read.organization)
                )  # fmt: skip
            if account and e.account is None:
                update["account"] = account
            return e.model_copy(update=update), events

        try:
            esc, _ = self.escalations.update(esc_id, change)
        except KeyError:
            return None
        if told:
            self._tell(esc, f"⚠️ Ticket #{ticket_id}: {inert(told[0])}")
        return esc

    def _current_customer(self, esc_id: str) -> str:
        esc = self.escalations.get(esc_id)
        return esc.account_name if esc else ""

    # -- the organisation's tickets -------------------------------------------------------
    def count(self, esc: Escalation, others: list[OrgTickets] | None = None) -> Escalation | None:
        """Count the organisation's tickets since the impact began; a surge told once."""
        first = domain.organisation_of(esc.tickets)
        if first is None or first.organization_id is None:
            return None
        impact = esc.facts.impact
        since = domain.since_for_count(impact.began if impact else None, esc.declared_at)
        try:
            n = self.desk.count_since(first.organization_id, since)
        except DeskError as e:
            log.warning("escalation %s: counting tickets: %s", esc.id, e.message)
            return None
        counted = OrgTickets(
            organization_id=first.organization_id,
            organization=first.organization or "",
            since=since,
            count=n,
            link=self.desk.search_url(first.organization_id, since),
            checked_at=self.clock(),
        )
        surge = n >= self.config.zendesk.surge
        tell: list[bool] = []

        def change(e: Escalation) -> tuple[Escalation, list]:  # type: ignore[type-arg]
            tell.clear()
            update: dict[str, object] = {"org_tickets": counted}
            if surge and not e.surge_told:
                update["surge_told"] = True
                tell.append(True)
            return e.model_copy(update=update), []

        esc, _ = self.escalations.update(esc.id, change)
        if tell:
            wider = [
                o
                for o in domain.surge(others or [], self.config.zendesk.surge)
                if o.organization_id != counted.organization_id
            ]
            also = ""
            if wider:
                names = ", ".join(f"{inert(o.organization)} ({o.count})" for o in wider[:5])
                also = f" Also surging: {names}: this may be wider than one customer."
            self._tell(
                esc,
                f"📈 {mention(esc.ic)} {inert(counted.organization)} opened {n} tickets since "
                f"{slack_time(since)}.{also}",
            )
        return esc

    def refresh(self, open_escalations: list[Escalation]) -> int:
        """The timer's work: read every linked ticket again (status, priority and tags
        change), count every organisation's tickets again, and refresh the briefs whose
        tickets changed. How many escalations were looked at."""
        linked = [e for e in open_escalations if e.tickets and e.status is Status.INVESTIGATING]
        counts = [e.org_tickets for e in linked if e.org_tickets is not None]
        for esc in linked:
            self.read_all(esc.id, [t.id for t in esc.tickets if not t.gone], counts)
        return len(linked)

    # -- letters on the tickets ----------------------------------------------------------
    def letters_for(
        self, esc: Escalation, draft: str, version: int, text: str, signer: str
    ) -> list[TicketLetter]:
        """The approved letter (`text`, exactly as approved) for each ticket the escalation
        links and that still exists, signed by `signer` (a Slack user: their desk agent is
        found by the email of their Slack profile). Send hands each to `TicketLetters.send`.
        InvalidInput when the signer's email cannot be read."""
        email = self.gateway.user_email(signer)
        if not email:
            raise InvalidInput(
                "Your Slack profile shows no email, so your Zendesk agent cannot be found: "
                "the letter was not added to the ticket."
            )
        return [
            TicketLetter(
                escalation=esc.id,
                draft=draft,
                version=version,
                ticket_id=t.id,
                text=text,
                signer_email=email,
            )
            for t in esc.tickets
            if not t.gone
        ]

    # -- resolution -----------------------------------------------------------------------
    def resolved(self, esc: Escalation) -> None:
        """Set the linked tickets to the configured status, off this path."""
        status = self.config.zendesk.on_resolve
        if status and esc.tickets:
            self.executor.submit(self._guarded, esc.id, lambda: self._set_status(esc, status))

    def _set_status(self, esc: Escalation, status: str) -> None:
        for t in esc.tickets:
            if t.problem:
                continue
            try:
                # Setting a status is the same however often it is done: no record needed,
                # and a lost answer is simply sent again, once.
                try:
                    self.desk.set_status(t.id, status)
                except Unsure:
                    self.desk.set_status(t.id, status)
            except DeskError as e:
                self._tell(esc, f"⚠️ Ticket #{t.id} was not set to {status}: {inert(e.message)}")

    # -- the customer's words -------------------------------------------------------------
    def webhook(self, headers: dict[str, str], body: bytes) -> tuple[int, str]:
        """A request to the desk's webhook: (status, reason). The signature is checked before
        anything else; a signature already seen is a replay; the comment is then handled off
        the request's thread. `headers` have lower-case names."""
        secrets = (self.webhook_secret, self.webhook_previous_secret)
        try:
            signature = webhook.verify(secrets, headers, body, self.clock())
            comment = webhook.comment_of(body)
        except webhook.WebhookRefused as e:
            self._refused(e)
            return e.status, e.reason
        if not self.store.first_delivery(f"desk-webhook:{signature}", ttl=3600):
            return 200, "replay"
        if comment is None:
            return 200, "not a comment"
        if not self.store.first_delivery(
            f"desk-comment:{comment.ticket_id}:{comment.comment_id}", ttl=7 * 24 * 3600
        ):
            return 200, "replay"
        self.executor.submit(
            self._guarded,
            f"ticket {comment.ticket_id}",
            lambda: self.comment(comment, self.open_escalations()),
        )
        return 200, "accepted"

    def _refused(self, e: webhook.WebhookRefused) -> None:
        """A refused request logged by its reason only (never its body, never a secret); a
        refused signature at WARNING, at most once a minute (a secret changed in Zendesk
        and not here loses every reply until it is fixed)."""
        if e.reason != "bad signature":
            log.info("a desk webhook was refused: %s", e.reason)
            return
        now = self.clock()
        with self._refused_lock:
            last = self._refused_logged_at
            loud = last is None or (now - last).total_seconds() >= self.refused_log_seconds
            if loud:
                self._refused_logged_at = now
        if loud:
            log.warning(
                "a desk webhook was refused: its signature matches no secret set here "
                "(WARROOM_ZENDESK_WEBHOOK_SECRET, _PREVIOUS); customers' replies on tickets "
                "are lost until it does"
            )
        else:
            log.info("a desk webhook was refused: %s", e.reason)

    def open_escalations(self) -> list[Escalation]:
        return self.store.get_many(self.store.open_ids())

    def comment(self, comment: CommentSeen, open_escalations: list[Escalation]) -> str:
        """A comment the desk reported: handed on as the customer's reply when it is one, on
        a ticket an open escalation links. What became of it, for the log."""
        # A ticket may be linked by more than one open escalation (one customer, two
        # problems): each of their rooms hears the customer.
        linked = [e for e in open_escalations if any(t.id == comment.ticket_id for t in e.tickets)]
        requester = next(
            (t.requester_id for e in linked for t in e.tickets if t.id == comment.ticket_id),
            None,
        )
        if not domain.is_customer_reply(comment, bool(linked), set(), requester):
            return "ignored" if linked else "unlinked"
        for esc in linked:
            ticket = next(t for t in esc.tickets if t.id == comment.ticket_id)
            reply = CustomerReply(
                via=Via.ZENDESK,
                ref=str(comment.comment_id),
                author=comment.author_name or "the customer",
                organisation=ticket.organization or "",
                text=comment.body,
                at=self.clock(),
                escalation=esc.id,
            )
            self._hand_on(reply)
        return "reply"

    def _hand_on(self, reply: CustomerReply, attempt: int = 0) -> None:
        """Hand `reply` on; when that fails (Slack down), again later, a few times: the desk
        had its answer and sends the comment no more. Handing on twice shows nothing twice."""
        if self.on_reply is None:
            return
        try:  # one room failing keeps the reply from none of the others
            self.on_reply(reply)
        except Exception:
            if attempt >= len(self.reply_retry_seconds):
                log.exception("escalation %s: a reply on the ticket not shown", reply.escalation)
                return
            delay = self.reply_retry_seconds[attempt]
            log.warning(
                "escalation %s: a reply on the ticket not shown; tried again in %.0f s",
                reply.escalation,
                delay,
            )
            timer = threading.Timer(delay, self._again, (reply, attempt + 1))
            timer.daemon = True
            timer.start()

    def _again(self, reply: CustomerReply, attempt: int) -> None:
        try:
            self.executor.submit(
                self._guarded, str(reply.escalation), lambda: self._hand_on(reply, attempt)
            )
        except RuntimeError:  # shut down meanwhile: the reply is on the timeline already
            log.warning("escalation %s: a reply not shown before shutdown", reply.escalation)

    def _tell(self, esc: Escalation, text: str) -> None:
        try:
            self.gateway.post_text(esc.channel_id, text)
        except Exception as e:
            log.warning("escalation %s: could not tell the room: %s", esc.id, e)


def _shown(esc: Escalation) -> tuple[object, ...]:
    """What the brief shows of the tickets, without the times they were read or counted."""
    org = esc.org_tickets
    return (
        tuple(t.model_dump(exclude={"read_at"}) for t in esc.tickets),
        (org.organization_id, org.count, org.since) if org else None,
    )

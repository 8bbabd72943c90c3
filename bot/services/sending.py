"""Approved letters sent to the customer: by email through the outbox, and in the account's
Slack Connect channel; each once, whatever the clicks, retries or processes, with the text
that was approved; and the sending kept as the fact.

Send is for the IC and the VPs (`delivery: send_button`, the default); under
`delivery: approve_sends` the final approval sends. Each route of a letter is tried on its
own: the email goes through the outbox (`bot/delivery/outbox.py`: its bytes and Message-ID on
record before the SMTP transaction, so a crash mid-way resends the same message), the Slack
Connect post under a once-claim with the claim's key in the message's metadata (a post whose
answer was lost is found, not posted again). What became of each route is kept on the
escalation (`SentLetter`), told in the draft's thread, logged as a decision and filed in
Agent_Memory's outputs; a failure that may pass (a 4xx, a lost connection, Slack's own
trouble) is tried again on the scheduler with a bounded backoff, one that cannot (a refused
recipient) waits for a person to put it right and press Send again.

With a support desk set up, the escalation's linked tickets are one more route: the letter's
body as a public comment on each, by the signer's desk agent, through `TicketLetters` (a
claim, a record, and the letter's own tag on the ticket: a comment whose answer was lost is
found by its tag, not added again).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.delivery.mail import Letter, LetterError, build_message, split_subject, thread_subject
from bot.delivery.outbox import LetterKey, Outbox, OutboxError, OutboxRecord, Step, Transport
from bot.delivery.smtp import Outcome
from bot.desk.letters import Step as TicketStep
from bot.desk.letters import TicketDelivery, TicketLetter, TicketLetters
from bot.domain import authority, delivery, letters
from bot.domain.delivery import (
    DeliveryMode,
    LetterStatus,
    Outgoing,
    Route,
    RouteError,
    RouteKind,
    SentLetter,
)
from bot.domain.drafts import Draft, DraftKind
from bot.domain.errors import InvalidInput
from bot.domain.escalation import Escalation
from bot.domain.timeline import Event, EventKind, event
from bot.services.base import RoomService
from bot.slack import draft_view
from bot.slack.gateway import RoomGone, answer_lost, describe, may_pass
from bot.slack.text import inert
from bot.store import Store

log = logging.getLogger(__name__)

# Who may send a letter: the people who answer for it to the customer.
SENDERS = ("ic", "vp")


class Busy(Exception):
    """Another process is sending this letter right now: nothing was done here."""


@dataclass(frozen=True)
class MailSetup:
    """How email goes out: the outbox, the SMTP transport, the organisation's sending address
    (the letters' From, with the signer's name) and the address replies go to. Any of them
    missing: no email."""

    outbox: Outbox | None = None
    transport: Transport | None = None
    sender: str | None = None
    reply_to: str | None = None

    @property
    def missing(self) -> str:
        """What email still needs, in the settings' words ('' when nothing)."""
        if self.transport is None:
            return "WARROOM_SMTP_URL is not set"
        if not self.sender:
            return "WARROOM_MAIL_FROM is not set"
        if not self.reply_to:
            return "WARROOM_MAIL_REPLY_TO is not set"
        return ""


@dataclass
class Sending(RoomService):
    store: Store
    mail: MailSetup
    # Shows a draft as it now stands (the draft desk's own rendering).
    show: Callable[[Draft, Escalation], object] = lambda _d, _e: None
    # How long one Slack Connect post may take before another process may try it.
    post_seconds: int = 120
    # With a support desk set up (the runtime sets both): the letters for the escalation's
    # linked tickets (`TicketLinks.letters_for`) and the route that adds one to its ticket.
    ticket_letters_for: Callable[[Escalation, str, int, str, str], list[TicketLetter]] | None = None
    ticket_letters: TicketLetters | None = None

    def route(self, esc: Escalation) -> Route:
        """The account's route, with the escalation's linked tickets (not deleted or merged)
        when a support desk is set up."""
        route = super().route(esc)
        if self.ticket_letters is None or self.ticket_letters_for is None:
            return route
        return route.with_tickets(tuple(t.id for t in esc.tickets if not t.gone))

    # -- what the draft shows ----------------------------------------------------------------
    def outgoing(self, draft: Draft, esc: Escalation) -> Outgoing | None:
        """Where the letter goes and what became of it; None when the account has no route."""
        if draft.kind is not DraftKind.CUSTOMER_UPDATE or not draft.approved_by:
            return None  # only an approved letter is sent
        sent = tuple(s for s in esc.letters if s.draft == draft.id)
        try:
            route = self.route(esc)
        except RouteError as e:
            return Outgoing(letters=sent, problem=f"customer_insights.yaml: {e}")
        if not route.exists:
            return Outgoing(letters=sent) if sent else None
        problem = ""
        if RouteKind.EMAIL in route.kinds and route.sends and self.mail.missing:
            problem = f"the account's letters go by email, and {self.mail.missing}"
        return Outgoing(
            route=route, subject=self.subject(draft, esc), letters=sent, problem=problem
        )

    def subject(self, draft: Draft, esc: Escalation) -> str:
        """The subject the letter goes out with: its own (or the default) for the first letter
        of the escalation, `Re: ` and the first letter's after it (one thread)."""
        own = split_subject(self._text(draft, esc))[0]
        outbox = self.mail.outbox
        if outbox is None:
            return own
        first = None
        for record in outbox.letters(esc.id):
            if record.key.draft == draft.id:
                return record.subject
            if first is None and record.maybe_delivered:
                first = record.subject
        return thread_subject(own, 2, first) if first else own

    # -- sending ----------------------------------------------------------------------------
    def send(self, draft_id: str, seen: int, user: str, *, shown: str = "") -> None:
        """`user` pressed Send on the approved letter at version `seen`, on a button that
        showed the destinations with fingerprint `shown` (`Route.fingerprint`)."""
        draft = self._draft(draft_id)
        esc = self._escalation(draft)
        self.allow(esc, user, "send a letter to the customer", roles=SENDERS)
        if draft.kind is not DraftKind.CUSTOMER_UPDATE or not draft.approved_by:
            raise InvalidInput("Only an approved customer update can be sent.")
        if seen != draft.version:
            raise InvalidInput("This letter changed since you saw it; read it again first.")
        try:
            route = self._sendable(esc)
        except InvalidInput as refused:
            if self._left_to_people(draft, esc):
                raise InvalidInput(
                    f"{refused} It is on record as the customer update, as an approved letter "
                    "is when people send it."
                ) from None
            raise
        open_routes = [k for k in route.kinds if not _sent(esc, draft.id, k)]
        if not open_routes:
            raise InvalidInput("This letter went out already; it is sent once.")
        if shown != route.fingerprint:
            # The account's entry or the linked tickets changed after the button was shown:
            # send nowhere the person did not see; show them where it goes now.
            self._refresh(draft, esc)
            where = draft_view.where_to(route, tuple(open_routes))
            raise InvalidInput(
                "Where this letter goes has changed since you saw it: it now goes to "
                f"{where}. Nothing was sent; here is the letter again with where it goes "
                "now, in its message: press *Send* there if that is right."
            )
        self._deliver(draft, esc, route, user, open_routes)

    def after_approval(self, draft: Draft, esc: Escalation) -> None:
        """The final approval sends the letter under `delivery: approve_sends`, when the one
        who approved it may send it (the IC or a VP); otherwise the letter shows Send."""
        if not draft.approved_by or not draft.delivery_fact:
            return
        if not authority.roles_of(esc, draft.approved_by) & set(SENDERS):
            return  # a declarer's approval: the IC or a VP sends it
        try:
            route = self.route(esc)
        except RouteError:
            return
        if route.mode is not DeliveryMode.APPROVE_SENDS or not route.exists:
            return
        if self.mail.missing and RouteKind.EMAIL in route.kinds:
            return  # the draft says why nothing can be sent
        self._deliver(draft, esc, route, draft.approved_by, list(route.kinds))

    def retry(self, esc_id: str, letter_key: str) -> None:
        """The scheduler tries a letter that failed in a way that may pass again."""
        draft_id, _, kind_name = letter_key.partition(":")
        esc = self.escalations.get(esc_id)
        draft = self.store.get_draft(draft_id)
        try:
            kind = RouteKind(kind_name)
        except ValueError:
            return
        sent = letters.letter(esc, draft_id, kind) if esc else None
        if esc is None or sent is None or sent.status is LetterStatus.SENT or not sent.retry_at:
            return
        stop = ""
        try:
            route = self.route(esc)
            if not route.sends:
                stop = f"sending is now {route.mode.value}"
            elif kind not in route.kinds:
                stop = "the account no longer has this route"
            elif route.where(kind) != (*sent.to, *sent.cc):
                # Send was pressed for where it went then: nowhere else without a person.
                where = draft_view.where_to(route, (kind,))
                stop = (
                    f"where it goes has changed since Send was pressed (now {where}); its "
                    "message shows where it goes now"
                )
        except RouteError as e:
            route, stop = Route(), f"customer_insights.yaml: {e}"
        if draft is None:
            stop = "the draft is no longer kept"
        if stop and draft is not None:
            self._left_to_people(draft, esc)
        if stop:
            esc = self._record(
                esc,
                draft,
                sent.model_copy(update={"retry_at": None, "reason": f"not tried again: {stop}"}),
            )
            if draft is not None:
                self._refresh(draft, esc)
            return
        assert draft is not None
        self._deliver(draft, esc, route, sent.by, [kind], scheduled=True)

    def _left_to_people(self, draft: Draft, esc: Escalation) -> bool:
        """A letter approved for warroom to send whose account's letters are now sent by
        people (`delivery: off` or `approve_only` since its approval), none of its routes
        sent: its approval stands as the customer update, as it would have had the setting
        been in force at the approval (recorded once, now). Whether it is on record so."""
        try:
            if self.route(esc).sends:
                return False
        except RouteError:
            return False
        if not letters.first_sent_of(esc, draft.id):
            return False
        if not draft.delivery_fact:
            return True  # on record since its approval, or since an earlier click
        flipped = [False]

        def change(current: Draft) -> Draft:
            flipped[0] = current.delivery_fact
            return current.model_copy(update={"delivery_fact": False})

        self.store.update_draft(draft.id, change)
        if not flipped[0]:
            return True  # another click recorded it
        now, by = self.clock(), draft.approved_by or ""
        self.escalations.update(esc.id, lambda current: self.customer_told(current, draft, by, now))
        return True

    def _sendable(self, esc: Escalation) -> Route:
        """The account's route, if Send may use it; InvalidInput saying why not."""
        try:
            route = self.route(esc)
        except RouteError as e:
            raise InvalidInput(
                f"This account's entry in customer_insights.yaml cannot be used: {e}"
            ) from None
        if not route.exists:
            ticket = self.ticket_letters is not None
            raise InvalidInput(
                "This account has no `email` or `slack_connect` in customer_insights.yaml"
                + (" and the escalation no linked ticket" if ticket else "")
                + ", so the letter has nowhere to go; nothing was sent. Add one to the "
                "account's entry"
                + (" or link the customer's ticket (`@vp ticket <number>`)" if ticket else "")
                + ", then press *Send* again; or send the letter through your usual channel."
            )
        if route.mode is DeliveryMode.OFF:
            where = "warroom.yaml" if route.mode_from == "warroom.yaml" else "the account's entry"
            raise InvalidInput(
                f"Sending is switched off (`delivery: off` in {where}); nothing was sent. "
                "Send it through your usual channel."
            )
        if route.mode is DeliveryMode.APPROVE_ONLY:
            raise InvalidInput(
                "This account's letters are sent by people (`delivery: approve_only`); nothing "
                "was sent."
            )
        if RouteKind.EMAIL in route.kinds and self.mail.missing:
            raise InvalidInput(f"The letter cannot be emailed: {self.mail.missing}.")
        return route

    def _deliver(
        self,
        draft: Draft,
        esc: Escalation,
        route: Route,
        by: str | None,
        kinds: list[RouteKind],
        *,
        scheduled: bool = False,
    ) -> None:
        busy = False
        for kind in kinds:
            if _sent(esc, draft.id, kind):
                continue
            # A person's Send tries a letter waiting for its next scheduled try at once.
            previous = letters.letter(esc, draft.id, kind)
            try:
                attempt = (
                    self._email(draft, esc, route, by, previous)
                    if kind is RouteKind.EMAIL
                    else self._ticket(draft, esc, route, by, previous)
                    if kind is RouteKind.TICKET
                    else self._post(draft, esc, route, by, previous)
                )
            except Busy:
                busy = True
                continue
            try:
                esc = self._record(esc, draft, attempt)
            except Exception as e:
                if attempt.status is not LetterStatus.SENT:
                    raise
                # The customer has it: say so, not that nothing happened. The record of it
                # going out brings the scheduler back to record it.
                where = draft_view.destination(attempt.route, attempt.to, attempt.cc)
                log.error("escalation %s: letter %s sent, not recorded: %s", esc.id, draft.id, e)
                raise InvalidInput(
                    f"The letter went out ({where}), but recording it failed ({describe(e)}). "
                    "Do not send it again by hand: it is recorded and told in its thread "
                    "within minutes."
                ) from None
        self._refresh(draft, esc)
        if busy and scheduled:
            raise Busy(f"{esc.id}: letter {draft.id} is being sent by another process")
        if busy:
            raise InvalidInput(
                "This letter is being sent right now (Send was pressed a moment ago); its "
                "thread will say when it went out. Nothing more was sent."
            )

    # -- email --------------------------------------------------------------------------------
    def _email(
        self,
        draft: Draft,
        esc: Escalation,
        route: Route,
        by: str | None,
        previous: SentLetter | None,
    ) -> SentLetter:
        outbox, transport = self.mail.outbox, self.mail.transport
        assert outbox is not None and transport is not None
        assert self.mail.sender and self.mail.reply_to and route.email
        now = self.clock()
        key = LetterKey(esc.id, draft.id, draft.version)
        base = self._attempt(draft, RouteKind.EMAIL, (route.email,), by, now, previous)
        base = base.model_copy(update={"cc": route.cc, "subject": self.subject(draft, esc)})
        try:
            message = build_message(
                Letter(
                    text=self._text(draft, esc),
                    escalation=esc.id,
                    number=outbox.number(key),
                    signer=self._signer(draft),
                    sender=self.mail.sender,
                    reply_to=self.mail.reply_to,
                    to=route.email,
                    cc=route.cc,
                    first_subject=outbox.first_subject(esc.id),
                ),
                now,
            )
            done = outbox.deliver(
                key,
                message,
                transport,
                before=lambda record: self._under_way(esc, base, record, now),
            )
        except (LetterError, OutboxError) as e:
            return base.model_copy(
                update={"status": LetterStatus.FAILED, "result": "failed", "reason": str(e)}
            )
        if done.step is Step.BUSY:
            raise Busy(str(key))
        record = done.record
        refused = "; ".join(f"{a} ({why})" for a, why in record.refused)
        update: dict[str, object] = {
            "message_id": record.message_id,
            "subject": record.subject,
            "result": record.outcome.value if record.outcome else "",
        }
        if done.step in (Step.SENT, Step.ALREADY_SENT):
            update |= {
                "status": LetterStatus.SENT,
                "sent_at": record.sent_at or now,
                "result": Outcome.DELIVERED.value,
                "reason": f"the mail server refused {refused}" if refused else "",
            }
            return base.model_copy(update=update)
        reason = record.reason or "the mail server did not take it"
        if record.outcome is Outcome.REFUSED:
            reason = (
                f"the mail server refused {refused or 'every recipient'}: check the address "
                "in customer_insights.yaml"
            )
        update |= {"status": LetterStatus.FAILED, "reason": reason}
        if record.retry:
            update["retry_at"] = self._next_try(base.attempts, now)
        return base.model_copy(update=update)

    def _under_way(
        self, esc: Escalation, base: SentLetter, record: OutboxRecord, now: datetime
    ) -> None:
        """On record before the SMTP transaction: the letter is going out. Its result replaces
        this; a process that dies before then leaves it, and the next try (on the scheduler,
        once the dead process's hold on the letter has lapsed) sends the same message."""
        hold = self.mail.outbox.lease_seconds if self.mail.outbox else 0
        pending = base.model_copy(
            update={
                "message_id": record.message_id,
                "subject": record.subject,
                "reason": (
                    "being handed to the mail server; if that was cut short, it may have "
                    "reached them, and the same message goes again"
                ),
            }
        )
        self._going_out(esc, pending, now, hold)

    def _going_out(self, esc: Escalation, pending: SentLetter, now: datetime, hold: float) -> None:
        """`pending` kept as the letter's record on its route while it goes out, to be tried
        again a minute after `hold` (how long the sending process holds the letter) unless
        its result replaces it first."""
        pending = pending.model_copy(
            update={
                "status": LetterStatus.FAILED,
                "result": Outcome.UNKNOWN.value,
                "retry_at": now + timedelta(seconds=hold, minutes=1),
            }
        )

        def change(current: Escalation) -> tuple[Escalation, list[Event]]:
            new, changed = letters.note_attempt(current, pending)
            if not changed:
                return current, []
            to = (*pending.to, *pending.cc)
            text = f"Letter being sent {pending.route.label} to {', '.join(to)}"
            data: dict[str, object] = {"draft": pending.draft, "route": pending.route.value}
            data |= {"to": list(pending.to), "cc": list(pending.cc)}
            if pending.message_id:
                data["message_id"] = pending.message_id
            return new, [event(now, EventKind.LETTER_SENDING, pending.by, text, **data)]

        self.escalations.update(esc.id, change)

    # -- Slack Connect ------------------------------------------------------------------------
    def _post(
        self,
        draft: Draft,
        esc: Escalation,
        route: Route,
        by: str | None,
        previous: SentLetter | None,
    ) -> SentLetter:
        channel = route.slack_connect
        assert channel
        now = self.clock()
        base = self._attempt(draft, RouteKind.SLACK_CONNECT, (channel,), by, now, previous)
        base = base.model_copy(update={"channel": channel, "subject": self.subject(draft, esc)})
        attempts = base.attempts
        name = f"letter:{esc.id}:{draft.id}:v{draft.version}:slack"
        claim = self.store.begin_once(name, ttl=self.post_seconds)
        if isinstance(claim, float):
            raise Busy(name)
        try:
            found = None
            if claim in ("check", "done"):
                found = self.gateway.find_posted(channel, name)
            if found is None and claim == "done":
                # Posted, and the post is no longer among the channel's newest messages.
                return base.model_copy(
                    update={"status": LetterStatus.SENT, "sent_at": now, "result": "posted"}
                )
            if found is None:
                reason = (
                    "being posted; if that was cut short, the channel is looked at before it "
                    "is posted again"
                )
                pending = base.model_copy(update={"reason": reason})
                self._going_out(esc, pending, now, self.post_seconds)
            ts = found or self.gateway.post_text(channel, self._slack_text(draft, esc), key=name)
        except RoomGone as e:
            self.store.abandon_once(name)
            return base.model_copy(
                update={
                    "status": LetterStatus.FAILED,
                    "result": e.code,
                    "reason": (
                        f"Slack says {e.code}: invite the app to the shared channel (or check "
                        "the channel id in customer_insights.yaml)"
                    ),
                }
            )
        except Exception as e:
            self.store.abandon_once(name, unsure=answer_lost(e))
            retry = may_pass(e)
            log.warning("escalation %s: letter %s not posted: %s", esc.id, draft.id, describe(e))
            return base.model_copy(
                update={
                    "status": LetterStatus.FAILED,
                    "result": "error",
                    "reason": f"Slack did not take it ({describe(e)})",
                    "retry_at": self._next_try(attempts, now) if retry else None,
                }
            )
        self.store.finish_once(name)
        return base.model_copy(
            update={"status": LetterStatus.SENT, "sent_at": now, "result": "posted", "ts": ts}
        )

    def _slack_text(self, draft: Draft, esc: Escalation) -> str:
        """The letter as posted in the shared channel: its subject on a line of its own, then
        its text, every character of it inert (no mention, link or broadcast reaches the
        customer). The subject is not wrapped in markup: a `*`, `_`, `~` or backtick in it
        would end the formatting part-way and show the rest as something else."""
        subject, body = split_subject(draft.text)
        return f"{inert(subject)}\n\n{inert(body)}" if subject else inert(body)

    # -- the linked tickets -------------------------------------------------------------------
    def _ticket(
        self,
        draft: Draft,
        esc: Escalation,
        route: Route,
        by: str | None,
        previous: SentLetter | None,
    ) -> SentLetter:
        """The letter as a public comment on each linked ticket, by the signer's desk agent;
        `TicketLetters.send` adds it once per ticket (a claim, a record and the letter's tag
        on the ticket), so trying every ticket again adds only what is missing."""
        assert self.ticket_letters is not None and self.ticket_letters_for is not None
        now = self.clock()
        base = self._attempt(
            draft, RouteKind.TICKET, route.where(RouteKind.TICKET), by, now, previous
        )
        base = base.model_copy(update={"subject": self.subject(draft, esc)})
        signer = draft.approved_by or by or ""
        try:
            # The body as approved; the subject is the email's, the ticket has its own.
            wanted = self.ticket_letters_for(
                esc, draft.id, draft.version, split_subject(draft.text)[1], signer
            )
        except InvalidInput:
            return base.model_copy(
                update={
                    "result": "no agent",
                    "reason": (
                        "the approver's Slack profile shows no email, so their desk agent "
                        "cannot be found: add the email their agent has to their Slack profile"
                    ),
                }
            )
        # On record before each update: a process that dies mid-way leaves it, and the
        # scheduler's next try (once the dead process's claim has lapsed) looks for the
        # letter's tag on the ticket before adding anything.
        pending = base.model_copy(
            update={
                "reason": (
                    "being added to the ticket; if that was cut short, the ticket is checked "
                    "for it before it is added again"
                )
            }
        )
        hold = self.ticket_letters.lease_ms / 1000

        def going_out() -> None:
            self._going_out(esc, pending, now, hold)

        failed: list[tuple[int, TicketDelivery]] = []
        busy = False
        for letter in wanted:
            done = self.ticket_letters.send(letter, before=going_out)
            if done.step is TicketStep.BUSY:
                busy = True
            elif done.step is TicketStep.FAILED:
                failed.append((letter.ticket_id, done))
        if failed:
            retry = all(d.retry for _, d in failed)
            reason = "; ".join(f"ticket #{t}: {d.reason.rstrip('.')}" for t, d in failed)
            if any(d.gone for _, d in failed):
                reason += (
                    "; link the ticket the customer now writes on with `@vp ticket` (or add "
                    "the letter there by hand)"
                )
            return base.model_copy(
                update={
                    "result": "failed",
                    "reason": reason,
                    "retry_at": self._next_try(base.attempts, now) if retry else None,
                }
            )
        if busy:
            raise Busy(f"letter:{esc.id}:{draft.id}:v{draft.version}:ticket")
        return base.model_copy(
            update={"status": LetterStatus.SENT, "sent_at": now, "result": "added"}
        )

    # -- the record ----------------------------------------------------------------------------
    def _record(self, esc: Escalation, draft: Draft | None, attempt: SentLetter) -> Escalation:
        """Keep the attempt on the escalation; the first route that reaches the customer
        makes the letter the customer update (for a letter approved to be sent). Told in the
        draft's thread and logged once, by whoever changed the record."""
        now = self.clock()
        actor = attempt.by or (draft.approved_by if draft else None) or ""

        def change(current: Escalation) -> tuple[Escalation, list[Event]]:
            first = letters.first_sent_of(current, attempt.draft)
            new, changed = letters.note_attempt(current, attempt)
            if not changed:
                return current, []
            events = [_event(attempt, now)]
            if attempt.status is LetterStatus.SENT and first and draft and draft.delivery_fact:
                new, told = self.customer_told(new, draft, actor, attempt.sent_at or now)
                events = told + events
            return new, events

        new, events = self.escalations.update(esc.id, change)
        if not events:
            return new
        kept = letters.letter(new, attempt.draft, attempt.route) or attempt
        self._tell(new, kept)
        self._log(new, kept, draft)
        return new

    def _tell(self, esc: Escalation, sent: SentLetter) -> None:
        """Say in the draft's thread what became of the letter on this route."""
        if sent.status is LetterStatus.FAILED and sent.retry_at and sent.attempts > 1:
            return  # said at the first failure; the draft's note shows the next try
        where = draft_view.destination(sent.route, sent.to, sent.cc)
        if sent.status is LetterStatus.SENT:
            text = f"📨 Sent: {where}, subject “{inert(sent.subject)}”."
            if sent.reason:  # some of its recipients were refused
                text += f" ⚠️ But {inert(sent.reason)}: check those addresses."
        elif sent.retry_at:
            text = (
                f"⚠️ Not sent yet ({where}): {inert(sent.reason)}. I will try again with "
                "growing pauses; press *Send* to try now."
            )
        else:
            text = (
                f"⚠️ Not sent ({where}): {inert(sent.reason)}. Put it right, then press *Send* "
                "to try again (nothing else went out)."
            )
        key = f"sent:{sent.key}:{sent.status}:{sent.attempts}"
        try:
            self.gateway.post_text(esc.channel_id, text, thread_ts=sent.thread_ts, key=key)
        except Exception as e:
            log.warning("escalation %s: letter %s not told: %s", esc.id, sent.key, describe(e))

    def _log(self, esc: Escalation, sent: SentLetter, draft: Draft | None) -> None:
        """The decision log and Agent_Memory's outputs: when, to whom, how, and the result."""
        record = {
            "draft": sent.draft,
            "route": sent.route.value,
            "to": list(sent.to),
            "cc": list(sent.cc),
            "subject": sent.subject,
            "result": sent.result,
            "reason": sent.reason,
            "attempts": sent.attempts,
            **({"message_id": sent.message_id} if sent.message_id else {}),
            **({"channel": sent.channel, "ts": sent.ts} if sent.channel else {}),
        }
        at = sent.sent_at or self.clock()
        if sent.status is LetterStatus.SENT:
            self.memory.log_decision(esc.id, "customer_update_sent", sent.by, at, **record)
            try:
                self.memory.write_output(
                    esc.id,
                    "customer-update-sent",
                    {
                        "escalation": esc.id,
                        "customer": esc.customer,
                        "sent_at": at.isoformat(),
                        "sent_by": sent.by,
                        "text": draft.text if draft else "",
                        **record,
                    },
                )
            except Exception:
                log.exception("escalation %s: letter %s not filed", esc.id, sent.key)
        else:
            self.memory.log_decision(esc.id, "customer_update_not_sent", sent.by, at, **record)

    def _refresh(self, draft: Draft, esc: Escalation) -> None:
        current = self.store.get_draft(draft.id) or draft
        self.gateway.together(
            {
                "draft": lambda: self.show(current, esc),
                "brief": lambda: self.briefing.refresh(esc),
            }
        )

    # -- helpers -----------------------------------------------------------------------------
    def _attempt(
        self,
        draft: Draft,
        kind: RouteKind,
        to: tuple[str, ...],
        by: str | None,
        now: datetime,
        previous: SentLetter | None,
    ) -> SentLetter:
        """This attempt's record, failed until it is known to have passed."""
        return SentLetter(
            attempts=(previous.attempts + 1) if previous else 1,
            draft=draft.id,
            version=draft.version,
            route=kind,
            thread_ts=draft.thread_ts or draft.ts,
            to=to,
            status=LetterStatus.FAILED,
            by=by,
            first_attempt_at=now,
        )

    def _next_try(self, attempts: int, now: datetime) -> datetime | None:
        wait = delivery.retry_after(attempts, self.escalations.clock_scale)
        return now + wait if wait is not None else None

    def _text(self, draft: Draft, esc: Escalation) -> str:
        """The approved text, with the default subject line when it names none."""
        if delivery.has_subject(draft.text):
            return draft.text
        return f"Subject: {delivery.default_subject(esc.customer)}\n\n{draft.text}"

    def _signer(self, draft: Draft) -> str:
        """The name the letter is signed with (its sign-off's last line), else the
        approver's name in Slack."""
        named = delivery.signed_by(split_subject(draft.text)[1])
        if named:
            return named
        return (self.gateway.user_name(draft.approved_by) if draft.approved_by else None) or ""

    def _draft(self, draft_id: str) -> Draft:
        draft = self.store.get_draft(draft_id)
        if draft is None:
            raise InvalidInput("This letter is no longer available.")
        return draft

    def _escalation(self, draft: Draft) -> Escalation:
        esc = self.escalations.get(draft.escalation)
        if esc is None:
            raise InvalidInput("This letter's escalation no longer exists.")
        return esc


def _sent(esc: Escalation, draft_id: str, kind: RouteKind) -> bool:
    sent = letters.letter(esc, draft_id, kind)
    return sent is not None and sent.status is LetterStatus.SENT


def _event(sent: SentLetter, now: datetime) -> Event:
    data: dict[str, object] = {
        "draft": sent.draft,
        "route": sent.route.value,
        "to": list(sent.to),
        "cc": list(sent.cc),
        "subject": sent.subject,
        "result": sent.result,
    }
    if sent.message_id:
        data["message_id"] = sent.message_id
    if sent.channel:
        data |= {"channel": sent.channel, "ts": sent.ts}
    if sent.status is LetterStatus.SENT:
        text = f"Letter sent {sent.route.label} to {', '.join((*sent.to, *sent.cc))}"
        return event(sent.sent_at or now, EventKind.LETTER_SENT, sent.by, text, **data)
    data |= {
        "reason": sent.reason,
        "attempts": sent.attempts,
        "retry_at": sent.retry_at.isoformat() if sent.retry_at else None,
    }
    text = f"Letter not sent {sent.route.label}: {sent.reason}"
    return event(now, EventKind.LETTER_NOT_SENT, sent.by, text, **data)

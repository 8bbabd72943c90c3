"""The VP agent in the war room: drafts streamed into Slack, and what people do with them.

Nothing a draft says reaches a customer until a person approves it. For an account whose
letters warroom sends (`bot/services/sending.py`), the sending is the customer update; for
the others, the approval is, and people send what they approved. An approval covers exactly
the text its approver saw: every change of the text bumps the draft's version, the buttons
carry the version they show, and each change is decided atomically on the stored draft
(`bot/domain/drafts.py`), so an Approve racing a Regenerate either approves the text shown or
is refused.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from agents.checks import find_placeholders
from agents.grounding import Grounding
from agents.review import lessons, parse_review
from agents.vp import OnText, Reply, VPAgent, check_draft
from bot.domain import authority, drafts
from bot.domain.delivery import Outgoing, Route, RouteError
from bot.domain.drafts import Draft, DraftKind
from bot.domain.errors import InvalidInput, NotAllowed, Unavailable
from bot.domain.escalation import Escalation
from bot.domain.timeline import Event, EventKind, event
from bot.metrics import Metrics
from bot.services.base import RoomService
from bot.services.grounds import Grounds
from bot.services.lane import Interrupted, ModelLane, Ticket
from bot.slack import draft_view
from bot.slack.text import group_mention, inert, mention
from bot.store import Store

log = logging.getLogger(__name__)

Ask = Callable[[Grounding, OnText], Reply]


@dataclass
class DraftDesk(RoomService):
    store: Store
    agent: VPAgent
    grounds: Grounds
    # Every model call runs on the model's lane, never on the threads rooms and clicks use.
    lane: ModelLane
    # Slack allows about one chat.update per second per channel: the stream is shown at that
    # pace.
    stream_interval: float = 1.0
    metrics: Metrics | None = None
    # Where an approved letter goes and what became of it (shown on the draft), and what an
    # approval that completes a draft does next (send it, under `approve_sends`): set by the
    # runtime to the sending service's.
    outgoing: Callable[[Draft, Escalation], Outgoing | None] = lambda _d, _e: None
    on_approved: Callable[[Draft, Escalation], object] = lambda _d, _e: None
    # Where an account's letters go, as the sending service sees it (with the escalation's
    # linked tickets when a desk is set up); None: the account's entry alone.
    route_for: Callable[[Escalation], Route] | None = None

    # -- customer updates ------------------------------------------------------------------
    def draft_update(self, channel_id: str, user: str, thread_ts: str | None = None) -> None:
        """Draft a customer update on the model's lane (Busy, nothing posted, when it is
        full or `user` asked too often)."""
        esc = self.escalations.in_channel(channel_id)
        self.allow(esc, user, "ask for a customer update")
        ticket = self.lane.reserve(user)
        # After the resolution, the update the agent drafts is the resolution notice.
        draft = self._new(esc, DraftKind.CUSTOMER_UPDATE, user, thread_ts)
        ticket.run(lambda late: self._produce(draft, esc, self.agent.customer_update, late=late))

    def regenerate(self, draft_id: str, seen: int, user: str) -> None:
        """Draft the update again, in place; the text it replaces can no longer be approved."""
        draft = self._draft(draft_id)
        esc = self._escalation(draft)
        self.allow(esc, user, "redraft the update")
        ticket = self.lane.reserve(user)
        with _released_on_error(ticket):
            draft = self._change(draft_id, lambda d: drafts.redraft(d, seen, user))
        ticket.run(lambda late: self._produce(draft, esc, self.agent.customer_update, late=late))

    def open_editor(self, draft_id: str, seen: int, user: str, trigger_id: str) -> None:
        draft = self._draft(draft_id)
        self.allow(self._escalation(draft), user, "edit the update")
        drafts.may_edit(draft, seen)
        self.gateway.open_view(trigger_id, draft_view.edit_draft_form(draft))

    def save_edit(self, draft_id: str, seen: int, user: str, text: str) -> Draft:
        draft = self._draft(draft_id)
        esc = self._escalation(draft)
        self.allow(esc, user, "edit the update")
        # A person's text: checked again as the agent's was, and no longer the model's claims.
        checked = {**self._checks(draft.kind, text.strip(), esc), "unsupported": ()}
        draft = self._change(
            draft_id,
            lambda d: drafts.edit(d, seen, user, text).model_copy(update=checked),
        )
        return self._show(draft, esc)

    def approve(self, draft_id: str, seen: int, user: str) -> Draft:
        """Approve the version `seen`, once per person, by someone allowed to: the IC, a VP or
        the declarer, and, for criteria that ask for it (`approvals`), one of that criterion's
        approvers too. Once no approval is missing it is recorded everywhere it counts."""
        draft = self._draft(draft_id)
        esc = self._escalation(draft)
        roles = self._approver_roles(esc, draft, user)
        now = self.clock()
        try:
            # warroom sends this account's letters: the sending will be the customer update.
            sends = (self.route_for or self.route)(esc).sends
        except RouteError:
            sends = False  # the account's entry is unusable: nothing can be sent, as before

        def record(
            draft: Draft, esc: Escalation, n: int
        ) -> tuple[Draft, Escalation, list[Event], tuple[str, dict[str, Any]], dict[str, Any]]:
            approver = draft.approved_by or user  # the IC, VP or declarer who approved it
            if sends:
                new = esc
                events = [
                    event(now, EventKind.LETTER_APPROVED, approver, draft.text, draft=draft.id)
                ]
            else:
                # What the letter told the customer, and the time it promised: the update
                # clock.
                new, events = self.customer_told(esc, draft, approver, now)
            kind = "customer-update"
            path = self.memory.output_path(esc.id, kind, n)
            output = str(path.relative_to(self.memory.root))
            filed = {
                "escalation": esc.id,
                "customer": esc.customer,
                "text": draft.text,
                "approved_by": approver,
                "approved_at": now.isoformat(),
                "approvals": [{"by": a.by, "as": a.role} for a in draft.approvals],
                "drafted_offline": draft.offline,
                "edited_by": draft.edited_by,
                "findings": list(draft.findings),
            }
            decision = {
                "at": now.isoformat(),
                "decision": "customer_update_approved",
                "by": approver,
                "draft": draft.id,
                "file": output,
                "approvals": [a.by for a in draft.approvals],
            }
            draft = draft.model_copy(update={"output_file": output, "delivery_fact": sends})
            return draft, new, events, (kind, filed), decision

        # The approval, the update on the timeline, the step, the update clock, the output
        # and the decision: one unit, all or nothing (a failure leaves the buttons for another
        # try, with nothing half-recorded; a lost answer is read back, never recorded twice).
        try:
            done = self.escalations.approve_draft(
                draft_id, lambda d: drafts.approve(d, seen, user, now, roles), record
            )
        except KeyError:
            raise InvalidInput("This draft is no longer available; ask for a new one.") from None
        draft = done.draft
        if done.escalation is None or done.output is None or done.output_number is None:
            return self._show(draft, esc)  # who approved, and whose approval it still needs
        esc = done.escalation
        kind, filed = done.output
        self.memory.mirror_filed(esc.id, kind, done.output_number, filed)
        shown = self.gateway.together(
            {"draft": lambda: self._show(draft, esc), "brief": lambda: self.briefing.refresh(esc)}
        )
        draft = shown["draft"] if isinstance(shown["draft"], Draft) else draft
        self.on_approved(draft, esc)
        return draft

    def show(self, draft: Draft, esc: Escalation) -> Draft:
        """Show the draft as it now stands (after a letter was sent, or not)."""
        return self._show(draft, esc)

    def _approver_roles(self, esc: Escalation, draft: Draft, user: str) -> list[str]:
        """What `user` may approve `draft` as; NotAllowed (nothing changed) when nothing."""
        roles: list[str] = []
        refusal: NotAllowed | None = None
        try:
            self.allow(esc, user, "approve a customer update", decisive=True)
            roles.append(drafts.DECISIVE)
        except NotAllowed as e:
            refusal = e
        roles += [c for c in draft.needs if user in self._approvers(c)]
        if not roles and refusal is not None:
            raise refusal
        return roles

    def _approvers(self, criterion: str) -> set[str]:
        """The people who give `criterion`'s own approval (user groups expanded)."""
        members = self.config.approvals.get(criterion, ())
        groups = [m for m in members if m.startswith("S")]
        people = {m for m in members if not m.startswith("S")}
        expanded, _failed = self.gateway.usergroup_members(groups) if groups else ([], {})
        return people | set(expanded)

    def _waiting(self, draft: Draft) -> str:
        """Whose approval the draft still needs, as the approver sees it."""
        parts = []
        for role in draft.missing():
            if role == drafts.DECISIVE:
                parts.append(authority.who(self.config.authorized_roles))
                continue
            try:
                title = self.protocol.criterion(role).title
            except KeyError:
                title = role
            people = " ".join(
                group_mention(m) if m.startswith("S") else mention(m)
                for m in self.config.approvals.get(role, ())
            )
            parts.append(f"for *{inert(title)}*, {people}")
        return "; ".join(parts)

    # -- reviews and answers ---------------------------------------------------------------
    def review(self, channel_id: str, user: str, thread_ts: str | None = None) -> None:
        esc = self.escalations.in_channel(channel_id)
        self.allow(esc, user, "ask for the review")
        ticket = self.lane.reserve(user)
        ticket.run(lambda late: self._review(esc, user, thread_ts, final=False, late=late))

    def review_at_resolution(self, esc: Escalation) -> None:
        """The review drafted when the escalation is resolved: the system's own request, on
        the model's lane like every other (a failure is logged there)."""
        ticket = self.lane.reserve(None)
        ticket.run(lambda late: self._review(esc, esc.resolved_by, None, final=True, late=late))

    def _review(
        self,
        esc: Escalation,
        user: str | None,
        thread_ts: str | None,
        *,
        final: bool,
        late: bool = False,
    ) -> Draft:
        draft = self._new(esc, DraftKind.REVIEW, user or "", thread_ts)
        draft = self._produce(draft, esc, self.agent.review, late=late)
        review = {
            "escalation": esc.id,
            "customer": esc.customer,
            "status": esc.status.value,
            "drafted_at": draft.created_at.isoformat(),
            "drafted_offline": draft.offline,
            **parse_review(draft.text),
            "markdown": draft.text,
        }
        self.memory.write_review(esc.id, review)
        if final:
            self.memory.write_output(esc.id, "review", review)
        self.memory.append_lessons(esc.id, esc.customer, lessons(review), self.clock())
        self.escalations.append(
            esc.id,
            event(
                self.clock(),
                EventKind.REVIEW,
                user,
                "Post-incident review drafted",
                offline=draft.offline,
                final=final,
            ),
        )
        return draft

    def answer(self, channel_id: str, user: str, question: str, thread_ts: str) -> None:
        esc = self.escalations.in_channel(channel_id)
        ticket = self.lane.reserve(user)
        draft = self._new(esc, DraftKind.ANSWER, user, thread_ts)
        ticket.run(
            lambda late: self._produce(
                draft,
                esc,
                lambda g, on: self.agent.answer(g, question, on),
                keep=False,
                late=late,
                asked=(question,),
            )
        )

    # -- machinery -------------------------------------------------------------------------
    def _produce(
        self,
        draft: Draft,
        esc: Escalation,
        ask: Ask,
        *,
        keep: bool = True,
        late: bool = False,
        asked: tuple[str, ...] = (),
    ) -> Draft:
        """Show the draft as being written, stream the agent's text into it, then the
        finished draft: its pages, its notes, its buttons. `late`: it waited for the lane past
        its deadline, so the offline drafter writes it at once instead of the model."""
        if keep:  # held while it is written: if this process dies, another says so
            self.store.begin_writing(draft.id, int(self.agent.timeout) + 60)
        try:
            return self._write(draft, esc, ask, keep=keep, late=late, asked=asked)
        finally:
            if keep:
                with contextlib.suppress(Unavailable):  # the lease lapses by itself
                    self.store.end_writing(draft.id)

    def _write(
        self,
        draft: Draft,
        esc: Escalation,
        ask: Ask,
        *,
        keep: bool,
        late: bool,
        asked: tuple[str, ...],
    ) -> Draft:
        gateway = self.gateway
        placeholder = draft_view.drafting(draft.kind)
        if draft.ts:
            gateway.update(draft.channel, draft.ts, placeholder)
        else:
            ts = gateway.post(
                draft.channel, placeholder, thread_ts=draft.thread_ts, key=f"draft:{draft.id}"
            )
            draft = draft.model_copy(update={"ts": ts})
            if keep:
                self.store.save_draft(draft)
        shown = _Throttle(self.stream_interval)

        def on_text(text: str) -> None:
            if self.lane.interrupted.is_set():
                raise Interrupted(draft.id)
            if shown.due():
                try:
                    gateway.update(draft.channel, draft.ts, draft_view.drafting(draft.kind, text))
                except Exception as e:  # a slow or failing update must not stop the draft
                    log.warning("escalation %s: streaming update failed: %s", esc.id, e)

        try:
            if late:
                reason = f"the agent was busy for more than {self.lane.deadline:g} s"
                reply = self.agent.offline(draft.kind.value, self.grounds.of(esc), reason, *asked)
            else:
                reply = ask(self.grounds.of(esc), on_text)
            if self.lane.interrupted.is_set():  # the model's text (or the agent's fallback
                raise Interrupted(draft.id)  # once the stream was cut) came after the grace
        except BaseException as e:
            # Written again from what was there: the draft is never left half-done. Cut
            # short by a stop, it says so and offers to be regenerated.
            stopped = isinstance(e, Interrupted)
            if keep:
                update = {"drafting": False, "interrupted": stopped}
                draft = self._change(draft.id, lambda d: d.model_copy(update=update))
                self._show(draft, esc)
            elif stopped:
                self._show(draft.model_copy(update={"drafting": False, "interrupted": True}), esc,
                           keep=False)  # fmt: skip
            if stopped:
                log.warning("escalation %s: draft %s interrupted by the stop", esc.id, draft.id)
                return draft
            raise
        self._count(draft.kind, reply)
        self._log_usage(esc, draft.kind, reply)
        finished = {
            "text": reply.text,
            "offline": reply.offline,
            "offline_reason": reply.offline_reason,
            "truncated": reply.truncated,
            "findings": reply.findings,
            "drafting": False,
            "interrupted": False,
        }
        if draft.kind is DraftKind.CUSTOMER_UPDATE:  # what a customer would read: every claim
            finished["unsupported"] = reply.unsupported
            finished["placeholders"] = tuple(find_placeholders(reply.text))
        if keep:
            draft = self._change(draft.id, lambda d: d.model_copy(update=finished))
        else:
            draft = draft.model_copy(update=finished)
        return self._show(draft, esc, keep=keep)

    def recover_abandoned(self) -> int:
        """Drafts whose process died while writing them (SIGKILL, a crash): each says it was
        interrupted and offers Regenerate, rather than show "writing…" for ever. How many."""
        recovered = 0
        stopped = {"drafting": False, "interrupted": True}
        for draft_id in self.store.abandoned_drafts():
            draft = self.store.get_draft(draft_id)
            if draft is not None and draft.drafting:
                draft = self._change(draft_id, lambda d: d.model_copy(update=stopped))
                self._show(draft, self._escalation(draft))
                recovered += 1
            self.store.end_writing(draft_id)
        return recovered

    def _show(self, draft: Draft, esc: Escalation, *, keep: bool = True) -> Draft:
        """Put the draft's pages in its messages: the first in place, the others updated,
        posted or deleted as the length changed."""
        waiting = self._waiting(draft) if draft.kind is DraftKind.CUSTOMER_UPDATE else ""
        outgoing = self.outgoing(draft, esc) if draft.kind is DraftKind.CUSTOMER_UPDATE else None
        pages = draft_view.draft_pages(draft, esc.customer, waiting=waiting, outgoing=outgoing)
        self.gateway.update(draft.channel, draft.ts, pages[0])
        more: list[str] = []
        for number, page in enumerate(pages[1:]):
            if number < len(draft.more_ts):
                self.gateway.update(draft.channel, draft.more_ts[number], page)
                more.append(draft.more_ts[number])
            else:
                key = f"draft:{draft.id}:page:{number + 2}"
                more.append(
                    self.gateway.post(draft.channel, page, thread_ts=draft.thread_ts, key=key)
                )
        for stale in draft.more_ts[len(more) :]:
            self.gateway.delete(draft.channel, stale)
        if tuple(more) != draft.more_ts:
            update = {"more_ts": tuple(more)}
            if keep:
                return self._change(draft.id, lambda d: d.model_copy(update=update))
            return draft.model_copy(update=update)
        return draft

    def _new(self, esc: Escalation, kind: DraftKind, user: str, thread_ts: str | None) -> Draft:
        return Draft(
            id=uuid.uuid4().hex[:12],
            escalation=esc.id,
            kind=kind,
            channel=esc.channel_id,
            thread_ts=thread_ts,
            requested_by=user,
            created_at=self.clock(),
            drafting=True,
            # Criteria that ask for their own approval of what the customer is told.
            needs=tuple(c for c in esc.criteria if c in self.config.approvals)
            if kind is DraftKind.CUSTOMER_UPDATE
            else (),
        )

    def _change(self, draft_id: str, change: Callable[[Draft], Draft]) -> Draft:
        try:
            return self.store.update_draft(draft_id, change)
        except KeyError:
            raise InvalidInput("This draft is no longer available; ask for a new one.") from None

    def _count(self, kind: DraftKind, reply: Reply) -> None:
        """The draft and the tokens it cost, for /metrics."""
        if self.metrics is None:
            return
        self.metrics.drafts.labels(kind.value, "offline" if reply.offline else "model").inc()
        for name, tokens in reply.usage.items():
            if tokens:
                kind_of = name.removesuffix("_tokens")
                self.metrics.model_tokens.labels(reply.model or "unknown", kind_of).inc(tokens)

    def _log_usage(self, esc: Escalation, kind: DraftKind, reply: Reply) -> None:
        """Keep the call's tokens for `warroom report`'s model spend. The offline drafter
        costs nothing and logs nothing."""
        if reply.offline or not reply.usage:
            return
        entry = {"escalation": esc.id, "kind": kind.value, "model": reply.model, **reply.usage}
        try:
            self.store.log_model_usage(self.clock(), entry)
        except Unavailable as e:
            # The draft is written and shown; only the spend report will miss this call, and
            # the log line says which call it was.
            log.warning(
                "escalation %s: the %s draft's token usage was not recorded (%s): %s",
                esc.id,
                kind.value,
                e,
                entry,
            )

    def _checks(self, kind: DraftKind, text: str, esc: Escalation) -> dict[str, object]:
        """What the agent's checks find in `text` (an edited draft), and its placeholders."""
        return {
            "findings": tuple(check_draft(kind.value, self.grounds.of(esc), text)),
            "placeholders": tuple(find_placeholders(text))
            if kind is DraftKind.CUSTOMER_UPDATE
            else (),
        }

    def _draft(self, draft_id: str) -> Draft:
        draft = self.store.get_draft(draft_id)
        if draft is None:
            raise InvalidInput("This draft is no longer available; ask for a new one.")
        return draft

    def _escalation(self, draft: Draft) -> Escalation:
        esc = self.escalations.get(draft.escalation)
        if esc is None:
            raise InvalidInput("This draft's escalation no longer exists.")
        return esc


@contextmanager
def _released_on_error(ticket: Ticket) -> Iterator[None]:
    """Give the lane's place back if what comes before running it fails."""
    try:
        yield
    except BaseException:
        ticket.release()
        raise


class _Throttle:
    """True at most once per interval (the first call included)."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.last = float("-inf")

    def due(self) -> bool:
        now = time.monotonic()
        if now - self.last >= self.interval:
            self.last = now
            return True
        return False

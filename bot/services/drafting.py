"""The VP agent in the war room: drafts streamed into Slack, and what people do with them.

Nothing a draft says reaches a customer: a customer update counts as sent only when a person
approves it, and even then warroom only records it; people send it.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from agents.checks import DEFAULT_FLAG_TERMS, flag_terms
from agents.grounding import Grounding, StepView, TimelineEntry
from agents.review import lessons, parse_review
from agents.vp import OnText, Reply, VPAgent
from bot.domain import escalation as domain
from bot.domain.authority import authorize
from bot.domain.drafts import Draft, DraftKind
from bot.domain.errors import InvalidInput
from bot.domain.escalation import Escalation, Status, scaled
from bot.domain.timeline import EventKind, event
from bot.services.base import RoomService
from bot.slack import blocks
from bot.store import Store

log = logging.getLogger(__name__)


@dataclass
class DraftDesk(RoomService):
    store: Store
    agent: VPAgent
    # Slack allows about one chat.update per second per channel: the stream is shown at that
    # pace.
    stream_interval: float = 1.0

    @property
    def flag_words(self) -> tuple[str, ...]:
        return self.config.flag_terms or DEFAULT_FLAG_TERMS

    # -- grounding -------------------------------------------------------------------------
    def grounding(self, esc: Escalation) -> Grounding:
        protocol = self.protocol
        titles = {step.id: step.title for step in protocol.steps}
        update = protocol.update_step
        scale = self.escalations.clock_scale
        interval = scaled(update.every, scale) if update and update.every else None
        next_due = self.escalations.next_update_due(esc)
        approved = tuple(
            str(o.get("text", "")) for o in self.memory.outputs(esc.id, "customer-update")
        )
        return Grounding(
            escalation_id=esc.id,
            customer=esc.customer,
            summary=esc.summary,
            arr=esc.arr,
            criteria=tuple(blocks.criteria_titles(esc, protocol).split(", "))
            if esc.criteria
            else (),
            status=esc.status.value,
            ic=blocks.mention(esc.ic),
            declarer=blocks.mention(esc.declarer),
            declared_at=esc.declared_at,
            now=self.clock(),
            steps=tuple(
                StepView(
                    st.id,
                    titles.get(st.id, st.id),
                    st.due_at,
                    st.done_at,
                    blocks.mention(st.done_by) if st.done_by else None,
                )
                for st in esc.steps
                if not (update is not None and st.id == update.id)
            ),
            timeline=tuple(
                TimelineEntry(
                    e.at, e.kind.value, blocks.mention(e.actor) if e.actor else "warroom", e.text
                )
                for e in self.escalations.timeline(esc.id)
            ),
            last_update_at=esc.last_update_at,
            next_update_due=next_due,
            update_interval=interval,
            resolved_at=esc.resolved_at,
            resolution=esc.resolution,
            customer_facts=self.memory.customer_facts(esc.customer) or {},
            approved_updates=approved,
        )

    # -- customer updates ------------------------------------------------------------------
    def draft_update(self, channel_id: str, user: str, thread_ts: str | None = None) -> Draft:
        esc = self.escalations.in_channel(channel_id)
        if esc.status is Status.RESOLVED:
            raise InvalidInput("This escalation is resolved; ask for a `review` instead.")
        draft = self._new(esc, DraftKind.CUSTOMER_UPDATE, user, thread_ts)
        return self._produce(draft, esc, lambda g, on: self.agent.customer_update(g, on))

    def regenerate(self, draft_id: str, user: str) -> Draft:
        draft = self._draft(draft_id)
        if draft.approved_by:
            raise InvalidInput("This update is already approved; ask for a new `draft update`.")
        esc = self._escalation(draft)
        fresh = draft.model_copy(update={"edited_by": None, "requested_by": user})
        return self._produce(fresh, esc, lambda g, on: self.agent.customer_update(g, on))

    def save_edit(self, draft_id: str, user: str, text: str) -> Draft:
        draft = self._draft(draft_id)
        text = text.strip()
        if not text:
            raise InvalidInput("The update cannot be empty.")
        if draft.approved_by:
            raise InvalidInput("This update was approved meanwhile; it can no longer change.")
        esc = self._escalation(draft)
        draft = draft.model_copy(
            update={"text": text, "edited_by": user, "flags": self._flags(text, esc)}
        )
        self.store.save_draft(draft)
        self.gateway.update(draft.channel, draft.ts, blocks.draft_message(draft, esc.customer))
        return draft

    def approve(self, draft_id: str, user: str) -> Draft:
        """One approval per draft, by someone allowed to; recorded everywhere it counts."""
        draft = self._draft(draft_id)
        esc = self._escalation(draft)
        authorize(esc, user, self.config.authorized_roles, "approve a customer update")
        first = self.store.claim_approval(draft_id, user)
        if first is not None:
            raise InvalidInput(f"This update was already approved by {blocks.mention(first)}.")
        scale = self.escalations.clock_scale
        try:
            now = self.clock()
            esc, _ = self.escalations.update(
                esc.id,
                lambda e: domain.record_customer_update(
                    e, user, draft.text, now, self.protocol, scale
                ),
            )
            path = self.memory.write_output(
                esc.id,
                "customer-update",
                {
                    "escalation": esc.id,
                    "customer": esc.customer,
                    "text": draft.text,
                    "approved_by": user,
                    "approved_at": now.isoformat(),
                    "drafted_offline": draft.offline,
                    "edited_by": draft.edited_by,
                    "flags": list(draft.flags),
                },
            )
        except BaseException:
            self.store.release_approval(draft_id)
            raise
        draft = draft.model_copy(
            update={
                "approved_by": user,
                "approved_at": now,
                "output_file": str(path.relative_to(self.memory.root)),
            }
        )
        self.store.save_draft(draft)
        self.memory.log_decision(
            esc.id, "customer_update_approved", user, now, draft=draft.id, file=draft.output_file
        )
        message = blocks.draft_message(draft, esc.customer)
        self.gateway.together(
            {
                "draft": lambda: self.gateway.update(draft.channel, draft.ts, message),
                "brief": lambda: self.briefing.refresh(esc),
            }
        )
        return draft

    def open_editor(self, draft_id: str, trigger_id: str) -> None:
        draft = self._draft(draft_id)
        if draft.approved_by:
            raise InvalidInput("This update is already approved; it can no longer change.")
        self.gateway.open_view(trigger_id, blocks.edit_draft_form(draft))

    # -- reviews and answers ---------------------------------------------------------------
    def review(self, channel_id: str, user: str | None, thread_ts: str | None = None) -> Draft:
        return self._review(self.escalations.in_channel(channel_id), user, thread_ts, final=False)

    def review_at_resolution(self, esc: Escalation) -> Draft | None:
        try:
            return self._review(esc, esc.resolved_by, None, final=True)
        except Exception:
            log.exception("escalation %s: the review at resolution failed", esc.id)
            return None

    def _review(
        self, esc: Escalation, user: str | None, thread_ts: str | None, *, final: bool
    ) -> Draft:
        draft = self._new(esc, DraftKind.REVIEW, user or "", thread_ts)
        draft = self._produce(draft, esc, lambda g, on: self.agent.review(g, on))
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

    def answer(self, channel_id: str, user: str, question: str, thread_ts: str) -> Draft:
        esc = self.escalations.in_channel(channel_id)
        draft = self._new(esc, DraftKind.ANSWER, user, thread_ts)
        return self._produce(
            draft, esc, lambda g, on: self.agent.answer(g, question, on), keep=False
        )

    # -- machinery -------------------------------------------------------------------------
    def _produce(
        self,
        draft: Draft,
        esc: Escalation,
        ask: Callable[[Grounding, OnText], Reply],
        *,
        keep: bool = True,
    ) -> Draft:
        """Post (or reuse) the message, stream the agent's text into it, then the final form."""
        gateway = self.gateway
        if draft.ts:
            gateway.update(draft.channel, draft.ts, blocks.drafting(draft.kind))
        else:
            ts = gateway.post(draft.channel, blocks.drafting(draft.kind), thread_ts=draft.thread_ts)
            draft = draft.model_copy(update={"ts": ts})
        shown = _Throttle(self.stream_interval)

        def on_text(text: str) -> None:
            if shown.due():
                try:
                    gateway.update(draft.channel, draft.ts, blocks.drafting(draft.kind, text))
                except Exception as e:  # a slow or failing update must not stop the draft
                    log.warning("escalation %s: streaming update failed: %s", esc.id, e)

        reply = ask(self.grounding(esc), on_text)
        flags = self._flags(reply.text, esc) if draft.kind is DraftKind.CUSTOMER_UPDATE else ()
        draft = draft.model_copy(
            update={
                "text": reply.text,
                "offline": reply.offline,
                "offline_reason": reply.offline_reason,
                "truncated": reply.truncated,
                "flags": flags,
            }
        )
        if keep:
            self.store.save_draft(draft)
        gateway.update(draft.channel, draft.ts, blocks.draft_message(draft, esc.customer))
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
        )

    def _flags(self, text: str, esc: Escalation) -> tuple[str, ...]:
        root_cause_known = self.grounding(esc).root_cause() is not None
        return tuple(flag_terms(text, self.flag_words, root_cause_known=root_cause_known))

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

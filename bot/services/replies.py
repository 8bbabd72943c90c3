"""The customer's replies, come back to the war room: the one way a customer's words are
recorded, whichever way they came (their Slack Connect channel, email, a ticket comment).

`CustomerReplies.received` finds the escalation the reply belongs to, records it on the
timeline once (a reply is known by `via` and `ref`: a redelivery records nothing more), and
posts it in the war room, in the thread of the letter it answers, once: a post whose answer
was lost is looked for before it is made again, never made twice. The text is the customer's
words, shown inert; the agent reads them as what the customer asked, never as letter text.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

from bot.clock import Clock
from bot.domain import letters
from bot.domain.delivery import RouteKind
from bot.domain.escalation import Escalation
from bot.domain.replies import CustomerReply, Via, reply_event
from bot.domain.timeline import EventKind, event
from bot.memory import Memory
from bot.services.escalations import Escalations
from bot.slack import blocks
from bot.slack.gateway import RoomGone, SlackGateway, answer_lost
from bot.slack.messages import SharedMessage
from bot.slack.text import inert, readable
from bot.store import Store

log = logging.getLogger(__name__)

# How long one attempt to post a reply may hold its claim before another may try.
POST_CLAIM_SECONDS = 60


class Outcome(StrEnum):
    POSTED = "posted"  # recorded and shown in the room
    ALREADY = "already"  # this reply was recorded and shown before
    NO_ESCALATION = "no_escalation"  # no open escalation for it: nothing recorded
    UNDER_WAY = "under_way"  # another process is posting it right now
    ROOM_GONE = "room_gone"  # recorded; the war room can no longer be posted in


@dataclass(frozen=True)
class Received:
    outcome: Outcome
    escalation: str | None = None
    ts: str | None = None  # the war-room message that shows it


@dataclass
class CustomerReplies:
    store: Store
    escalations: Escalations
    gateway: SlackGateway
    memory: Memory
    clock: Clock

    def first_delivery(self, event_id: str) -> bool:
        """False for an event Slack already delivered (it retries what it thinks we missed)."""
        return not event_id or self.store.first_delivery(event_id)

    def shared_message(self, message: SharedMessage) -> Received:
        """A message a customer's person posted in their account's shared channel."""
        accounts = self.accounts_of(message.channel)
        if not accounts:  # a channel shared with someone else: not a customer's reply
            return Received(Outcome.NO_ESCALATION)
        # Shared by several accounts: the organisation is the escalation's (`received`).
        account = accounts[0] if len(accounts) == 1 else ""
        author = (
            message.name
            or self.gateway.full_name(message.user)
            or self.gateway.user_name(message.user)
            or message.user
        )
        return self.received(
            CustomerReply(
                via=Via.SLACK_CONNECT,
                ref=f"{message.channel}:{message.ts}",
                author=author,
                organisation=account,
                text=readable(message.text, self.gateway.user_name),
                at=self.clock(),
                channel=message.channel,
                thread_ts=message.thread_ts,
            )
        )

    def accounts_of(self, channel_id: str) -> list[str]:
        """The accounts whose shared channel `channel_id` is, by name (usually one)."""
        names = (str(e.get("name") or "").strip() for e in self.memory.accounts_sharing(channel_id))
        return [n for n in names if n]

    def received(self, reply: CustomerReply) -> Received:
        """Record `reply` and show it in its war room, each once."""
        esc = self._escalation_of(reply)
        if esc is None:
            log.info("a %s reply (%s) for no open escalation: not recorded", reply.via, reply.ref)
            return Received(Outcome.NO_ESCALATION)
        if not reply.organisation.strip():  # a desk that does not say: the account itself
            reply = replace(reply, organisation=esc.customer)
        key = f"reply:{esc.id}:{reply.key}"
        self.escalations.append(esc.id, reply_event(reply), once=key)
        thread = self.letter_thread(esc, reply)
        text = blocks.customer_reply(reply.author, reply.organisation, reply.text)
        outcome, ts = self._post_once(esc, key, thread, text)
        if outcome is Outcome.POSTED:
            log.info(
                "escalation %s: a %s reply from %s shown", esc.id, reply.via, reply.organisation
            )
        return Received(outcome, esc.id, ts)

    def undeliverable(
        self, escalation: str, message_id: str, recipients: Sequence[str], ref: str
    ) -> Received:
        """The mail system sent the letter `message_id` back (a bounce, known by its own
        `ref`): on the timeline and in the letter's thread, once, with whom it did not reach."""
        esc = self.escalations.get(escalation)
        if esc is None:
            return Received(Outcome.NO_ESCALATION)
        sent = letters.letter_for_reply(esc, message_id=message_id)
        whom = ", ".join(recipients) or "its recipients"
        key = f"bounce:{esc.id}:{ref}"
        data: dict[str, object] = {
            "route": RouteKind.EMAIL.value,
            "to": list(recipients),
            "message_id": message_id,
            "result": "bounced",
            "reason": f"undeliverable to {whom}",
            "bounce": ref,
        }
        if sent is not None:
            data["draft"] = sent.draft
        self.escalations.append(
            esc.id,
            event(
                self.clock(),
                EventKind.LETTER_NOT_SENT,
                None,
                f"Letter returned by the mail system: undeliverable to {whom}",
                **data,
            ),
            once=key,
        )
        thread = sent.thread_ts if sent is not None else None
        text = (
            f"⚠️ The email of this letter came back: undeliverable to {inert(whom)}. "
            "Check the address in customer_insights.yaml, then send the next letter there."
        )
        outcome, ts = self._post_once(esc, key, thread, text)
        if outcome is Outcome.POSTED:
            log.warning("escalation %s: letter %s undeliverable", esc.id, message_id)
        return Received(outcome, esc.id, ts)

    def _post_once(
        self, esc: Escalation, key: str, thread: str | None, text: str
    ) -> tuple[Outcome, str | None]:
        """Post `text` in the room (in `thread`) once under `key`: a post whose answer was lost
        is looked for before it is made again."""
        claim = self.store.begin_once(key, ttl=POST_CLAIM_SECONDS)
        if isinstance(claim, float):
            return Outcome.UNDER_WAY, None
        if claim == "done":
            return Outcome.ALREADY, None
        try:
            found = None
            if claim == "check":
                found = self.gateway.find_posted(esc.channel_id, key, thread_ts=thread)
            ts = found or self.gateway.post_text(esc.channel_id, text, thread_ts=thread, key=key)
        except RoomGone as e:
            log.warning("escalation %s: not shown, the room is gone (%s)", esc.id, e.code)
            self.store.finish_once(key)
            return Outcome.ROOM_GONE, None
        except Exception as e:
            self.store.abandon_once(key, unsure=answer_lost(e))
            raise
        self.store.finish_once(key)
        return Outcome.POSTED, ts

    def letter_thread(self, esc: Escalation, reply: CustomerReply) -> str | None:
        """The war-room thread a reply is shown in: that of the letter it answers (the sent
        letter its shared-channel thread or its email's In-Reply-To names), else of the last
        letter sent, else of the last approved customer update (people sent it themselves),
        else None (the room itself)."""
        answered = letters.letter_for_reply(
            esc, channel=reply.channel, thread_ts=reply.thread_ts, message_id=reply.in_reply_to
        )
        sent = answered or letters.last_sent(esc)
        if sent is not None and sent.thread_ts:
            return sent.thread_ts
        for decision in reversed(self.memory.records.decisions(esc.id)):
            if decision.get("decision") != "customer_update_approved":
                continue
            draft = self.store.get_draft(str(decision.get("draft") or ""))
            if draft is not None and draft.channel == esc.channel_id:
                return draft.thread_ts or draft.ts or None
        return None

    def _escalation_of(self, reply: CustomerReply) -> Escalation | None:
        if reply.escalation:
            return self.escalations.get(reply.escalation)
        wanted = {a.casefold() for a in self.accounts_of(reply.channel or "")}
        if not wanted:
            return None
        open_ones = [
            e
            for e in self.store.get_many(self.store.open_ids())
            if e.customer.strip().casefold() in wanted
        ]
        return max(open_ones, key=lambda e: e.declared_at, default=None)

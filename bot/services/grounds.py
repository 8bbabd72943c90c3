"""What the VP agent is given about an escalation: a `Grounding` with the customer-facing facts
apart from the internal record, every entry with the id a draft cites it by, people by name
(never a mention that would notify), and the account's facts. The agent reads nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from agents import grounding as agent
from agents.grounding import Grounding, StepView, TimelineEntry
from bot.clock import Clock
from bot.domain.escalation import Escalation, scaled
from bot.domain.facts import Fact, FactKind
from bot.domain.timeline import Event, EventKind
from bot.memory import Memory
from bot.services.escalations import Escalations
from bot.slack import blocks
from bot.slack.gateway import SlackGateway
from bot.slack.text import readable
from protocols.schema import Protocol

# How many of the room's latest messages the agent reads.
ROOM_MESSAGES = 60
# How many of the customer's latest replies the agent reads (the next letter answers them).
CUSTOMER_REPLIES = 5


@dataclass
class Grounds:
    escalations: Escalations
    memory: Memory
    gateway: SlackGateway
    protocol: Protocol
    clock: Clock
    # The organisation's words to look at twice (`flag_terms`); empty: the defaults.
    flag_terms: tuple[str, ...] = ()
    # Who coordinates press statements (`press_contact` in warroom.yaml).
    press_contact: str | None = None
    # The organisation's business hours (`business_hours` in warroom.yaml), for accounts that
    # set none of their own.
    business_hours: str = "09:00-17:00"

    def who(self, user: str | None) -> str:
        """A person as the agent names them: `@name`, never a mention that would notify."""
        if not user:
            return "warroom"
        return "@" + (self.gateway.user_name(user) or user)

    def of(self, esc: Escalation) -> Grounding:
        """What the agent may use: the customer-facing facts apart from the internal record,
        every entry with the id a draft cites it by."""
        protocol = self.protocol
        titles = {step.id: step.title for step in protocol.steps}
        update = protocol.update_step
        scale = self.escalations.clock_scale
        interval = scaled(update.every, scale) if update and update.every else None
        approved = tuple(
            str(o.get("text", "")) for o in self.memory.outputs(esc.id, "customer-update")
        )
        events = self.escalations.timeline(esc.id)
        entry_ids = {id(e): f"T{n}" for n, e in enumerate(events, start=1)}

        def entry_text(e: Event) -> str:
            if e.kind is EventKind.IC_ASSIGNED and e.data.get("ic"):
                return f"{self.who(str(e.data['ic']))} is incident commander"
            return e.text

        def cited(kind: EventKind, at: datetime, **data: object) -> str:
            """The id of the entry that recorded a fact (the last one of that kind then)."""
            for e in reversed(events):
                if (
                    e.kind is kind
                    and e.at == at
                    and all(e.data.get(k) == v for k, v in data.items())
                ):
                    return entry_ids[id(e)]
            return ""

        def fact(value: Fact | None, kind: FactKind) -> agent.Fact | None:
            if value is None:
                return None
            ref = cited(EventKind.FACT, value.at, fact=kind.value)
            return agent.Fact(value.text, self.who(value.by), value.at, ref)

        facts = esc.facts
        cause = facts.confirmed_cause
        contact = protocol.milestone("first_customer_contact")
        contact_state = (
            esc.step(contact.id) if contact and contact.id in {s.id for s in esc.steps} else None
        )
        follow_ups = (
            tuple(
                esc.resolved_at + scaled(offset, scale)
                for step in protocol.followup_steps
                for offset in step.after_resolution or ()
            )
            if esc.resolved_at is not None
            else ()
        )
        replies = [e for e in events if e.kind is EventKind.CUSTOMER_REPLY][-CUSTOMER_REPLIES:]
        return Grounding(
            customer_replies=tuple(
                agent.CustomerSaid(
                    at=e.at,
                    who=str(e.data.get("who") or ""),
                    organisation=str(e.data.get("organisation") or ""),
                    via=str(e.data.get("via") or ""),
                    text=e.text,
                    id=entry_ids[id(e)],
                )
                for e in replies
            ),
            room_messages=self._room_messages(esc),
            escalation_id=esc.id,
            customer=esc.customer,
            summary=esc.summary,
            arr=esc.arr,
            criteria=tuple(blocks.criteria_titles(esc, protocol).split(", "))
            if esc.criteria
            else (),
            status=esc.status.value,
            ic=self.who(esc.ic),
            declarer=self.who(esc.declarer),
            declared_at=esc.declared_at,
            now=self.clock(),
            steps=tuple(
                StepView(
                    st.id,
                    titles.get(st.id, st.id),
                    st.due_at,
                    st.done_at,
                    self.who(st.done_by) if st.done_by else None,
                )
                for st in esc.steps
                if not (update is not None and st.id == update.id)
            ),
            timeline=tuple(
                TimelineEntry(
                    e.at, e.kind.value, self.who(e.actor), entry_text(e), entry_ids[id(e)]
                )
                for e in events
            ),
            last_update_at=esc.last_update_at,
            next_update_due=self.escalations.next_update_due(esc),
            update_interval=interval,
            resolved_at=esc.resolved_at,
            resolution=esc.resolution,
            customer_facts=self.memory.customer_facts(esc.account_name) or {},
            business_hours=self.business_hours,
            approved_updates=approved,
            facts=agent.Facts(
                impact=fact(facts.impact, FactKind.IMPACT),
                impact_began=facts.impact.began if facts.impact else None,
                impact_ended=facts.impact.ended if facts.impact else None,
                workaround=None
                if facts.no_workaround
                else fact(facts.workaround, FactKind.WORKAROUND),
                doing=fact(facts.doing, FactKind.DOING),
                eta=fact(facts.eta, FactKind.ETA),
                advice=fact(facts.advice, FactKind.ADVICE),
                fixed=fact(facts.fixed, FactKind.FIXED),
                no_workaround=facts.no_workaround,
                began_from=facts.impact.began_from if facts.impact else "declared",
                stated_began=facts.impact.stated_began if facts.impact else None,
                cause=agent.Fact(
                    cause.text,
                    self.who(cause.confirmed_by),
                    cause.confirmed_at or cause.at,
                    cited(EventKind.CAUSE_CONFIRMED, cause.confirmed_at or cause.at),
                )
                if cause is not None
                else None,
                suspected_causes=tuple(
                    agent.Fact(c.text, self.who(c.by), c.at, cited(EventKind.CAUSE, c.at))
                    for c in facts.suspected_causes
                ),
            ),
            action_items=tuple(
                agent.ActionItem(
                    self.who(a.owner),
                    a.text,
                    a.due_at,
                    self.who(a.by),
                    a.id,
                    done=a.done_at is not None,
                    prevention=a.prevention,
                )
                for a in esc.actions
            ),
            criteria_ids=esc.criteria,
            signer=self._signer(esc),
            first_contact_due=contact_state.due_at if contact_state else None,
            first_contact_done_at=contact_state.done_at if contact_state else None,
            follow_ups=follow_ups,
            clock_scale=scale,
            flag_terms=self.flag_terms,
            press_contact=self.press_contact,
            told=tuple(
                agent.Told(
                    at=t.at,
                    impact=t.impact,
                    impact_began=t.impact_began,
                    impact_ended=t.impact_ended,
                    workaround=t.workaround,
                    eta=t.eta,
                    eta_at=t.eta_at,
                    advice=t.advice,
                    doing=t.doing,
                    cause=t.cause,
                    fixed=t.fixed,
                    resolved=t.resolved,
                    promised=t.promised,
                    left_out=t.left_out,
                )
                for t in facts.told
            ),
            other_customers=tuple(
                n for n in self.memory.customer_names() if n.casefold() != esc.customer.casefold()
            ),
        )

    def _signer(self, esc: Escalation) -> str | None:
        """The VP on record who signs what goes to the customer, by their full name."""
        for vp in esc.vps:
            name = self.gateway.full_name(vp)
            if name:
                return name
        return None

    def _room_messages(self, esc: Escalation) -> tuple[agent.RoomMessage, ...]:
        """What people said in the room since the declaration (the most recent when there is
        much): material the agent translates, never quotes."""
        said = self.gateway.recent_messages(
            esc.channel_id, esc.declared_at.timestamp(), ROOM_MESSAGES
        )
        # A mention of the bot is a command (`@vp doing ...`): what it recorded is on the
        # timeline already, as a fact or an update; it is not talk to translate.
        to_bot = f"<@{self.gateway.bot_user_id}>"
        said = [m for m in said if not (m.get("text") or "").lstrip().startswith(to_bot)]
        return tuple(
            agent.RoomMessage(
                datetime.fromtimestamp(float(m["ts"]), tz=UTC),
                self.who(m.get("user")),
                readable(m.get("text") or "", self.gateway.user_name),
                f"M{n}",
            )
            for n, m in enumerate(said, start=1)
            if (m.get("text") or "").strip()
        )

"""What every service that acts in a war room works with: the escalations' record, the pinned
brief, Slack, the memory files, the protocol, the organisation's config and the clock; and
the one check of who may change the room; where an account's letters go, and what a letter
the customer was given records."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from agents.playbook import left_out_of, promised_in
from bot.clock import Clock
from bot.config import WarroomConfig
from bot.domain import authority, recording
from bot.domain import escalation as domain
from bot.domain.delivery import Route, route_of
from bot.domain.drafts import Draft
from bot.domain.escalation import Escalation
from bot.domain.facts import FactKind
from bot.domain.timeline import Event
from bot.memory import Memory
from bot.services.briefing import Briefing
from bot.services.escalations import Escalations
from bot.slack.gateway import SlackGateway
from protocols.schema import Protocol


@dataclass
class RoomService:
    escalations: Escalations
    briefing: Briefing
    gateway: SlackGateway
    memory: Memory
    protocol: Protocol
    config: WarroomConfig
    clock: Clock

    def allow(
        self,
        esc: Escalation,
        user: str,
        what: str,
        *,
        decisive: bool = False,
        roles: tuple[str, ...] | None = None,
    ) -> None:
        """Raise NotAllowed unless `user` may do `what` here: everyday actions need one of
        `everyday_roles` (the people in the room, by default), decisive ones one of
        `authorized_roles`, others the `roles` given. Slack is asked who is in the room only
        when that decides."""
        if roles is None:
            roles = self.config.authorized_roles if decisive else self.config.everyday_roles
        held = authority.roles_of(esc, user)
        if "room" in roles and not held & set(roles):
            members = self.gateway.members(esc.channel_id)
            if members is not None and user in members:
                held.add("room")
        authority.check(held, roles, what)

    def zone(self, esc: Escalation) -> tzinfo:
        """The account's time zone (`timezone` in customer_insights.yaml), else UTC: the zone
        a time people write about the customer is read in."""
        name = str((self.memory.customer_facts(esc.account_name) or {}).get("timezone") or "")
        try:
            return ZoneInfo(name.strip()) if name.strip() else UTC
        except (ZoneInfoNotFoundError, ValueError):
            return UTC

    def route(self, esc: Escalation) -> Route:
        """Where the account's letters go, under the organisation's `delivery` (RouteError
        when its entry in customer_insights.yaml cannot be used)."""
        return route_of(self.memory.customer_facts(esc.customer), self.config.delivery)

    def customer_told(
        self, esc: Escalation, draft: Draft, by: str, now: datetime
    ) -> tuple[Escalation, list[Event]]:
        """The customer was given the letter `draft` (approved, or sent where warroom sends the
        letters): a customer update on the timeline (the first completes the first-contact
        step), what it told them kept, and the update clock run to the time it promised."""
        new, events = domain.record_customer_update(
            esc, by, draft.text, now, self.protocol, self.escalations.clock_scale
        )
        new = told(esc, new, draft, by, now, self.zone(esc))
        return domain.keep_promise(new, self.protocol, now), events


def told(
    before: Escalation, after: Escalation, draft: Draft, approver: str, now: datetime, zone: tzinfo
) -> Escalation:
    """Keep what the letter told the customer: the facts as they stand, the time it promises
    as its text says it, and the facts a person's edit took out of it."""
    left_out: tuple[str, ...] = ()
    if draft.edited_by:
        recorded = {k.value: (f.text if (f := before.facts.fact(k)) else None) for k in FactKind}
        left_out = left_out_of(recorded, draft.text)
    promised = promised_in(draft.text, zone)
    return recording.note_told(after, recording.told_now(after, approver, now, promised, left_out))

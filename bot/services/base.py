"""What every service that acts in a war room works with: the escalations' record, the pinned
brief, Slack, the memory files, the protocol, the organisation's config and the clock; and
the one check of who may change the room."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.clock import Clock
from bot.config import WarroomConfig
from bot.domain import authority
from bot.domain.escalation import Escalation
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

"""What every service that acts in a war room works with: the escalations' record, the pinned
brief, Slack, the memory files, the protocol, the organisation's config and the clock."""

from __future__ import annotations

from dataclasses import dataclass

from bot.clock import Clock
from bot.config import WarroomConfig
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

"""The room's standing information: the pinned brief and the channel topic, kept in step with
the escalation after every change."""

from __future__ import annotations

from dataclasses import dataclass

from bot.domain.escalation import Escalation
from bot.slack import blocks
from bot.slack.brief import brief
from bot.slack.gateway import SlackGateway
from protocols.schema import Protocol


@dataclass
class Briefing:
    gateway: SlackGateway
    protocol: Protocol
    clock_scale: float = 1.0

    def brief(self, esc: Escalation) -> blocks.Message:
        return brief(esc, self.protocol, self.clock_scale)

    def refresh(self, esc: Escalation) -> None:
        """The pinned brief, updated in place (once it has been posted)."""
        if esc.brief_ts:
            self.gateway.update(esc.channel_id, esc.brief_ts, self.brief(esc))

    def set_topic(self, esc: Escalation) -> None:
        self.gateway.set_topic(esc.channel_id, blocks.topic(esc))

    def refresh_all(self, esc: Escalation) -> dict[str, object]:
        """Brief and topic at once; each result is None or the exception it raised."""
        return self.gateway.together(
            {"topic": lambda: self.set_topic(esc), "brief": lambda: self.refresh(esc)}
        )

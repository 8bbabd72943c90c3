"""Changes people make in a war room: steps done, status updates, a new IC, the resolution;
and what the room asks to read (status, timeline).

Each change goes through `Escalations.update` (timers follow), is logged as a decision where
the source asks for one, and leaves the pinned brief and the topic current.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from bot.domain import escalation as domain
from bot.domain.errors import WarroomError
from bot.domain.escalation import Escalation
from bot.services.base import RoomService
from bot.slack import blocks
from bot.slack.gateway import describe
from bot.slack.text import mention

log = logging.getLogger(__name__)


@dataclass
class RoomChanges(RoomService):
    # Called once an escalation is resolved (the review is drafted then).
    on_resolved: Callable[[Escalation], object] = lambda _esc: None

    def mark_done(self, channel_id: str, step_id: str, user: str) -> tuple[Escalation, bool]:
        """Mark a protocol step done; returns the escalation and whether this call did it."""
        esc = self.escalations.in_channel(channel_id)
        self.allow(esc, user, "mark a step done")
        now = self.clock()
        esc, events = self.escalations.update(
            esc.id, lambda e: domain.mark_step_done(e, step_id, user, now, self.protocol)
        )
        if events:
            self.memory.log_decision(esc.id, "step_done", user, now, step=step_id)
            self.briefing.refresh(esc)
        return esc, bool(events)

    def record_update(self, channel_id: str, user: str, text: str) -> Escalation:
        esc = self.escalations.in_channel(channel_id)
        self.allow(esc, user, "record an update")
        now = self.clock()
        scale = self.escalations.clock_scale
        esc, _ = self.escalations.update(
            esc.id, lambda e: domain.record_update(e, user, text, now, self.protocol, scale)
        )
        self.briefing.refresh(esc)
        return esc

    def resolve(self, channel_id: str, user: str, summary: str) -> Escalation:
        esc = self.escalations.in_channel(channel_id)
        self.allow(esc, user, "resolve this escalation", decisive=True)
        now = self.clock()
        esc, _ = self.escalations.update(esc.id, lambda e: domain.resolve(e, user, summary, now))
        self.memory.log_decision(esc.id, "resolved", user, now, summary=esc.resolution)
        calls: dict[str, Callable[[], object]] = {
            "topic": lambda: self.briefing.set_topic(esc),
            "brief": lambda: self.briefing.refresh(esc),
        }
        exec_channel = (self.config.exec_channel or "").lstrip("#")
        if exec_channel:
            notice = blocks.resolved_notice(esc)
            calls["exec_notice"] = lambda: self.gateway.post(exec_channel, notice)
        for what, result in self.gateway.together(calls).items():
            if isinstance(result, Exception):
                log.error("escalation %s: after resolving, %s: %s", esc.id, what, describe(result))
        self.on_resolved(esc)
        return esc

    def reassign_ic(self, channel_id: str, user: str, new_ic: str) -> Escalation:
        esc = self.escalations.in_channel(channel_id)
        self.allow(esc, user, "reassign the incident commander", decisive=True)
        now = self.clock()
        esc, events = self.escalations.update(
            esc.id, lambda e: domain.reassign_ic(e, user, new_ic, now)
        )
        if events:
            previous = events[0].data["previous"]
            self.memory.log_decision(esc.id, "ic_changed", user, now, ic=new_ic, previous=previous)
            failed = self.gateway.invite(esc.channel_id, [new_ic])
            if failed:
                raise WarroomError(
                    f"{mention(new_ic)} is now IC but could not be invited: {failed[new_ic]}."
                )
            self.briefing.refresh_all(esc)
        return esc

    def status(self, channel_id: str) -> str:
        return blocks.status(self.escalations.in_channel(channel_id), self.protocol, self.clock())

    def timeline(self, channel_id: str) -> str:
        esc = self.escalations.in_channel(channel_id)
        return blocks.timeline(self.escalations.timeline(esc.id))

"""Changes people make in a war room: steps done, status updates, what the customer may be
told, causes, action items, a new IC, the resolution; and what the room asks to read (status,
timeline).

Each change goes through `Escalations.update` (timers follow), is logged as a decision where
the source asks for one, and leaves the pinned brief and the topic current.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.domain import escalation as domain
from bot.domain import recording
from bot.domain.errors import WarroomError
from bot.domain.escalation import Escalation
from bot.domain.facts import FactKind
from bot.domain.timeline import EventKind, event
from bot.services.base import RoomService
from bot.slack import blocks
from bot.slack.brief import facts_form
from bot.slack.gateway import describe
from bot.slack.text import mention, readable

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
        scale = self.escalations.clock_scale
        return self._change(
            channel_id,
            user,
            "record an update",
            lambda e, now: domain.record_update(e, user, text, now, self.protocol, scale),
        )

    # -- what the customer may be told ---------------------------------------------------
    def record_fact(
        self, channel_id: str, user: str, kind: FactKind, text: str, since: timedelta | None
    ) -> Escalation:
        return self._change(
            channel_id,
            user,
            "record what the customer may be told",
            lambda e, now: recording.record_fact(e, kind, text, user, now, since, self.zone(e)),
        )

    def end_impact(
        self, channel_id: str, user: str, since: timedelta | None, said: str = ""
    ) -> Escalation:
        """The impact ended: `since` ago, else at the time written after `ended` ("15:05",
        "since 15:05", in the account's time zone), else now."""

        def change(e: Escalation, now: datetime) -> tuple[Escalation, list]:
            words = said if said[:1].isalpha() else f"at {said}"
            at = recording.stated_time(words, now, self.zone(e)) if said else None
            return recording.end_impact(e, user, now, since, at)

        return self._change(channel_id, user, "record what the customer may be told", change)

    def open_facts_form(self, channel_id: str, user: str, trigger_id: str) -> None:
        esc = self.escalations.in_channel(channel_id)
        self.allow(esc, user, "record what the customer may be told")
        self.gateway.open_view(trigger_id, facts_form(esc))

    def set_facts(self, channel_id: str, user: str, values: dict[FactKind, str]) -> Escalation:
        """The facts form: each fact whose text changed is recorded, with who changed it."""

        def change(e: Escalation, now: datetime) -> tuple[Escalation, list]:
            events = []
            for kind, text in values.items():
                current = e.facts.fact(kind)
                if text.strip() and (current is None or current.text != " ".join(text.split())):
                    e, more = recording.record_fact(e, kind, text, user, now, zone=self.zone(e))
                    events += more
            return e, events

        return self._change(channel_id, user, "record what the customer may be told", change)

    def suspect_cause(self, channel_id: str, user: str, text: str) -> Escalation:
        return self._change(
            channel_id,
            user,
            "put a cause forward",
            lambda e, now: recording.suspect_cause(e, text, user, now),
        )

    def confirm_cause(self, channel_id: str, user: str, text: str) -> Escalation:
        """Only the IC or a VP (`cause_roles`) confirms a cause: only then may a customer be
        told it."""
        esc = self.escalations.in_channel(channel_id)
        self.allow(esc, user, "confirm the cause", roles=self.config.cause_roles)
        now = self.clock()
        esc, events = self.escalations.update(
            esc.id, lambda e: recording.confirm_cause(e, text, user, now)
        )
        if events:
            self.memory.log_decision(esc.id, "cause_confirmed", user, now, cause=events[0].text)
            self.briefing.refresh(esc)
        return esc

    # -- action items ---------------------------------------------------------------------
    def add_action(
        self,
        channel_id: str,
        user: str,
        owner: str,
        text: str,
        due: timedelta | None,
        prevention: bool = False,
    ) -> Escalation:
        scale = self.escalations.clock_scale
        esc = self._change(
            channel_id,
            user,
            "take on an action item",
            lambda e, now: recording.add_action(
                e, owner, text, now + due / scale if due else None, user, now, prevention
            ),
        )
        # The owner is reminded in the room, so they are in it (Slack notifies no one it
        # mentions outside a channel).
        failed = self.gateway.invite(esc.channel_id, [owner])
        if failed:
            log.warning("escalation %s: action owner not invited: %s", esc.id, failed)
        return esc

    def complete_action(self, channel_id: str, user: str, action_id: str) -> bool:
        """Mark an action item done; whether this call did it."""
        before = self.escalations.in_channel(channel_id)
        after = self._change(
            channel_id,
            user,
            "mark an action item done",
            lambda e, now: recording.complete_action(e, action_id, user, now),
        )
        return after.version != before.version

    def _change(
        self,
        channel_id: str,
        user: str,
        what: str,
        change: Callable[[Escalation, datetime], tuple[Escalation, list]],
    ) -> Escalation:
        """An everyday change by someone in the room, made now; the brief shows it."""
        esc = self.escalations.in_channel(channel_id)
        self.allow(esc, user, what)
        now = self.clock()
        esc, events = self.escalations.update(esc.id, lambda e: change(e, now))
        if events:
            self.briefing.refresh(esc)
        return esc

    # -- the room's own words --------------------------------------------------------------
    def pin_message(self, channel_id: str, ts: str, user: str) -> bool:
        """Something said in the room, marked by `user` with the pin reaction, goes on the
        timeline as an internal note with its author and a link; once per message."""
        esc = self.escalations.get_in_channel(channel_id)
        if esc is None:
            return False
        if any(
            e.kind is EventKind.NOTE and e.data.get("ts") == ts
            for e in self.escalations.timeline(esc.id)
        ):
            return False
        self.allow(esc, user, "put a message on the timeline")
        said = self.gateway.message(channel_id, ts)
        if said is None or not said.get("user"):
            return False
        text = readable(said.get("text") or "", self.gateway.user_name)
        link = self.gateway.permalink(channel_id, ts)
        now = self.clock()
        note = event(now, EventKind.NOTE, said["user"], text, ts=ts, link=link, pinned_by=user)
        # Checked above for a quick answer; decided here, in one step with the append: of two
        # people pinning the message at once, one notes it.
        return self.escalations.append(esc.id, note, once=f"note:{ts}")

    # -- decisive changes -----------------------------------------------------------------
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
            calls["exec_notice"] = lambda: self.gateway.post(
                exec_channel, notice, key=f"resolved:{esc.id}"
            )
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
        return blocks.timeline(self.escalations.timeline(esc.id), names=self.gateway.user_name)

"""The one way an escalation's state changes: a versioned write of the document with its
timeline events, then the timers the new state calls for, then whoever watches changes.

Every service that changes an escalation goes through `Escalations.update` (or `create`), so
no change can leave its reminders behind or skip the App Home refresh.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from bot.domain import escalation as domain
from bot.domain.drafts import Draft
from bot.domain.errors import NotAWarRoom
from bot.domain.escalation import Escalation
from bot.domain.timeline import Event
from bot.domain.timers import Timer, timers_for
from bot.services.ports import Timers
from bot.store import Approved, Fence, Recording, Store
from protocols.schema import Protocol

log = logging.getLogger(__name__)

Change = Callable[[Escalation], tuple[Escalation, list[Event]]]


@dataclass
class Escalations:
    store: Store
    timers: Timers
    protocol: Protocol
    clock_scale: float = 1.0
    # Told of every change (App Home refreshes then).
    on_changed: Callable[[Escalation], object] = lambda _esc: None

    # -- reading ---------------------------------------------------------------------------
    def get(self, esc_id: str) -> Escalation | None:
        return self.store.get(esc_id)

    def in_channel(self, channel_id: str) -> Escalation:
        esc = self.store.by_channel(channel_id)
        if esc is None:
            raise NotAWarRoom(
                "This channel is not a war room. Declare an escalation with `/escalate` first."
            )
        return esc

    def get_in_channel(self, channel_id: str) -> Escalation | None:
        return self.store.by_channel(channel_id)

    def is_war_room(self, channel_id: str) -> bool:
        return self.store.by_channel(channel_id) is not None

    def timeline(self, esc_id: str) -> list[Event]:
        return self.store.timeline(esc_id)

    def timers_for(self, esc: Escalation) -> list[Timer]:
        return timers_for(esc, self.protocol, self.clock_scale)

    def next_update_due(self, esc: Escalation) -> datetime | None:
        """When the protocol's next status update is due (None once resolved)."""
        step = self.protocol.update_step
        if step is None or esc.status is not domain.Status.INVESTIGATING:
            return None
        return next((s.due_at for s in esc.steps if s.id == step.id), None)

    # -- changing --------------------------------------------------------------------------
    def create(self, esc: Escalation, events: list[Event], *, fence: Fence | None = None) -> bool:
        """Store a new escalation with its first events, then schedule its timers; False (and
        nothing done) when one by its id exists already. `fence`: see `Store.create`."""
        if not self.store.create(esc, events, fence=fence):
            return False
        self.timers.apply([], self.timers_for(esc))
        self._changed(esc)
        return True

    def schedule(self, esc: Escalation) -> None:
        """Schedule the timers `esc` calls for (again: scheduling one twice is harmless)."""
        self.timers.apply([], self.timers_for(esc))

    def remove(self, esc: Escalation) -> None:
        """Undo `create` (a room rolled back): its timers cancelled, its record gone."""
        self.timers.apply(self.timers_for(esc), [])
        self.store.delete(esc)
        self._changed(esc)

    def update(
        self, esc_id: str, change: Change, *, fence: Fence | None = None
    ) -> tuple[Escalation, list[Event]]:
        """A versioned update, then the timers it implies (scheduled or cancelled). `fence`:
        see `Store.update`."""
        seen: list[Escalation] = []

        def tracked(current: Escalation) -> tuple[Escalation, list[Event]]:
            seen.append(current)
            return change(current)

        new, events = self.store.update(esc_id, tracked, fence=fence)
        if events and seen:
            after = self.timers_for(new)
            self.timers.apply(self.timers_for(seen[-1]), after)
            if new.status is domain.Status.RESOLVED:
                # Reconciling looks at open escalations and at these: resolved ones whose
                # follow-ups are still to come.
                self.store.track_follow_ups(new.id, bool(after))
            self._changed(new)
        return new, events

    def approve_draft(
        self, draft_id: str, approve: Callable[[Draft], Draft], record: Recording
    ) -> Approved:
        """An approval recorded as one unit (see `Store.approve_draft`), then the timers the
        escalation's new state implies (the update clock restarted, a step's reminder gone)."""
        done = self.store.approve_draft(draft_id, approve, record)
        if done.before is not None and done.escalation is not None:
            self.timers.apply(self.timers_for(done.before), self.timers_for(done.escalation))
            self._changed(done.escalation)
        return done

    def append(self, esc_id: str, *events: Event, once: str | None = None) -> bool:
        """Events that change no state (a review drafted, the room ready), appended once;
        with `once`, only by the first caller under that key (see `Store.append`)."""
        return self.store.append(esc_id, *events, once=once)

    def _changed(self, esc: Escalation) -> None:
        try:
            self.on_changed(esc)
        except Exception:
            log.exception("escalation %s: a change hook failed", esc.id)

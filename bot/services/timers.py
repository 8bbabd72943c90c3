"""Firing timers: overdue reminders, status-update nudges, follow-ups after resolution and the
weekly digest; and reconciling the job store with what every escalation's state calls for.

A firing re-reads the escalation (the step may be done by now), is claimed with an idempotency
key so that no two processes post it, and is never lost: a failed attempt, or one another
process has under way, is scheduled again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from bot.clock import Clock
from bot.domain import escalation as domain
from bot.domain import recording
from bot.domain.escalation import Escalation
from bot.domain.timeline import Event
from bot.domain.timers import Timer, digest_timer, followup_offsets
from bot.services.escalations import Escalations
from bot.services.ports import Timers
from bot.slack import blocks
from bot.slack.gateway import RoomGone, SlackGateway, describe
from bot.store import Store
from protocols.schema import Protocol

log = logging.getLogger(__name__)

Record = Callable[[Escalation], tuple[Escalation, list[Event]]]
# Builds the weekly digest for (week start, week end).
DigestBuilder = Callable[[datetime, datetime], blocks.Message]


@dataclass
class TimerFiring:
    store: Store
    escalations: Escalations
    timers: Timers
    gateway: SlackGateway
    protocol: Protocol
    clock: Clock
    # Where the weekly digest goes, and what builds it; without both there is no digest.
    exec_channel: str | None = None
    digest: DigestBuilder | None = None
    # How long one firing may take before another process may try it again.
    firing_seconds: int = 120

    @property
    def clock_scale(self) -> float:
        return self.escalations.clock_scale

    # -- the job functions' targets (bot/jobs.py) ------------------------------------------
    def fire_deadline(self, esc_id: str, step_id: str) -> None:
        esc = self.escalations.get(esc_id)
        state = domain.reminder_due(esc, step_id) if esc else None
        if esc is None or state is None or state.due_at is None:
            return
        step = self.protocol.step(step_id)
        vps = esc.vps if step.notify_vp else ()
        message = blocks.overdue_reminder(esc, step.title, step.id, state.due_at, vps)
        self._fire_once(
            f"deadline:{esc_id}:{step_id}",
            lambda: self.gateway.post(esc.channel_id, message),
            lambda seconds: self._retry_later(esc, seconds),
            esc,
            lambda e: domain.note_reminder(e, step_id, self.clock()),
        )

    def fire_nudge(self, esc_id: str, due: str) -> None:
        esc = self.escalations.get(esc_id)
        when = datetime.fromisoformat(due)
        step = self.protocol.update_step
        if esc is None or step is None or step.every is None:
            return
        if not domain.nudge_due(esc, self.protocol, when):
            return
        vps = esc.vps if step.notify_vp else ()
        message = blocks.update_nudge(esc, step.every / self.clock_scale, vps)
        self._fire_once(
            f"nudge:{esc_id}:{int(when.timestamp() * 1000)}",
            lambda: self.gateway.post(esc.channel_id, message),
            lambda seconds: self._retry_later(esc, seconds),
            esc,
            lambda e: domain.note_nudge(e, self.protocol, when, self.clock(), self.clock_scale),
        )

    def fire_follow_up(self, esc_id: str, index: str) -> None:
        esc = self.escalations.get(esc_id)
        i = int(index)
        if esc is None or not domain.followup_due(esc, i):
            return
        offsets = followup_offsets(self.protocol)
        if i >= len(offsets):
            return
        what = (
            "confirm with the customer that they are satisfied with the resolution"
            if i == 0
            else "the post-incident review is due: mention me with `review`"
        )
        message = blocks.follow_up(esc, i, len(offsets), offsets[i] / self.clock_scale, what)
        self._fire_once(
            f"follow_up:{esc_id}:{i}",
            lambda: self.gateway.post(esc.channel_id, message),
            lambda seconds: self._retry_later(esc, seconds),
            esc,
            lambda e: domain.note_followup(e, i, self.clock()),
        )

    def fire_action(self, esc_id: str, action_id: str) -> None:
        """An action item fell due: its owner is reminded in the room, once."""
        esc = self.escalations.get(esc_id)
        item = recording.action_reminder_due(esc, action_id) if esc else None
        if esc is None or item is None:
            return
        message = blocks.action_reminder(item)
        self._fire_once(
            f"action:{esc_id}:{action_id}",
            lambda: self.gateway.post(esc.channel_id, message),
            lambda seconds: self._retry_later(esc, seconds),
            esc,
            lambda e: recording.note_action_reminder(e, action_id, self.clock()),
        )

    def fire_digest(self, week: str) -> None:
        """The weekly digest to the exec channel, once; then the next week's is scheduled."""
        channel, build = (self.exec_channel or "").lstrip("#"), self.digest
        if not channel or build is None:
            return
        now = self.clock()
        message = build(now - timedelta(days=7), now)  # the seven days up to now
        this = digest_timer(now - timedelta(days=7))

        def retry(seconds: float) -> None:
            later = self.clock() + timedelta(seconds=seconds)
            self.timers.schedule(replace(this, id=f"digest:{week}", detail=week, at=later))

        self._fire_once(f"digest:{week}", lambda: self.gateway.post(channel, message), retry)
        self.timers.schedule(digest_timer(now + timedelta(minutes=1)))

    # -- exactly once ------------------------------------------------------------------------
    def _fire_once(
        self,
        name: str,
        post: Callable[[], object],
        retry: Callable[[float], None],
        esc: Escalation | None = None,
        record: Record | None = None,
    ) -> None:
        """Post at most once across every process, and never lose the firing: an attempt that
        fails, or that another process has under way, is tried again later."""
        claim = self.store.begin_once(name, ttl=self.firing_seconds)
        if claim == "done":
            return
        if claim != "mine":
            retry(float(claim) + 1)
            return
        try:
            post()
        except RoomGone as e:
            # The room was archived, deleted or closed to the bot: no retry can post there.
            log.warning("%s not posted, the channel is gone (%s)", name, e.code)
        except Exception as e:
            log.error("posting %s failed (%s); retrying", name, describe(e))
            self.store.abandon_once(name)
            retry(30)
            return
        if esc is not None and record is not None:
            self.escalations.update(esc.id, record)
        self.store.finish_once(name)

    def _retry_later(self, esc: Escalation, seconds: float) -> None:
        later = self.clock() + timedelta(seconds=seconds)
        for timer in self.escalations.timers_for(esc):
            if timer.at <= self.clock():
                self.timers.schedule(replace(timer, at=later))

    # -- the safety net ----------------------------------------------------------------------
    def reconcile(self) -> tuple[int, int]:
        """Make the job store hold exactly the timers every escalation's state calls for.

        Runs when a process becomes the scheduler's leader. Returns (scheduled, cancelled)."""
        ids = sorted({*self.store.open_ids(), *self.store.following_up_ids()})
        wanted: dict[str, Timer] = {}
        for esc in self.store.get_many(ids):
            for timer in self.escalations.timers_for(esc):
                wanted[timer.id] = timer
        present = self.timers.job_ids()
        if self.exec_channel and self.digest is not None:
            # the weekly digest; one already due (the leader was down on Monday) fires late
            for job in present:
                if job.startswith("digest:"):
                    week = job.removeprefix("digest:")
                    wanted[job] = replace(digest_timer(self.clock()), id=job, detail=week)
            if not any(t.startswith("digest:") for t in wanted):
                weekly = digest_timer(self.clock())
                wanted[weekly.id] = weekly
        self.timers.cancel_many(present - wanted.keys())
        self.timers.schedule_many(wanted[t] for t in wanted.keys() - present)
        log.info(
            "timers reconciled: %d scheduled, %d cancelled, %d kept",
            len(wanted.keys() - present),
            len(present - wanted.keys()),
            len(wanted.keys() & present),
        )
        return len(wanted.keys() - present), len(present - wanted.keys())

"""Firing timers: overdue reminders, status-update nudges, follow-ups after resolution and the
weekly digest; and reconciling the job store with what every escalation's state calls for.

A firing re-reads the escalation (the step may be done by now), is claimed with an idempotency
key so that no two processes post it, carries that key in the message so that a post whose
answer was lost is found instead of repeated, and is never lost: a failed attempt, or one
another process has under way, is scheduled again with backoff, and the leader's periodic
reconcile puts back any timer whose retry could not even be written.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from bot.clock import Clock
from bot.domain import escalation as domain
from bot.domain import recording
from bot.domain.escalation import Escalation
from bot.domain.timeline import Event
from bot.domain.timers import Timer, TimerKind, digest_timer, followup_offsets, timer_id
from bot.services.escalations import Escalations
from bot.services.ports import Timers
from bot.slack import blocks
from bot.slack.gateway import RoomGone, SlackGateway, answer_lost, describe
from bot.store import Store
from protocols.schema import Protocol

log = logging.getLogger(__name__)


class _Later(Exception):
    """Another process's attempt at this firing is under way: look again in `seconds`."""

    def __init__(self, seconds: float) -> None:
        super().__init__(seconds)
        self.seconds = seconds


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
    # A failed firing is tried again after this long, doubling to at most the maximum.
    retry_seconds: float = 30.0
    max_retry_seconds: float = 600.0
    # Tries a letter not sent yet again ("draft:route"); set by the runtime.
    deliver: Callable[[str, str], None] | None = None
    _failures: dict[str, int] = field(default_factory=dict)

    @property
    def clock_scale(self) -> float:
        return self.escalations.clock_scale

    # -- the job functions' targets (bot/jobs.py) ------------------------------------------
    def fire_deadline(self, esc_id: str, step_id: str) -> None:
        self.fire(TimerKind.DEADLINE, esc_id, step_id)

    def fire_nudge(self, esc_id: str, due: str) -> None:
        self.fire(TimerKind.NUDGE, esc_id, due)

    def fire_promise(self, esc_id: str, promised: str) -> None:
        """The update promised to the customer is close: the IC is reminded, once."""
        self.fire(TimerKind.PROMISE, esc_id, promised)

    def fire_follow_up(self, esc_id: str, index: str) -> None:
        self.fire(TimerKind.FOLLOW_UP, esc_id, index)

    def fire_action(self, esc_id: str, action_id: str) -> None:
        """An action item fell due: its owner is reminded in the room, once."""
        self.fire(TimerKind.ACTION, esc_id, action_id)

    def fire_digest(self, week: str) -> None:
        """The weekly digest to the exec channel, once; then the next week's is scheduled."""
        self.fire(TimerKind.DIGEST, "", week)

    def fire_delivery(self, esc_id: str, letter: str) -> None:
        """A letter that failed in a way that may pass is tried again (it records its result,
        and the next try if there is one)."""
        self.fire(TimerKind.DELIVERY, esc_id, letter)

    def fire(self, kind: TimerKind, esc_id: str, detail: str) -> None:
        """One firing, never lost: whatever goes wrong (Redis gone between two writes, Slack
        down, an answer lost), the timer is scheduled again, sooner for a blip and later for an
        outage, until it has posted once or the escalation no longer needs it. If even that
        cannot be written, the leader's periodic reconcile puts the timer back."""
        job = timer_id(kind, esc_id, detail)
        try:
            self._firings[kind](esc_id, detail)
        except _Later as later:
            delay = later.seconds
        except Exception as e:
            failures = self._failures[job] = self._failures.get(job, 0) + 1
            delay = min(self.retry_seconds * 2 ** (failures - 1), self.max_retry_seconds)
            log.warning("firing %s failed (%s); trying again in %.0f s", job, describe(e), delay)
        else:
            self._failures.pop(job, None)
            return
        try:
            at = self.clock() + timedelta(seconds=delay)
            self.timers.schedule(Timer(job, kind, at, esc_id, detail))
        except Exception as e:
            log.error("firing %s not rescheduled (%s); reconcile will restore it", job, describe(e))

    @property
    def _firings(self) -> dict[TimerKind, Callable[[str, str], None]]:
        return {
            TimerKind.DEADLINE: self._deadline,
            TimerKind.NUDGE: self._nudge,
            TimerKind.PROMISE: self._promise,
            TimerKind.FOLLOW_UP: self._follow_up,
            TimerKind.ACTION: self._action,
            TimerKind.DIGEST: lambda _esc_id, week: self._digest(week),
            TimerKind.DELIVERY: self._delivery,
        }

    def _delivery(self, esc_id: str, letter: str) -> None:
        if self.deliver is not None:
            self.deliver(esc_id, letter)

    def _deadline(self, esc_id: str, step_id: str) -> None:
        esc = self.escalations.get(esc_id)
        state = domain.reminder_due(esc, step_id) if esc else None
        if esc is None or state is None or state.due_at is None:
            return
        step = self.protocol.step(step_id)
        vps = esc.vps if step.notify_vp else ()
        self._fire_once(
            f"deadline:{esc_id}:{step_id}",
            esc.channel_id,
            blocks.overdue_reminder(esc, step.title, step.id, state.due_at, vps),
            esc,
            lambda e: domain.note_reminder(e, step_id, self.clock()),
        )

    def _nudge(self, esc_id: str, due: str) -> None:
        esc = self.escalations.get(esc_id)
        when = datetime.fromisoformat(due)
        step = self.protocol.update_step
        if esc is None or step is None or step.every is None:
            return
        if not domain.nudge_due(esc, self.protocol, when):
            return
        # The customer was promised an update by now: the VPs hear of it too.
        promised = when if domain.promised_update(esc) == when else None
        vps = esc.vps if step.notify_vp or promised else ()
        self._fire_once(
            f"nudge:{esc_id}:{int(when.timestamp() * 1000)}",
            esc.channel_id,
            blocks.update_nudge(esc, step.every / self.clock_scale, vps, promised),
            esc,
            lambda e: domain.note_nudge(e, self.protocol, when, self.clock(), self.clock_scale),
        )

    def _promise(self, esc_id: str, promised: str) -> None:
        esc = self.escalations.get(esc_id)
        when = datetime.fromisoformat(promised)
        # A later letter, an update that kept it, or the resolution: nothing to remind.
        if esc is None or esc.status is not domain.Status.INVESTIGATING:
            return
        if domain.promised_update(esc) != when:
            return
        self._fire_once(
            f"promise:{esc_id}:{int(when.timestamp() * 1000)}",
            esc.channel_id,
            blocks.promise_reminder(esc, when),
        )

    def _follow_up(self, esc_id: str, index: str) -> None:
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
        self._fire_once(
            f"follow_up:{esc_id}:{i}",
            esc.channel_id,
            blocks.follow_up(esc, i, len(offsets), offsets[i] / self.clock_scale, what),
            esc,
            lambda e: domain.note_followup(e, i, self.clock()),
        )

    def _action(self, esc_id: str, action_id: str) -> None:
        esc = self.escalations.get(esc_id)
        item = recording.action_reminder_due(esc, action_id) if esc else None
        if esc is None or item is None:
            return
        self._fire_once(
            f"action:{esc_id}:{action_id}",
            esc.channel_id,
            blocks.action_reminder(item),
            esc,
            lambda e: recording.note_action_reminder(e, action_id, self.clock()),
        )

    def _digest(self, week: str) -> None:
        channel, build = (self.exec_channel or "").lstrip("#"), self.digest
        if not channel or build is None:
            return
        now = self.clock()
        message = build(now - timedelta(days=7), now)  # the seven days up to now
        self._fire_once(f"digest:{week}", channel, message)
        self.timers.schedule(digest_timer(now + timedelta(minutes=1)))

    # -- exactly once ------------------------------------------------------------------------
    def _fire_once(
        self,
        name: str,
        channel: str,
        message: blocks.Message,
        esc: Escalation | None = None,
        record: Record | None = None,
    ) -> None:
        """Post at most once across every process, then record it. The order makes every
        fault safe to retry: the post carries `name` as its key, so a post whose answer was
        lost, or whose attempt died before saying so, is found rather than posted again; the
        claim is marked done the moment the post is known; and recording it, idempotent, is
        done again by any retry that finds the claim done. Raises what went wrong (the caller
        schedules the retry), or `_Later` while another process's attempt is under way."""
        claim = self.store.begin_once(name, ttl=self.firing_seconds)
        if isinstance(claim, float):
            raise _Later(claim + 1)
        if claim != "done":
            try:
                found = self.gateway.find_posted(channel, name) if claim == "check" else None
                if found is None:
                    self.gateway.post(channel, message, key=name)
                else:
                    log.info("%s was posted by an attempt that lost its answer", name)
            except RoomGone as e:
                # The room was archived, deleted or closed to the bot: no retry can post there.
                log.warning("%s not posted, the channel is gone (%s)", name, e.code)
            except Exception as e:
                self.store.abandon_once(name, unsure=answer_lost(e))
                raise
            self.store.finish_once(name)
        if esc is not None and record is not None:
            self.escalations.update(esc.id, record)

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

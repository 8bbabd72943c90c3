"""Which timers an escalation needs, derived from its state alone (pure).

The scheduler's jobs are a cache of this function: after every change the service schedules
what is new and cancels what is gone, and at start the leader reconciles the whole store
against it. Ids are deterministic, so scheduling twice is harmless.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from bot.domain.escalation import Escalation, Status, followup_due, reminder_due, scaled
from bot.domain.recording import action_reminder_due
from protocols.schema import Protocol


class TimerKind(StrEnum):
    DEADLINE = "deadline"  # a step's overdue reminder
    NUDGE = "nudge"  # no status update for an interval
    FOLLOW_UP = "follow_up"  # after resolution
    ACTION = "action"  # an action item falls due: its owner is reminded
    DIGEST = "digest"  # the weekly digest to the exec channel (not tied to one escalation)


@dataclass(frozen=True)
class Timer:
    id: str
    kind: TimerKind
    at: datetime
    escalation: str
    # deadline: the step id; nudge: the due time (ISO); follow-up: the index, as text;
    # action: the action item's id.
    detail: str


def timer_id(kind: TimerKind, esc_id: str, detail: str) -> str:
    """The one id of the timer of `kind` for an escalation and detail: scheduling it again
    replaces it."""
    if kind is TimerKind.DIGEST:
        return f"digest:{detail}"
    if kind is TimerKind.NUDGE:
        return f"{esc_id}:nudge:{int(datetime.fromisoformat(detail).timestamp() * 1000)}"
    return f"{esc_id}:{kind}:{detail}"


def timer_prefix(esc_id: str) -> str:
    return f"{esc_id}:"


def timers_for(esc: Escalation, protocol: Protocol, clock_scale: float) -> list[Timer]:
    timers: list[Timer] = []
    if esc.status is Status.INVESTIGATING:
        for step in protocol.deadline_steps:
            state = reminder_due(esc, step.id)
            if state is not None and state.due_at is not None:
                timers.append(
                    Timer(
                        timer_id(TimerKind.DEADLINE, esc.id, step.id),
                        TimerKind.DEADLINE,
                        state.due_at,
                        esc.id,
                        step.id,
                    )
                )
        update = protocol.update_step
        if update is not None and update.id in {s.id for s in esc.steps}:
            due = esc.step(update.id).due_at
            if due is not None:
                timers.append(
                    Timer(
                        timer_id(TimerKind.NUDGE, esc.id, due.isoformat()),
                        TimerKind.NUDGE,
                        due,
                        esc.id,
                        due.isoformat(),
                    )
                )
    elif esc.resolved_at is not None:
        index = 0
        for step in protocol.followup_steps:
            for offset in step.after_resolution:
                if followup_due(esc, index):
                    timers.append(
                        Timer(
                            timer_id(TimerKind.FOLLOW_UP, esc.id, str(index)),
                            TimerKind.FOLLOW_UP,
                            esc.resolved_at + scaled(offset, clock_scale),
                            esc.id,
                            str(index),
                        )
                    )
                index += 1
    # Action items outlive the resolution: their owners are reminded whenever they fall due.
    for item in esc.actions:
        if action_reminder_due(esc, item.id) is not None and item.due_at is not None:
            timers.append(
                Timer(
                    timer_id(TimerKind.ACTION, esc.id, item.id),
                    TimerKind.ACTION,
                    item.due_at,
                    esc.id,
                    item.id,
                )
            )
    return timers


def followup_offsets(protocol: Protocol) -> list[timedelta]:
    return [o for step in protocol.followup_steps for o in step.after_resolution]


def digest_timer(now: datetime, weekday: int = 0, hour: int = 9) -> Timer:
    """The next weekly digest: Mondays at 09:00 UTC, covering the week before."""
    day = now.replace(hour=hour, minute=0, second=0, microsecond=0)
    day += timedelta(days=(weekday - day.weekday()) % 7)
    if day <= now:
        day += timedelta(days=7)
    week = day.strftime("%G-W%V")
    return Timer(timer_id(TimerKind.DIGEST, "", week), TimerKind.DIGEST, day, "", week)

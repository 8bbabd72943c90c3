"""Which timers an escalation needs, derived from its state alone (pure).

The scheduler's jobs are a cache of this function: after every change the service schedules
what is new and cancels what is gone, and at start the leader reconciles the whole store
against it. Ids are deterministic, so scheduling twice is harmless.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from bot.domain.delivery import LetterStatus
from bot.domain.escalation import (
    Escalation,
    Status,
    followup_due,
    promised_update,
    reminder_due,
    scaled,
)
from bot.domain.recording import action_reminder_due
from protocols.schema import Protocol


class TimerKind(StrEnum):
    DEADLINE = "deadline"  # a step's overdue reminder
    NUDGE = "nudge"  # no status update for an interval
    PROMISE = "promise"  # the update promised to the customer is close
    FOLLOW_UP = "follow_up"  # after resolution
    ACTION = "action"  # an action item falls due: its owner is reminded
    DIGEST = "digest"  # the weekly digest to the exec channel (not tied to one escalation)
    DELIVERY = "delivery"  # a letter not sent yet is tried again


@dataclass(frozen=True)
class Timer:
    id: str
    kind: TimerKind
    at: datetime
    escalation: str
    # deadline: the step id; nudge: the due time (ISO); follow-up: the index, as text;
    # action: the action item's id; delivery: "draft:route".
    detail: str


def timer_id(kind: TimerKind, esc_id: str, detail: str) -> str:
    """The one id of the timer of `kind` for an escalation and detail: scheduling it again
    replaces it."""
    if kind is TimerKind.DIGEST:
        return f"digest:{detail}"
    if kind in (TimerKind.NUDGE, TimerKind.PROMISE):
        return f"{esc_id}:{kind}:{int(datetime.fromisoformat(detail).timestamp() * 1000)}"
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
        ahead = promise_reminder(esc, clock_scale)
        if ahead is not None:
            promised, at = ahead
            timers.append(
                Timer(
                    timer_id(TimerKind.PROMISE, esc.id, promised.isoformat()),
                    TimerKind.PROMISE,
                    at,
                    esc.id,
                    promised.isoformat(),
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
    # A letter that failed in a way that may pass is tried again (the resolution notice too).
    for sent in esc.letters:
        if sent.status is LetterStatus.FAILED and sent.retry_at is not None:
            timers.append(
                Timer(
                    timer_id(TimerKind.DELIVERY, esc.id, sent.key),
                    TimerKind.DELIVERY,
                    sent.retry_at,
                    esc.id,
                    sent.key,
                )
            )
    return timers


# How long before the time promised to the customer the IC is reminded of it.
PROMISE_LEAD = timedelta(minutes=15)


def promise_reminder(esc: Escalation, clock_scale: float) -> tuple[datetime, datetime] | None:
    """The update promised to the customer and when to remind the IC of it: a quarter of an
    hour before, in the escalation's clock; None when no open promise is on record, or the
    letter promised less than that."""
    promised = promised_update(esc)
    if esc.status is not Status.INVESTIGATING or promised is None or not esc.facts.told:
        return None
    at = promised - scaled(PROMISE_LEAD, clock_scale)
    return (promised, at) if at > esc.facts.told[-1].at else None


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

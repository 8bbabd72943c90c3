"""The escalation: its state, how a declaration becomes one, and the steps' deadlines.

Plain Python over the protocol definition. Functions take `now` and return new values;
nothing here talks to Slack, Redis or the model.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict

from bot.domain.errors import InvalidInput
from bot.domain.timeline import Event, EventKind, event
from protocols.schema import Protocol


class Status(StrEnum):
    INVESTIGATING = "investigating"
    RESOLVED = "resolved"

    @property
    def label(self) -> str:
        return self.value.capitalize()


class StepState(BaseModel):
    """Where one protocol step stands. `due_at` is None for steps without a fixed deadline."""

    model_config = ConfigDict(frozen=True)

    id: str
    due_at: AwareDatetime | None = None
    done_at: AwareDatetime | None = None
    done_by: str | None = None

    @property
    def done(self) -> bool:
        return self.done_at is not None

    def overdue(self, now: datetime) -> bool:
        return not self.done and self.due_at is not None and now >= self.due_at


class Escalation(BaseModel):
    """One escalation; its id is its channel's name. `version` guards concurrent writes."""

    model_config = ConfigDict(frozen=True)

    id: str
    channel_id: str
    customer: str
    summary: str
    arr: int | None = None
    criteria: tuple[str, ...] = ()
    ic: str
    declarer: str
    vps: tuple[str, ...] = ()
    private: bool = False
    declared_at: AwareDatetime
    status: Status = Status.INVESTIGATING
    protocol_id: str
    protocol_version: int
    steps: tuple[StepState, ...] = ()
    brief_ts: str | None = None
    last_update_at: AwareDatetime | None = None
    resolved_at: AwareDatetime | None = None
    version: int = 0

    def step(self, step_id: str) -> StepState:
        for step in self.steps:
            if step.id == step_id:
                return step
        raise KeyError(step_id)

    def next_deadline(self) -> StepState | None:
        pending = [s for s in self.steps if not s.done and s.due_at is not None]
        return min(pending, key=lambda s: s.due_at) if pending else None  # type: ignore[arg-type, return-value]

    def to_json(self) -> str:
        return self.model_dump_json()

    @classmethod
    def from_json(cls, raw: str | bytes) -> Escalation:
        return cls.model_validate_json(raw)


@dataclass(frozen=True)
class Declaration:
    """A validated request to open a war room, wherever it came from (command or form)."""

    customer: str
    summary: str
    declarer: str
    arr: int | None = None
    ic: str | None = None
    criteria: tuple[str, ...] = ()
    private: bool = False


def scaled(duration: timedelta, clock_scale: float) -> timedelta:
    """A protocol duration under WARROOM_CLOCK_SCALE (drills and tests run faster)."""
    return duration / clock_scale


def effective_criteria(
    requested: Iterable[str], arr: int | None, protocol: Protocol
) -> tuple[str, ...]:
    """The requested criteria plus those the ARR implies (ARR of $100K or more), in file order."""
    chosen = set(requested)
    if arr is not None:
        chosen.update(c.id for c in protocol.criteria_for_arr(arr))
    return tuple(c for c in protocol.criterion_ids if c in chosen)


def initial_steps(
    protocol: Protocol, declared_at: datetime, clock_scale: float
) -> tuple[StepState, ...]:
    """Every protocol step with its absolute deadline, measured from the declaration."""
    steps = []
    for step in protocol.steps:
        due = None
        if step.due is not None:
            due = declared_at + scaled(step.due, clock_scale)
        elif step.every is not None:
            due = declared_at + scaled(step.every, clock_scale)
        steps.append(StepState(id=step.id, due_at=due))
    return tuple(steps)


def choose_ic(requested: str | None, rotation_pick: str | None, declarer: str) -> str:
    """`--ic` wins; else the next commander in the rotation; else the declarer."""
    return requested or rotation_pick or declarer


def open_escalation(
    *,
    id: str,
    channel_id: str,
    declaration: Declaration,
    ic: str,
    vps: Iterable[str],
    protocol: Protocol,
    now: datetime,
    clock_scale: float,
    ic_source: str,
    bot_user_id: str | None = None,
) -> tuple[Escalation, list[Event]]:
    """The escalation as the room opens, and its first timeline events.

    Opening the room is the protocol's war-room activation, so that step is done the moment
    the channel is ready: the team is assembled, the IC assigned, the exec channel told.
    """
    criteria = effective_criteria(declaration.criteria, declaration.arr, protocol)
    steps = initial_steps(protocol, now, clock_scale)
    war_room_step = "war_room"
    steps = tuple(
        s.model_copy(update={"done_at": now, "done_by": bot_user_id})
        if s.id == war_room_step
        else s
        for s in steps
    )
    esc = Escalation(
        id=id,
        channel_id=channel_id,
        customer=declaration.customer,
        summary=declaration.summary,
        arr=declaration.arr,
        criteria=criteria,
        ic=ic,
        declarer=declaration.declarer,
        vps=tuple(dict.fromkeys(vps)),
        private=declaration.private,
        declared_at=now,
        protocol_id=protocol.id,
        protocol_version=protocol.version,
        steps=steps,
    )
    events = [
        event(
            now,
            EventKind.DECLARED,
            declaration.declarer,
            declaration.summary,
            customer=declaration.customer,
            arr=declaration.arr,
            criteria=list(criteria),
            private=declaration.private,
        ),
        event(
            now,
            EventKind.IC_ASSIGNED,
            declaration.declarer,
            f"<@{ic}> is incident commander",
            ic=ic,
            source=ic_source,
        ),
    ]
    if any(s.id == war_room_step for s in steps):
        events.append(
            event(now, EventKind.STEP_DONE, bot_user_id, "War room opened", step=war_room_step)
        )
    return esc, events


def invitees(esc: Escalation, others: Iterable[str], exclude: Iterable[str] = ()) -> list[str]:
    """Everyone to invite, people only, in a stable order, without repeats or excluded ids."""
    skip = set(exclude)
    ordered = [esc.declarer, esc.ic, *esc.vps, *others]
    return [u for u in dict.fromkeys(ordered) if u and u not in skip]


def mark_step_done(
    esc: Escalation, step_id: str, user: str, now: datetime
) -> tuple[Escalation, list[Event]]:
    """Mark a step done once; marking it again changes nothing (two clicks, one effect)."""
    try:
        state = esc.step(step_id)
    except KeyError:
        known = ", ".join(s.id for s in esc.steps)
        raise InvalidInput(
            f"There is no step '{step_id}' in this escalation; steps: {known}."
        ) from None
    if state.done or esc.status is Status.RESOLVED:
        return esc, []
    steps = tuple(
        s.model_copy(update={"done_at": now, "done_by": user}) if s.id == step_id else s
        for s in esc.steps
    )
    return esc.model_copy(update={"steps": steps}), [
        event(now, EventKind.STEP_DONE, user, f"Step {step_id} done", step=step_id)
    ]

"""The escalation: its state, how a declaration becomes one, and the steps' deadlines.

Plain Python over the protocol definition. Functions take `now` and return new values;
nothing here talks to Slack, Redis or the model.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import AwareDatetime, Field

from bot.domain.declaration import Declaration
from bot.domain.delivery import SentLetter
from bot.domain.errors import InvalidInput
from bot.domain.facts import ActionItem, CustomerFacts
from bot.domain.record import Record
from bot.domain.tickets import LinkedTicket, OrgTickets
from bot.domain.timeline import Event, EventKind, event
from protocols.schema import Protocol


class Status(StrEnum):
    INVESTIGATING = "investigating"
    RESOLVED = "resolved"

    @property
    def label(self) -> str:
        return self.value.capitalize()


class StepState(Record):
    """Where one protocol step stands. `due_at` is None for steps without a fixed deadline."""

    id: str
    # For a recurring step (status updates), the time the next update is due.
    due_at: AwareDatetime | None = None
    done_at: AwareDatetime | None = None
    done_by: str | None = None
    # When the overdue reminder was posted: a step is reminded about once.
    reminded_at: AwareDatetime | None = None

    @property
    def done(self) -> bool:
        return self.done_at is not None

    def overdue(self, now: datetime) -> bool:
        return not self.done and self.due_at is not None and now >= self.due_at


class Escalation(Record):
    """One escalation; its id is its channel's name. `version` guards concurrent writes."""

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
    resolved_by: str | None = None
    resolution: str = ""
    # Indexes of the protocol's after-resolution follow-ups already posted.
    followups_sent: tuple[int, ...] = ()
    # What the customer may be told, and the action items taken on.
    facts: CustomerFacts = Field(default_factory=CustomerFacts)
    actions: tuple[ActionItem, ...] = ()
    # Every approved letter warroom sent (or tried to), one record per route.
    letters: tuple[SentLetter, ...] = ()
    # The support tickets linked to it, as last read; the organisation's tickets since the
    # impact began, as last counted; the account matched by a ticket's organisation when
    # the customer named is not a known account.
    tickets: tuple[LinkedTicket, ...] = ()
    org_tickets: OrgTickets | None = None
    surge_told: bool = False
    account: str | None = None
    version: int = 0

    @property
    def account_name(self) -> str:
        """The account's name in customer_insights.yaml: the one matched, else the customer."""
        return self.account or self.customer

    def step(self, step_id: str) -> StepState:
        for step in self.steps:
            if step.id == step_id:
                return step
        raise KeyError(step_id)

    def next_deadline(self) -> StepState | None:
        pending = [s for s in self.steps if not s.done and s.due_at is not None]
        return min(pending, key=lambda s: s.due_at) if pending else None  # type: ignore[arg-type, return-value]


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
    war_room_step = protocol.milestone_id("war_room")
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
        tickets=tuple(LinkedTicket(id=t) for t in declaration.tickets),
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
            "Incident commander assigned",
            ic=ic,
            source=ic_source,
        ),
    ]
    if war_room_step is not None:
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
    esc: Escalation, step_id: str, user: str, now: datetime, protocol: Protocol
) -> tuple[Escalation, list[Event]]:
    """Mark a step done once; marking it again changes nothing (two clicks, one effect).

    Steps counted from the resolution (follow-up) can be done only after it; the recurring
    update step is never "done", it ends with the resolution."""
    try:
        state = esc.step(step_id)
        step = protocol.step(step_id)
    except KeyError:
        known = ", ".join(f"`{s.id}`" for s in esc.steps)
        # Echoed only when it looks like an id: the message goes back into Slack.
        named = f" `{step_id}`" if _STEP_ID.fullmatch(step_id) else ""
        raise InvalidInput(
            f"There is no step{named} in this escalation; the steps are {known}."
        ) from None
    if step.every is not None:
        raise InvalidInput(
            f"'{step_id}' goes on until the escalation is resolved: record progress with "
            "`update <text>`, and finish with `resolve <summary>`."
        )
    if state.done:
        return esc, []
    resolved = esc.status is Status.RESOLVED
    if step.after_resolution and not resolved:
        raise InvalidInput(f"'{step_id}' comes after the resolution; resolve first.")
    if resolved and not step.after_resolution:
        return esc, []
    return _replace_step(esc, step_id, done_at=now, done_by=user), [
        event(now, EventKind.STEP_DONE, user, f"Step {step_id} done", step=step_id)
    ]


_STEP_ID = re.compile(r"[a-z][a-z0-9_]{0,63}")

# Every status change the product allows; anything else is refused with a message.
TRANSITIONS: frozenset[tuple[Status, Status]] = frozenset({(Status.INVESTIGATING, Status.RESOLVED)})


def check_transition(current: Status, target: Status) -> None:
    if (current, target) not in TRANSITIONS:
        if current is target:
            raise InvalidInput(f"This escalation is already {current.value}.")
        raise InvalidInput(f"An escalation cannot go from {current.value} to {target.value}.")


def _replace_step(esc: Escalation, step_id: str, **changes: object) -> Escalation:
    steps = tuple(s.model_copy(update=changes) if s.id == step_id else s for s in esc.steps)
    return esc.model_copy(update={"steps": steps})


def _require_open(esc: Escalation, what: str) -> None:
    if esc.status is Status.RESOLVED:
        raise InvalidInput(f"This escalation is resolved; {what} is no longer possible.")


def record_update(
    esc: Escalation, user: str, text: str, now: datetime, protocol: Protocol, clock_scale: float
) -> tuple[Escalation, list[Event]]:
    """A status update: on the timeline, and the next one is due an interval from now, or
    at the time the last approved letter promised the customer when that comes first (an
    internal update never moves the customer's promise later)."""
    text = text.strip()
    if not text:
        raise InvalidInput("Say what the update is: `update <what changed>`.")
    _require_open(esc, "recording an update")
    new = esc.model_copy(update={"last_update_at": now})
    step = protocol.update_step
    if step is not None and step.every is not None and step.id in {s.id for s in esc.steps}:
        due = now + scaled(step.every, clock_scale)
        promised = promised_update(esc)
        if promised is not None and now < promised < due:
            due = promised
        new = _replace_step(new, step.id, due_at=due)
    return new, [event(now, EventKind.UPDATE, user, text)]


def promised_update(esc: Escalation) -> datetime | None:
    """The next update the last approved letter promised the customer (None after a
    resolution notice, or when it promised no time)."""
    last = esc.facts.told[-1] if esc.facts.told else None
    return last.promised if last is not None and not last.resolved else None


def keep_promise(esc: Escalation, protocol: Protocol, now: datetime) -> Escalation:
    """The update clock runs to the time the last approved letter promised: the deadline the
    timers enforce is the customer's, so approving a letter never moves it later."""
    step = protocol.update_step
    promised = promised_update(esc)
    if (
        step is None
        or promised is None
        or promised <= now
        or esc.status is Status.RESOLVED
        or step.id not in {s.id for s in esc.steps}
    ):
        return esc
    return _replace_step(esc, step.id, due_at=promised)


def resolve(
    esc: Escalation, user: str, summary: str, now: datetime
) -> tuple[Escalation, list[Event]]:
    summary = summary.strip()
    if not summary:
        raise InvalidInput("Say how it was resolved: `resolve <summary>`.")
    check_transition(esc.status, Status.RESOLVED)
    new = esc.model_copy(
        update={
            "status": Status.RESOLVED,
            "resolved_at": now,
            "resolved_by": user,
            "resolution": summary,
        }
    )
    return new, [event(now, EventKind.RESOLVED, user, summary)]


def reassign_ic(
    esc: Escalation, user: str, new_ic: str, now: datetime
) -> tuple[Escalation, list[Event]]:
    _require_open(esc, "reassigning the incident commander")
    if new_ic == esc.ic:
        return esc, []
    return esc.model_copy(update={"ic": new_ic}), [
        event(
            now,
            EventKind.IC_ASSIGNED,
            user,
            "Incident commander reassigned",
            ic=new_ic,
            previous=esc.ic,
            source="reassigned",
        )
    ]


# -- timers: what is due, and what firing one records ------------------------------------


def reminder_due(esc: Escalation, step_id: str) -> StepState | None:
    """The step, if an overdue reminder should be posted for it now."""
    if esc.status is Status.RESOLVED:
        return None
    try:
        state = esc.step(step_id)
    except KeyError:
        return None
    if state.done or state.reminded_at is not None or state.due_at is None:
        return None
    return state


def note_reminder(esc: Escalation, step_id: str, now: datetime) -> tuple[Escalation, list[Event]]:
    if reminder_due(esc, step_id) is None:
        return esc, []
    return _replace_step(esc, step_id, reminded_at=now), [
        event(now, EventKind.REMINDER, None, f"Step {step_id} overdue", step=step_id)
    ]


def nudge_due(esc: Escalation, protocol: Protocol, due: datetime) -> bool:
    """Whether the status-update nudge due at `due` should still be posted."""
    step = protocol.update_step
    if esc.status is Status.RESOLVED or step is None:
        return False
    try:
        return esc.step(step.id).due_at == due
    except KeyError:
        return False


def note_nudge(
    esc: Escalation, protocol: Protocol, due: datetime, now: datetime, clock_scale: float
) -> tuple[Escalation, list[Event]]:
    """The nudge for `due` was posted: the next one is an interval after it (again and again
    until an update or the resolution)."""
    step = protocol.update_step
    if not nudge_due(esc, protocol, due) or step is None or step.every is None:
        return esc, []
    interval = scaled(step.every, clock_scale)
    following = due + interval
    while following <= now:  # if the bot was down for several intervals, nudge once, not n times
        following += interval
    return _replace_step(esc, step.id, due_at=following), [
        event(now, EventKind.NUDGE, None, "Status update overdue", due=due.isoformat())
    ]


def followup_due(esc: Escalation, index: int) -> bool:
    return esc.status is Status.RESOLVED and index not in esc.followups_sent


def note_followup(esc: Escalation, index: int, now: datetime) -> tuple[Escalation, list[Event]]:
    if not followup_due(esc, index):
        return esc, []
    return esc.model_copy(update={"followups_sent": (*esc.followups_sent, index)}), [
        event(now, EventKind.FOLLOW_UP, None, f"Follow-up {index + 1}", index=index)
    ]


def record_customer_update(
    esc: Escalation,
    user: str,
    text: str,
    now: datetime,
    protocol: Protocol,
    clock_scale: float,
) -> tuple[Escalation, list[Event]]:
    """A person approved a customer update: it counts as a status update (the nudge clock
    restarts), and the first one completes the protocol's first-customer-contact step. After
    the resolution (the resolution notice) there is no update clock left to restart."""
    if esc.status is Status.RESOLVED:
        new = esc
    else:
        new, _ = record_update(esc, user, text, now, protocol, clock_scale)
    events = [event(now, EventKind.CUSTOMER_UPDATE, user, text)]
    first_contact_step = protocol.milestone_id("first_customer_contact")
    if (
        first_contact_step is not None
        and first_contact_step in {s.id for s in new.steps}
        and not new.step(first_contact_step).done
        and new.status is not Status.RESOLVED
    ):
        new = _replace_step(new, first_contact_step, done_at=now, done_by=user)
        events.append(
            event(
                now,
                EventKind.STEP_DONE,
                user,
                f"Step {first_contact_step} done",
                step=first_contact_step,
            )
        )
    return new, events

"""The escalation protocol's KPIs, computed from escalations and their timelines.

This module owns what each KPI means. It is pure: it takes the history (a list of
`(Escalation, timeline)` pairs), the protocol and `now`, and returns a frozen `Kpis`; it reads
no Redis, Slack or files. `bot.report` renders it; the App Home and the weekly digest call
`compute` on the same data.

Definitions (every duration is measured from the declaration, `declared_at`):

- **time to assessment**: until the protocol's `assessment` milestone step was done.
- **time to war room**: until the first `war_room_ready` event (the room was fully set up);
  without one, until the `war_room` milestone step was done.
- **time to first customer communication**: until the first `customer_update` event (an
  approved customer update, or for an account whose letters warroom sends, the letter sent);
  without one, until the `first_customer_contact` milestone step
  was done (marked by hand when the first word went out some other way, e.g. a call).
- **time to resolve**: until `resolved_at`.
  Each has median, p90 (nearest rank: the smallest value with at least 90% of the values at
  or below it) and mean over the escalations that have a value, and `missing`, the count
  that have none (not yet assessed, not yet resolved, ...).
- **update-cadence adherence**: the share of status-update deadlines met, the same deadlines
  the bot nudges on. See `update_cadence`.
- **customer promises kept**: of the next-update times the approved letters promised, the
  share the next letter met (a promise still ahead counts as neither). See
  `bot.domain.facts.promises_kept`.
- **follow-up within 24-48 h**: for resolved escalations, whether the follow-up step was done
  within the protocol's last follow-up offset (48 h) of the resolution. See `follow_up`.
- **SLA compliance** per deadline step and overall. See `step_sla`.
- counts by criterion, customer and (current) incident commander; open vs resolved;
  escalations declared per ISO week.

Durations a protocol sets (update interval, follow-up window) are the ones the escalation
actually ran with: an escalation opened under WARROOM_CLOCK_SCALE has every deadline scaled,
and that scale is read back from its own deadline steps (`clock_scale_of`).
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from bot.domain.escalation import Escalation, Status
from bot.domain.facts import promises_kept
from bot.domain.timeline import Event, EventKind
from protocols.schema import Protocol

__all__ = [
    "RESOLUTION_TARGET",
    "SLA_TARGET",
    "CountRow",
    "DurationStats",
    "EscalationKpis",
    "History",
    "Kpis",
    "OpenEscalation",
    "Share",
    "StepSla",
    "Target",
    "clock_scale_of",
    "compute",
    "duration_stats",
    "follow_up",
    "iso_week",
    "per_week",
    "step_sla",
    "time_to_assessment",
    "time_to_first_customer_communication",
    "time_to_resolve",
    "time_to_war_room",
    "update_cadence",
]

History = Sequence[tuple[Escalation, Sequence[Event]]]

# The protocol's targets ("Key Performance Indicators" → "Operational Metrics").
SLA_TARGET = 0.98  # SLA compliance > 98%
RESOLUTION_TARGET = timedelta(hours=24)  # average resolution time < 24 hours

# Whether a deadline was met: "met", "missed", or None while it is neither (not yet due).
Outcome = Literal["met", "missed"] | None


# -- result types -----------------------------------------------------------------------------


def _seconds(value: timedelta | None) -> float | None:
    return None if value is None else value.total_seconds()


@dataclass(frozen=True)
class DurationStats:
    """Median, p90 and mean of the escalations that have a value; `missing` have none."""

    count: int
    missing: int
    median: timedelta | None
    p90: timedelta | None
    mean: timedelta | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "missing": self.missing,
            "median_seconds": _seconds(self.median),
            "p90_seconds": _seconds(self.p90),
            "mean_seconds": _seconds(self.mean),
        }


@dataclass(frozen=True)
class Share:
    """`met` of `met + missed`; `share` is None when nothing was due."""

    met: int
    missed: int

    @property
    def due(self) -> int:
        return self.met + self.missed

    @property
    def share(self) -> float | None:
        return self.met / self.due if self.due else None

    def __add__(self, other: Share) -> Share:
        return Share(self.met + other.met, self.missed + other.missed)

    def to_dict(self) -> dict[str, Any]:
        return {"met": self.met, "missed": self.missed, "due": self.due, "share": self.share}


@dataclass(frozen=True)
class StepSla:
    """SLA compliance of one deadline step across the escalations."""

    step: str
    title: str
    deadline: timedelta  # the protocol's, unscaled
    result: Share

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "title": self.title,
            "deadline_seconds": _seconds(self.deadline),
            **self.result.to_dict(),
        }


@dataclass(frozen=True)
class CountRow:
    """One row of a count table: a key (criterion id, customer, IC), a label and a count."""

    key: str
    label: str
    count: int

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "label": self.label, "count": self.count}


@dataclass(frozen=True)
class Target:
    """A target from the source next to the actual value; `met` is None without data."""

    kpi: str
    target: str
    actual: float | None  # a share (0-1) or seconds, as `unit` says
    unit: Literal["share", "seconds"]
    met: bool | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "kpi": self.kpi,
            "target": self.target,
            "actual": self.actual,
            "unit": self.unit,
            "met": self.met,
        }


@dataclass(frozen=True)
class OpenEscalation:
    """An escalation still open at `now`: who runs it, how old, what is next and what is late."""

    id: str
    customer: str
    ic: str
    declared_at: datetime
    age: timedelta
    next_step: str | None
    next_due_at: datetime | None
    overdue_steps: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "customer": self.customer,
            "ic": self.ic,
            "declared_at": self.declared_at.isoformat(),
            "age_seconds": _seconds(self.age),
            "next_step": self.next_step,
            "next_due_at": self.next_due_at.isoformat() if self.next_due_at else None,
            "overdue_steps": list(self.overdue_steps),
        }


@dataclass(frozen=True)
class EscalationKpis:
    """Every per-escalation measure the aggregates are built from."""

    id: str
    customer: str
    status: Status
    declared_at: datetime
    resolved_at: datetime | None
    time_to_assessment: timedelta | None
    time_to_war_room: timedelta | None
    time_to_first_customer_communication: timedelta | None
    time_to_resolve: timedelta | None
    update_cadence: Share
    promises: Share  # next-update times the customer's letters promised, kept or missed
    follow_up: Outcome
    sla: tuple[tuple[str, Outcome], ...]  # (step id, outcome) per deadline step it has

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "customer": self.customer,
            "status": self.status.value,
            "declared_at": self.declared_at.isoformat(),
            "resolved_at": self.resolved_at.isoformat() if self.resolved_at else None,
            "time_to_assessment_seconds": _seconds(self.time_to_assessment),
            "time_to_war_room_seconds": _seconds(self.time_to_war_room),
            "time_to_first_customer_communication_seconds": _seconds(
                self.time_to_first_customer_communication
            ),
            "time_to_resolve_seconds": _seconds(self.time_to_resolve),
            "update_cadence": self.update_cadence.to_dict(),
            "promises": self.promises.to_dict(),
            "follow_up": self.follow_up,
            "sla": dict(self.sla),
        }


@dataclass(frozen=True)
class Kpis:
    """Everything `warroom report` shows, computed at `now` over the escalations given."""

    now: datetime
    since: datetime | None
    total: int
    open: int
    resolved: int
    time_to_assessment: DurationStats
    time_to_war_room: DurationStats
    time_to_first_customer_communication: DurationStats
    time_to_resolve: DurationStats
    update_interval: timedelta | None  # the protocol's, unscaled
    update_cadence: Share
    promises: Share  # the customer's promised update times, kept or missed
    follow_up_window: timedelta | None  # the protocol's, unscaled
    follow_up: Share
    follow_up_pending: int  # resolved, follow-up not done, window still open
    sla_by_step: tuple[StepSla, ...]
    sla_overall: Share
    targets: tuple[Target, ...]
    by_criterion: tuple[CountRow, ...]
    by_customer: tuple[CountRow, ...]
    by_ic: tuple[CountRow, ...]
    per_week: tuple[tuple[str, int], ...]  # ("2026-W48", count), consecutive weeks
    open_escalations: tuple[OpenEscalation, ...]
    escalations: tuple[EscalationKpis, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: datetimes as ISO 8601, durations in seconds, None when not applicable."""
        return {
            "now": self.now.isoformat(),
            "since": self.since.isoformat() if self.since else None,
            "escalations": {"total": self.total, "open": self.open, "resolved": self.resolved},
            "time_to_assessment": self.time_to_assessment.to_dict(),
            "time_to_war_room": self.time_to_war_room.to_dict(),
            "time_to_first_customer_communication": (
                self.time_to_first_customer_communication.to_dict()
            ),
            "time_to_resolve": self.time_to_resolve.to_dict(),
            "update_cadence": {
                "interval_seconds": _seconds(self.update_interval),
                **self.update_cadence.to_dict(),
            },
            "promises": self.promises.to_dict(),
            "follow_up": {
                "window_seconds": _seconds(self.follow_up_window),
                "pending": self.follow_up_pending,
                **self.follow_up.to_dict(),
            },
            "sla": {
                "overall": self.sla_overall.to_dict(),
                "steps": [s.to_dict() for s in self.sla_by_step],
            },
            "targets": [t.to_dict() for t in self.targets],
            "by_criterion": [r.to_dict() for r in self.by_criterion],
            "by_customer": [r.to_dict() for r in self.by_customer],
            "by_ic": [r.to_dict() for r in self.by_ic],
            "per_week": [{"week": week, "count": count} for week, count in self.per_week],
            "open_escalations": [o.to_dict() for o in self.open_escalations],
            "per_escalation": [e.to_dict() for e in self.escalations],
        }


# -- per-escalation measures ------------------------------------------------------------------


def _step_done_at(esc: Escalation, step_id: str | None) -> datetime | None:
    if step_id is None:
        return None
    try:
        return esc.step(step_id).done_at
    except KeyError:
        return None


def _first(events: Iterable[Event], kind: EventKind) -> datetime | None:
    times = [e.at for e in events if e.kind is kind]
    return min(times) if times else None


def _since_declared(esc: Escalation, at: datetime | None) -> timedelta | None:
    return None if at is None else at - esc.declared_at


def time_to_assessment(esc: Escalation, protocol: Protocol) -> timedelta | None:
    """Declaration to the assessment milestone done; None while it is not."""
    return _since_declared(esc, _step_done_at(esc, protocol.milestone_id("assessment")))


def time_to_war_room(
    esc: Escalation, events: Iterable[Event], protocol: Protocol
) -> timedelta | None:
    """Declaration to the first `war_room_ready` event, else to the war-room milestone done."""
    ready = _first(events, EventKind.WAR_ROOM_READY)
    return _since_declared(esc, ready or _step_done_at(esc, protocol.milestone_id("war_room")))


def time_to_first_customer_communication(
    esc: Escalation, events: Iterable[Event], protocol: Protocol
) -> timedelta | None:
    """Declaration to the first customer update (approved; sent, for an account whose letters
    warroom sends), else to the first-customer-contact
    milestone done (people may reach the customer another way and mark the step by hand)."""
    first = _first(events, EventKind.CUSTOMER_UPDATE)
    step = protocol.milestone_id("first_customer_contact")
    return _since_declared(esc, first or _step_done_at(esc, step))


def time_to_resolve(esc: Escalation) -> timedelta | None:
    """Declaration to resolution; None while open."""
    return _since_declared(esc, esc.resolved_at)


def clock_scale_of(esc: Escalation, protocol: Protocol) -> float:
    """The WARROOM_CLOCK_SCALE the escalation was opened with, read back from its deadlines.

    A `due` step's deadline never moves, so protocol deadline / stored deadline is the scale
    (1 for a normal escalation, 60 for a drill at 60x). 1 when no deadline step says.
    """
    for step in protocol.deadline_steps:
        try:
            due_at = esc.step(step.id).due_at
        except KeyError:
            continue
        if due_at is not None and step.due is not None and due_at > esc.declared_at:
            return step.due / (due_at - esc.declared_at)
    return 1.0


def _end_of_period(esc: Escalation, now: datetime) -> datetime:
    return esc.resolved_at if esc.resolved_at is not None else now


def _ceil_div(a: timedelta, b: timedelta) -> int:
    # Integer arithmetic on microseconds: float division could put an exact multiple a hair
    # above a whole number and count a deadline twice.
    return -(-a // b)


def update_cadence(
    esc: Escalation, events: Iterable[Event], interval: timedelta | None, now: datetime
) -> Share:
    """Status-update deadlines met and missed while the escalation was open.

    The moments that count as updates are `update` and `customer_update` events. Walking the
    open period [declared_at, resolved_at or now] as the bot's nudge clock does: the first
    update is due `interval` after the declaration; an update at or before the deadline meets
    it and the next is due `interval` after that update; a deadline that passes without one is
    missed and the next is due `interval` after the missed one (when the nudge repeats).
    Only deadlines that passed before the end of the period are scored, so an escalation
    shorter than one interval has nothing due, and a 10 h silence at a 2 h cadence is five
    misses, not one. `interval` is the one the escalation ran with (scaled); None (a protocol
    without a cadence) scores nothing.
    """
    if interval is None or interval <= timedelta(0):
        return Share(0, 0)
    end = _end_of_period(esc, now)
    updates = sorted(
        {
            e.at
            for e in events
            if e.kind in (EventKind.UPDATE, EventKind.CUSTOMER_UPDATE)
            and esc.declared_at < e.at <= end
        }
    )
    met = missed = 0
    anchor = esc.declared_at
    pending = iter(updates)
    update = next(pending, None)
    while True:
        while update is not None and update <= anchor:
            update = next(pending, None)
        if update is None:
            # No more updates: every deadline anchor + k*interval before the end is missed.
            missed += max(0, _ceil_div(end - anchor, interval) - 1)
            break
        # Deadlines strictly before the next update are missed (in arithmetic, not one by
        # one: a drill at a high clock scale can have thousands).
        skipped = _ceil_div(update - anchor, interval) - 1
        missed += skipped
        anchor += interval * skipped
        deadline = anchor + interval
        if deadline >= end:
            break  # the update came, but its deadline has not passed: not scored yet
        met += 1
        anchor = update
    return Share(met, missed)


def _followup_step(protocol: Protocol) -> tuple[str, timedelta] | None:
    """The follow-up step and its window (its last offset), unscaled; None without one."""
    for step in protocol.followup_steps:
        if step.after_resolution:
            return step.id, max(step.after_resolution)
    return None


def follow_up(esc: Escalation, protocol: Protocol, now: datetime) -> Outcome:
    """Whether the follow-up step was done within the window after resolution.

    The window is the follow-up step's last offset (48 h: the protocol's "24-48 hours
    post-resolution"), scaled like the escalation. "met": done at or before resolution +
    window; "missed": done later, or still not done once the window has passed; None: not
    resolved, the window still open, or no follow-up step.
    """
    found = _followup_step(protocol)
    if esc.resolved_at is None or found is None:
        return None
    step_id, window = found
    deadline = esc.resolved_at + window / clock_scale_of(esc, protocol)
    done_at = _step_done_at(esc, step_id)
    if done_at is not None:
        return "met" if done_at <= deadline else "missed"
    return "missed" if now > deadline else None


def step_sla(esc: Escalation, step_id: str, now: datetime) -> Outcome:
    """SLA outcome of one deadline step.

    "met": done at or before its `due_at`; "missed": done after it, or not done when its
    deadline passed while the escalation was open (before the resolution, or before `now`);
    None: not done and not yet due, or resolved before it fell due (never owed), or the
    escalation has no such step.
    """
    try:
        state = esc.step(step_id)
    except KeyError:
        return None
    if state.due_at is None:
        return None
    if state.done_at is not None:
        return "met" if state.done_at <= state.due_at else "missed"
    return "missed" if _end_of_period(esc, now) > state.due_at else None


# -- aggregates -------------------------------------------------------------------------------


def duration_stats(values: Iterable[timedelta | None]) -> DurationStats:
    """Median, p90 (nearest rank) and mean of the values that are not None."""
    all_values = list(values)
    present = sorted(v for v in all_values if v is not None)
    missing = len(all_values) - len(present)
    if not present:
        return DurationStats(0, missing, None, None, None)
    seconds = [v.total_seconds() for v in present]
    # Nearest rank, ceil(0.9 n), in integers: 0.9 * 70 is 63.00000000000001 in floats.
    p90 = present[-(-9 * len(present) // 10) - 1]
    return DurationStats(
        count=len(present),
        missing=missing,
        median=timedelta(seconds=statistics.median(seconds)),
        p90=p90,
        mean=timedelta(seconds=statistics.fmean(seconds)),
    )


def _tally(outcomes: Iterable[Outcome]) -> Share:
    counted = Counter(o for o in outcomes if o is not None)
    return Share(counted["met"], counted["missed"])


def _count_rows(counts: Counter[str], labels: dict[str, str] | None = None) -> tuple[CountRow, ...]:
    # Most first; ties in name order so the report is stable.
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0].casefold(), kv[0]))
    return tuple(CountRow(k, (labels or {}).get(k, k), n) for k, n in ordered)


def iso_week(at: datetime | date) -> str:
    """The ISO week of a moment (in UTC) or a date, as "2026-W48"."""
    if isinstance(at, datetime):
        at = at.astimezone(UTC)
    year, week, _ = at.isocalendar()
    return f"{year}-W{week:02d}"


def per_week(
    declared: Iterable[datetime], start: datetime | None = None, end: datetime | None = None
) -> tuple[tuple[str, int], ...]:
    """Declarations per ISO week, every week from `start` (else the first declaration) to
    `end` (else the last) included, weeks without any given as 0 so a chart has no gaps."""
    times = sorted(declared)
    first = start if start is not None else (times[0] if times else None)
    last = end if end is not None else (times[-1] if times else None)
    if first is None or last is None:
        return ()
    counts = Counter(iso_week(t) for t in times)
    day = first.astimezone(UTC).date()
    monday = day - timedelta(days=day.weekday())
    weeks = []
    while monday <= last.astimezone(UTC).date():
        weeks.append(iso_week(monday))
        monday += timedelta(days=7)
    # Declarations outside [start, end] still count, in their own weeks.
    extra = sorted(set(counts) - set(weeks))
    return tuple((w, counts.get(w, 0)) for w in sorted({*weeks, *extra}))


def _open_escalation(esc: Escalation, now: datetime) -> OpenEscalation:
    upcoming = esc.next_deadline()
    return OpenEscalation(
        id=esc.id,
        customer=esc.customer,
        ic=esc.ic,
        declared_at=esc.declared_at,
        age=now - esc.declared_at,
        next_step=upcoming.id if upcoming else None,
        next_due_at=upcoming.due_at if upcoming else None,
        overdue_steps=tuple(s.id for s in esc.steps if s.overdue(now)),
    )


def _measure(
    esc: Escalation, events: Sequence[Event], protocol: Protocol, now: datetime
) -> EscalationKpis:
    interval = protocol.update_interval
    if interval is not None:
        interval = interval / clock_scale_of(esc, protocol)
    return EscalationKpis(
        id=esc.id,
        customer=esc.customer,
        status=esc.status,
        declared_at=esc.declared_at,
        resolved_at=esc.resolved_at,
        time_to_assessment=time_to_assessment(esc, protocol),
        time_to_war_room=time_to_war_room(esc, events, protocol),
        time_to_first_customer_communication=time_to_first_customer_communication(
            esc, events, protocol
        ),
        time_to_resolve=time_to_resolve(esc),
        update_cadence=update_cadence(esc, events, interval, now),
        promises=Share(*promises_kept(esc.facts.told, now)),
        follow_up=follow_up(esc, protocol, now),
        sla=tuple((s.id, step_sla(esc, s.id, now)) for s in protocol.deadline_steps),
    )


def compute(
    history: History, protocol: Protocol, now: datetime, since: datetime | None = None
) -> Kpis:
    """Every KPI over `history` at `now`. `since`, when given, is where the period starts
    (the per-week counts then cover every week from it to `now`)."""
    escs = sorted(history, key=lambda pair: (pair[0].declared_at, pair[0].id))
    measured = tuple(_measure(esc, events, protocol, now) for esc, events in escs)

    sla_by_step = tuple(
        StepSla(
            step=step.id,
            title=step.title,
            deadline=step.due,  # type: ignore[arg-type]  # deadline_steps all have one
            result=_tally(dict(m.sla).get(step.id) for m in measured),
        )
        for step in protocol.deadline_steps
    )
    sla_overall = sum((s.result for s in sla_by_step), Share(0, 0))
    follow_ups = [m.follow_up for m in measured]
    resolve = duration_stats(m.time_to_resolve for m in measured)

    criterion_titles = {c.id: c.title for c in protocol.criteria}
    follow_up_step = _followup_step(protocol)
    resolved = sum(1 for m in measured if m.status is Status.RESOLVED)
    return Kpis(
        now=now,
        since=since,
        total=len(measured),
        open=len(measured) - resolved,
        resolved=resolved,
        time_to_assessment=duration_stats(m.time_to_assessment for m in measured),
        time_to_war_room=duration_stats(m.time_to_war_room for m in measured),
        time_to_first_customer_communication=duration_stats(
            m.time_to_first_customer_communication for m in measured
        ),
        time_to_resolve=resolve,
        update_interval=protocol.update_interval,
        update_cadence=sum((m.update_cadence for m in measured), Share(0, 0)),
        promises=sum((m.promises for m in measured), Share(0, 0)),
        follow_up_window=follow_up_step[1] if follow_up_step else None,
        follow_up=_tally(follow_ups),
        follow_up_pending=sum(
            1 for m, f in zip(measured, follow_ups, strict=True) if m.resolved_at and f is None
        ),
        sla_by_step=sla_by_step,
        sla_overall=sla_overall,
        targets=_targets(sla_overall, resolve),
        by_criterion=_count_rows(
            Counter(c for esc, _ in escs for c in esc.criteria), criterion_titles
        ),
        by_customer=_count_rows(Counter(esc.customer for esc, _ in escs)),
        by_ic=_count_rows(Counter(esc.ic for esc, _ in escs)),
        per_week=per_week(
            (esc.declared_at for esc, _ in escs), since, now if since is not None else None
        ),
        open_escalations=tuple(
            _open_escalation(esc, now) for esc, _ in escs if esc.status is not Status.RESOLVED
        ),
        escalations=measured,
    )


def _targets(sla: Share, resolve: DurationStats) -> tuple[Target, ...]:
    sla_share = sla.share
    mean = resolve.mean
    return (
        Target(
            kpi="SLA compliance",
            target=f"> {SLA_TARGET:.0%}",
            actual=sla_share,
            unit="share",
            met=None if sla_share is None else sla_share > SLA_TARGET,
        ),
        Target(
            kpi="Average resolution time",
            target=f"< {RESOLUTION_TARGET.total_seconds() / 3600:.0f}h",
            actual=_seconds(mean),
            unit="seconds",
            met=None if mean is None else mean < RESOLUTION_TARGET,
        ),
    )

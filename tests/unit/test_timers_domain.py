"""Timers derived from state, and the status transitions (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import product

import pytest

from bot.domain.authority import may_act
from bot.domain.declaration import Declaration
from bot.domain.errors import InvalidInput
from bot.domain.escalation import (
    TRANSITIONS,
    Status,
    check_transition,
    mark_step_done,
    note_followup,
    note_nudge,
    note_reminder,
    open_escalation,
    reassign_ic,
    record_update,
    resolve,
)
from bot.domain.timers import TimerKind, timers_for
from protocols.loader import load_protocol

NOW = datetime(2026, 11, 25, 17, 0, tzinfo=UTC)
P = load_protocol()


def esc0(scale: float = 1):
    esc, _ = open_escalation(
        id="e",
        channel_id="C1",
        declaration=Declaration(customer="Acme", summary="down", declarer="U0DECL"),
        ic="U0IC",
        vps=["U0VP"],
        protocol=P,
        now=NOW,
        clock_scale=scale,
        ic_source="rotation",
        bot_user_id="UBOT",
    )
    return esc


def kinds(esc, scale: float = 1) -> dict[str, datetime]:
    return {t.id: t.at for t in timers_for(esc, P, scale)}


@pytest.mark.parametrize(("current", "target"), list(product(Status, Status)))
def test_every_transition_pair(current: Status, target: Status) -> None:
    if (current, target) in TRANSITIONS:
        check_transition(current, target)
    else:
        with pytest.raises(InvalidInput):
            check_transition(current, target)


def test_a_new_escalation_needs_deadlines_and_a_nudge() -> None:
    assert kinds(esc0()) == {
        "e:deadline:assessment": NOW + timedelta(minutes=15),
        "e:deadline:customer_communication": NOW + timedelta(hours=1),
        f"e:nudge:{int((NOW + timedelta(hours=2)).timestamp() * 1000)}": NOW + timedelta(hours=2),
    }  # war_room is done by opening the room


def test_clock_scale_divides_every_timer() -> None:
    assert sorted(kinds(esc0(60), 60).values()) == [
        NOW + timedelta(seconds=15),
        NOW + timedelta(minutes=1),
        NOW + timedelta(minutes=2),
    ]


def test_done_and_reminded_steps_need_no_timer() -> None:
    esc, _ = mark_step_done(esc0(), "assessment", "U0IC", NOW, P)
    esc, _ = note_reminder(esc, "customer_communication", NOW + timedelta(hours=1))
    assert [t.kind for t in timers_for(esc, P, 1)] == [TimerKind.NUDGE]
    again, events = note_reminder(esc, "customer_communication", NOW + timedelta(hours=2))
    assert again == esc and events == []


def test_an_update_moves_the_nudge() -> None:
    later = NOW + timedelta(minutes=50)
    esc, events = record_update(esc0(), "U0IC", "rolling back", later, P, 1)
    assert esc.last_update_at == later and events[0].text == "rolling back"
    (nudge,) = [t for t in timers_for(esc, P, 1) if t.kind is TimerKind.NUDGE]
    assert nudge.at == later + timedelta(hours=2)
    with pytest.raises(InvalidInput, match="update"):
        record_update(esc, "U0IC", "  ", later, P, 1)


def test_a_nudge_schedules_the_next_one_once_even_after_a_long_outage() -> None:
    esc = esc0()
    due = NOW + timedelta(hours=2)
    nudged, events = note_nudge(esc, P, due, NOW + timedelta(hours=9), 1)
    assert len(events) == 1
    assert nudged.step("incident_management").due_at == NOW + timedelta(hours=10)
    stale, more = note_nudge(nudged, P, due, NOW + timedelta(hours=9), 1)
    assert stale == nudged and more == []  # that nudge was already posted


def test_resolution_replaces_every_timer_with_follow_ups() -> None:
    esc, events = resolve(esc0(), "U0IC", "rolled back", NOW + timedelta(hours=3))
    assert esc.status is Status.RESOLVED and events[0].kind == "resolved"
    assert kinds(esc) == {
        "e:follow_up:0": NOW + timedelta(hours=27),
        "e:follow_up:1": NOW + timedelta(hours=51),
    }
    esc, _ = note_followup(esc, 0, NOW + timedelta(hours=27))
    assert list(kinds(esc)) == ["e:follow_up:1"]
    with pytest.raises(InvalidInput, match="already resolved"):
        resolve(esc, "U0IC", "again", NOW)
    with pytest.raises(InvalidInput, match="resolve"):
        resolve(esc0(), "U0IC", "", NOW)


def test_steps_after_resolution_and_the_ongoing_step() -> None:
    with pytest.raises(InvalidInput, match="after the resolution"):
        mark_step_done(esc0(), "follow_up", "U0IC", NOW, P)
    with pytest.raises(InvalidInput, match="update"):
        mark_step_done(esc0(), "incident_management", "U0IC", NOW, P)
    resolved, _ = resolve(esc0(), "U0IC", "fixed", NOW)
    done, events = mark_step_done(resolved, "follow_up", "U0IC", NOW, P)
    assert done.step("follow_up").done and events


def test_who_may_act() -> None:
    esc = esc0()
    for user, roles, allowed in [
        ("U0IC", ("ic",), True),
        ("U0VP", ("ic", "vp"), True),
        ("U0DECL", ("ic", "vp"), False),
        ("U0DECL", ("declarer",), True),
        ("U0OTHER", ("ic", "vp", "declarer"), False),
    ]:
        assert may_act(esc, user, roles) is allowed


def test_reassigning_the_ic() -> None:
    esc, events = reassign_ic(esc0(), "U0VP", "U0NEW", NOW)
    assert esc.ic == "U0NEW" and events[0].data["previous"] == "U0IC"
    same, none = reassign_ic(esc, "U0VP", "U0NEW", NOW)
    assert same == esc and none == []


def test_the_update_promised_to_the_customer_is_reminded_a_quarter_hour_before() -> None:
    from bot.domain import escalation as domain
    from bot.domain import recording
    from bot.domain.timers import promise_reminder

    esc = esc0()
    promised = esc.declared_at + timedelta(hours=1)
    told = recording.told_now(esc, "U0IC", esc.declared_at, promised)
    esc = domain.keep_promise(recording.note_told(esc, told), P, esc.declared_at)
    (reminder,) = [t for t in timers_for(esc, P, 1) if t.kind is TimerKind.PROMISE]
    assert reminder.at == promised - timedelta(minutes=15)
    (nudge,) = [t for t in timers_for(esc, P, 1) if t.kind is TimerKind.NUDGE]
    assert nudge.at == promised
    # A promise closer than the lead gets no reminder before it, only the nudge at it.
    soon = recording.told_now(esc, "U0IC", promised - timedelta(minutes=5), promised)
    assert promise_reminder(recording.note_told(esc, soon), 1) is None

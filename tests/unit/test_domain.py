"""The escalation domain, without Slack or Redis."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.domain.errors import InvalidInput
from bot.domain.escalation import (
    Declaration,
    Status,
    choose_ic,
    effective_criteria,
    initial_steps,
    invitees,
    mark_step_done,
    open_escalation,
)
from protocols.loader import load_protocol

NOW = datetime(2026, 11, 25, 17, 0, tzinfo=UTC)
PROTOCOL = load_protocol()


def opened(**overrides):
    decl = Declaration(customer="Acme", summary="down", declarer="U0DECL", **overrides)
    return open_escalation(
        id="esc-20261125-acme",
        channel_id="C1",
        declaration=decl,
        ic="U0IC",
        vps=["U0VP", "U0VP"],
        protocol=PROTOCOL,
        now=NOW,
        clock_scale=1,
        ic_source="rotation",
        bot_user_id="UBOT",
    )


@pytest.mark.parametrize(
    ("requested", "arr", "expected"),
    [
        ((), None, ()),
        ((), 99_999, ()),
        ((), 100_000, ("arr_churn_risk",)),
        (("security_incident",), 250_000, ("arr_churn_risk", "security_incident")),
        (("media_pr", "security_incident"), None, ("security_incident", "media_pr")),
        (("arr_churn_risk",), 5, ("arr_churn_risk",)),
    ],
)
def test_effective_criteria(requested, arr, expected) -> None:
    assert effective_criteria(requested, arr, PROTOCOL) == expected


@pytest.mark.parametrize(("scale", "factor"), [(1, 1), (60, 60), (0.5, 0.5)])
def test_deadlines_from_declaration_and_clock_scale(scale, factor) -> None:
    due = {s.id: s.due_at for s in initial_steps(PROTOCOL, NOW, scale)}
    assert due["assessment"] == NOW + timedelta(minutes=15) / factor
    assert due["war_room"] == NOW + timedelta(minutes=30) / factor
    assert due["customer_communication"] == NOW + timedelta(hours=1) / factor
    assert due["incident_management"] == NOW + timedelta(hours=2) / factor  # first update
    assert due["follow_up"] is None  # counted from the resolution


@pytest.mark.parametrize(
    ("requested", "rotation", "expected"),
    [("U1", "U2", "U1"), (None, "U2", "U2"), (None, None, "U0DECL")],
)
def test_choose_ic(requested, rotation, expected) -> None:
    assert choose_ic(requested, rotation, "U0DECL") == expected


def test_opening_marks_the_war_room_step_done_and_records_the_start() -> None:
    esc, events = opened(arr=300_000)
    assert esc.status is Status.INVESTIGATING
    assert esc.vps == ("U0VP",)
    assert esc.criteria == ("arr_churn_risk",)
    assert esc.step("war_room").done_by == "UBOT"
    assert not esc.step("assessment").done
    assert [e.kind for e in events] == ["declared", "ic_assigned", "step_done"]
    assert events[1].data == {"ic": "U0IC", "source": "rotation"}


def test_invitees_are_unique_ordered_and_exclude_the_bot() -> None:
    esc, _ = opened()
    assert invitees(esc, ["U0X", "U0IC", "UBOT", "U0X"], exclude=["UBOT"]) == [
        "U0DECL",
        "U0IC",
        "U0VP",
        "U0X",
    ]


def test_mark_step_done_once() -> None:
    esc, _ = opened()
    later = NOW + timedelta(minutes=5)
    done, events = mark_step_done(esc, "assessment", "U0IC", later, PROTOCOL)
    assert done.step("assessment").done_at == later and len(events) == 1
    again, more = mark_step_done(done, "assessment", "U0OTHER", later, PROTOCOL)
    assert again == done and more == []
    with pytest.raises(InvalidInput, match="no step `nope`"):
        mark_step_done(esc, "nope", "U0IC", later, PROTOCOL)


def test_next_deadline_and_overdue() -> None:
    esc, _ = opened()
    assert esc.next_deadline().id == "assessment"
    assert esc.step("assessment").overdue(NOW + timedelta(minutes=15))
    assert not esc.step("assessment").overdue(NOW + timedelta(minutes=14))


def test_escalation_round_trips_through_json() -> None:
    esc, events = opened(arr=1)
    assert type(esc).model_validate_json(esc.model_dump_json()) == esc
    assert type(events[0]).model_validate_json(events[0].model_dump_json()) == events[0]

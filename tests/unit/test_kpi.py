"""The KPIs of bot.domain.kpi on synthetic histories built with the domain's own functions, each
checked against an answer worked out by hand."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta

import pytest

from bot.domain import kpi
from bot.domain.escalation import (
    Declaration,
    Escalation,
    mark_step_done,
    open_escalation,
    record_customer_update,
    record_update,
    resolve,
)
from bot.domain.timeline import Event, EventKind, event
from protocols.loader import load_protocol

PROTOCOL = load_protocol()
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)  # a Monday, ISO week 2026-W45
S, M, H, D = (timedelta(seconds=1), timedelta(minutes=1), timedelta(hours=1), timedelta(days=1))


class Story:
    """One escalation as it unfolds: each call applies a domain change at a moment."""

    def __init__(
        self,
        id: str = "esc-20261102-acme",
        customer: str = "Acme Corp",
        at: datetime = T0,
        *,
        arr: int | None = None,
        criteria: tuple[str, ...] = (),
        ic: str = "U0IVAN",
        scale: float = 1.0,
    ) -> None:
        declaration = Declaration(
            customer=customer,
            summary="checkout fails",
            declarer="U0DECL",
            arr=arr,
            criteria=criteria,
        )
        self.scale = scale
        self.esc, events = open_escalation(
            id=id,
            channel_id=f"C-{id}",
            declaration=declaration,
            ic=ic,
            vps=["U0VP"],
            protocol=PROTOCOL,
            now=at,
            clock_scale=scale,
            ic_source="explicit",
            bot_user_id="UBOT",
        )
        self.events: list[Event] = list(events)

    @property
    def t0(self) -> datetime:
        return self.esc.declared_at

    def _apply(self, change: tuple[Escalation, list[Event]]) -> Story:
        self.esc, events = change
        self.events += events
        return self

    def ready(self, after: timedelta) -> Story:
        self.events.append(event(self.t0 + after, EventKind.WAR_ROOM_READY, "UBOT", "ready"))
        return self

    def done(self, step: str, after: timedelta) -> Story:
        return self._apply(mark_step_done(self.esc, step, "U0IVAN", self.t0 + after, PROTOCOL))

    def update(self, after: timedelta) -> Story:
        at = self.t0 + after
        return self._apply(record_update(self.esc, "U0IVAN", "progress", at, PROTOCOL, self.scale))

    def customer_update(self, after: timedelta) -> Story:
        at = self.t0 + after
        return self._apply(
            record_customer_update(self.esc, "U0VP", "We are on it", at, PROTOCOL, self.scale)
        )

    def resolve(self, after: timedelta) -> Story:
        return self._apply(resolve(self.esc, "U0IVAN", "fixed", self.t0 + after))

    @property
    def pair(self) -> tuple[Escalation, list[Event]]:
        return self.esc, self.events


# -- times from the declaration ---------------------------------------------------------------


def test_time_to_assessment() -> None:
    assert kpi.time_to_assessment(Story().esc, PROTOCOL) is None
    assert kpi.time_to_assessment(Story().done("assessment", 10 * M).esc, PROTOCOL) == 10 * M


def test_time_to_war_room_prefers_the_ready_event_over_the_step() -> None:
    story = Story()
    # Opening the room marks the step done at once: without the ready event that is 0.
    assert kpi.time_to_war_room(*story.pair, PROTOCOL) == timedelta(0)
    story.ready(45 * S).ready(2 * M)
    assert kpi.time_to_war_room(*story.pair, PROTOCOL) == 45 * S


def test_time_to_war_room_without_event_or_step_is_none() -> None:
    esc, events = Story().pair
    no_steps = esc.model_copy(update={"steps": ()})
    assert kpi.time_to_war_room(no_steps, events, PROTOCOL) is None


def test_time_to_first_customer_communication() -> None:
    assert kpi.time_to_first_customer_communication(*Story().pair, PROTOCOL) is None
    approved = Story().update(20 * M).customer_update(40 * M).customer_update(3 * H)
    assert kpi.time_to_first_customer_communication(*approved.pair, PROTOCOL) == 40 * M
    # The first word went out another way (a call) and the step was marked by hand.
    by_hand = Story().resolve(2 * H)
    by_hand.esc = by_hand.esc.model_copy(
        update={
            "steps": tuple(
                s.model_copy(update={"done_at": T0 + 50 * M})
                if s.id == "customer_communication"
                else s
                for s in by_hand.esc.steps
            )
        }
    )
    assert kpi.time_to_first_customer_communication(*by_hand.pair, PROTOCOL) == 50 * M


def test_time_to_resolve() -> None:
    assert kpi.time_to_resolve(Story().esc) is None
    assert kpi.time_to_resolve(Story().resolve(5 * H + 30 * M).esc) == 5 * H + 30 * M


# -- aggregates -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([], (0, 0, None, None, None)),
        ([None, None], (0, 2, None, None, None)),
        ([M], (1, 0, M, M, M)),
        ([3 * M, None, M, 2 * M], (3, 1, 2 * M, 3 * M, 2 * M)),
        ([i * M for i in range(1, 11)], (10, 0, 5.5 * M, 9 * M, 5.5 * M)),
        # Nearest rank in integers: 0.9 * 70 is 63.00000000000001 as a float.
        ([i * S for i in range(70, 0, -1)], (70, 0, 35.5 * S, 63 * S, 35.5 * S)),
        ([10 * M, 20 * M], (2, 0, 15 * M, 20 * M, 15 * M)),
    ],
)
def test_duration_stats(values, expected) -> None:
    stats = kpi.duration_stats(values)
    assert (stats.count, stats.missing, stats.median, stats.p90, stats.mean) == expected


# -- update cadence ---------------------------------------------------------------------------


@pytest.mark.parametrize("resolved", [True, False], ids=["resolved", "open"])
@pytest.mark.parametrize(
    ("updates", "end", "expected"),
    [
        ([], 1 * H, (0, 0)),  # shorter than one interval: nothing due
        ([], 2 * H, (0, 0)),  # the first deadline is at the end, not before it
        ([], 2.5 * H, (0, 1)),
        ([], 10 * H, (0, 4)),  # 2, 4, 6, 8 h: a long silence is a miss per interval
        ([], 10.5 * H, (0, 5)),
        ([1 * H], 1.5 * H, (0, 0)),  # resolved within one interval
        ([1 * H], 2.5 * H, (1, 0)),
        ([2 * H], 3 * H, (1, 0)),  # an update exactly at the deadline meets it
        ([1.5 * H, 3 * H, 4.5 * H], 6 * H, (3, 0)),
        ([3 * H], 4 * H, (0, 1)),  # late; the next deadline (4 h) has not passed
        ([3 * H], 5 * H, (1, 1)),
        ([9 * H], 12 * H, (1, 5)),  # 2, 4, 6, 8 missed; 10 met at 9; 11 missed
    ],
)
def test_update_cadence(updates, end, expected, resolved) -> None:
    story = Story()
    for after in updates:
        story.update(after)
    now = T0 + end
    if resolved:
        story.resolve(end)
        now = T0 + 30 * D  # after the resolution nothing more is due
    result = kpi.update_cadence(*story.pair, 2 * H, now)
    assert (result.met, result.missed) == expected


def test_update_cadence_counts_customer_updates_once_and_ignores_other_events() -> None:
    story = Story().customer_update(1 * H)
    story.events += [
        event(T0 + 1 * H, EventKind.UPDATE, "U0IVAN", "same moment"),  # one moment, not two
        event(T0 + 3 * H, EventKind.NUDGE, None, "Status update overdue"),
        event(T0 + 3 * H, EventKind.NOTE, "U0IVAN", "a note is not an update"),
        event(T0 - 1 * H, EventKind.UPDATE, "U0IVAN", "before the declaration"),
    ]
    result = kpi.update_cadence(*story.pair, 2 * H, T0 + 5 * H)
    # 2 h met by the update at 1 h; 3 h missed; 5 h not yet passed.
    assert (result.met, result.missed, result.due) == (1, 1, 2)
    assert result.share == 0.5


def test_update_cadence_without_a_cadence_scores_nothing() -> None:
    result = kpi.update_cadence(*Story().pair, None, T0 + 10 * H)
    assert (result.due, result.share) == (0, None)


def test_clock_scale_is_read_back_from_the_deadlines() -> None:
    assert kpi.clock_scale_of(Story().esc, PROTOCOL) == 1
    assert kpi.clock_scale_of(Story(scale=60).esc, PROTOCOL) == 60
    assert kpi.clock_scale_of(Story().esc.model_copy(update={"steps": ()}), PROTOCOL) == 1


def test_a_drill_is_measured_against_its_own_scaled_interval() -> None:
    # At 60x the update interval is 2 minutes: 2 min met by 1 min; 3 min missed.
    drill = Story(scale=60).update(1 * M)
    kpis = kpi.compute([drill.pair], PROTOCOL, T0 + 5 * M)
    assert (kpis.update_cadence.met, kpis.update_cadence.missed) == (1, 1)
    # The protocol's own interval is what the report shows as the target.
    assert kpis.update_interval == 2 * H


# -- follow-up --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("done_after_resolution", "now_after_resolution", "expected"),
    [
        (30 * H, 60 * H, "met"),
        (48 * H, 60 * H, "met"),  # the end of the window is within it
        (2 * H, 3 * H, "met"),  # early is fine
        (49 * H, 60 * H, "missed"),
        (None, 47 * H, None),  # still in the window
        (None, 48 * H, None),
        (None, 49 * H, "missed"),
    ],
)
def test_follow_up(done_after_resolution, now_after_resolution, expected) -> None:
    story = Story().resolve(4 * H)
    resolved = 4 * H
    if done_after_resolution is not None:
        story.done("follow_up", resolved + done_after_resolution)
    now = T0 + resolved + now_after_resolution
    assert kpi.follow_up(story.esc, PROTOCOL, now) == expected


def test_follow_up_of_an_open_escalation_is_not_applicable() -> None:
    assert kpi.follow_up(Story().esc, PROTOCOL, T0 + 30 * D) is None


def test_follow_up_window_scales_with_the_drill() -> None:
    # At 60x the 48 h window is 48 minutes.
    on_time = Story(scale=60).resolve(5 * M).done("follow_up", 45 * M)
    late = Story(scale=60).resolve(5 * M).done("follow_up", 54 * M)
    assert kpi.follow_up(on_time.esc, PROTOCOL, T0 + D) == "met"
    assert kpi.follow_up(late.esc, PROTOCOL, T0 + D) == "missed"


# -- SLA --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "now", "expected"),
    [
        (lambda s: s.done("assessment", 15 * M), 1 * H, "met"),  # at the deadline
        (lambda s: s.done("assessment", 5 * M), 6 * M, "met"),  # before it was due
        (lambda s: s.done("assessment", 16 * M), 1 * H, "missed"),  # done late
        (lambda s: s, 20 * M, "missed"),  # still open past due
        (lambda s: s, 10 * M, None),  # not yet due
        (lambda s: s, 15 * M, None),  # due this instant: not yet passed
        (lambda s: s.resolve(10 * M), 30 * D, None),  # resolved before it was owed
        (lambda s: s.resolve(20 * M), 30 * D, "missed"),  # resolved with it overdue
    ],
)
def test_step_sla(change, now, expected) -> None:
    story = change(Story())
    assert kpi.step_sla(story.esc, "assessment", T0 + now) == expected


def test_step_sla_of_the_war_room_and_of_steps_without_a_deadline() -> None:
    esc = Story().esc
    assert kpi.step_sla(esc, "war_room", T0) == "met"
    assert kpi.step_sla(esc, "follow_up", T0 + 30 * D) is None  # no fixed deadline
    assert kpi.step_sla(esc, "no_such_step", T0 + 30 * D) is None


# -- weeks ------------------------------------------------------------------------------------


def test_per_week_fills_the_gaps_and_spans_year_ends() -> None:
    declared = [
        datetime(2026, 12, 28, 1, tzinfo=UTC),  # 2026-W53
        datetime(2027, 1, 3, 23, tzinfo=UTC),  # Sunday, still 2026-W53
        datetime(2027, 1, 12, tzinfo=UTC),  # 2027-W02
    ]
    assert kpi.per_week(declared) == (("2026-W53", 2), ("2027-W01", 0), ("2027-W02", 1))
    assert kpi.per_week([]) == ()
    start, end = datetime(2027, 1, 1, tzinfo=UTC), datetime(2027, 1, 20, tzinfo=UTC)
    assert kpi.per_week([], start, end) == (
        ("2026-W53", 0),
        ("2027-W01", 0),
        ("2027-W02", 0),
        ("2027-W03", 0),
    )


def test_iso_week_is_taken_in_utc() -> None:
    from zoneinfo import ZoneInfo

    # Monday 00:30 in Paris is still Sunday (the week before) in UTC.
    paris = datetime(2026, 11, 9, 0, 30, tzinfo=ZoneInfo("Europe/Paris"))
    assert kpi.iso_week(paris) == "2026-W45"


# -- everything at once -----------------------------------------------------------------------


def _history() -> tuple[list[tuple[Escalation, list[Event]]], datetime]:
    """Three escalations over three weeks; the answers in the test below are worked out here.

    A (W45): assessed at 10 min, room ready at 30 s, customer update at 40 min, update at
      2 h 30, resolved at 4 h, followed up 30 h later. Cadence: 2 h met (40 min), 2 h 40 met
      (2 h 30), nothing more due before 4 h: 2 of 2. Every SLA met.
    B (W45, a day later): assessed late (20 min), no customer word, one update at 5 h,
      resolved at 30 h, never followed up. Cadence: 2 h and 4 h missed, 6 h met (5 h), then
      7, 9, ..., 29 h missed: 1 met, 14 missed.
    C (W47): open for 3 h, room ready at 2 s, nothing else: assessment and customer
      communication overdue, the 2 h update missed.
    """
    a = (
        Story("esc-a", "Acme Corp", T0, arr=250_000, criteria=("security_incident",))
        .ready(30 * S)
        .done("assessment", 10 * M)
        .customer_update(40 * M)
        .update(2 * H + 30 * M)
        .resolve(4 * H)
        .done("follow_up", 34 * H)
    )
    b = (
        Story("esc-b", "Acme Corp", T0 + D, criteria=("multi_customer_outage",))
        .done("assessment", 20 * M)
        .update(5 * H)
        .resolve(30 * H)
    )
    c = Story("esc-c", "Initech", T0 + 14 * D, criteria=("media_pr",), ic="U0OLGA").ready(2 * S)
    # Listed out of order: compute sorts by declaration.
    return [c.pair, a.pair, b.pair], T0 + 14 * D + 3 * H


def test_compute_over_several_escalations_across_weeks() -> None:
    history, now = _history()
    since = now - 30 * D
    kpis = kpi.compute(history, PROTOCOL, now, since=since)

    assert (kpis.total, kpis.open, kpis.resolved) == (3, 1, 2)
    assert [e.id for e in kpis.escalations] == ["esc-a", "esc-b", "esc-c"]

    tta = kpis.time_to_assessment
    assert (tta.count, tta.missing, tta.median, tta.p90, tta.mean) == (2, 1, 15 * M, 20 * M, 15 * M)
    ttw = kpis.time_to_war_room
    assert (ttw.count, ttw.missing, ttw.median, ttw.p90) == (3, 0, 2 * S, 30 * S)
    assert ttw.mean == timedelta(seconds=32 / 3)
    ttc = kpis.time_to_first_customer_communication
    assert (ttc.count, ttc.missing, ttc.median, ttc.p90, ttc.mean) == (1, 2, 40 * M, 40 * M, 40 * M)
    ttr = kpis.time_to_resolve
    assert (ttr.count, ttr.missing, ttr.median, ttr.p90, ttr.mean) == (2, 1, 17 * H, 30 * H, 17 * H)

    assert (kpis.update_cadence.met, kpis.update_cadence.missed) == (3, 15)
    assert kpis.update_cadence.share == pytest.approx(3 / 18)
    per_esc = {e.id: (e.update_cadence.met, e.update_cadence.missed) for e in kpis.escalations}
    assert per_esc == {"esc-a": (2, 0), "esc-b": (1, 14), "esc-c": (0, 1)}

    assert (kpis.follow_up.met, kpis.follow_up.missed, kpis.follow_up_pending) == (1, 1, 0)
    assert kpis.follow_up_window == 48 * H

    sla = {s.step: (s.result.met, s.result.missed) for s in kpis.sla_by_step}
    assert sla == {"assessment": (1, 2), "war_room": (3, 0), "customer_communication": (1, 2)}
    assert [s.deadline for s in kpis.sla_by_step] == [15 * M, 30 * M, 1 * H]
    assert (kpis.sla_overall.met, kpis.sla_overall.missed) == (5, 4)

    targets = {t.kpi: (t.actual, t.met) for t in kpis.targets}
    assert targets["SLA compliance"] == (pytest.approx(5 / 9), False)
    assert targets["Average resolution time"] == (17 * 3600, True)

    assert [(r.key, r.count) for r in kpis.by_criterion] == [
        ("arr_churn_risk", 1),  # implied by the ARR of A
        ("media_pr", 1),
        ("multi_customer_outage", 1),
        ("security_incident", 1),
    ]
    assert kpis.by_criterion[0].label == PROTOCOL.criterion("arr_churn_risk").title
    assert [(r.label, r.count) for r in kpis.by_customer] == [("Acme Corp", 2), ("Initech", 1)]
    assert [(r.key, r.count) for r in kpis.by_ic] == [("U0IVAN", 2), ("U0OLGA", 1)]
    assert kpis.per_week == (
        ("2026-W42", 0),
        ("2026-W43", 0),
        ("2026-W44", 0),
        ("2026-W45", 2),
        ("2026-W46", 0),
        ("2026-W47", 1),
    )

    (still_open,) = kpis.open_escalations
    assert still_open.id == "esc-c"
    assert still_open.age == 3 * H
    assert (still_open.next_step, still_open.next_due_at) == ("assessment", now - 3 * H + 15 * M)
    assert still_open.overdue_steps == (
        "assessment",
        "customer_communication",
        "incident_management",
    )


def test_to_dict_is_json_with_seconds_and_none() -> None:
    history, now = _history()
    data = json.loads(json.dumps(kpi.compute(history, PROTOCOL, now).to_dict()))
    assert data["escalations"] == {"total": 3, "open": 1, "resolved": 2}
    assert data["time_to_assessment"] == {
        "count": 2,
        "missing": 1,
        "median_seconds": 900.0,
        "p90_seconds": 1200.0,
        "mean_seconds": 900.0,
    }
    assert data["time_to_resolve"]["mean_seconds"] == 17 * 3600
    assert data["update_cadence"]["interval_seconds"] == 7200
    assert data["sla"]["overall"] == {"met": 5, "missed": 4, "due": 9, "share": 5 / 9}
    assert data["follow_up"]["window_seconds"] == 48 * 3600
    assert data["per_week"][0] == {"week": "2026-W45", "count": 2}  # no `since`: from the first
    (c,) = data["open_escalations"]
    assert c["age_seconds"] == 3 * 3600
    assert c["next_due_at"] == (now - 3 * H + 15 * M).isoformat()
    b = next(e for e in data["per_escalation"] if e["id"] == "esc-b")
    assert b["time_to_first_customer_communication_seconds"] is None
    assert b["sla"] == {
        "assessment": "missed",
        "war_room": "met",
        "customer_communication": "missed",
    }
    assert b["follow_up"] == "missed"


def test_empty_history() -> None:
    now = T0
    kpis = kpi.compute([], PROTOCOL, now, since=now - 14 * D)
    assert (kpis.total, kpis.open, kpis.resolved) == (0, 0, 0)
    for stats in (kpis.time_to_assessment, kpis.time_to_resolve):
        assert stats == kpi.DurationStats(0, 0, None, None, None)
    assert kpis.sla_overall.share is None and kpis.update_cadence.share is None
    assert all(t.met is None and t.actual is None for t in kpis.targets)
    assert kpis.per_week == (("2026-W43", 0), ("2026-W44", 0), ("2026-W45", 0))
    assert kpis.by_customer == () and kpis.open_escalations == ()
    data = kpis.to_dict()
    assert json.loads(json.dumps(data))["sla"]["overall"]["share"] is None
    assert kpi.compute([], PROTOCOL, now).per_week == ()


def test_escalation_with_no_events_and_nothing_done() -> None:
    esc = Story().esc.model_copy(update={"steps": ()})
    kpis = kpi.compute([(esc, [])], PROTOCOL, T0 + 1 * H)
    (measured,) = kpis.escalations
    assert measured.time_to_war_room is None and measured.time_to_assessment is None
    assert kpis.sla_overall.due == 0  # no deadlines recorded: nothing to score
    assert (kpis.update_cadence.met, kpis.update_cadence.missed) == (0, 0)


def test_kpis_are_frozen() -> None:
    kpis = kpi.compute([], PROTOCOL, T0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        kpis.total = 3  # type: ignore[misc]


# -- the customer's promises ------------------------------------------------------------------


def _letter(story: Story, after: timedelta, promised: timedelta | None) -> Story:
    """A letter approved at `after` that promised the next update at `promised` (from T0)."""
    from bot.domain.recording import note_told, told_now

    story.customer_update(after)
    at = story.t0 + after
    promise = story.t0 + promised if promised is not None else None
    story.esc = note_told(story.esc, told_now(story.esc, "U0VP", at, promise))
    return story


def test_promises_kept_and_missed_are_counted_per_escalation_and_in_all() -> None:
    # Letters at 1 h (promising 3 h), 2 h 50 (promising 5 h), 6 h (promising 8 h): one kept,
    # one missed (the third came an hour late), the last still ahead at 7 h.
    kept_then_missed = Story("esc-20261102-acme")
    for after, promised in ((1 * H, 3 * H), (2 * H + 50 * M, 5 * H), (6 * H, 8 * H)):
        _letter(kept_then_missed, after, promised)
    # One letter promising 2 h, and nothing since: missed by 7 h.
    silent = _letter(Story("esc-20261102-globex", "Globex"), 30 * M, 2 * H)
    nothing_promised = Story("esc-20261102-initech", "Initech")

    now = T0 + 7 * H
    k = kpi.compute([kept_then_missed.pair, silent.pair, nothing_promised.pair], PROTOCOL, now)
    per = {e.id: e.promises for e in k.escalations}
    assert per["esc-20261102-acme"] == kpi.Share(met=1, missed=1)
    assert per["esc-20261102-globex"] == kpi.Share(met=0, missed=1)
    assert per["esc-20261102-initech"] == kpi.Share(met=0, missed=0)
    assert k.promises == kpi.Share(met=1, missed=2)
    assert k.to_dict()["promises"] == {"met": 1, "missed": 2, "due": 3, "share": 1 / 3}


def test_app_home_the_digest_and_the_report_show_the_promises_kept() -> None:
    from bot.report import render_markdown
    from bot.slack import home_view

    story = Story()
    _letter(story, 1 * H, 3 * H)
    _letter(story, 4 * H, 5 * H)  # after the 3 h it was promised by: missed
    _letter(story, 4 * H + 30 * M, 6 * H)  # before the 5 h: kept
    now = T0 + 7 * H  # the last promise (6 h) passed with no letter: missed
    k = kpi.compute([story.pair], PROTOCOL, now, since=now - 30 * D)
    assert k.promises == kpi.Share(met=1, missed=2)

    view = home_view.home_view("U0IVAN", [story.esc], k, PROTOCOL, now, 30)
    fields = [f["text"] for b in view.to_dict()["blocks"] for f in b.get("fields", [])]
    assert "*Customer promises kept*\n1 of 3 (33%)" in fields
    digest = home_view.digest_message(k, [story.esc], [story.esc], now)
    assert "customer promises kept 1 of 3 (33%)" in digest.blocks[0].to_dict()["text"]["text"]
    report = render_markdown(k, PROTOCOL, now - 30 * D, now)
    assert "| Customer promises kept" in report and "33.3% (1 of 3)" in report

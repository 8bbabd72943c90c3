"""What the customer may be told, as the domain records it: the impact's start from what
people wrote (`--since`, or a time in the fact, in the account's time zone) and a disagreement
kept, `workaround none`, `fixed`, and what each approved letter told the customer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from bot.domain import recording
from bot.domain.facts import FactKind
from tests.unit.test_domain import NOW
from tests.unit.test_domain import opened as _opened


def opened():
    return _opened()[0]


NEW_YORK = ZoneInfo("America/New_York")  # NOW, 17:00 UTC, is 12:00 EST


def test_a_time_written_in_the_impact_is_its_start_in_the_accounts_zone() -> None:
    esc, events = recording.record_fact(
        opened(), FactKind.IMPACT, "Shoppers cannot pay at checkout since 09:10", "U1", NOW,
        zone=NEW_YORK,
    )  # fmt: skip
    impact = esc.facts.impact
    assert impact.began == datetime(2026, 11, 25, 14, 10, tzinfo=UTC)
    assert impact.began_from == "text" and impact.stated_began is None
    assert events[0].data["began_from"] == "text"


def test_since_and_a_different_time_in_the_text_are_both_kept() -> None:
    esc, _ = recording.record_fact(
        opened(), FactKind.IMPACT, "Checkout fails since 9am", "U1", NOW, timedelta(hours=1),
        NEW_YORK,
    )  # fmt: skip
    impact = esc.facts.impact
    assert impact.began == NOW - timedelta(hours=1) and impact.began_from == "since"
    assert impact.stated_began == datetime(2026, 11, 25, 14, 0, tzinfo=UTC)


def test_a_number_that_is_not_a_time_is_not_a_start() -> None:
    esc, _ = recording.record_fact(opened(), FactKind.IMPACT, "Failing at 3 sites", "U1", NOW)
    assert esc.facts.impact.began_from == "declared" and esc.facts.impact.began == NOW
    # An end is not a start.
    esc, _ = recording.record_fact(opened(), FactKind.IMPACT, "Slow until 15:00", "U1", NOW)
    assert esc.facts.impact.began_from == "declared"


def test_the_impact_ends_at_the_time_written() -> None:
    esc, _ = recording.record_fact(opened(), FactKind.IMPACT, "down since 09:00", "U1", NOW,
                                   zone=NEW_YORK)  # fmt: skip
    at = recording.stated_time("at 11:05", NOW, NEW_YORK)
    esc, _ = recording.end_impact(esc, "U1", NOW, at=at)
    assert esc.facts.impact.ended == datetime(2026, 11, 25, 16, 5, tzinfo=UTC)


def test_no_workaround_and_what_fixed_it_are_facts() -> None:
    esc, _ = recording.record_fact(opened(), FactKind.WORKAROUND, "none", "U1", NOW)
    assert esc.facts.no_workaround
    esc, _ = recording.record_fact(esc, FactKind.FIXED, "we restored the EU gateway", "U1", NOW)
    assert esc.facts.fixed.text == "we restored the EU gateway"


def test_an_approved_letter_keeps_what_it_told() -> None:
    esc, _ = recording.record_fact(opened(), FactKind.IMPACT, "EU checkout fails", "U1", NOW)
    esc, _ = recording.record_fact(esc, FactKind.ETA, "within 2 hours", "U1", NOW)
    told = recording.told_now(esc, "U0IC", NOW, NOW + timedelta(hours=1), ("workaround",))
    esc = recording.note_told(esc, told)
    (kept,) = esc.facts.told
    assert (kept.impact, kept.eta, kept.eta_at) == ("EU checkout fails", "within 2 hours", NOW)
    assert kept.promised == NOW + timedelta(hours=1) and kept.left_out == ("workaround",)
    assert not kept.resolved


def test_the_promise_is_the_update_clock_and_an_internal_update_never_moves_it_later() -> None:
    from bot.domain import escalation as domain
    from tests.unit.test_domain import PROTOCOL

    esc, _ = recording.record_fact(opened(), FactKind.IMPACT, "EU checkout fails", "U1", NOW)
    step = PROTOCOL.update_step.id
    promised = NOW + timedelta(minutes=20)
    esc = recording.note_told(esc, recording.told_now(esc, "U0IC", NOW, promised))
    esc = domain.keep_promise(esc, PROTOCOL, NOW)
    assert esc.step(step).due_at == promised
    esc, _ = domain.record_update(esc, "U1", "failover 40% done", NOW + timedelta(minutes=5),
                                  PROTOCOL, 1)  # fmt: skip
    assert esc.step(step).due_at == promised
    # Once the promised time has passed, the protocol's interval runs again.
    later = NOW + timedelta(minutes=30)
    esc, _ = domain.record_update(esc, "U1", "still failing over", later, PROTOCOL, 1)
    assert esc.step(step).due_at > later


def test_promises_kept_and_missed_are_counted() -> None:
    from bot.domain.facts import Told, promises_kept
    from bot.slack.brief import told as brief_told

    def letter(minutes: int, promised: int | None) -> Told:
        at = NOW + timedelta(minutes=minutes)
        return Told(
            at=at, by="U0IC", promised=NOW + timedelta(minutes=promised) if promised else None
        )

    letters = (letter(0, 60), letter(50, 120), letter(130, 200))  # kept, missed, open
    assert promises_kept(letters) == (1, 1)
    assert promises_kept(letters, NOW + timedelta(minutes=210)) == (1, 2)
    esc, _ = recording.record_fact(opened(), FactKind.IMPACT, "EU checkout fails", "U1", NOW)
    for t in letters:
        esc = recording.note_told(esc, t)
    assert "Letters approved: 3" in brief_told(esc.facts) and "1 kept, 1 missed" in brief_told(
        esc.facts
    )

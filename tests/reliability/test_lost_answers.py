"""Writes that know whether they landed: Redis did the write and the answer was lost (the
proxy closes the connection after the command ran). Each change is applied exactly once, and
the person is told the truth."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import redis

from bot.boot import redis_from_url
from bot.domain.declaration import Declaration
from bot.domain.escalation import open_escalation
from bot.domain.timeline import EventKind, event
from bot.slack.ids import ActionId
from bot.store import EscalationMemory, Keys, MemoryRecords, Store
from loopback.slack.driver import SlackDriver
from protocols.loader import load_protocol
from tests.conftest import SIGNING_SECRET
from tests.rooms import Room, draft_id

MEMBER = "U0CSMGR01"  # in the room, neither IC nor VP


@pytest.fixture
def room(agent_runtime, fake_slack, proxy) -> Room:
    rt = agent_runtime(redis_url=proxy.url)
    return Room(rt, SlackDriver(fake_slack, SIGNING_SECRET, app=rt.app), fake_slack)


def kinds(room: Room) -> list[str]:
    return [e.kind for e in room.rt.store.timeline(room.esc_id)]


def replies(room: Room, ts: str) -> list[str]:
    return [m.text for m in room.thread(ts)]


def test_an_update_whose_answer_was_lost_is_recorded_once(room, proxy) -> None:
    proxy.drop_after("EXEC")
    ts = room.mention("update rollback started")
    assert proxy.spent()
    assert kinds(room).count("update") == 1
    assert not any("went wrong" in r for r in replies(room, ts))


def test_a_resolve_whose_answer_was_lost_is_applied_in_full_once(room, proxy) -> None:
    exec_channel = room.fake.channel_by_name("exec-escalations")
    before = len(room.fake.messages_in(exec_channel.id))
    proxy.drop_after("EXEC")
    ts = room.mention("resolve rolled back the config push")
    assert proxy.spent()
    esc = room.esc
    assert esc.status == "resolved" and kinds(room).count("resolved") == 1
    assert not any("already resolved" in r for r in replies(room, ts))
    topics = room.fake.calls_to("conversations.setTopic")
    assert "Resolved" in str(topics[-1].args.get("topic"))
    notices = room.fake.messages_in(exec_channel.id)[before:]
    assert len(notices) == 1 and "Resolved" in notices[0].text


def test_an_approve_whose_answer_was_lost_is_recorded_exactly_once(
    room, proxy, fake_anthropic, memory_dir, clock
) -> None:
    fake_anthropic.reply_with("We are on it. Next update by 15:00 UTC.")
    ts = room.mention("draft update")
    (draft,) = room.thread(ts)
    clock.advance(timedelta(minutes=5))
    shown_id = draft_id(draft)
    proxy.drop_after("EXEC")
    room.click(ActionId.DRAFT_APPROVE, draft, user="U0VPSUPRT")
    assert proxy.spent()
    esc = room.esc
    assert kinds(room).count("customer_update") == 1
    assert esc.step("customer_communication").done_by == "U0VPSUPRT"
    outputs = room.rt.desk.memory.records.outputs(esc.id)
    assert list(outputs) == ["1-customer-update"]
    decisions = [d["decision"] for d in room.rt.desk.memory.records.decisions(esc.id)]
    assert decisions.count("customer_update_approved") == 1
    assert room.rt.store.get_draft(shown_id.split(":")[0]).approved_by == "U0VPSUPRT"


def test_an_approve_that_cannot_be_filed_records_nothing(
    room, proxy, fake_anthropic, memory_dir
) -> None:
    """All or nothing: when Agent_Memory cannot take the output, the update is not on the
    timeline, the step stays open and the draft is not approved; the next click records it."""
    fake_anthropic.reply_with("We are on it.")
    ts = room.mention("draft update")
    (draft,) = room.thread(ts)
    proxy.drop_before("*", ":outputs", times=2)  # filing the output, and the one try after it
    room.click(ActionId.DRAFT_APPROVE, draft, user="U0VPSUPRT")
    assert proxy.spent()
    assert kinds(room).count("customer_update") == 0
    assert room.esc.step("customer_communication").done_at is None
    assert room.rt.desk.memory.records.outputs(room.esc_id) == {}
    room.click(ActionId.DRAFT_APPROVE, draft, user="U0VPSUPRT")
    assert kinds(room).count("customer_update") == 1
    assert list(room.rt.desk.memory.records.outputs(room.esc_id)) == ["1-customer-update"]


def react(room: Room, ts: str, user: str) -> None:
    room.slack.event(
        {
            "type": "reaction_added",
            "user": user,
            "reaction": "pushpin",
            "item_user": user,
            "item": {"type": "message", "channel": room.channel.id, "ts": ts},
            "event_ts": ts,
        }
    )


def test_a_pin_whose_answer_was_lost_is_noted_once(room, proxy) -> None:
    said = room.fake.add_message(room.channel.id, "U0SECENG1", "the cert expired at 09:38")
    proxy.drop_after("*", said)  # the note's append: the first command that names the message
    react(room, said, MEMBER)
    assert proxy.spent()
    assert kinds(room).count("note") == 1


def test_two_people_pinning_one_message_at_once_note_it_once(room) -> None:
    said = room.fake.add_message(room.channel.id, "U0SECENG1", "the cert expired at 09:38")
    # Both look at the timeline before either writes: the window a real race leaves open.
    room.fake.delay_next("chat.getPermalink", 0.5, times=2)
    pins = [
        threading.Thread(target=room.rt.room.pin_message, args=(room.channel.id, said, who))
        for who in (MEMBER, "U0INCCMDR")
    ]
    for pin in pins:
        pin.start()
    for pin in pins:
        pin.join()
    assert kinds(room).count("note") == 1


def test_an_ic_handover_whose_answer_was_lost_invites_the_new_ic(room, proxy) -> None:
    proxy.drop_after("EXEC")
    room.mention("ic <@U0SECENG1>")
    assert proxy.spent()
    assert room.esc.ic == "U0SECENG1"
    assert kinds(room).count("ic_assigned") == 2  # the first IC, then the hand-over
    invited = [c.args for c in room.fake.calls_to("conversations.invite")]
    assert any("U0SECENG1" in str(args.get("users")) for args in invited)


def test_an_event_whose_dedup_answer_was_lost_is_still_processed(room, proxy) -> None:
    """The client's retry of the delivery's claim found the claim made: before, that read as
    "seen already" and the mention was dropped."""
    proxy.drop_after("*", ":event:")
    room.mention("update rollback started")
    assert proxy.spent()
    assert kinds(room).count("update") == 1


# -- the store and Agent_Memory, each write with its answer lost once --------------------------


@pytest.fixture
def lossy(proxy, prefix) -> Iterator[tuple[Store, MemoryRecords]]:
    client = redis_from_url(proxy.url)
    keys = Keys(prefix)
    yield Store(client, keys), MemoryRecords(client, keys)
    client.close()


def test_every_append_lands_once_when_its_answer_is_lost(lossy, proxy) -> None:
    store, records = lossy
    at = datetime(2026, 11, 25, 17, 0, tzinfo=UTC)
    proxy.drop_after("*", ":timeline")
    assert store.append("esc-1", event(at, EventKind.UPDATE, "U1", "rolled back"))
    proxy.drop_after("*", ":decisions")
    records.append_decision("esc-1", {"decision": "resolved"})
    proxy.drop_after("*", ":outputs")
    assert records.add_output("esc-1", "review", {"text": "r"}) == 1
    proxy.drop_after("*", ":lessons")
    records.append_lessons({"lesson": "pin the cert expiry"})
    assert proxy.spent() and len(proxy.fired) == 4
    assert [e.text for e in store.timeline("esc-1")] == ["rolled back"]
    assert records.decisions("esc-1") == [{"decision": "resolved"}]
    assert list(records.outputs("esc-1")) == ["1-review"]
    assert records.lessons() == [{"lesson": "pin the cert expiry"}]


def test_a_versioned_write_whose_answer_was_lost_is_not_decided_again(lossy, proxy) -> None:
    store, _ = lossy
    esc, events = make_escalation()
    assert store.create(esc, events)
    decided: list[int] = []

    def change(current):
        decided.append(current.version)
        return current.model_copy(update={"summary": current.summary + "!"}), []

    proxy.drop_after("EXEC")
    new, _ = store.update(esc.id, change)
    assert proxy.spent() and decided == [esc.version]
    assert store.get(esc.id).summary == esc.summary + "!" and new.version == esc.version + 1


def test_an_escalation_is_created_only_if_absent(lossy, proxy) -> None:
    store, _ = lossy
    esc, events = make_escalation()
    proxy.drop_after("EXEC")
    assert store.create(esc, events)  # landed, though the answer was lost
    assert not store.create(esc.model_copy(update={"ic": "U9"}), events)
    assert store.get(esc.id).ic == esc.ic
    assert len(store.timeline(esc.id)) == len(events)


def test_an_ic_from_the_rotation_whose_answer_was_lost_is_taken_once(lossy, proxy) -> None:
    store, _ = lossy
    proxy.drop_after("*", ":ic-rotation")
    assert store.next_in_rotation(("A", "B"), "decl-1") == "A"
    assert proxy.spent()
    assert store.next_in_rotation(("A", "B"), "decl-2") == "B"


def test_a_turn_with_the_model_whose_answer_was_lost_counts_once(lossy, proxy) -> None:
    """A person may ask twice a minute: the first turn's answer lost, the second is theirs."""
    store, _ = lossy
    # Whichever way the count is sent (a transaction, or a script), its answer is lost.
    proxy.drop_after("EXEC")
    proxy.drop_after("EVAL", ":turns:")
    assert store.take_turn("agent:U1", 2, 60)
    assert len(proxy.fired) == 1
    proxy.clear()
    assert store.take_turn("agent:U1", 2, 60)
    assert not store.take_turn("agent:U1", 2, 60)


def test_a_home_change_whose_answer_was_lost_is_counted_once(lossy, proxy) -> None:
    store, _ = lossy
    proxy.drop_after("*", ":home-generation")
    assert store.bump_home_generation() == 1
    assert proxy.spent()
    assert store.home_generation() == 1


def test_the_client_sends_nothing_twice_by_itself(lossy, proxy) -> None:
    """A command whose answer was lost may have run: only the caller knows whether sending it
    again is safe, so the client never does."""
    store, _ = lossy
    proxy.drop_after("*", ":raw")
    with pytest.raises(redis.ConnectionError):
        store.redis.incr(store.keys.prefix + ":raw")
    assert int(store.redis.get(store.keys.prefix + ":raw")) == 1


def make_escalation():
    return open_escalation(
        id="esc-20261125-acme",
        channel_id="C1",
        declaration=Declaration(customer="Acme", summary="down", declarer="U1"),
        ic="U2",
        vps=(),
        protocol=load_protocol(),
        now=datetime(2026, 11, 25, 17, 0, tzinfo=UTC),
        clock_scale=1,
        ic_source="requested",
    )


def test_an_import_whose_answer_was_lost_adds_nothing_twice(lossy, proxy) -> None:
    """`warroom memory import`: redis-py sends a transaction again when its answer is lost,
    and the decisions and lessons were pushed twice."""
    _, records = lossy
    on_file = EscalationMemory(
        id="esc-1",
        instruction=None,
        decisions=[{"decision": "ic_assigned"}, {"decision": "resolved"}],
        review=None,
        outputs={},
    )
    proxy.drop_after("EXEC", skip=1)  # the second transaction: the decisions
    assert records.adopt(on_file) == ["decisions"]
    proxy.drop_after("EVAL", ":lessons")
    assert records.adopt_lessons([{"lesson": "pin the cert expiry"}])
    assert proxy.spent() and len(proxy.fired) == 2
    assert [d["decision"] for d in records.decisions("esc-1")] == ["ic_assigned", "resolved"]
    assert records.lessons() == [{"lesson": "pin the cert expiry"}]

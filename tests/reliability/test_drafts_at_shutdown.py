"""Drafts streaming when the process stops: one that finishes within the shutdown grace is
shown whole; one that does not is stopped at its next piece of text and left saying so, with
Regenerate and nothing to approve; the next process regenerates it."""

from __future__ import annotations

import threading

from bot.domain.drafts import DraftKind
from bot.slack import draft_view
from bot.slack.ids import ActionId
from loopback.slack.driver import SlackDriver
from tests.conftest import SIGNING_SECRET
from tests.rooms import Room, buttons, shown, wait_until

LETTER = " ".join(["We are rolling back the change that broke checkout."] * 12)


def streaming(room: Room) -> tuple[threading.Thread, list[str]]:
    """Ask for a draft on a thread of its own; return once its text is streaming in."""
    asked: list[str] = []
    before = len(room.fake.calls_to("chat.update"))
    thread = threading.Thread(target=lambda: asked.append(room.mention("draft update")))
    thread.start()
    wait_until(
        lambda: any("▌" in str(c.args) for c in room.fake.calls_to("chat.update")[before:]),
        what="the draft streaming",
    )
    return thread, asked


def test_a_draft_still_streaming_after_the_grace_offers_to_be_regenerated(
    agent_runtime, fake_slack, fake_anthropic
) -> None:
    rt = agent_runtime(shutdown_grace_seconds=0.2)
    room = Room(rt, SlackDriver(fake_slack, SIGNING_SECRET, app=rt.app), fake_slack)
    fake_anthropic.token_delay = 0.1  # the letter takes seconds to stream in full
    fake_anthropic.reply_with(LETTER)
    asking, asked = streaming(room)
    rt.close()  # SIGTERM
    asking.join()
    (draft,) = room.thread(asked[0])
    assert "Interrupted" in shown(draft) and "rolling back" not in shown(draft)
    assert buttons(draft) == [ActionId.DRAFT_REGENERATE]  # never half a text to approve
    record = rt.store.get_draft(draft.blocks[-1]["elements"][0]["value"].split(":")[0])
    assert record.interrupted and not record.drafting

    fake_anthropic.token_delay = 0
    fake_anthropic.reply_with("We are on it. Next update by 15:00 UTC.")
    rt2 = agent_runtime()  # the next process
    room2 = Room.__new__(Room)
    room2.__dict__.update(room.__dict__)
    room2.rt, room2.slack = rt2, SlackDriver(fake_slack, SIGNING_SECRET, app=rt2.app)
    room2.click(ActionId.DRAFT_REGENERATE, draft)
    (draft,) = room2.thread(asked[0])
    assert "We are on it." in shown(draft) and "Interrupted" not in shown(draft)
    assert ActionId.DRAFT_APPROVE in buttons(draft)


def test_a_draft_that_finishes_within_the_grace_is_shown_whole(
    agent_runtime, fake_slack, fake_anthropic
) -> None:
    rt = agent_runtime(shutdown_grace_seconds=30)
    room = Room(rt, SlackDriver(fake_slack, SIGNING_SECRET, app=rt.app), fake_slack)
    fake_anthropic.token_delay = 0.02
    fake_anthropic.reply_with(LETTER)
    asking, asked = streaming(room)
    rt.close()
    asking.join()
    (draft,) = room.thread(asked[0])
    assert "rolling back" in shown(draft) and "Interrupted" not in shown(draft)
    assert ActionId.DRAFT_APPROVE in buttons(draft)


def test_no_new_draft_is_taken_once_the_process_is_stopping(agent_runtime, fake_slack) -> None:
    rt = agent_runtime()
    room = Room(rt, SlackDriver(fake_slack, SIGNING_SECRET, app=rt.app), fake_slack)
    rt.desk.lane.stop(30)
    ts = room.mention("draft update")
    assert any("restarting" in m.text for m in room.thread(ts)) or any(
        "restarting" in str(c.args) for c in fake_slack.calls_to("chat.postEphemeral")
    )
    assert not room.drafts()


def test_a_draft_whose_process_died_while_writing_it_offers_to_be_regenerated(
    agent_runtime, fake_slack, fake_anthropic
) -> None:
    """What a process killed mid-draft leaves: the draft shown as being written, its lease
    lapsing. The leader's reconcile finds it, says so and offers Regenerate."""
    rt = agent_runtime()
    room = Room(rt, SlackDriver(fake_slack, SIGNING_SECRET, app=rt.app), fake_slack)
    asked = room.mention("status")
    draft = rt.desk._new(room.esc, DraftKind.CUSTOMER_UPDATE, "U0INCCMDR", asked)
    ts = rt.gateway.post(room.channel.id, draft_view.drafting(draft.kind), thread_ts=asked)
    rt.store.save_draft(draft.model_copy(update={"ts": ts}))
    rt.store.begin_writing(draft.id, 1)  # then the process died
    rt.reconcile()
    (shown_now,) = [m for m in room.thread(asked) if m.ts == ts]
    assert buttons(shown_now) == []  # its lease still runs: it may be alive
    wait_until(rt.store.abandoned_drafts, what="the lease to lapse")
    rt.reconcile()
    (stopped,) = [m for m in room.thread(asked) if m.ts == ts]
    assert "Interrupted" in shown(stopped) and buttons(stopped) == [ActionId.DRAFT_REGENERATE]
    assert rt.store.abandoned_drafts() == []

    fake_anthropic.reply_with("We are on it. Next update by 15:00 UTC.")
    room.click(ActionId.DRAFT_REGENERATE, stopped)
    (done,) = [m for m in room.thread(asked) if m.ts == ts]
    assert "We are on it." in shown(done) and ActionId.DRAFT_APPROVE in buttons(done)

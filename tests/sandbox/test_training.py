"""The sandbox as a training tool: the drill paused, stepped and slowed from the page, what
to look at for each step, buttons the app would refuse shown as off with the reason, and
the app's Messages tab read-only as in Slack."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from bot.sandbox import app, workspace
from bot.sandbox.interactions import MESSAGES_OFF, Interactions
from bot.sandbox.pacing import Pacing, Stopped
from bot.sandbox.web import WorkspacePage
from bot.slack.ids import ActionId
from loopback.slack import SlackEmulator
from tests.sandbox.conftest import ui
from tests.sandbox.test_page import DANA, IVAN, declare

VICTORIA = workspace.VP


@pytest.fixture
def drilled(redis_url: str, prefix: str) -> Iterator[app.Sandbox]:
    """A sandbox with a drill, paused before it starts: the test moves it."""
    env = {"REDIS_URL": redis_url, "WARROOM_REDIS_PREFIX": prefix}
    sandbox = app.Sandbox(
        port=0, env=env, drill=True, clock_scale=600, drill_pace=0.2, say=lambda _: None
    ).start()
    try:
        sandbox.drill.pacing.pause()
        sandbox.drill.start()
        yield sandbox
    finally:
        sandbox.close()


def steps(sandbox: app.Sandbox) -> list[str]:
    return [n["step"] for n in sandbox.page.state(DANA, None)["notices"]]


def control(sandbox: app.Sandbox, body: dict[str, Any]) -> Any:
    return ui(sandbox.emulator, "/ui/drill", {"as": DANA, **body})


def held(sandbox: app.Sandbox) -> bool:
    """Wait until the drill's thread holds on a pause still in force (right after Next step
    the thread may not yet have woken from the last hold: that one no longer counts)."""
    return sandbox.drill.pacing.wait_for(lambda s: s["holding"] and s["paused"], 60)


def test_next_step_plays_exactly_one_step_then_holds(drilled: app.Sandbox) -> None:
    assert held(drilled)
    assert steps(drilled) == []  # paused before its first word
    drill = ui(drilled.emulator, f"/ui/state?as={DANA}")["drill"]
    assert drill["state"] == "paused" and drill["holding"] and drill["step"] == 0

    assert control(drilled, {"do": "step"})["ok"]
    assert held(drilled)
    assert steps(drilled) == ["", "1/9"]  # the introduction, then step 1: no further
    assert control(drilled, {"do": "step"})["ok"]
    assert held(drilled)
    assert steps(drilled) == ["", "1/9", "2/9"]
    assert drilled.drill.room  # step 2 is the room, open

    # Pausing a playing drill holds it too; a step from there is one step again.
    assert control(drilled, {"do": "resume"})["ok"]
    assert control(drilled, {"do": "pause"})["ok"]
    assert held(drilled)
    before = len(steps(drilled))
    assert control(drilled, {"do": "step"})["ok"]
    assert held(drilled)
    assert len(steps(drilled)) == before + 1

    assert control(drilled, {"do": "resume"})["ok"]
    assert drilled.drill.finished.wait(60) and drilled.drill.failed is None
    assert steps(drilled)[-1] == "9/9"
    assert ui(drilled.emulator, f"/ui/state?as={DANA}")["drill"]["state"] == "finished"


def test_each_step_says_what_to_look_at(drilled: app.Sandbox) -> None:
    control(drilled, {"do": "resume"})
    assert drilled.drill.finished.wait(60) and drilled.drill.failed is None
    notices = drilled.page.state(DANA, None)["notices"]
    assert len(notices) == 10 and all(n["look"] for n in notices)
    by_step = {n["step"]: n["look"] for n in notices}
    assert "pinned brief" in by_step["2/9"] and "reminder" in by_step["4/9"]
    assert "Approve" in by_step["6/9"]


def test_the_speed_is_set_from_the_page_and_only_to_a_speed_offered(
    drilled: app.Sandbox,
) -> None:
    assert control(drilled, {"do": "speed", "speed": 0.5})["ok"]
    drill = ui(drilled.emulator, f"/ui/state?as={DANA}")["drill"]
    assert drill["speed"] == 0.5 and drill["speeds"] == [0.5, 1.0, 2.0, 4.0]
    assert drill["beat"] == 0.2
    refused = control(drilled, {"do": "speed", "speed": 100})
    assert not refused["ok"] and "speed" in refused["error"]
    assert not control(drilled, {"do": "rewind"})["ok"]


def test_without_a_drill_its_controls_say_so(emulator: SlackEmulator, page: WorkspacePage) -> None:
    assert ui(emulator, f"/ui/state?as={DANA}")["drill"] is None
    answer = ui(emulator, "/ui/drill", {"as": DANA, "do": "pause"})
    assert not answer["ok"] and "--drill" in answer["error"]


def draft_in(emulator: SlackEmulator, room: str) -> dict[str, Any]:
    state = ui(emulator, f"/ui/state?as={IVAN}&channel={room}")["channel"]
    for message in state["messages"]:
        for reply in message["replies"]:
            if ActionId.DRAFT_APPROVE in str(reply["blocks"]):
                return reply
    raise AssertionError("no draft")


def notes(message: dict[str, Any]) -> list[str]:
    return [e["text"] for b in message["blocks"] if b["type"] == "context" for e in b["elements"]]


def test_approve_is_off_with_the_reason_while_placeholders_remain(
    emulator: SlackEmulator, page: WorkspacePage, acts: Interactions
) -> None:
    room = declare(emulator)
    ui(emulator, "/ui/send", {"as": VICTORIA, "channel": room, "text": "@vp draft update"})
    acts.wait_idle()
    draft = draft_in(emulator, room)
    (block,) = [b for b in draft["blocks"] if b["type"] == "actions"]
    key = f"{block['block_id']}/{ActionId.DRAFT_APPROVE}"
    assert list(draft["refusals"]) == [key]  # Edit and Regenerate stay on
    assert "placeholder(s) to fill" in draft["refusals"][key]
    # The placeholders are listed once under the draft, not again among its checks.
    lines = notes(draft)
    assert sum("[impact:" in line for line in lines) == 1, lines

    # Filled in (Edit), the draft may be approved: the button is on again.
    ui(
        emulator,
        "/ui/click",
        {
            "as": IVAN,
            "channel": room,
            "message_ts": draft["ts"],
            "block_id": block["block_id"],
            "action_id": ActionId.DRAFT_EDIT,
        },
    )
    form = ui(emulator, f"/ui/state?as={IVAN}&channel={room}")["modal"]["view"]
    inputs = {
        b["block_id"]: {b["element"]["action_id"]: ""} for b in form["blocks"] if "element" in b
    }
    first = next(iter(inputs))
    inputs[first] = {next(iter(inputs[first])): "Dear Morgan,\n\nCheckout works again.\n\nVictoria"}
    assert ui(emulator, "/ui/submit", {"as": IVAN, "view_id": form["id"], "inputs": inputs})["ok"]
    acts.wait_idle()
    assert draft_in(emulator, room)["refusals"] == {}


def test_the_apps_messages_tab_is_read_only(
    emulator: SlackEmulator, page: WorkspacePage, acts: Interactions
) -> None:
    dm = emulator.app_dm(DANA)
    answer = ui(emulator, "/ui/send", {"as": DANA, "channel": dm, "text": "hello?"})
    assert not answer["ok"] and answer["error"] == MESSAGES_OFF
    assert emulator.messages_in(dm) == [] and not acts.deliveries


def test_pacing_holds_at_the_step_asked_for_and_ends_on_stop() -> None:
    changes: list[int] = []
    pacing = Pacing(3600, on_change=lambda: changes.append(1))
    pacing.entered_step(3)
    pacing.next_step()  # while playing: on to step 4, then hold
    pacing.entered_step(4)
    assert pacing.snapshot()["state"] == "paused" and pacing.snapshot()["step"] == 4
    with pytest.raises(ValueError, match="speed"):
        pacing.set_speed(3)

    held: list[bool] = []

    def drill() -> None:
        try:
            pacing.beat()  # an hour long, were it not paused and then stopped
        except Stopped:
            held.append(True)

    thread = threading.Thread(target=drill)
    thread.start()
    assert pacing.wait_for(lambda s: s["holding"], 30)
    pacing.stop()
    thread.join(30)
    assert held == [True] and changes  # the page was told of each change

    pacing.finish()
    pacing.resume()  # a finished drill stays finished
    assert pacing.snapshot()["state"] == "finished"

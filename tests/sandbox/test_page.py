"""The sandbox page's endpoints against the production bot: what each person sees, and their
actions reaching the real Bolt app as signed requests it accepts."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from slack_sdk import WebClient

from bot.runtime import Runtime
from bot.sandbox import web, workspace
from bot.sandbox.interactions import Interactions
from bot.sandbox.web import WorkspacePage
from bot.slack.ids import ActionId
from loopback.slack import SlackEmulator
from tests.sandbox.conftest import fetch, ui

DANA, IVAN, ERIN = workspace.SUPPORT_LEAD, workspace.IC, workspace.ENGINEER


def room_name(customer: str = "acme-corp") -> str:
    return f"esc-{datetime.now(UTC):%Y%m%d}-{customer}"


def declare(emulator: SlackEmulator, text: str = "Acme Corp: checkout fails --arr 250k") -> str:
    answer = ui(
        emulator, "/ui/send", {"as": DANA, "channel": "support", "text": f"/escalate {text}"}
    )
    assert answer["ok"], answer
    room = emulator.channel_by_name(room_name())
    assert room is not None
    return room.id


def test_the_page_and_its_files_are_served(emulator: SlackEmulator, page: WorkspacePage) -> None:
    status, ctype, body = fetch(f"{emulator.root}/")
    assert status == 200 and ctype.startswith("text/html")
    assert b'src="/static/app.js"' in body and b'href="/static/style.css"' in body
    for name, kind in (("app.js", "text/javascript"), ("style.css", "text/css")):
        status, ctype, body = fetch(f"{emulator.root}/static/{name}")
        assert status == 200 and ctype.startswith(kind) and body
    for bad in ("nope.js", "..%2Fweb.py", ".hidden.css", "app.py"):
        assert fetch(f"{emulator.root}/static/{bad}")[0] == 404
    # The Web API is still there, on the same port.
    status, _, body = fetch(f"{emulator.root}/api/api.test")
    assert status == 200 and b'"ok": true' in body


def test_the_state_is_what_the_acting_person_sees(
    emulator: SlackEmulator, page: WorkspacePage
) -> None:
    secret = emulator.add_channel("legal-hold", private=True, members=[workspace.LEGAL])
    emulator.add_ephemeral("support", ERIN, "only for erin")
    dana = ui(emulator, f"/ui/state?as={DANA}")
    names = {c["name"] for c in dana["channels"]}
    assert {"support", "exec-escalations"} <= names and "legal-hold" not in names
    assert dana["channel"]["name"] == "support"  # the default channel
    assert dana["users"][workspace.BOT_USER_ID]["name"] == "vp"
    assert dana["users"][DANA]["title"] == "Support Lead"
    assert dana["people"][0] == DANA and dana["banner"] == "offline drafter"
    assert "only for erin" not in str(dana["channel"]["messages"])

    erin = ui(emulator, f"/ui/state?as={ERIN}&channel=support")
    (mine,) = [m for m in erin["channel"]["messages"] if m["ephemeral"]]
    assert mine["text"] == "only for erin"
    lee = ui(emulator, f"/ui/state?as={workspace.LEGAL}&channel={secret}")
    assert lee["channel"]["is_private"] and lee["channel"]["name"] == "legal-hold"
    assert ui(emulator, f"/ui/state?as={DANA}&channel={secret}")["channel"] is None


def test_state_waits_for_the_next_change(
    emulator: SlackEmulator, page: WorkspacePage, monkeypatch: pytest.MonkeyPatch
) -> None:
    version = ui(emulator, f"/ui/state?as={DANA}")["version"]
    quiet = ui(emulator, f"/ui/state?as={DANA}&since={version}&wait=0.2")
    assert quiet == {"version": version, "unchanged": True}

    # A wait of an hour: an answer at all (within the request's 30 s) is an answer at the change.
    monkeypatch.setattr(web, "MAX_WAIT", 3600.0)
    timer = threading.Timer(0.3, lambda: emulator.add_message("support", ERIN, "news"))
    timer.start()
    fresh = ui(emulator, f"/ui/state?as={DANA}&since={version}&wait=3600")
    timer.join()
    assert fresh["version"] > version and fresh["channel"]["messages"][-1]["text"] == "news"


def test_a_declaration_from_the_composer_opens_the_room(
    emulator: SlackEmulator, page: WorkspacePage, acts: Interactions, bot: Runtime
) -> None:
    room = declare(emulator)
    assert [d.kind for d in acts.deliveries] == ["slash_command"]
    assert acts.deliveries[-1].status == 200  # the signature was accepted

    state = ui(emulator, f"/ui/state?as={DANA}&channel={room}")
    channel = state["channel"]
    assert channel["topic"] == "Acme Corp · IC <@U0INCCMDR> · Investigating"
    (brief,) = [m for m in channel["messages"] if m["pinned"]]
    assert channel["pins"] == [brief["ts"]]
    assert brief["blocks"][0]["text"]["text"] == "Escalation: Acme Corp"
    assert room in {c["id"] for c in state["channels"]}
    assert bot.store.by_channel(room) is not None

    # The response_url answer is shown to the declarer only, in #support, in place of the
    # ack ("Opening a war room…") it follows.
    support = ui(emulator, f"/ui/state?as={DANA}&channel=support")["channel"]["messages"]
    shown = [m["text"] for m in support if m["ephemeral"]]
    assert len(shown) == 1 and f"<#{room}>" in shown[0] and "ready" in shown[0]
    opening = [m for m in emulator.messages_in("support") if "Opening a war room" in m.text]
    assert opening and opening[0].ephemeral_for == DANA  # said first, then superseded
    ivan = ui(emulator, f"/ui/state?as={IVAN}&channel=support")["channel"]["messages"]
    assert not [m for m in ivan if m["ephemeral"]]
    exec_notice = emulator.messages_in(workspace.EXEC_CHANNEL)
    assert len(exec_notice) == 1 and f"<#{room}>" in str(exec_notice[0].blocks)


def test_a_mention_is_an_app_mention_answered_in_a_thread(
    emulator: SlackEmulator, page: WorkspacePage, acts: Interactions
) -> None:
    room = declare(emulator)
    answer = ui(emulator, "/ui/send", {"as": IVAN, "channel": room, "text": "@vp status"})
    assert answer["ok"] and answer["ts"]
    acts.wait_idle()
    mention = next(m for m in emulator.messages_in(room) if m.ts == answer["ts"])
    assert mention.text == f"<@{workspace.BOT_USER_ID}> status" and mention.user == IVAN
    kinds = [(d.kind, d.status) for d in acts.deliveries]
    # The mention reaches the app as app_mention, and as a message of the channel (the app
    # hears every message, for a customer's in a shared channel): that one is acknowledged
    # and leaves the room alone, so the mention is answered once (below).
    assert kinds.count(("event:app_mention", 200)) == 1
    assert kinds.count(("event:message", 200)) == 1

    channel = ui(emulator, f"/ui/state?as={ERIN}&channel={room}")["channel"]
    (asked,) = [m for m in channel["messages"] if m["ts"] == answer["ts"]]
    (reply,) = asked["replies"]
    assert reply["user"] == workspace.BOT_USER_ID and "open for" in reply["text"]
    # Erin was not invited: posting in the public room joined her to it.
    assert ERIN not in channel["members"]
    ui(
        emulator,
        "/ui/send",
        {"as": ERIN, "channel": room, "text": "on it", "thread_ts": asked["ts"]},
    )
    assert ERIN in emulator.find_channel(room).members
    channel = ui(emulator, f"/ui/state?as={ERIN}&channel={room}")["channel"]
    (asked,) = [m for m in channel["messages"] if m["ts"] == answer["ts"]]
    assert [r["text"] for r in asked["replies"]][-1] == "on it"


def test_mark_done_is_a_block_action_and_the_brief_updates_in_place(
    emulator: SlackEmulator, page: WorkspacePage, acts: Interactions
) -> None:
    room = declare(emulator)
    brief_ts = emulator.find_channel(room).pins[0]
    answer = ui(
        emulator,
        "/ui/click",
        {
            "as": IVAN,
            "channel": room,
            "message_ts": brief_ts,
            "block_id": "step:assessment",
            "action_id": ActionId.STEP_DONE,
        },
    )
    assert answer["ok"], answer
    assert acts.deliveries[-1].kind == "block_actions" and acts.deliveries[-1].status == 200
    brief = next(m for m in emulator.messages_in(room) if m.ts == brief_ts)
    assert brief.edited
    step = next(b for b in brief.blocks if b.get("block_id") == "step:assessment")
    assert "Done" in step["text"]["text"] and "accessory" not in step
    assert ui(emulator, f"/ui/state?as={DANA}&channel={room}")["channel"]["messages"][0]["edited"]

    gone = ui(
        emulator,
        "/ui/click",
        {"as": IVAN, "channel": room, "message_ts": brief_ts, "block_id": "nope", "action_id": "x"},
    )
    assert not gone["ok"] and "gone" in gone["error"]


def test_the_form_opens_for_its_user_shows_errors_and_declares(
    emulator: SlackEmulator, page: WorkspacePage, acts: Interactions
) -> None:
    assert ui(emulator, "/ui/send", {"as": DANA, "channel": "support", "text": "/escalate"})["ok"]
    modal = ui(emulator, f"/ui/state?as={DANA}")["modal"]
    assert modal is not None and modal["view"]["callback_id"] == "declare_form"
    assert ui(emulator, f"/ui/state?as={IVAN}")["modal"] is None
    view_id = modal["view"]["id"]

    inputs = {
        "customer": {"value": "Globex"},
        "summary": {"value": "EU checkout returns 502\nfor 40% of orders"},
        "arr": {"value": "lots"},
        "criteria": {"value": ["multi_customer_outage"]},
        "ic": {"value": workspace.IC2},
        "private": {"value": []},
    }
    refused = ui(emulator, "/ui/submit", {"as": DANA, "view_id": view_id, "inputs": inputs})
    assert not refused["ok"] and "lots" in refused["errors"]["arr"]
    assert ui(emulator, f"/ui/state?as={DANA}")["modal"]["view"]["id"] == view_id

    inputs["arr"] = {"value": "480k"}
    accepted = ui(emulator, "/ui/submit", {"as": DANA, "view_id": view_id, "inputs": inputs})
    assert accepted["ok"], accepted
    assert ui(emulator, f"/ui/state?as={DANA}")["modal"] is None
    room = emulator.channel_by_name(room_name("globex"))
    assert room is not None and room.pins
    assert f"IC <@{workspace.IC2}>" in room.topic
    assert workspace.ENGINEER in room.members  # multi_customer_outage's responder
    dm = ui(emulator, f"/ui/state?as={DANA}")["channels"]
    assert [c for c in dm if c["is_im"] and c["count"] == 1]  # "War room … is ready" in the DM


def test_closing_a_modal_closes_it_for_that_person(
    emulator: SlackEmulator, page: WorkspacePage
) -> None:
    ui(emulator, "/ui/send", {"as": DANA, "channel": "support", "text": "/escalate"})
    view_id = ui(emulator, f"/ui/state?as={DANA}")["modal"]["view"]["id"]
    assert ui(emulator, "/ui/close", {"as": DANA, "view_id": view_id})["ok"]
    assert ui(emulator, f"/ui/state?as={DANA}")["modal"] is None


def test_a_page_reload_closes_the_persons_modals_as_slack_does(
    emulator: SlackEmulator, page: WorkspacePage, acts: Interactions
) -> None:
    ui(emulator, "/ui/send", {"as": DANA, "channel": "support", "text": "/escalate"})
    ui(emulator, "/ui/send", {"as": IVAN, "channel": "support", "text": "/escalate"})
    assert ui(emulator, f"/ui/state?as={DANA}")["modal"] is not None
    # A modal whose app asked to hear of its closing, stacked on top of Dana's form.
    web = WebClient(token=emulator.bot_token, base_url=emulator.url)
    notify = {"type": "modal", "title": {"type": "plain_text", "text": "Notify"}}
    web.views_open(
        trigger_id=emulator.new_trigger_id(user=DANA),
        view={**notify, "callback_id": "told", "notify_on_close": True},
    )
    assert emulator.modal_stack(DANA)[-1]["callback_id"] == "told"

    assert ui(emulator, "/ui/open", {"as": DANA})["ok"]
    assert ui(emulator, f"/ui/state?as={DANA}")["modal"] is None
    assert emulator.modal_stack(DANA) == []
    # Only the view that asked for it was reported closed; Ivan's modal is his own.
    assert [d.kind for d in acts.deliveries].count("view_closed") == 1
    assert ui(emulator, f"/ui/state?as={IVAN}")["modal"] is not None
    # A first load with nobody chosen yet is the first person's.
    assert ui(emulator, "/ui/open", {})["ok"]


def test_typed_text_is_encoded_as_slack_sends_it(
    emulator: SlackEmulator, acts: Interactions
) -> None:
    support = emulator.find_channel("support").id
    assert acts.encode("@ivan: see #support & <b>, @here.", for_command=True) == (
        f"<@{IVAN}|ivan>: see <#{support}|support> &amp; &lt;b&gt;, <!here>."
    )
    assert acts.encode("@vp help @nobody #nowhere") == (
        f"<@{workspace.BOT_USER_ID}> help @nobody #nowhere"
    )
    assert acts.encode("ping @security, see https://example.com/x?a=1") == (
        "ping <!subteam^S0SECURTY|@security>, see <https://example.com/x?a=1>"
    )


def test_commands_the_app_does_not_have_and_an_app_that_does_not_answer(
    emulator: SlackEmulator, page: WorkspacePage, acts: Interactions
) -> None:
    answer = ui(emulator, "/ui/send", {"as": DANA, "channel": "support", "text": "/deploy now"})
    assert not answer["ok"] and "not a valid command" in answer["error"]
    gone = Interactions(emulator, "http://127.0.0.1:9/slack/events", "secret", timeout=2)
    try:
        outcome = gone.say(DANA, "support", "/escalate Acme: down")
    finally:
        gone.close()
    assert not outcome.ok and '"dispatch_failed"' in outcome.error
    wrong = Interactions(emulator, acts.request_url, "not-the-secret")
    try:
        outcome = wrong.say(DANA, "support", "/escalate Acme: down")
    finally:
        wrong.close()
    assert not outcome.ok and wrong.deliveries[-1].status == 401
    slackbot = [m for m in emulator.messages_in("support") if m.user == "USLACKBOT"]
    assert len(slackbot) == 3 and all(m.ephemeral_for == DANA for m in slackbot)


def test_opening_the_home_tab_sends_app_home_opened(
    emulator: SlackEmulator, page: WorkspacePage, acts: Interactions
) -> None:
    assert ui(emulator, "/ui/home", {"as": DANA})["ok"]
    acts.wait_idle()
    (delivery,) = [d for d in acts.deliveries if d.kind == "event:app_home_opened"]
    assert delivery.status != 401  # signed as Slack signs it (handled or not by the bot)
    assert emulator.dm_with(DANA) is not None


def test_unknown_people_and_actions_are_refused(
    emulator: SlackEmulator, page: WorkspacePage
) -> None:
    assert "no user" in ui(emulator, "/ui/send", {"as": "U0NOBODY", "text": "x"})["error"]
    assert ui(emulator, "/ui/launch", {"as": DANA})["ok"] is False
    assert ui(emulator, "/ui/send", {"as": DANA, "channel": "support", "text": " "})["ok"] is False
    assert ui(emulator, "/ui/send", {"as": DANA, "channel": "nowhere", "text": "hi"})["ok"] is False

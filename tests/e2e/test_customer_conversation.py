"""The customer conversation through the bot: the impact's start read from what people wrote
and shown back, `workaround none` and `fixed` recorded, each approved letter kept as what the
customer was told, and the next letter owning a promise it did not keep and leaving out a
line the approver removed."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from bot.slack.ids import ActionId
from loopback.slack.driver import SlackDriver
from tests.conftest import SIGNING_SECRET
from tests.e2e.test_draft_checks import current, edit
from tests.rooms import Room, draft_id, shown


def offline_room(agent_runtime, fake_slack, memory_dir) -> Room:
    insights = memory_dir / "_knowledge" / "semantic" / "customer_insights.yaml"
    insights.parent.mkdir(parents=True, exist_ok=True)
    insights.write_text(
        "customers:\n  - name: Initech\n    timezone: America/New_York\n"
        "    executive_contact: Mr Tan Wei Ming, CFO\n    salutation: Mr Tan\n"
    )
    rt = agent_runtime(anthropic_api_key=None)  # letters written offline, from the facts
    return Room(rt, SlackDriver(fake_slack, SIGNING_SECRET, app=rt.app), fake_slack)


def reply(room: Room, ts: str) -> str:
    return shown(room.thread(ts)[-1])


def test_the_start_written_in_the_impact_is_read_in_the_accounts_zone_and_shown_back(
    agent_runtime, fake_slack, memory_dir
) -> None:
    room = offline_room(agent_runtime, fake_slack, memory_dir)
    said = reply(room, room.mention("impact shoppers cannot pay at checkout since 09:10"))
    impact = room.esc.facts.impact
    assert impact.began_from == "text"
    local = impact.began.astimezone(ZoneInfo("America/New_York"))
    assert (local.hour, local.minute) == (9, 10)
    assert "It began" in said and "from the time in your text" in said
    said = reply(room, room.mention("impact shoppers cannot pay since 09:10 --since 1h"))
    assert "disagrees" in said and room.esc.facts.impact.stated_began is not None


def test_no_workaround_and_what_fixed_it_reach_the_letters(
    agent_runtime, fake_slack, memory_dir
) -> None:
    room = offline_room(agent_runtime, fake_slack, memory_dir)
    room.mention("impact shoppers cannot pay at checkout")
    room.mention("doing moving checkout to a healthy region")
    said = reply(room, room.mention("workaround none"))
    assert "there is no workaround" in said and room.esc.facts.no_workaround
    (draft,) = room.thread(room.mention("draft update"))
    text = shown(draft)
    assert "Dear Mr Tan," in text and "there is no workaround for this" in text
    assert "[workaround:" not in text

    said = reply(room, room.mention("resolve rolled back the gateway"))
    assert "`@vp fixed <text>`" in said
    room.mention("fixed we moved checkout to a healthy region")
    room.mention("action <@U0ENGINE1> alert on checkout errors within a minute --prevention")
    assert room.esc.actions[0].prevention and room.esc.actions[0].text.endswith("a minute")
    (notice,) = room.thread(room.mention("draft update"))
    text = shown(notice)
    assert "What fixed it: We moved checkout to a healthy region." in text
    assert "so it does not happen again: Alert on checkout errors within a minute." in text


def test_the_next_letter_owns_a_missed_promise_and_keeps_out_a_removed_line(
    agent_runtime, fake_slack, memory_dir, clock
) -> None:
    room = offline_room(agent_runtime, fake_slack, memory_dir)
    room.mention("impact shoppers cannot pay at checkout")
    room.mention("workaround pay by invoice from the billing page")
    room.mention("doing moving checkout to a healthy region")
    (draft,) = room.thread(room.mention("draft update"))
    # The approver takes the workaround line out before approving.
    original = room.rt.store.get_draft(draft_id(draft).split(":")[0]).text
    edited = "\n".join(
        line for line in original.splitlines() if not line.startswith("What you can do")
    )
    edit(room, draft, edited)
    room.click(ActionId.DRAFT_APPROVE, current(room, draft), user="U0VPSUPRT")
    (kept,) = room.esc.facts.told
    assert kept.left_out == ("workaround",)
    assert kept.promised is not None  # read back from the approved text
    # The promise is the clock: approving and an internal update never move it later.
    escalations = room.rt.desk.escalations
    assert escalations.next_update_due(room.esc) == kept.promised
    clock.advance(timedelta(minutes=10))
    room.mention("update failover 40% done")
    assert escalations.next_update_due(room.esc) == kept.promised

    clock.advance(kept.promised - room.rt.clock() - timedelta(minutes=10))
    room.rt.run_due()  # a quarter of an hour before the promise, the IC is reminded
    soon = [m for m in room.fake.messages_in(room.channel.id) if "⏳" in shown(m)]
    assert len(soon) == 1 and "<@U0INCCMDR>" in shown(soon[0])
    clock.advance(timedelta(minutes=15))
    room.rt.run_due()  # the promise is due: the IC and the VPs are told
    nudges = [shown(m) for m in room.fake.messages_in(room.channel.id) if "that is now" in shown(m)]
    assert len(nudges) == 1 and "<@U0INCCMDR>" in nudges[0] and "<@U0VPSUPRT>" in nudges[0]
    (late,) = room.thread(room.mention("draft update"))
    text = shown(late)
    assert "this one comes later than that" in " ".join(text.split())
    assert "pay by invoice" not in text


def test_the_impact_ends_at_the_time_people_write(agent_runtime, fake_slack, memory_dir) -> None:
    room = offline_room(agent_runtime, fake_slack, memory_dir)
    room.mention("impact shoppers cannot pay at checkout --since 3h")
    began = room.esc.facts.impact.began.astimezone(ZoneInfo("America/New_York"))
    end = (began + timedelta(hours=1)).strftime("%H:%M")
    said = reply(room, room.mention(f"impact ended {end}"))
    ended = room.esc.facts.impact.ended.astimezone(ZoneInfo("America/New_York"))
    assert ended.strftime("%H:%M") == end and ended - began == timedelta(hours=1)
    assert "Letters now say so, in the past tense" in said
    (draft,) = room.thread(room.mention("draft update"))
    assert "the impact on your team has ended" in shown(draft).casefold()
    assert "Shoppers could not pay at checkout." in shown(draft)

"""Nothing people type speaks for the bot: broadcasts, group pings and links in what people
type never notify or link in what the bot posts, and their words are escaped exactly once.

At the wire: signed requests in, what the loopback Slack recorded out.
"""

from __future__ import annotations

import re
import time
from datetime import timedelta

from bot.slack.ids import ActionId
from loopback.slack import FakeSlack
from loopback.slack.driver import SlackDriver
from tests.conftest import today

BROADCAST = re.compile(r"<!(here|channel|everyone|subteam)")
FOREIGN_LINK = re.compile(r"<(https?://|mailto:)")


def everything(message) -> str:
    """All the markup of a posted message: its fallback text and every text in its blocks."""
    found = [message.text or ""]

    def walk(node) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("text"), str):
                found.append(node["text"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(message.blocks or [])
    return "\n".join(found)


def mention(slack: SlackDriver, channel: str, text: str, user: str = "U0INCCMDR") -> str:
    ts = f"{time.time():.6f}"
    slack.event(
        {
            "type": "app_mention",
            "user": user,
            "channel": channel,
            "ts": ts,
            "text": f"<@{slack.fake.bot_user_id}> {text}",
        }
    )
    return ts


def reply(fake: FakeSlack, channel: str, ts: str) -> str:
    (answer,) = [m for m in fake.messages_in(channel) if m.thread_ts == ts]
    return everything(answer)


def test_broadcasts_and_disguised_links_in_a_declaration_stay_text(slack, fake_slack) -> None:
    slack.command(
        "Acme Corp: checkout down <!here> see <https://evil.example/x|status page> "
        "&lt;!channel&gt; <!subteam^S0SECURTY|@security>"
    )
    (notice,) = fake_slack.messages_in("exec-escalations")
    shown = everything(notice)
    assert not BROADCAST.search(shown) and not FOREIGN_LINK.search(shown), shown
    # What was typed is still there to read, as text.
    assert "@here" in shown and "status page (https://evil.example/x)" in shown
    assert "&lt;!channel&gt;" in shown and "@security" in shown
    room = fake_slack.channel_by_name(f"esc-{today()}-acme-corp")
    brief = next(m for m in room.messages if m.ts == room.pins[0])
    assert not BROADCAST.search(everything(brief)) and not FOREIGN_LINK.search(everything(brief))
    for block in brief.blocks:
        if block.get("text", {}).get("type") == "mrkdwn":
            assert block["text"].get("verbatim") is True  # Slack adds no links of its own


def test_a_customer_named_like_a_broadcast_never_pings_the_room(
    slack, fake_slack, runtime, clock
) -> None:
    slack.command("")  # the form
    view = fake_slack.views[next(iter(fake_slack.views))]
    slack.submit_view(
        view,
        {
            "customer": {"value": {"type": "plain_text_input", "value": "<!channel> Corp"}},
            "summary": {"value": {"type": "plain_text_input", "value": "<!here> down & out"}},
        },
    )
    (room,) = [c for c in fake_slack.channels.values() if c.name.startswith("esc-")]
    for _ in range(2):  # two update intervals: two nudges
        clock.advance(timedelta(hours=2, minutes=1))
        runtime.run_due()
    posted = [everything(m) for m in room.messages] + [
        everything(m) for m in fake_slack.messages_in("exec-escalations")
    ]
    assert sum("No status update" in p for p in posted) == 2
    assert [p for p in posted if BROADCAST.search(p)] == []
    assert room.topic.startswith("&lt;!channel&gt; Corp")
    assert any("&lt;!here&gt; down &amp; out" in p for p in posted)


def test_updates_and_resolutions_are_escaped_once(slack, fake_slack) -> None:
    slack.command("Acme: login broken", user="U0DECLARER")
    room = fake_slack.channel_by_name(f"esc-{today()}-acme")
    mention(slack, room.id, "update token &lt;auth&gt; expired &amp; rotated <!channel>")
    ts = mention(slack, room.id, "timeline")
    shown = reply(fake_slack, room.id, ts)
    assert "token &lt;auth&gt; expired &amp; rotated @channel" in shown
    assert "&amp;lt;" not in shown and "&amp;amp;" not in shown and not BROADCAST.search(shown)

    mention(slack, room.id, "resolve rotated the key &amp; <!here> <https://x.example|docs>")
    resolved = [everything(m) for m in fake_slack.messages_in("exec-escalations")][-1]
    assert "rotated the key &amp; @here docs (https://x.example)" in resolved
    assert not BROADCAST.search(resolved) and not FOREIGN_LINK.search(resolved)
    ts = mention(slack, room.id, "status")
    assert "rotated the key &amp; @here" in reply(fake_slack, room.id, ts)


def test_in_a_run_where_people_typed_tricks_no_exec_post_broadcasts(
    slack, fake_slack, runtime, clock
) -> None:
    """The run of the report: declarations, resolutions and the weekly digest, each with
    text that broadcast before."""
    for n, customer in enumerate(("<!channel>", "Acme &lt;!here&gt;", "Globex")):
        slack.command(f"{customer} {n}: down <!everyone> <!subteam^S0LEGALTM|@legal>")
    rooms = [c for c in fake_slack.channels.values() if c.name.startswith("esc-")]
    assert len(rooms) == 3
    for room in rooms:
        mention(slack, room.id, "resolve fixed <!channel> &lt;!here&gt;", user="U0DECLARER")
    runtime.timers.reconcile()  # the weekly digest, next Monday
    clock.advance(timedelta(days=7))
    runtime.run_due()
    posts = [everything(m) for m in fake_slack.messages_in("exec-escalations")]
    assert len(posts) >= 7  # 3 notices, 3 resolutions, the digest
    assert [p for p in posts if BROADCAST.search(p) or FOREIGN_LINK.search(p)] == []


def test_what_the_model_writes_is_inert(room, fake_anthropic) -> None:
    fake_anthropic.reply_with(
        "Dear team <!channel>, see <https://evil.example|our status page> & call <@U0EVIL>."
    )
    ts = room.mention("draft update")
    (draft,) = room.thread(ts)
    shown = everything(draft)
    assert not BROADCAST.search(shown) and not FOREIGN_LINK.search(shown)
    assert "&lt;!channel&gt;" in shown and "&lt;@U0EVIL&gt;" in shown and " &amp; " in shown


def test_the_timeline_names_people_and_pings_no_one(slack, fake_slack) -> None:
    """Defect: `@vp timeline` mentioned every actor; anyone in the room could ping them all,
    again and again."""
    slack.command("Acme: checkout down", user="U0DECLARER")
    room = fake_slack.channel_by_name(f"esc-{today()}-acme")
    mention(slack, room.id, "update rolled back", user="U0INCCMDR")
    mention(slack, room.id, "ic <@U0OTHERIC>", user="U0INCCMDR")
    shown = reply(fake_slack, room.id, mention(slack, room.id, "timeline"))
    assert "<@" not in shown
    names = {u: fake_slack.user(u)["name"] for u in ("U0DECLARER", "U0INCCMDR", "U0OTHERIC")}
    for name in names.values():
        assert f"@{name}" in shown
    assert f"@{names['U0OTHERIC']} is incident commander" in shown


def test_the_timeline_keeps_the_newest_events(slack, fake_slack) -> None:
    slack.command("Acme: checkout down")
    room = fake_slack.channel_by_name(f"esc-{today()}-acme")
    for n in range(60):
        mention(slack, room.id, f"update step {n:02d} " + "detail " * 12)
    shown = reply(fake_slack, room.id, mention(slack, room.id, "timeline"))
    assert "step 59" in shown and "step 00" not in shown
    assert "(the last" in shown


def test_a_long_summary_never_clips_the_room_link_from_the_exec_notice(slack, fake_slack) -> None:
    slack.command("Acme: " + "everything is broken " * 95)
    (notice,) = fake_slack.messages_in("exec-escalations")
    room = fake_slack.channel_by_name(f"esc-{today()}-acme")
    assert f"<#{room.id}>" in notice.blocks[0]["text"]["text"]
    assert len(notice.blocks[0]["text"]["text"]) <= 3000


def test_answers_and_refusals_never_echo_markup(slack, fake_slack) -> None:
    slack.command("Acme: checkout down")
    room = fake_slack.channel_by_name(f"esc-{today()}-acme")
    ts = mention(slack, room.id, "done &lt;!channel&gt;")
    private = [m for m in fake_slack.messages_in(room.id) if m.thread_ts == ts]
    assert private and all(m.ephemeral_for == "U0INCCMDR" for m in private)
    assert not any(BROADCAST.search(everything(m)) for m in private)
    slack.click(room.id, ActionId.STEP_DONE, "assessment", user="U0INCCMDR")

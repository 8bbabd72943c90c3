"""Only the IC, the VP(s) and the declarer may reassign the IC, resolve or approve a customer
update; anyone else is refused politely and nothing changes. Configurable."""

from __future__ import annotations

import time

import pytest
import yaml

from bot.runtime import build_runtime
from bot.slack.draft_view import read_button_value
from loopback.harness import InlineExecutor
from loopback.slack.driver import SlackDriver
from tests.conftest import CONFIG, SIGNING_SECRET, today
from tests.rooms import draft_id


def mention(slack: SlackDriver, channel: str, text: str, user: str) -> str:
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


def reply_in(fake, channel: str, ts: str, user: str) -> str:
    """What the bot answered `user`, visible to them only: ephemeral in the thread, or in the
    app's DM when they are not in the room. Nothing is posted in the room for everyone."""
    public = [m for m in fake.messages_in(channel) if m.thread_ts == ts and not m.ephemeral_for]
    assert public == [], "a refusal is answered privately"
    private = [m for m in fake.messages_in(channel) if m.thread_ts == ts and m.ephemeral_for]
    if not private:
        dm = fake.dm_with(user)
        private = list(dm.messages) if dm else []
    (reply,) = private
    assert not reply.ephemeral_for or reply.ephemeral_for == user
    return reply.text


@pytest.mark.parametrize(
    ("command", "what"),
    [("ic <@U0ENGINE1>", "reassign the incident commander"), ("resolve fixed", "resolve")],
)
def test_outsiders_are_refused_and_nothing_changes(slack, fake_slack, runtime, command, what):
    slack.command("Acme: checkout down")
    day = today()
    channel = fake_slack.channel_by_name(f"esc-{day}-acme")
    before = runtime.store.by_channel(channel.id)
    ts = mention(slack, channel.id, command, user="U0ENGINE1")
    text = reply_in(fake_slack, channel.id, ts, "U0ENGINE1")
    assert "Sorry" in text and what in text and "Nothing was changed" in text
    after = runtime.store.by_channel(channel.id)
    assert after == before  # same version, same IC, still open


@pytest.mark.parametrize("user", ["U0INCCMDR", "U0VPSUPRT", "U0DECLARER"])
def test_the_ic_a_vp_and_the_declarer_may(slack, fake_slack, runtime, user):
    slack.command("Acme: checkout down", user="U0DECLARER")
    day = today()
    channel = fake_slack.channel_by_name(f"esc-{day}-acme")
    mention(slack, channel.id, "ic <@U0OTHERIC>", user=user)
    assert runtime.store.by_channel(channel.id).ic == "U0OTHERIC"


def test_who_may_act_is_configurable(settings, clock, fake_slack, config_file):
    config_file.write_text(yaml.safe_dump({**CONFIG, "authorized_roles": ["vp"]}))
    rt = build_runtime(settings, clock=clock, listener_executor=InlineExecutor())
    try:
        slack = SlackDriver(fake_slack, SIGNING_SECRET, app=rt.app)
        slack.command("Acme: checkout down", user="U0DECLARER")
        day = today()
        channel = fake_slack.channel_by_name(f"esc-{day}-acme")
        ts = mention(slack, channel.id, "resolve fixed", user="U0INCCMDR")  # the IC: not now
        assert "only a VP may resolve" in reply_in(fake_slack, channel.id, ts, "U0INCCMDR")
        mention(slack, channel.id, "resolve fixed", user="U0VPSUPRT")
        assert rt.store.by_channel(channel.id).status == "resolved"
    finally:
        rt.close()


# -- every change has an owner -----------------------------------------------------------------

OUTSIDER = "U0ENGINE1"  # in the workspace, never invited to the room
MEMBER = "U0CSMGR01"  # in the room (the account's CSM), neither IC, VP nor declarer


def private_texts(room, user: str) -> list[str]:
    """What the bot told `user` alone: ephemeral messages (in the room, or answers to their
    clicks) and the app's DM, where they go when the person is not in the room."""
    fake = room.fake
    texts = [m.text for m in fake.messages_in(room.channel.id) if m.ephemeral_for == user]
    dm = fake.dm_with(user)
    texts += [m.text for m in dm.messages] if dm else []
    url = room.slack.last_response_url
    texts += [r.get("text", "") for r in fake.responses_to(url)] if url else []
    return texts


def public_posts(room) -> int:
    bot = room.fake.bot_user_id
    return sum(
        1 for m in room.fake.messages_in(room.channel.id) if m.user == bot and not m.ephemeral_for
    )


def snapshot(room) -> tuple:
    esc = room.esc
    draft = room.rt.store.get_draft(read_button_value(draft_id(room.the_draft))[0])
    views = len(room.fake.views)  # a form opened
    return esc, len(room.rt.store.timeline(esc.id)), draft, public_posts(room), views


def refused(room, user: str, action) -> str:
    """Do `action` as `user`; it must change nothing and be answered to them alone."""
    before, told = snapshot(room), private_texts(room, user)
    action(room, user)
    assert snapshot(room) == before, "nothing changes"
    new = [t for t in private_texts(room, user) if t not in told]
    assert new, f"{user} was told nothing"
    return new[-1]


@pytest.mark.parametrize(
    ("action", "words"),
    [
        (lambda room, user: room.mention("done assessment", user=user), "mark a step done"),
        (
            lambda room, user: room.slack.click(
                room.channel.id, "step_done", "assessment", user=user
            ),
            "mark a step done",
        ),
        (lambda room, user: room.mention("update we rolled back", user=user), "record an update"),
        (lambda room, user: room.mention("draft update", user=user), "ask for a customer update"),
        (lambda room, user: room.mention("review", user=user), "ask for the review"),
        (lambda room, user: room.click("draft_edit", room.the_draft, user=user), "edit"),
        (lambda room, user: room.click("draft_regenerate", room.the_draft, user=user), "redraft"),
    ],
)
def test_everyday_actions_are_for_the_people_in_the_room(room, fake_anthropic, action, words):
    fake_anthropic.reply_with("We are on it.")
    room.the_draft = room.thread(room.mention("draft update"))[0]
    before = snapshot(room)
    text = refused(room, OUTSIDER, action)
    assert "only the people in this war room" in text and words in text
    assert "Nothing was changed" in text
    action(room, MEMBER)  # someone in the room may
    assert snapshot(room) != before


@pytest.mark.parametrize(
    ("action", "words"),
    [
        (lambda room, user: room.mention("resolve fixed", user=user), "resolve"),
        (lambda room, user: room.mention("ic <@U0ENGINE1>", user=user), "reassign"),
        (lambda room, user: room.click("draft_approve", room.the_draft, user=user), "approve"),
    ],
)
def test_decisive_actions_need_a_role_even_in_the_room(room, fake_anthropic, action, words):
    fake_anthropic.reply_with("We are on it.")
    room.the_draft = room.thread(room.mention("draft update"))[0]
    before = snapshot(room)
    text = refused(room, MEMBER, action)
    assert "only the incident commander, a VP or the declarer" in text and words in text
    action(room, "U0DECLARER")
    assert snapshot(room) != before


def test_everyday_roles_are_configurable(settings, clock, fake_slack, config_file) -> None:
    config_file.write_text(yaml.safe_dump({**CONFIG, "everyday_roles": ["ic"]}))
    rt = build_runtime(settings, clock=clock, listener_executor=InlineExecutor())
    try:
        slack = SlackDriver(fake_slack, SIGNING_SECRET, app=rt.app)
        slack.command("Acme: checkout down --arr 200k", user="U0DECLARER")
        channel = fake_slack.channel_by_name(f"esc-{today()}-acme")
        assert MEMBER in channel.members
        slack.click(channel.id, "step_done", "assessment", user=MEMBER)
        assert rt.store.by_channel(channel.id).step("assessment").done_at is None
        assert (
            "only the incident commander may"
            in fake_slack.responses_to(slack.last_response_url)[-1]["text"]
        )
        slack.click(channel.id, "step_done", "assessment", user="U0INCCMDR")
        assert rt.store.by_channel(channel.id).step("assessment").done_at is not None
    finally:
        rt.close()

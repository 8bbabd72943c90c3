"""Only the IC, the VP(s) and the declarer may reassign the IC, resolve or approve a customer
update; anyone else is refused politely and nothing changes. Configurable."""

from __future__ import annotations

import time

import pytest
import yaml

from bot.runtime import build_runtime
from loopback.harness import InlineExecutor
from loopback.slack.driver import SlackDriver
from tests.conftest import CONFIG, SIGNING_SECRET, today


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

"""A declared war room with the VP agent on the loopback Messages API, for the tests that act
in one: the `room` and `agent_runtime` fixtures (loaded by tests/conftest.py), and helpers to
read what Slack shows."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from pydantic import SecretStr

from bot.runtime import Runtime, build_runtime
from bot.slack.ids import ActionId
from loopback.harness import InlineExecutor
from loopback.slack import FakeSlack
from loopback.slack.driver import SlackDriver
from tests.conftest import SIGNING_SECRET, today


def shown(message) -> str:
    texts = []
    for b in message.blocks or []:
        if "text" in b and isinstance(b["text"], dict):
            texts.append(b["text"].get("text", ""))
        for el in b.get("elements", []) or []:
            if isinstance(el, dict) and isinstance(el.get("text"), str):
                texts.append(el["text"])
    return "\n".join(texts) or message.text or ""


def buttons(message) -> list[str]:
    return [
        el["action_id"]
        for b in message.blocks or []
        if b.get("type") == "actions"
        for el in b["elements"]
    ]


def wait_until(check: Callable[[], object], timeout: float = 10, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def draft_id(message) -> str:
    """The draft a message shows (its buttons carry the id; approved drafts keep it in Redis)."""
    ids = [
        el["value"]
        for b in message.blocks or []
        if b.get("type") == "actions"
        for el in b["elements"]
    ]
    if ids:
        message.draft_id = ids[0]
    return message.draft_id


class Room:
    """A declared escalation, and the means to act in it."""

    def __init__(self, rt: Runtime, slack: SlackDriver, fake: FakeSlack) -> None:
        self.rt, self.slack, self.fake = rt, slack, fake
        slack.command("Initech: TPS reports missing for all EU users --arr 480k")
        self.channel = fake.channel_by_name(f"esc-{today()}-initech")
        self.esc_id = self.channel.name

    def mention(self, text: str, user: str = "U0INCCMDR") -> str:
        # The mention is a message in the channel, as in Slack (a thread's parent, and what
        # conversations.history and .replies return).
        ts = self.fake.add_message(self.channel.id, user, f"<@{self.fake.bot_user_id}> {text}")
        self.slack.event(
            {
                "type": "app_mention",
                "user": user,
                "text": f"<@{self.fake.bot_user_id}> {text}",
                "channel": self.channel.id,
                "ts": ts,
            }
        )
        return ts

    def thread(self, ts: str) -> list:
        return [m for m in self.fake.messages_in(self.channel.id) if m.thread_ts == ts]

    def drafts(self) -> list:
        return [
            m
            for m in self.fake.messages_in(self.channel.id)
            if ActionId.DRAFT_APPROVE in buttons(m) or "Draft customer update" in shown(m)
        ]

    def click(self, action: str, message, user: str = "U0INCCMDR"):
        return self.slack.click(
            self.channel.id, action, draft_id(message), user=user, ts=message.ts
        )

    @property
    def esc(self):
        return self.rt.store.get(self.esc_id)


@pytest.fixture
def agent_runtime(settings, clock, fake_anthropic) -> Iterator[Callable[..., Runtime]]:
    made: list[Runtime] = []

    def make(**overrides) -> Runtime:
        values = {
            "anthropic_api_key": SecretStr(fake_anthropic.api_key),
            "anthropic_base_url": fake_anthropic.url,
            **overrides,
        }
        rt = build_runtime(
            settings.model_copy(update=values), clock=clock, listener_executor=InlineExecutor()
        )
        rt.desk.stream_interval = 0.05
        made.append(rt)
        return rt

    yield make
    for rt in made:
        rt.close()


@pytest.fixture
def room(agent_runtime, fake_slack) -> Room:
    rt = agent_runtime()
    return Room(rt, SlackDriver(fake_slack, SIGNING_SECRET, app=rt.app), fake_slack)

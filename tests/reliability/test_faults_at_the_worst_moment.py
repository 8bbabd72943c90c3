"""Faults at the worst moment, with a real Redis behind a proxy that fails exactly one command:
a claim that cannot be made, a write Redis did but whose answer was lost, a pause between two
writes. Each test names the defect it reproduces."""

from __future__ import annotations

import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from bot.runtime import Runtime, build_runtime
from loopback.harness import InlineExecutor
from loopback.redis_proxy import RedisProxy
from loopback.slack.driver import SlackDriver
from tests.conftest import SIGNING_SECRET, today


@pytest.fixture
def proxy(redis_url: str) -> Iterator[RedisProxy]:
    server = RedisProxy(upstream_port=urlsplit(redis_url).port or 6379).start()
    yield server
    server.stop()


@pytest.fixture
def rt(settings, clock, proxy) -> Iterator[Runtime]:
    runtime = build_runtime(
        settings.model_copy(update={"redis_url": proxy.url}),
        clock=clock,
        listener_executor=InlineExecutor(),
    )
    yield runtime
    runtime.close()


@pytest.fixture
def slack(rt, fake_slack) -> SlackDriver:
    return SlackDriver(fake_slack, SIGNING_SECRET, app=rt.app)


def mention(slack: SlackDriver, channel: str, text: str, **delivery) -> object:
    return slack.event(
        {
            "type": "app_mention",
            "user": "U0INCCMDR",
            "channel": channel,
            "ts": f"{time.time():.6f}",
            "text": f"<@{slack.fake.bot_user_id}> {text}",
        },
        **delivery,
    )


def test_a_retried_event_is_processed_once_when_the_dedup_claim_failed(
    rt, slack, fake_slack, proxy
) -> None:
    """Defect: the dedup claim failed, Bolt answered 500 but still ran the work; Slack's retry
    was processed again."""
    slack.command("Acme: checkout down")
    room = fake_slack.channel_by_name(f"esc-{today()}-acme")
    proxy.drop_before("SET", ":event:", times=2)  # the claim and its one retry
    first = mention(slack, room.id, "update rollback started", event_id="Ev0RETRY")
    assert first.status >= 500 and proxy.spent()  # Slack will deliver it again
    again = mention(slack, room.id, "update rollback started", event_id="Ev0RETRY", retry_num=1)
    assert again.status == 200
    esc = rt.store.by_channel(room.id)
    updates = [e for e in rt.store.timeline(esc.id) if e.kind == "update"]
    assert len(updates) == 1

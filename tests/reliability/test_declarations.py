"""Declarations through faults: all or nothing, queued in Redis, never doubled by a lost answer.

Each test names the defect it reproduces: a room half made when Redis went away between the
record and its timers; a queued declaration that died with its process; a channel orphaned
because the answer to conversations.create was lost."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
import redis

from bot.runtime import Runtime, build_runtime
from bot.store import Keys, MemoryRecords, Store
from loopback.harness import InlineExecutor, WarroomProcess, warroom_env
from loopback.redis_proxy import RedisProxy
from loopback.slack import FakeSlack
from loopback.slack.driver import SlackDriver
from tests.conftest import SIGNING_SECRET, today
from tests.rooms import shown, wait_until


def told(fake: FakeSlack, url: str) -> list[str]:
    return [a["text"] for a in fake.responses_to(url)]


def rooms(fake: FakeSlack) -> list:
    return [c for c in fake.channels.values() if c.name.startswith("esc-")]


@pytest.fixture
def rt(settings, clock, proxy) -> Iterator[Runtime]:
    runtime = build_runtime(
        settings.model_copy(update={"redis_url": proxy.url}),
        clock=clock,
        listener_executor=InlineExecutor(),
    )
    # Tries a second apart, and given up on after a few: the test takes seconds.
    runtime.declaring.pacing = replace(runtime.declaring.pacing, retry=0.3, give_up=2.0)
    yield runtime
    runtime.close()


@pytest.fixture
def slack(rt, fake_slack) -> SlackDriver:
    return SlackDriver(fake_slack, SIGNING_SECRET, app=rt.app)


@pytest.mark.parametrize("status", [None, 502], ids=["dropped", "gateway-502"])
def test_a_channel_whose_create_answer_was_lost_is_found_and_used(
    slack: SlackDriver, fake_slack: FakeSlack, rt: Runtime, status: int | None
) -> None:
    """Defect: slack-sdk retried conversations.create after Slack had made the channel, got
    name_taken, moved on to `-2` and left the first channel orphaned."""
    fake_slack.lose_answer_next("conversations.create", status=status)
    slack.command("Acme: checkout down")
    (answer,) = told(fake_slack, slack.last_response_url)
    assert "is ready" in answer
    (room,) = rooms(fake_slack)
    assert room.name == f"esc-{today()}-acme" and not room.is_archived
    assert len(fake_slack.calls_to("conversations.create")) == 1  # found, not made again
    assert rt.store.by_channel(room.id) is not None and len(room.pins) == 1


def test_redis_lost_between_the_record_and_its_timers_completes_the_room_later(
    slack: SlackDriver, fake_slack: FakeSlack, rt: Runtime, proxy: RedisProxy
) -> None:
    """Defect: the record was written, its timers were not; the declarer got "Something went
    wrong", the channel stayed with only the bot in it, and the escalation would remind an
    empty room."""
    proxy.drop_before("HSET", ":scheduler:jobs", times=2)  # the timers, and the one retry
    slack.command("Acme: checkout down")
    url = slack.last_response_url
    wait_until(lambda: any("is ready" in t for t in told(fake_slack, url)), 10, "the room")
    first, last = told(fake_slack, url)
    assert "being tried again" in first and "Redis could not be reached" in first
    assert "is ready" in last  # nothing left out: invites, brief, exec notice, pin
    (room,) = rooms(fake_slack)
    esc = rt.store.by_channel(room.id)
    assert esc is not None and esc.id in rt.store.open_ids()
    assert {t.id for t in rt.escalations.timers_for(esc)} <= rt.scheduler.job_ids()
    assert {"U0DECLARER", "U0VPSUPRT"} <= room.members and len(room.pins) == 1
    briefs = [m for m in room.messages if m.metadata and "brief:" in str(m.metadata)]
    assert len(briefs) == 1
    assert rt.store.queued_declarations() == []


def test_a_room_that_keeps_failing_is_rolled_back_and_the_declarer_told(
    slack: SlackDriver, fake_slack: FakeSlack, rt: Runtime, proxy: RedisProxy
) -> None:
    """Defect: a room that could not be finished stayed half made (channel unarchived, an
    open escalation with no timers) and a retry opened `-2` beside it."""
    proxy.drop_before("HSET", ":scheduler:jobs", times=10_000)
    slack.command("Acme: checkout down")
    url = slack.last_response_url
    wait_until(lambda: any("No war room" in t for t in told(fake_slack, url)), 15, "rollback")
    proxy.clear()
    *_, last = told(fake_slack, url)
    assert "kept failing" in last and "Nothing was created" in last and "archived" in last
    (room,) = rooms(fake_slack)
    assert room.is_archived
    assert rt.store.by_channel(room.id) is None and rt.store.open_ids() == []
    assert rt.scheduler.job_ids() == set() and rt.store.queued_declarations() == []
    # the claim went with it: declaring again opens a room (Slack keeps the archived name)
    slack.command("Acme: checkout down")
    wait_until(
        lambda: any("is ready" in t for t in told(fake_slack, slack.last_response_url)),
        10,
        "the new room",
    )
    assert [r.name for r in rooms(fake_slack) if not r.is_archived] == [f"esc-{today()}-acme-2"]


def test_a_rollback_archives_a_lost_channel_under_any_name_it_used(
    slack: SlackDriver, fake_slack: FakeSlack, rt: Runtime
) -> None:
    """Defect: a rollback looked for a channel made under a lost answer only among the first
    three names; the fourth, made while the first three were taken, stayed orphaned."""
    base = f"esc-{today()}-acme"
    for name in (base, f"{base}-2", f"{base}-3"):  # people's channels, not the app's
        fake_slack.add_channel(name, members=["U0ENGINE1"], bot_is_member=False)
    rt.declaring.pacing = replace(rt.declaring.pacing, give_up=0)  # the first failure is final
    fake_slack.lose_answer_next("conversations.create")  # -4 is made; no one hears of it
    fake_slack.server_error_next("users.conversations", status=500, times=3)  # nor finds it
    slack.command("Acme: checkout down")
    *_, last = told(fake_slack, slack.last_response_url)
    assert "No war room" in last and f"#{base}-4" in last
    orphan = fake_slack.channel_by_name(f"{base}-4")
    assert orphan is not None and orphan.is_archived
    assert not any(fake_slack.channel_by_name(n).is_archived for n in (base, f"{base}-2"))


def test_a_refused_channel_frees_its_name(slack: SlackDriver, fake_slack: FakeSlack) -> None:
    fake_slack.fail_next("conversations.create", "restricted_action")
    slack.command("Acme: down")
    (answer,) = told(fake_slack, slack.last_response_url)
    assert "restricted_action" in answer and "Nothing was created" in answer
    slack.command("Acme: down")
    assert [r.name for r in rooms(fake_slack)] == [f"esc-{today()}-acme"]


def test_a_lost_answer_to_accepting_is_answered_as_the_first_time(
    slack: SlackDriver, fake_slack: FakeSlack, proxy: RedisProxy
) -> None:
    """Defect: the claim was made, its queued room reserved, and the answer lost; the
    declarer was told nothing was created while the room opened."""
    proxy.drop_after("EVAL", ":claim:")  # Redis did it; the client's one retry asks again
    reply = slack.command("Acme: checkout down")
    assert "Opening a war room" in reply.text and proxy.spent()
    (answer,) = told(fake_slack, slack.last_response_url)
    assert "is ready" in answer and len(rooms(fake_slack)) == 1


def test_a_queued_declaration_is_opened_by_the_next_process_after_a_restart(
    settings, clock, fake_slack: FakeSlack
) -> None:
    """Defect: a declaration queued behind Slack's channel limit waited in a daemon timer of
    the process that took it, and died with it on every graceful restart."""
    one_a_window = settings.model_copy(update={"channel_creates_per_minute": 1})
    first = build_runtime(
        one_a_window, clock=clock, listener_executor=InlineExecutor(), create_window=1.5
    )
    driver = SlackDriver(fake_slack, SIGNING_SECRET, app=first.app)
    driver.command("Initech: down")
    queued = driver.command("Acme: checkout down")
    assert "queued" in queued.text
    url = driver.last_response_url
    first.close()  # a graceful restart, before its turn
    assert len(rooms(fake_slack)) == 1

    second = build_runtime(
        one_a_window, clock=clock, listener_executor=InlineExecutor(), create_window=1.5
    )
    second.start()
    try:
        wait_until(lambda: any("is ready" in t for t in told(fake_slack, url)), 10, "the room")
    finally:
        second.close()
    assert sorted(r.name for r in rooms(fake_slack)) == [
        f"esc-{today()}-acme",
        f"esc-{today()}-initech",
    ]


@pytest.mark.slow
def test_a_room_whose_process_was_killed_mid_build_is_finished_by_another(
    fake_slack: FakeSlack, redis_url, prefix, tmp_path, config_file
) -> None:
    """Defect: a process SIGKILLed after creating the channel and the record left a room
    without people, brief or pin, and a declarer told nothing."""
    env = warroom_env(
        fake_slack,
        redis_url,
        prefix,
        tmp_path,
        config_file,
        signing_secret=SIGNING_SECRET,
        WARROOM_DECLARATION_LEASE_SECONDS=2,
        WARROOM_SCHEDULER_POLL=0.2,
    )
    a = WarroomProcess(env, fake_slack, tmp_path / "a.log").start()
    b = WarroomProcess(env, fake_slack, tmp_path / "b.log").start()
    try:
        fake_slack.delay_next("conversations.invite", 30)  # a is mid-build here...
        driver = a.driver()
        assert driver.command("Acme: checkout down").status == 200
        url = driver.last_response_url
        wait_until(lambda: fake_slack.calls_to("conversations.invite"), 10, "the invites")
        a.kill()  # ...when it dies
        wait_until(lambda: any("is ready" in t for t in told(fake_slack, url)), 20, "the room")
    finally:
        a.stop()
        b.stop()
    (room,) = rooms(fake_slack)
    assert {"U0DECLARER", "U0VPSUPRT"} <= room.members and len(room.pins) == 1
    briefs = [m for m in room.messages if "brief:" in str(m.metadata or "")]
    assert len(briefs) == 1 and "Acme" in shown(briefs[0])
    assert len(told(fake_slack, url)) == 1
    store = Store(redis.Redis.from_url(redis_url), Keys(prefix))
    esc = store.by_channel(room.id)
    kinds = [e.kind for e in store.timeline(esc.id)]
    assert kinds.count("ic_assigned") == 1 and kinds.count("war_room_ready") == 1
    decisions = MemoryRecords(store.redis, Keys(prefix)).decisions(esc.id)
    assert [d["decision"] for d in decisions].count("ic_assigned") == 1


def test_a_form_declaration_opens_even_when_its_queued_note_cannot_be_sent(
    settings, clock, fake_slack: FakeSlack
) -> None:
    """Defect: if the DM saying the room is queued failed, the room was never scheduled."""
    one_a_window = settings.model_copy(update={"channel_creates_per_minute": 1})
    rt = build_runtime(
        one_a_window, clock=clock, listener_executor=InlineExecutor(), create_window=1.5
    )
    try:
        slack = SlackDriver(fake_slack, SIGNING_SECRET, app=rt.app)
        slack.command("Initech: down")  # takes this window's one channel
        slack.command("")
        view = fake_slack.views[next(iter(fake_slack.views))]
        values = {
            "customer": {"value": {"type": "plain_text_input", "value": "Acme"}},
            "summary": {"value": {"type": "plain_text_input", "value": "checkout down"}},
        }
        fake_slack.fail_next("chat.postMessage", "internal_error")  # the queued note
        assert slack.submit_view(view, values).status == 200

        def dm() -> list[str]:
            channel = fake_slack.dm_with("U0DECLARER")
            return [shown(m) for m in channel.messages] if channel else []

        wait_until(lambda: any("is ready" in t for t in dm()), 10, "the room's link")
    finally:
        rt.close()
    assert not any("queued" in t for t in dm())  # that note was lost; the room was not
    assert f"esc-{today()}-acme" in {r.name for r in rooms(fake_slack)}


@pytest.mark.slow
def test_a_room_being_built_at_sigterm_is_handed_over_never_rolled_back(
    fake_slack: FakeSlack, redis_url, prefix, tmp_path, config_file
) -> None:
    """Defect: on a graceful shutdown the build under way hit "cannot schedule new futures
    after shutdown" in the Slack pool, counted it a failure that will not pass and rolled the
    room back (channel archived, record removed), though the declarer had been told it was
    opening. Now the process lets it run for its grace, then leaves it, recorded, to the
    next process, which finishes the room."""
    env = warroom_env(
        fake_slack,
        redis_url,
        prefix,
        tmp_path,
        config_file,
        signing_secret=SIGNING_SECRET,
        WARROOM_SHUTDOWN_GRACE_SECONDS=1,
        WARROOM_SCHEDULER_POLL=0.2,
    )
    a = WarroomProcess(env, fake_slack, tmp_path / "a.log").start()
    try:
        fake_slack.delay_next("conversations.invite", 4)  # a is mid-build, past its grace
        driver = a.driver()
        assert driver.command("Acme: checkout down").status == 200
        url = driver.last_response_url
        wait_until(lambda: fake_slack.calls_to("conversations.invite"), 10, "the invites")
        a.stop()  # SIGTERM
        assert a.proc is not None and a.proc.returncode == 0
    finally:
        a.stop()
    assert "left to the next one" in (tmp_path / "a.log").read_text()
    (room,) = rooms(fake_slack)
    assert not room.is_archived and not fake_slack.calls_to("conversations.archive")
    assert not any("No war room" in t for t in told(fake_slack, url))

    b = WarroomProcess(env, fake_slack, tmp_path / "b.log").start()
    try:
        wait_until(lambda: any("is ready" in t for t in told(fake_slack, url)), 20, "the room")
    finally:
        b.stop()
    (room,) = rooms(fake_slack)
    assert not room.is_archived and len(room.pins) == 1
    exec_channel = fake_slack.channel_by_name("exec-escalations")
    assert len(fake_slack.messages_in(exec_channel.id)) == 1
    briefs = [m for m in fake_slack.messages_in(room.id) if m.ts in room.pins]
    assert len(briefs) == 1
    assert [t for t in told(fake_slack, url) if "is ready" in t or "No war room" in t] == [
        t for t in told(fake_slack, url) if "is ready" in t
    ]

"""The Redis store against the real Redis: claims, versioned updates, keys under one prefix."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
import redis

from bot.domain.declaration import Declaration
from bot.domain.errors import Unavailable
from bot.domain.escalation import mark_step_done, open_escalation
from bot.domain.timeline import EventKind, event
from bot.store import Claim, Keys, Store
from protocols.loader import load_protocol

NOW = datetime(2026, 11, 25, 17, 0, tzinfo=UTC)


@pytest.fixture
def store(redis_client: redis.Redis, prefix: str) -> Store:
    return Store(redis_client, Keys(prefix))


def make(esc_id: str = "esc-20261125-acme"):
    return open_escalation(
        id=esc_id,
        channel_id="C1",
        declaration=Declaration(customer="Acme", summary="down", declarer="U1"),
        ic="U2",
        vps=(),
        protocol=load_protocol(),
        now=NOW,
        clock_scale=1,
        ic_source="requested",
    )


def test_create_get_and_index_by_channel(store: Store, redis_client, prefix) -> None:
    esc, events = make()
    store.create(esc, events)
    assert store.get(esc.id) == esc
    assert store.by_channel("C1") == esc
    assert [e.kind for e in store.timeline(esc.id)] == [e.kind for e in events]
    assert all(
        k.decode().startswith(f"{prefix}:")
        for k in redis_client.scan_iter(match="*")
        if k.decode().startswith(prefix)
    )
    assert redis_client.sismember(f"{prefix}:open", esc.id)


def accept(store: Store, token: str, fp: str = "fp", **kw):
    args = {"claim_ttl": 60, "now_ms": 1_000, "window_ms": 60_000, "limit": 2} | kw
    return store.accept_declaration(fp, token, {"token": token}, **args)


def test_claims_let_one_request_win(store: Store) -> None:
    assert accept(store, "t1") == 1_000  # ours, now
    second = accept(store, "t2")
    assert second == Claim()  # being made
    assert accept(store, "t1") == 1_000  # asked again (an answer lost): as the first time
    assert [t for t, _ in store.queued_declarations()] == ["t1"]
    esc, _ = make()
    store.complete_claim("fp", esc, ttl=60)
    third = accept(store, "t3")
    assert third == Claim(escalation_id=esc.id, channel_id="C1")


def test_accepting_paces_channel_creation_and_queues_in_turn(store: Store) -> None:
    """Two a minute: the third and fourth declarations are queued a minute later."""
    turns = [accept(store, f"t{i}", fp=f"fp{i}", now_ms=1_000 + i) for i in range(4)]
    assert turns[:2] == [1_000, 1_001] and turns[2:] == [61_000, 61_001]
    assert store.take_declaration(now_ms=2_000, lease_ms=5_000) == ("t0", {"token": "t0"})
    assert store.take_declaration(now_ms=2_000, lease_ms=5_000, token="t0") is None  # leased
    assert store.take_declaration(now_ms=2_000, lease_ms=5_000, token="t2") is None  # not yet
    assert store.take_declaration(now_ms=61_000, lease_ms=5_000, token="t2")[0] == "t2"
    store.finish_declaration("t0")
    assert [t for t, _ in store.queued_declarations()] == ["t1", "t3", "t2"]


def test_a_channel_name_is_one_declarations(store: Store) -> None:
    assert store.reserve_channel_name("esc-x", "t1") == "new"
    assert store.reserve_channel_name("esc-x", "t1") == "again"
    assert store.reserve_channel_name("esc-x", "t2") is None
    store.free_channel_name("esc-x", "t2")  # not theirs to free
    assert store.reserve_channel_name("esc-x", "t2") is None
    store.free_channel_name("esc-x", "t1")
    assert store.reserve_channel_name("esc-x", "t2") == "new"


def test_people_acting_at_once_each_get_their_change_in(store: Store) -> None:
    """Defect: of three facts typed at once in a room, one was refused with "someone else
    changed it at the same moment" (a versioned write decided again only once)."""
    esc, events = make()
    store.create(esc, events)
    barrier = threading.Barrier(6)

    def note(user: str) -> None:
        barrier.wait()
        for n in range(3):
            store.update(esc.id, lambda e, n=n: (e, [event(NOW, EventKind.NOTE, user, str(n))]))

    threads = [threading.Thread(target=note, args=(f"U{i}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    notes = [e.actor for e in store.timeline(esc.id) if e.kind == EventKind.NOTE]
    assert sorted(notes) == sorted([f"U{i}" for i in range(6)] * 3)
    assert store.get(esc.id).version == 18


def test_concurrent_updates_apply_once(store: Store) -> None:
    esc, events = make()
    store.create(esc, events)
    barrier = threading.Barrier(8)
    results = []

    def click(user: str) -> None:
        barrier.wait()
        _, evs = store.update(
            esc.id, lambda e: mark_step_done(e, "assessment", user, NOW, load_protocol())
        )
        results.append(evs)

    threads = [threading.Thread(target=click, args=(f"U{i}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done = store.get(esc.id)
    assert done.step("assessment").done
    assert sum(len(r) for r in results) == 1  # one click won; the rest saw it done
    assert done.version == 1
    kinds = [e.data.get("step") for e in store.timeline(esc.id) if e.kind == "step_done"]
    assert kinds.count("assessment") == 1


def test_rotation_is_round_robin(store: Store) -> None:
    picks = [store.next_in_rotation(("A", "B", "C"), f"decl-{n}") for n in range(4)]
    assert picks == ["A", "B", "C", "A"]
    assert store.next_in_rotation((), "decl-4") is None


def test_a_pick_from_the_rotation_asked_again_is_the_same(store: Store) -> None:
    """A build tried again asks for its IC again: the same one, and the rotation moves once."""
    assert store.next_in_rotation(("A", "B", "C"), "decl-1") == "A"
    assert store.next_in_rotation(("A", "B", "C"), "decl-1") == "A"
    assert store.next_in_rotation(("A", "B", "C"), "decl-2") == "B"


def test_redis_down_is_unavailable_with_a_message() -> None:
    dead = Store(redis.Redis.from_url("redis://127.0.0.1:1/0"), Keys("x"))
    assert dead.ping() is False
    with pytest.raises(Unavailable, match="nothing was created"):
        accept(dead, "t")


def test_a_full_redis_refuses_with_a_message(tmp_path) -> None:
    import shutil

    from bot.sandbox.state import start_redis_server

    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    server = start_redis_server(
        binary, tmp_path, extra=("--maxmemory", "2mb", "--maxmemory-policy", "noeviction")
    )
    port = server.port
    try:
        client = redis.Redis(port=port)
        for i in range(500):
            client.set(f"fill:{i}", "x" * 1000)
        # now it is over its limit: every write that needs memory is refused
        client.config_set("maxmemory", int(client.info("memory")["used_memory"]) // 2)
        with pytest.raises(redis.exceptions.OutOfMemoryError):
            client.set("one-more", "x")
        full = Store(client, Keys("x"))
        with pytest.raises(Unavailable, match="refusing writes"):
            accept(full, "t")
        client.close()
    finally:
        server.stop()


def test_a_claim_lasts_as_long_as_its_queued_declaration_can(settings, fake_slack) -> None:
    """The claim (what tells a redeclaration "already being opened") outlives every try of
    the room, queued turn included; the declaration waits in Redis with everything needed
    to open it, so the link does follow even if this process dies."""
    from bot.domain.declaration import Declaration as Decl
    from bot.runtime import build_runtime
    from bot.store import fingerprint
    from loopback.harness import InlineExecutor

    one_per_ten_minutes = settings.model_copy(update={"channel_creates_per_minute": 1})
    rt = build_runtime(one_per_ten_minutes, listener_executor=InlineExecutor(), create_window=600.0)
    try:
        first = Decl(customer="One", summary="down", declarer="U1")
        second = Decl(customer="Two", summary="down", declarer="U1")
        keys = [
            rt.store.keys.claim(fingerprint(d.declarer, d.customer, d.summary))
            for d in (first, second)
        ]
        pacing = rt.declaring.pacing
        tries = pacing.give_up + pacing.lease
        assert rt.declaring.accept(first, "t1").wait == 0
        assert tries < rt.redis.ttl(keys[0]) <= tries + 60
        wait = rt.declaring.accept(second, "t2").wait
        assert wait > 600
        assert rt.redis.ttl(keys[1]) > wait + tries
        queued = dict(rt.store.queued_declarations())
        assert set(queued) == {"t1", "t2"} and queued["t2"] - queued["t1"] > 600_000
    finally:
        rt.close()

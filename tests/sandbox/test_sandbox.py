"""`warroom sandbox` assembled in this process: each kind of Redis, a declaration through the
whole stack, the drill, a clean stop, and the command line's refusals."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis

from bot.sandbox import app, workspace
from bot.sandbox.state import open_redis
from loopback.server import free_port, http_request


def eventually(found: Callable[[], Any], timeout: float = 15) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = found()
        if value:
            return value
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def declare_and_wait(sandbox: app.Sandbox) -> Any:
    outcome = sandbox.interactions.say(
        workspace.SUPPORT_LEAD, "support", "/escalate Acme Corp: checkout fails --arr 250k"
    )
    assert outcome.ok, outcome

    def pinned_room() -> Any:
        rooms = [c for c in sandbox.emulator.snapshot()["channels"] if c.name.startswith("esc-")]
        return rooms[0] if rooms and rooms[0].pins else None

    return eventually(pinned_room)


def test_on_fakeredis_the_bot_runs_and_everything_stops(tmp_path: Path) -> None:
    lines: list[str] = []
    threads_before = set(threading.enumerate())
    sandbox = app.Sandbox(port=0, env={}, redis_server="", say=lines.append).start()
    try:
        assert lines[0].startswith("  state:  an in-process Redis (fakeredis)")
        assert any("offline drafter" in line for line in lines)
        assert sandbox.page.banner == app.OFFLINE_BANNER
        room = declare_and_wait(sandbox)
        assert room.topic.startswith("Acme Corp · IC")
        folder = sandbox.folder
        assert folder is not None and (folder / "warroom.yaml").exists()
        assert (folder / "Agent_Memory" / room.name / "instruction.yaml").exists()
    finally:
        sandbox.close()
    assert folder is not None and not folder.exists()
    # Said when it starts and when it stops: the files go, and how to keep them.
    assert any("deleted on stop" in line and "--keep DIR" in line for line in lines)
    assert lines[-1] == f"  files:  deleted {folder} (--keep DIR keeps them)"
    sandbox.close()  # twice is fine
    lingering = [t for t in set(threading.enumerate()) - threads_before if t.is_alive()]
    deadline = time.monotonic() + 5
    while lingering and time.monotonic() < deadline:
        time.sleep(0.05)
        lingering = [t for t in lingering if t.is_alive()]
    assert not lingering, lingering


def test_everything_the_sandbox_serves_stays_on_loopback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A production metrics setting in the shell does not move the sandbox's /metrics.
    elsewhere = free_port()
    monkeypatch.setenv("WARROOM_METRICS_ADDRESS", f"0.0.0.0:{elsewhere}")
    monkeypatch.setenv("WARROOM_METRICS_TOKEN", "production-token")
    sandbox = app.Sandbox(port=0, env={}, redis_server="", say=lambda _: None).start()
    try:
        assert urlsplit(sandbox.url).hostname == "127.0.0.1"
        bot = urlsplit(sandbox.interactions.request_url)
        assert bot.hostname == "127.0.0.1"
        status, body, _ = http_request(f"http://{bot.netloc}/metrics")
        assert status == 200 and b"warroom_http_requests_total" in body
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", elsewhere), timeout=1).close()
    finally:
        sandbox.close()


def test_keep_puts_the_files_in_a_folder_that_stays(tmp_path: Path) -> None:
    lines: list[str] = []
    kept = tmp_path / "kept" / "sandbox"
    sandbox = app.Sandbox(port=0, env={}, redis_server="", say=lines.append, folder=kept, keep=True)
    sandbox.start()
    try:
        room = declare_and_wait(sandbox)
        assert sandbox.folder == kept
    finally:
        sandbox.close()
    assert (kept / "warroom.yaml").exists()
    assert (kept / "Agent_Memory" / room.name / "instruction.yaml").exists()
    assert not any("deleted" in line for line in lines)
    assert lines[-1] == f"  files:  kept in {kept}"


def test_keep_on_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert app._parse(["--keep", str(tmp_path / "new")]).keep == tmp_path / "new"
    assert app._parse([]).keep is None
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    with pytest.raises(SystemExit) as e:
        app._parse(["--keep", str(a_file)])
    assert e.value.code == 2
    assert "not a folder" in capsys.readouterr().err


def test_with_redis_url_a_fresh_prefix_is_used_and_deleted(redis_url: str, prefix: str) -> None:
    env = {"REDIS_URL": redis_url, "WARROOM_REDIS_PREFIX": prefix, "ANTHROPIC_API_KEY": "sk-x"}
    lines: list[str] = []
    sandbox = app.Sandbox(port=0, env=env, say=lines.append).start()
    client = redis.Redis.from_url(redis_url)
    try:
        assert sandbox.redis.kind == "external" and sandbox.redis.prefix.startswith(f"{prefix}:")
        assert sandbox.redis.prefix != prefix
        assert lines[0].startswith(f"  state:  Redis at {redis_url} (REDIS_URL)")
        assert any("the model (ANTHROPIC_API_KEY is set)" in line for line in lines)
        assert sandbox.page.banner == ""
        declare_and_wait(sandbox)
        assert list(client.scan_iter(match=f"{sandbox.redis.prefix}:*"))
    finally:
        sandbox.close()
    try:
        assert list(client.scan_iter(match=f"{sandbox.redis.prefix}:*")) == []
    finally:
        client.close()


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="no redis-server on PATH")
def test_without_redis_url_a_private_redis_server_is_started(tmp_path: Path) -> None:
    state = open_redis({}, tmp_path)
    try:
        assert state.kind == "redis-server" and "private redis-server" in state.description
        client = redis.Redis.from_url(state.url)
        try:
            assert client.ping()
        finally:
            client.close()
        # Nobody else on the machine may write to it (it holds the bot's pickled jobs).
        port = urlsplit(state.url).port
        stranger = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=0.5)
        try:
            with pytest.raises(redis.AuthenticationError):
                stranger.set("job", "pickled code")
        finally:
            stranger.close()
    finally:
        state.close()
    client = redis.Redis.from_url(state.url, socket_connect_timeout=0.5)
    try:
        with pytest.raises(redis.ConnectionError):
            client.ping()
    finally:
        client.close()


def test_the_drill_plays_out_through_the_bot(redis_url: str, prefix: str) -> None:
    env = {"REDIS_URL": redis_url, "WARROOM_REDIS_PREFIX": prefix}
    # 15 minutes pass in 1.5 s; the drill's pauses are short.
    sandbox = app.Sandbox(
        port=0, env=env, drill=True, clock_scale=600, drill_pace=0.2, say=lambda _: None
    ).start()
    try:
        assert sandbox.clock_scale == 600
        sandbox.drill.start()
        assert sandbox.drill.finished.wait(45), "the drill did not finish"
        assert sandbox.drill.failed is None, sandbox.drill.failed
        notices = sandbox.page.state(workspace.SUPPORT_LEAD, None)["notices"]
        assert [n["step"] for n in notices] == ["", *(f"{i}/9" for i in range(1, 10))]
        assert notices[-1]["text"].startswith("Resolved")
        room = sandbox.emulator.find_channel(sandbox.drill.room)
        assert room.topic.endswith("Resolved")
        said = " ".join(f"{m.text} {m.blocks}" for m in room.messages)
        for expected in ("overdue", "Update recorded", "Approved by", "📨 Sent", "Resolved"):
            assert expected in said, expected
        # The approved letter went to Globex's CTO, once, and the page shows it on their side.
        (letter,) = sandbox.mail.inbox("priya.natarajan@globex.example")
        assert letter.shown()["subject"]
        (globex,) = [
            c
            for c in sandbox.page.state(workspace.SUPPORT_LEAD, None)["customers"]
            if c["account"] == "Globex"
        ]
        assert [len(t["messages"]) for t in globex["inbox"]] == [1] and globex["channel"] is None
        # The last notice is said once the review is there to read, not while it is drafted.
        assert "review is posted" in notices[-1]["text"] and "Post-incident review" in said
        esc = sandbox.runtime.store.by_channel(room.id)
        assert esc.facts.impact is not None and esc.facts.confirmed_cause is not None
        people = {m.user for m in room.messages}
        assert {workspace.ENGINEER, workspace.CSM, workspace.VP} <= people
    finally:
        sandbox.close()


def test_the_drill_defaults_to_a_fast_clock() -> None:
    assert app.Sandbox(drill=True).clock_scale == app.DRILL_CLOCK_SCALE
    assert app.Sandbox(drill=True, clock_scale=5).clock_scale == 5
    assert app.Sandbox().clock_scale is None  # WARROOM_CLOCK_SCALE, else 1


def test_bad_options_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--port", "0"], ["--clock-scale", "0"], ["--port", "x"], ["--nope"]):
        with pytest.raises(SystemExit) as e:
            app.main(argv)
        assert e.value.code == 2
    assert "--clock-scale must be more than 0" in capsys.readouterr().err


def test_a_taken_port_is_one_line(
    redis_url: str, prefix: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("WARROOM_REDIS_PREFIX", prefix)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert app.main(["--no-browser", "--port", str(port)]) == 2
    out = capsys.readouterr()
    assert f"cannot serve on port {port}" in out.err and "--port" in out.err
    assert out.out.splitlines()[0] == "warroom sandbox"
    assert "state:" in out.out.splitlines()[1]

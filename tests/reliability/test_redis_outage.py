"""Redis lost while the bot runs: callers are told, nothing is half-created, /healthz says
503, and the bot recovers by itself when Redis is back."""

from __future__ import annotations

import io
import shutil
from collections.abc import Iterator

import pytest

from bot.runtime import build_runtime
from bot.sandbox.state import RedisServer, start_redis_server
from bot.wsgi import WarroomWSGI
from loopback.harness import InlineExecutor
from loopback.server import free_port
from loopback.slack.driver import SlackDriver
from tests.conftest import SIGNING_SECRET, today


class RedisProcess:
    """A redis-server that can be killed and started again on the same port."""

    def __init__(self, workdir) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.server: RedisServer | None = None

    def start(self) -> None:
        self.server = start_redis_server(shutil.which("redis-server"), self.workdir, port=self.port)

    def stop(self) -> None:
        if self.server is not None and self.server.proc.poll() is None:
            self.server.proc.kill()
            self.server.proc.wait()


@pytest.fixture
def private_redis(tmp_path) -> Iterator[RedisProcess]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    server = RedisProcess(tmp_path)
    server.start()
    yield server
    server.stop()


def health(runtime) -> str:
    statuses: list[str] = []
    app = WarroomWSGI(runtime)
    app(
        {"PATH_INFO": "/healthz", "REQUEST_METHOD": "GET", "wsgi.input": io.BytesIO()},
        lambda status, headers, *a: statuses.append(status),
    )
    return statuses[0]


def test_losing_redis_and_getting_it_back(settings, clock, fake_slack, private_redis) -> None:
    rt = build_runtime(
        settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{private_redis.port}/0"}),
        clock=clock,
        listener_executor=InlineExecutor(),
    )
    try:
        slack = SlackDriver(fake_slack, SIGNING_SECRET, app=rt.app)
        assert "Opening" in slack.command("Before: fine").text
        assert health(rt) == "200 OK"

        private_redis.stop()
        reply = slack.command("During: outage")
        assert "cannot be reached" in reply.text and "nothing was created" in reply.text
        assert health(rt) == "503 Service Unavailable"
        day = today()
        assert fake_slack.channel_by_name(f"esc-{day}-during") is None

        private_redis.start()  # same port, empty: the pool reconnects by itself
        assert health(rt) == "200 OK"
        assert "Opening" in slack.command("After: recovered").text
        assert fake_slack.channel_by_name(f"esc-{day}-after") is not None
    finally:
        rt.close()

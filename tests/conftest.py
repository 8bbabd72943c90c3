"""Shared fixtures: a real Redis (the machine's, or one started for this run), a key prefix
per test, the loopback fake of Slack, and the production app wired to both."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis
import yaml

from bot.clock import ManualClock
from bot.runtime import Runtime, build_runtime
from bot.sandbox.state import StateError, start_redis_server
from bot.settings import Settings
from loopback.anthropic import FakeAnthropic
from loopback.harness import InlineExecutor
from loopback.redis_proxy import RedisProxy
from loopback.slack import FakeSlack
from loopback.slack.driver import SlackDriver

# The war room with the VP agent (`room`, `agent_runtime`), for tests in every folder.
pytest_plugins = ["tests.rooms"]

SIGNING_SECRET = "test-signing-secret"
RUN_ID = uuid.uuid4().hex[:8]

# The moment the in-process runtime's clock starts at (a Monday morning, UTC): war-room names
# carry its date, whatever the wall clock says.
T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def today() -> str:
    """The date in the names of the rooms the in-process runtime opens (`esc-<today>-...`)."""
    return T0.strftime("%Y%m%d")


# The suite runs in pytest-xdist's workers, one per core (pyproject.toml). Tests that run several
# `warroom run` processes on a scaled clock (minutes pass in seconds) judge a reminder against
# that clock: two of them starving each other of the cores could see one fire late. The tests of
# this group run in one worker, one after another, beside the rest of the suite.
SCALED_CLOCK_PROCESSES = pytest.mark.xdist_group("scaled-clock-processes")

# What a developer's shell may hold that changes what the bot does: each test starts without.
_ENVIRONMENT = ("SLACK_", "WARROOM_", "ANTHROPIC_", "REDIS_URL", "PORT", "WEB_CONCURRENCY")
# ...but the tests' own settings stay.
_TESTS_OWN = ("WARROOM_TEST_",)

# The people and groups of the fake workspace.
USERS = {
    "U0DECLARER": "dana",
    "U0VPSUPRT": "victoria",
    "U0INCCMDR": "ivan",
    "U0OTHERIC": "olga",
    "U0CSMGR01": "carla",
    "U0SECENG1": "sam",
    "U0SECENG2": "sara",
    "U0LEGAL01": "lee",
    "U0ENGINE1": "erin",
}
GROUPS = {
    "S0SECURTY": ("security", ["U0SECENG1", "U0SECENG2"]),
    "S0LEGALTM": ("legal", ["U0LEGAL01"]),
}
CONFIG = {
    "vp": ["U0VPSUPRT"],
    "incident_commanders": ["U0INCCMDR", "U0OTHERIC"],
    "exec_channel": "exec-escalations",
    "responders": {
        "security_incident": ["S0SECURTY"],
        "legal_regulatory": ["S0LEGALTM"],
        "arr_churn_risk": ["U0CSMGR01"],
    },
}


def _answers(host: str, port: int) -> bool:
    try:
        return bool(redis.Redis(host=host, port=port, socket_connect_timeout=0.5).ping())
    except redis.RedisError:
        return False


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads the developer's Slack, model, Redis or warroom settings."""
    for name in list(os.environ):
        if name.startswith(_ENVIRONMENT) and not name.startswith(_TESTS_OWN):
            monkeypatch.delenv(name)


@pytest.fixture
def clock() -> ManualClock:
    """The in-process runtime's clock: it stands at T0 until a test moves it."""
    return ManualClock(T0)


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """WARROOM_TEST_REDIS_URL if set; else the Redis on 127.0.0.1:6379 if it answers; else a
    redis-server started here on a free port, stopped at the end of the run
    (WARROOM_TEST_REDIS_URL=spawn forces that)."""
    explicit = os.environ.get("WARROOM_TEST_REDIS_URL")
    if explicit and explicit != "spawn":
        yield explicit
        return
    if explicit != "spawn" and _answers("127.0.0.1", 6379):
        yield "redis://127.0.0.1:6379/0"
        return
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.exit("no Redis on 127.0.0.1:6379 and no redis-server on PATH to start one", 2)
    workdir = tempfile.mkdtemp(prefix="warroom-test-redis-")
    try:
        server = start_redis_server(binary, Path(workdir))
    except StateError:
        pytest.exit("could not start redis-server for the tests", 2)
    try:
        yield server.url
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    """A key prefix of this test alone; its keys are deleted afterwards."""
    name = f"warroom-test-{RUN_ID}-{uuid.uuid4().hex[:8]}"
    yield name
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"{name}:*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    fake = FakeSlack().start()
    for user_id, name in USERS.items():
        fake.add_user(user_id, name)
    for group_id, (handle, members) in GROUPS.items():
        fake.add_usergroup(group_id, handle, members)
    fake.add_channel("exec-escalations", members=["U0VPSUPRT"])
    fake.add_channel("support", members=list(USERS))
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "warroom.yaml"
    path.write_text(yaml.safe_dump(CONFIG))
    return path


@pytest.fixture
def memory_dir(tmp_path: Path) -> Path:
    return tmp_path / "Agent_Memory"


@pytest.fixture
def settings(
    fake_slack: FakeSlack, redis_url: str, prefix: str, config_file: Path, memory_dir: Path
) -> Settings:
    return Settings(
        slack_bot_token=fake_slack.bot_token,
        slack_signing_secret=SIGNING_SECRET,
        slack_api_url=fake_slack.url,
        redis_url=redis_url,
        redis_prefix=prefix,
        config_file=config_file,
        memory_dir=memory_dir,
    )


@pytest.fixture
def runtime(settings: Settings, clock: ManualClock) -> Iterator[Runtime]:
    rt = build_runtime(settings, clock=clock, listener_executor=InlineExecutor())
    yield rt
    rt.close()


@pytest.fixture
def slack(runtime: Runtime, fake_slack: FakeSlack) -> SlackDriver:
    return SlackDriver(fake_slack, SIGNING_SECRET, app=runtime.app)


@pytest.fixture
def fake_anthropic() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as fake:
        yield fake


@pytest.fixture
def proxy(redis_url: str) -> Iterator[RedisProxy]:
    """The test's Redis behind a RESP proxy that can drop a command or pause
    (`loopback/redis_proxy.py`): point a runtime at `proxy.url`."""
    server = RedisProxy(upstream_port=urlsplit(redis_url).port or 6379).start()
    yield server
    server.stop()

"""`warroom run`, `report` and `memory` as real processes, refused at start: a REDIS_URL no
password of which is ever printed, whatever its characters, and a Redis older than 7.0."""

from __future__ import annotations

import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.runtime import StartupError, build_runtime
from bot.settings import Settings
from loopback.harness import warroom, warroom_env
from loopback.server import free_port
from loopback.slack import FakeSlack
from tests.conftest import SIGNING_SECRET

pytestmark = pytest.mark.slow

# Every password is made of pieces found nowhere else, so a piece of one in the output is a
# leak even when the password was cut at a special character.
PIECES = ("Zq8vKw", "Xj4rTn", "Pw7mLd")
TOKENS = {
    "SLACK_BOT_TOKEN": "xoxb-Bt5nQe8",
    "SLACK_SIGNING_SECRET": "Sg3hVu9",
    "ANTHROPIC_API_KEY": "sk-ant-Ak6yRw2",
    "WARROOM_METRICS_TOKEN": "Mt2cJx7",
}


A, B, C = PIECES
# REDIS_URLs with the password's special characters left unencoded, or encoded; `{closed}` is
# an address where nothing listens, `{real}` the test Redis (which knows no user `ghost`).
HOSTILE = [
    f"redis://:{A}/{B}@{{closed}}/0",
    f"redis://:{A}#{B}@{{closed}}/0",
    f"redis://:{A}?{B}@{{closed}}/0",
    f"redis://:{A}?{B}={C}@{{closed}}/0",
    f"redis://:{A}@{B}:{C}@{{closed}}/0",
    f"redis://:{A}%{B}@{{closed}}/0",
    f"redis://:{A}%2F{B}@{{closed}}/0",
    f"redis://:{A}ä{B}ß@{{closed}}/0",
    f"redis://:{A}\u2100{B}@{{closed}}/0",  # ℀, which NFKC turns into a/c
    f"redis://admin:{A}/{B}@{{closed}}/0",
    f"redis://{A}/{B}@{{closed}}/0",  # a password where the user name goes
    f"redis://{A}@{{closed}}/0",
    f"redis://{{closed}}/0?password={A}&{B}",
    f"redis://{{closed}}/0?password={A}&{B}={C}",
    f"redis://{{closed}}/0?password={A}#{B}",
    f"rediss://:{A}/{B}@{{closed}}/0",
    f"rediss://:{A}{B}@{{closed}}/0?ssl_ca_certs=/nowhere/ca.crt",
    f"redis://ghost:{A}:{B}@{{real}}/0",
    f"redis://ghost:{A}/{B}@{{real}}/0",
    f"redis://ghost:{A}%23{B}@{{real}}/0",
    f"redis+sentinel://:{A}/{B}@{{closed}}/svc",
    f"redis+sentinel://:{A}@{{closed}}/svc?sentinel_password={B}",
    f"redis+sentinel://:{A}@{{closed}}/svc?sentinel_password={B}&{C}",
    f"rediss+sentinel://u:{A}@{{closed}}/svc/0?sentinel_password={B}/{C}",
    f"{A}{B}",  # the password alone, pasted into the wrong variable
    f"http://:{A}@{{closed}}",
]


@pytest.fixture
def env(fake_slack: FakeSlack, redis_url, prefix, tmp_path: Path, config_file) -> dict:
    env = warroom_env(
        fake_slack, redis_url, prefix, tmp_path, config_file, signing_secret=SIGNING_SECRET
    )
    env.update(TOKENS)
    return env


def _refused(env: dict, *args: str) -> tuple[str, str]:
    result = subprocess.run(warroom(*args), env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, (args, result.stdout, result.stderr)
    return result.stdout, result.stderr


def _leaks(output: str) -> list[str]:
    return [p for p in (*PIECES, *TOKENS.values()) if p in output]


@pytest.mark.parametrize("template", HOSTILE)
@pytest.mark.parametrize("command", ["run", "report"])
def test_no_password_is_ever_printed(
    env: dict, redis_url: str, template: str, command: str
) -> None:
    real = redis_url.split("://", 1)[1].split("/", 1)[0]
    env["REDIS_URL"] = template.format(closed=f"127.0.0.1:{free_port()}", real=real)
    args = ("run", "--port", str(free_port())) if command == "run" else ("report",)
    stdout, stderr = _refused(env, *args)
    assert not _leaks(stdout + stderr), stderr
    assert len(stderr.strip().splitlines()) == 1 and "Traceback" not in stderr, stderr


def test_memory_prints_no_password_either(env: dict, tmp_path: Path) -> None:
    env["REDIS_URL"] = f"redis://:{A}/{B}@127.0.0.1:{free_port()}/0"
    stdout, stderr = _refused(env, "memory", "export", str(tmp_path / "out"))
    assert not _leaks(stdout + stderr)
    assert "must be percent-encoded: / as %2F" in stderr


# -- a Redis older than 7.0 -------------------------------------------------------------------


class OldRedis:
    """A loopback server speaking just enough RESP to be a Redis 6.2: its version to HELLO
    and INFO, PONG to PING, OK to anything else."""

    def __init__(self, version: str = "6.2.14") -> None:
        self.version = version
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        reader = conn.makefile("rb")
        with conn, reader:
            while True:
                words = _command(reader)
                if words is None:
                    return
                name = words[0].upper() if words else b""
                if name == b"HELLO":  # redis-py asks for RESP3, as Redis 6 can speak
                    version = self.version.encode()
                    conn.sendall(b"%%3\r\n+server\r\n+redis\r\n+version\r\n+%s\r\n" % version)
                    conn.sendall(b"+proto\r\n:%s\r\n" % (words[1] if len(words) > 1 else b"2"))
                elif name == b"PING":
                    conn.sendall(b"+PONG\r\n")
                elif name == b"INFO":
                    body = f"# Server\r\nredis_version:{self.version}\r\n".encode()
                    conn.sendall(b"$%d\r\n%s\r\n" % (len(body), body))
                else:
                    conn.sendall(b"+OK\r\n")

    def close(self) -> None:
        self.server.close()


def _command(reader) -> list[bytes] | None:
    header = reader.readline()
    if not header.startswith(b"*"):
        return None
    words = []
    for _ in range(int(header[1:])):
        size = int(reader.readline()[1:])
        words.append(reader.read(size + 2)[:-2])
    return words


@pytest.fixture
def old_redis() -> Iterator[OldRedis]:
    server = OldRedis()
    yield server
    server.close()


@pytest.mark.parametrize(
    "command", [("run", "--port", "0"), ("report",), ("memory", "export", "out")]
)
def test_a_redis_older_than_7_is_refused_naming_both_versions(
    env: dict, old_redis: OldRedis, command: tuple[str, ...]
) -> None:
    env["REDIS_URL"] = f"redis://127.0.0.1:{old_redis.port}/0"
    if command[0] == "run":
        command = ("run", "--port", str(free_port()))
    _, stderr = _refused(env, *command)
    (line,) = stderr.strip().splitlines()
    assert line.endswith(
        f"Redis at redis://127.0.0.1:{old_redis.port}/0 is version 6.2.14; warroom needs "
        "Redis 7.0 or newer (it uses EXPIRE ... NX)"
    )


def test_a_token_slack_refuses_is_named_not_printed(env: dict) -> None:
    # The loopback Slack knows another bot token, so it answers invalid_auth.
    _, stderr = _refused(env, "run", "--port", str(free_port()))
    assert stderr.strip().splitlines() == ["warroom: Slack refused SLACK_BOT_TOKEN (invalid_auth)"]
    assert not _leaks(stderr)


def test_an_app_token_slack_refuses_is_one_line_before_anything_starts(
    env: dict, fake_slack: FakeSlack
) -> None:
    env["SLACK_BOT_TOKEN"] = fake_slack.bot_token
    env["SLACK_APP_TOKEN"] = "xapp-Ap9Hq4"
    _, stderr = _refused(env, "run", "--port", str(free_port()))
    assert stderr.strip().splitlines() == ["warroom: Slack refused SLACK_APP_TOKEN (invalid_auth)"]
    assert "xapp-Ap9Hq4" not in stderr and not _leaks(stderr)


def test_gunicorns_workers_refuse_an_old_redis_too(old_redis: OldRedis, fake_slack) -> None:
    """The Procfile starts gunicorn's workers without `warroom run`: each builds its runtime,
    and that refuses the old Redis in the same words."""
    url = f"redis://127.0.0.1:{old_redis.port}/0"
    settings = Settings(
        redis_url=url,
        slack_bot_token=fake_slack.bot_token,
        slack_signing_secret=SIGNING_SECRET,
        slack_api_url=fake_slack.url,
        _env_file=None,
    )
    with pytest.raises(StartupError, match=r"is version 6\.2\.14; warroom needs Redis 7\.0"):
        build_runtime(settings)

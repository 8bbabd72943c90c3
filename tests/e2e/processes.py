"""`warroom run` as a real process, for the tests that need one (or several)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tests.conftest import SIGNING_SECRET, _free_port
from tests.fakes.slack_api import FakeSlack
from tests.slack_driver import SlackDriver


def warroom_env(
    fake: FakeSlack, redis_url: str, prefix: str, tmp_path: Path, config: Path, **extra: Any
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "WARROOM_"))}
    env.update(
        SLACK_BOT_TOKEN=fake.bot_token,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=fake.url,
        REDIS_URL=redis_url,
        WARROOM_REDIS_PREFIX=prefix,
        WARROOM_CONFIG=str(config),
        WARROOM_MEMORY_DIR=str(tmp_path / "Agent_Memory"),
    )
    env.update({k: str(v) for k, v in extra.items()})
    return env


def warroom(*args: str) -> list[str]:
    return [sys.executable, "-m", "bot.cli", *args]


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        with e:
            return e.code, e.read()


class WarroomProcess:
    """One `warroom run` in HTTP mode on a free port; its output goes to a log file."""

    def __init__(self, env: dict[str, str], fake: FakeSlack, log: Path) -> None:
        self.env = env
        self.fake = fake
        self.port = _free_port()
        self.log_path = log
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> WarroomProcess:
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            warroom("run", "--port", str(self.port)),
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"warroom run exited:\n{self.log_path.read_text()[-3000:]}")
            try:
                if get(f"{self.base}/healthz")[0] == 200:
                    return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("warroom run did not become healthy")
            time.sleep(0.1)

    def health(self) -> dict[str, Any]:
        return json.loads(get(f"{self.base}/healthz")[1])

    def is_leader(self) -> bool:
        try:
            return self.health().get("scheduler") == "leader"
        except OSError:
            return False

    def driver(self) -> SlackDriver:
        return SlackDriver(self.fake, SIGNING_SECRET, url=f"{self.base}/slack/events")

    def kill(self) -> None:
        """SIGKILL: no clean-up, no lease released."""
        assert self.proc is not None
        # gunicorn runs the app in a worker: kill the whole process group's tree
        for pid in _children(self.proc.pid):
            os.kill(pid, signal.SIGKILL)
        self.proc.kill()
        self.proc.wait()
        self._log.close()

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            if self.proc is not None and not self._log.closed:
                self._log.close()
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill()
            return
        self._log.close()


def _children(pid: int) -> list[int]:
    """Child processes of `pid` (gunicorn's workers), read from /proc."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:  # fields: state, ppid, ...
            found.append(int(stat.parent.name))
    return found

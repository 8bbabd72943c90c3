"""What runs the app under test, for the tests and the benchmarks: an executor that runs
Bolt's lazy work inline, and ``warroom run`` as a real process wired to the loopback Slack.

Nothing here imports the app: the process is started as ``python -m bot.cli run``.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import Executor, Future
from pathlib import Path
from typing import Any, Self

from loopback.server import free_port, http_request
from loopback.slack.driver import SlackDriver
from loopback.slack.emulator import SlackEmulator


class InlineExecutor(Executor):
    """Runs work after the ack at once, so a request's work is done when dispatch returns."""

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as e:
            future.set_exception(e)
        return future


def warroom_env(
    fake: SlackEmulator,
    redis_url: str,
    prefix: str,
    tmp_path: Path,
    config: Path,
    *,
    signing_secret: str,
    **extra: Any,
) -> dict[str, str]:
    """The environment of a ``warroom`` process that talks to ``fake`` (``extra``: more
    variables, by name)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "WARROOM_"))}
    env.update(
        SLACK_BOT_TOKEN=fake.bot_token,
        SLACK_SIGNING_SECRET=signing_secret,
        SLACK_API_URL=fake.url,
        REDIS_URL=redis_url,
        WARROOM_REDIS_PREFIX=prefix,
        WARROOM_CONFIG=str(config),
        WARROOM_MEMORY_DIR=str(tmp_path / "Agent_Memory"),
    )
    env.update({k: str(v) for k, v in extra.items()})
    return env


def signal_another_thread(pid: int, sig: int) -> bool:
    """Send `sig` to one thread of process `pid` other than its main one (Linux's tgkill), as
    the kernel may when a signal is sent to the process; False where that cannot be done."""
    tgkill = getattr(ctypes.CDLL(None, use_errno=True), "tgkill", None)
    if tgkill is None:
        return False
    others = sorted(int(t) for t in os.listdir(f"/proc/{pid}/task") if int(t) != pid)
    if not others:
        return False
    if tgkill(pid, others[-1], sig) != 0:
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
    return True


def warroom(*args: str) -> list[str]:
    """The command line of ``warroom ARGS`` with this interpreter."""
    return [sys.executable, "-m", "bot.cli", *args]


def get(url: str) -> tuple[int, bytes]:
    status, body, _ = http_request(url)
    return status, body


class WarroomProcess:
    """One `warroom run` in HTTP mode on a free port; its output goes to a log file. `cwd`
    is its working directory (a host of its own: relative paths such as the default
    WARROOM_MEMORY_DIR land there)."""

    def __init__(
        self, env: dict[str, str], fake: SlackEmulator, log: Path, *, cwd: Path | None = None
    ) -> None:
        self.env = env
        self.fake = fake
        self.port = free_port()
        self.log_path = log
        self.cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> Self:
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            warroom("run", "--port", str(self.port)),
            env=self.env,
            cwd=self.cwd,
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
        """A driver that sends this process signed requests, with its signing secret."""
        secret = self.env["SLACK_SIGNING_SECRET"]
        return SlackDriver(self.fake, secret, url=f"{self.base}/slack/events")

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

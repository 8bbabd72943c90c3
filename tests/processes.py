"""A real `warroom run` process for a test: the loopback Slack, this test's Redis keys and
config, the tests' signing secret."""

from __future__ import annotations

from pathlib import Path

from loopback.harness import WarroomProcess, warroom_env
from loopback.slack import FakeSlack
from tests.conftest import SIGNING_SECRET


def start_warroom(
    fake_slack: FakeSlack,
    redis_url: str,
    prefix: str,
    tmp_path: Path,
    config_file: Path,
    **extra: object,
) -> WarroomProcess:
    """`warroom run`, healthy, logging to `warroom.log` in `tmp_path` (`extra`: more
    environment variables, by name). The caller stops it."""
    env = warroom_env(
        fake_slack, redis_url, prefix, tmp_path, config_file, signing_secret=SIGNING_SECRET, **extra
    )
    return WarroomProcess(env, fake_slack, tmp_path / "warroom.log").start()

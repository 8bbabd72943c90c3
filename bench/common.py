"""What every benchmark needs: percentiles, a throwaway Redis key prefix removed after, and
the bot's settings against the loopback Slack."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import redis
import yaml
from pydantic import SecretStr

from bot.settings import Settings
from loopback.anthropic import FakeAnthropic
from loopback.slack import SlackEmulator

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
SECRET = "bench-secret"


def settings_for(
    fake: SlackEmulator,
    redis_url: str,
    prefix: str,
    folder: Path,
    *,
    model: FakeAnthropic | None = None,
    **extra: Any,
) -> Settings:
    """Settings of a bot talking to ``fake`` (and to ``model``, the loopback Messages API,
    when given), its files in ``folder`` (``extra``: more)."""
    if model is not None:
        extra.update(anthropic_api_key=SecretStr(model.api_key), anthropic_base_url=model.url)
    return Settings(
        slack_bot_token=fake.bot_token,
        slack_signing_secret=SECRET,
        slack_api_url=fake.url,
        redis_url=redis_url,
        redis_prefix=prefix,
        memory_dir=folder / "Agent_Memory",
        **extra,
    )


def pct(values: list[float], q: float) -> float:
    """The q-th percentile by nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def drop_prefix(redis_url: str, prefix: str) -> None:
    """Delete every key under `prefix`."""
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        for start in range(0, len(keys), 1000):
            client.delete(*keys[start : start + 1000])
    finally:
        client.close()


def declaring_workspace(fake: SlackEmulator, folder: Path, people: int) -> Path:
    """`people` declarers, the VP, two ICs and a CSM in `fake`, its exec channel, and the
    config naming them, written in `folder`: what a `warroom run` under a benchmark reads."""
    for i in range(people):
        fake.add_user(f"U0USER{i:03d}", f"user{i}")
    for uid in ("U0VPSUPRT", "U0INCCMDR", "U0OTHERIC", "U0CSMGR01"):
        fake.add_user(uid, uid.lower())
    fake.add_channel("exec-escalations")
    config = folder / "warroom.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "vp": ["U0VPSUPRT"],
                "incident_commanders": ["U0INCCMDR", "U0OTHERIC"],
                "exec_channel": "exec-escalations",
                "responders": {"arr_churn_risk": ["U0CSMGR01"]},
            }
        )
    )
    return config

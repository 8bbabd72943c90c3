"""What a process opens before it builds the runtime: the protocol and config files,
validated, and the Redis connection. Kept apart from `bot.runtime` (Bolt, slack_sdk, the
model's SDK: seconds of imports) so the entry points report a bad start in a fraction of
that."""

from __future__ import annotations

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from bot.config import WarroomConfig, load_config
from bot.settings import Settings
from protocols.loader import load_protocol
from protocols.schema import Protocol


def load_definitions(settings: Settings) -> tuple[Protocol, WarroomConfig]:
    """The protocol and the config file, validated; errors name the file and the key."""
    protocol = load_protocol(settings.protocol_file)
    config = load_config(settings.config_path(), protocol.criterion_ids)
    return protocol, config


def connect_redis(settings: Settings) -> redis.Redis:
    """The Redis client of REDIS_URL (ValueError when redis-py cannot parse the URL); it
    connects on first use."""
    # Short timeouts and one immediate retry: a command on a connection that died with a
    # Redis restart is retried once on a fresh one, and a Redis that is down is reported on
    # the ack path well within Slack's 3 s.
    return redis.Redis.from_url(
        settings.redis_url,
        socket_timeout=1,
        socket_connect_timeout=1,
        health_check_interval=15,
        retry=Retry(NoBackoff(), 1),
    )

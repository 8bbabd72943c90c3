"""What a process opens before it builds the runtime: the protocol and config files,
validated, and the Redis connection. Kept apart from `bot.runtime` (Bolt, slack_sdk, the
model's SDK: seconds of imports) so the entry points report a bad start in a fraction of
that."""

from __future__ import annotations

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from bot.config import WarroomConfig, load_config
from bot.settings import Settings, redacted_url, url_password
from protocols.loader import load_protocol
from protocols.schema import Protocol


def load_definitions(settings: Settings) -> tuple[Protocol, WarroomConfig]:
    """The protocol and the config file, validated; errors name the file and the key."""
    protocol = load_protocol(settings.protocol_file)
    config = load_config(settings.config_path(), protocol.criterion_ids)
    return protocol, config


def connect_redis(settings: Settings) -> redis.Redis:
    """The Redis client of REDIS_URL (ValueError when redis-py cannot parse the URL); it
    connects on first use. `rediss://` is TLS, with the server's CA in
    `?ssl_ca_certs=/path/ca.crt` when a private CA signed it; a password (and an ACL user)
    goes before the host: `rediss://[user]:password@host:port/0`."""
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


def redis_problem(error: BaseException, url: str) -> str:
    """Why the Redis at `url` cannot be used, in one line that never shows its password."""
    where = redacted_url(url)
    cause = error.__cause__ if isinstance(error.__cause__, redis.RedisError) else error
    if isinstance(cause, redis.AuthenticationError):
        # Reached, but it will not let us in: not a network problem, so do not call it one.
        if url_password(url):
            return f"Redis at {where} refused the password in REDIS_URL"
        return (
            f"Redis at {where} wants a password: give it in REDIS_URL, as "
            "redis://:PASSWORD@host:port/0 (rediss:// for TLS)"
        )
    text = " ".join(str(cause).split())
    password = url_password(url)
    if password:
        text = text.replace(password, "***")
    return f"cannot reach Redis at {where}: {text}"

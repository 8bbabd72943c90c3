"""What a process opens before it builds the runtime: the protocol and config files,
validated, and the Redis connection. Kept apart from `bot.runtime` (Bolt, slack_sdk, the
model's SDK: seconds of imports) so the entry points report a bad start in a fraction of
that."""

from __future__ import annotations

import re
import socket
from collections.abc import Mapping
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis.sentinel import MasterNotFoundError, Sentinel

from bot.config import WarroomConfig, load_config
from bot.settings import (
    SentinelURL,
    Settings,
    is_sentinel_url,
    parse_sentinel_url,
    redacted_url,
    redis_url_problem,
    url_password,
    url_secrets,
)
from protocols.loader import load_protocol
from protocols.schema import Protocol


def load_definitions(settings: Settings) -> tuple[Protocol, WarroomConfig]:
    """The protocol and the config file, validated; errors name the file and the key."""
    protocol = load_protocol(settings.protocol_file)
    config = load_config(settings.config_path(), protocol.criterion_ids)
    return protocol, config


def connect_redis(settings: Settings) -> redis.Redis:
    """The Redis client of REDIS_URL; see `redis_from_url`. ValueError, in one line naming
    the URL (its secrets hidden) when it can be shown, when it cannot be used."""
    url = settings.redis_url
    problem = redis_url_problem(url)
    if problem:  # then no part of the URL can be shown safely
        raise ValueError(f"REDIS_URL is not usable: {problem}")
    try:
        return redis_from_url(url)
    except ValueError as e:
        where = redacted_url(url)
        raise ValueError(
            f"REDIS_URL {where} is not usable: {_without_secrets(str(e), url)}"
        ) from None


def redis_from_url(url: str) -> redis.Redis:
    """The Redis client of `url` (ValueError, in one line, when it cannot be parsed); it
    connects on first use.

    `redis://` and `rediss://` (TLS, with the server's CA in `?ssl_ca_certs=/path/ca.crt`
    when a private CA signed it) are one server; a password (and an ACL user) goes before the
    host: `rediss://[user]:password@host:port/0`. `redis+sentinel://` names the sentinels of
    a replicated Redis (see `bot.settings.parse_sentinel_url`): the client asks them where
    the primary is, and asks again whenever the primary it knew stops answering or turns out
    to be a replica, so it follows a failover by itself."""
    problem = redis_url_problem(url)
    if problem:
        raise ValueError(problem)
    # Short timeouts, so a Redis that is down is reported on the ack path well within Slack's
    # 3 s. The client sends nothing twice by itself: a command whose answer was lost may have
    # run, and only the caller knows whether it is safe to send again (see `Store._resend`).
    # The one exception is a command a replica refused (the primary it knew was demoted in a
    # failover): it never ran, and is sent once more to the primary the sentinels name now. A
    # connection that died while idle (a Redis restart) is replaced by the pool before use.
    options: dict[str, Any] = {
        "socket_timeout": 1,
        "socket_connect_timeout": 1,
        "health_check_interval": 15,
        "retry": Retry(NoBackoff(), 1, is_retryable=never_ran),
    }
    if is_sentinel_url(url):
        return _primary_of(parse_sentinel_url(url), options)
    return redis.Redis.from_url(url, **options)


def never_ran(error: Exception) -> bool:
    """Whether a command that failed with `error` certainly did not run: a replica refused it
    (redis-py's Sentinel connection reports a READONLY answer so, once it has dropped the
    connection to the demoted primary). Only such a command is sent again by the client."""
    return str(error) == _DEMOTED


# What redis-py's Sentinel connection raises for a write a replica refused.
_DEMOTED = "The previous master is now a slave"


class SentinelPrimary(redis.Redis):
    """The client of the primary a Sentinel names (redis-py's `Sentinel.master_for`): its
    pool asks the sentinels for the primary's address whenever it opens a connection, and a
    connection that finds a replica where the primary was (READONLY) is dropped as a
    connection error, so the one resend (see `never_ran`) reconnects to whichever server is
    primary now."""

    @property
    def sentinel(self) -> Sentinel:
        return self.connection_pool.sentinel_manager  # type: ignore[no-any-return]

    @property
    def service(self) -> str:
        return self.connection_pool.service_name  # type: ignore[no-any-return]

    def close(self) -> None:
        # The client that owns the pool (not one lent a single connection of it, see
        # `Redis.client`) also lets go of its connections to the sentinels.
        owner = self.auto_close_connection_pool
        super().close()
        if owner:
            self.sentinel.close()


def _primary_of(target: SentinelURL, options: dict[str, Any]) -> redis.Redis:
    # TLS to the sentinels and to the servers alike, verified against the same CA.
    tls = {"ssl": True, "ssl_ca_certs": target.ca_certs} if target.tls else {}
    sentinel = Sentinel(
        list(target.sentinels),
        # The sentinels are asked in turn, so one that does not answer is passed over at once
        # rather than retried (redis-py's default retries it three times, with backoff).
        sentinel_kwargs={
            "socket_timeout": options["socket_timeout"],
            "socket_connect_timeout": options["socket_connect_timeout"],
            "retry": Retry(NoBackoff(), 0),
            "username": target.sentinel_username,
            "password": target.sentinel_password,
            **tls,
        },
    )
    return sentinel.master_for(
        target.service,
        redis_class=SentinelPrimary,
        db=target.db,
        username=target.username,
        password=target.password,
        **tls,
        **options,
    )


def redis_problem(error: BaseException, url: str) -> str:
    """Why the Redis at `url` cannot be used, in one line that never shows a password and
    says what to check."""
    where = redacted_url(url)
    cause = error.__cause__ if isinstance(error.__cause__, redis.RedisError) else error
    if isinstance(cause, redis.AuthenticationError):
        # Reached, but it will not let us in: not a network problem, so do not call it one.
        if url_password(url):
            return (
                f"Redis at {where} refused the password in REDIS_URL; check it, and that its "
                "/, ?, #, @, & and % are percent-encoded (%2F, %3F, %23, %40, %26, %25)"
            )
        scheme = (
            "redis+sentinel://:PASSWORD@host:26379,.../SERVICE/0"
            if is_sentinel_url(url)
            else "redis://:PASSWORD@host:port/0 (rediss:// for TLS)"
        )
        return f"Redis at {where} wants a password: give it in REDIS_URL, as {scheme}"
    text = " ".join(str(cause).split()).rstrip(".")
    advice = _what_to_check(cause)
    if isinstance(cause, MasterNotFoundError):
        text, advice = _sentinels_said(text, url)
    said = f"cannot reach Redis at {where}: {_without_secrets(text, url)}"
    return f"{said}; {advice}" if advice else said


def _what_to_check(error: BaseException) -> str:
    """Where to look, from what the connection ran into."""
    low = error.__cause__ or error.__context__
    if isinstance(low, socket.gaierror):
        return "check the host name in REDIS_URL"
    if isinstance(low, FileNotFoundError):
        return "check the socket path in REDIS_URL, and that Redis is running"
    if isinstance(low, ConnectionRefusedError):
        return "check that Redis is running there, on the port REDIS_URL names"
    if isinstance(error, redis.TimeoutError):
        return (
            "check the host and port in REDIS_URL, that no firewall is in the way, and the "
            "scheme: rediss:// for a Redis that speaks TLS, redis:// for one that does not"
        )
    return (
        "check that Redis is running, the host and port in REDIS_URL, the scheme (rediss:// "
        "for TLS) and the password"
    )


def _without_secrets(text: str, url: str) -> str:
    for secret in url_secrets(url):
        text = text.replace(secret, "***")
    return text


MIN_REDIS_VERSION = (7, 0)  # bot.store's rate windows use EXPIRE ... NX, new in Redis 7.0


def redis_ready(client: redis.Redis, url: str) -> str | None:
    """None when the Redis at `url` answers, lets us in and is recent enough; else why not,
    in one line (see `redis_problem`, `version_problem`)."""
    try:
        client.ping()
    except (redis.RedisError, OSError) as e:
        return redis_problem(e, url)
    return redis_too_old(client, url)


def redis_too_old(client: redis.Redis, url: str) -> str | None:
    """Why the Redis at `url` is too old for warroom (see `version_problem`), or None, also
    when it cannot say: INFO renamed or not allowed (some managed services), or no answer
    (which the caller reports in its own way)."""
    try:
        info = client.info("server")
    except (redis.RedisError, OSError):
        return None
    return version_problem(info, redacted_url(url))


def version_problem(info: Mapping[str, Any], where: str) -> str | None:
    """Why the server that answered INFO server with `info` is too old for warroom, or None
    (also when it does not say its version)."""
    found = re.match(r"(\d+)\.(\d+)[0-9.]*", str(info.get("redis_version", "")))
    if found is None:
        return None
    if (int(found[1]), int(found[2])) >= MIN_REDIS_VERSION:
        return None
    needed = ".".join(map(str, MIN_REDIS_VERSION))
    return (
        f"Redis at {where} is version {found[0]}; warroom needs Redis {needed} or newer "
        "(it uses EXPIRE ... NX)"
    )


def _sentinels_said(text: str, url: str) -> tuple[str, str]:
    """redis-py's MasterNotFoundError in a few words, and what to check (or ""): it spells
    out the client of every sentinel that failed, whose form changes between versions; only
    their addresses stay."""
    if "AuthenticationError" in text or "NOAUTH" in text or "invalid password" in text:
        if "sentinel_password=" in url:
            return "the sentinels refused sentinel_password", ""
        return "the sentinels want a password: give it as ?sentinel_password=PASSWORD", ""
    failed = sorted(set(re.findall(r"host=([^,>)]+),port=(\d+)", text)))
    silent = ", ".join(f"{host}:{port}" for host, port in failed)
    if failed and len(failed) >= len(parse_sentinel_url(url).sentinels):
        return (
            f"no sentinel answered ({silent})",
            "check that the sentinels run, on the hosts and ports REDIS_URL names",
        )
    service = parse_sentinel_url(url).service
    named = f"the sentinels name no primary that answers for {service!r}"
    advice = "check the service name in REDIS_URL, and that its primary runs"
    return (f"{named} ({silent} did not answer)" if failed else named), advice

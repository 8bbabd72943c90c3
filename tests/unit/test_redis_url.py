"""REDIS_URL checked before anything is sent: what is wrong said without quoting a URL that
might hide a password, what to check when Redis cannot be reached, and the oldest Redis
warroom runs on."""

from __future__ import annotations

import socket

import pytest
import redis

from bot.boot import connect_redis, redis_problem, version_problem
from bot.settings import Settings, redacted_url, redis_url_problem

SECRET = "Zq8vKw"


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("", "it is empty; set it to your Redis, like redis://localhost:6379/0"),
        ("   ", "it is empty"),
        ("localhost:6379", "it must start with redis://, rediss:// (TLS), unix://"),
        ("http://h:6379", "(it starts with http://)"),
        (f"redis://:{SECRET}/x@h:6379/0", "must be percent-encoded: / as %2F, ? as %3F"),
        (f"redis://:{SECRET}#x@h:6379/0", "must be percent-encoded"),
        (f"redis://:{SECRET}?x@h:6379/0", "must be percent-encoded"),
        (f"redis://:{SECRET}?x=y@h:6379/0", "must be percent-encoded"),
        (f"redis://h/0?password={SECRET}#x", "must be percent-encoded"),
        (f"redis://h/0?password={SECRET}&x", "an option after ? has no value"),
        (f"redis://h/0?password={SECRET}&x=y", "an option after ? that redis-py does not take"),
        (f"redis://user:{SECRET}", "its host and port cannot be read"),
        (f"redis://:{SECRET}\u2100@h", "its host and port cannot be read"),
        ("redis://h:99999/0", "the port must be a number from 1 to 65535"),
        ("redis://h:0/0", "its port must be a number from 1 to 65535"),
        ("redis://h:6379/zero", "the database after the host (like /0) is not a number"),
        (f"redis+sentinel://:{SECRET}/x@h:26379/svc", "must be percent-encoded"),
    ],
)
def test_an_unusable_url_says_why_and_quotes_none_of_it(url: str, says: str) -> None:
    problem = redis_url_problem(url)
    assert problem is not None and says in problem
    assert SECRET not in problem and "\n" not in problem
    assert redacted_url(url) == "(not shown)"
    with pytest.raises(ValueError, match=r"^REDIS_URL is not usable: ") as refused:
        connect_redis(Settings(redis_url=url, _env_file=None))
    assert SECRET not in str(refused.value)


@pytest.mark.parametrize(
    "url",
    [
        "redis://localhost:6379/0",
        "redis://localhost",
        "rediss://app:p%2Fss%23w%3F@h:6380/0?ssl_ca_certs=/etc/ca.crt&socket_timeout=2",
        "redis://h/0?password=p%26ss",
        "redis://[::1]:6379/3",
        "unix:///run/redis/redis.sock?db=2",
        "redis+sentinel://:pw@h1:26379,h2,[::1]:26380/svc/1?sentinel_password=sp",
        " redis://localhost:6379/0\n",
    ],
)
def test_usable_urls_pass(url: str) -> None:
    assert redis_url_problem(url) is None
    assert redacted_url(url) != "(not shown)"


def test_settings_strip_the_url() -> None:
    assert Settings(redis_url=" redis://h:1/0\n", _env_file=None).redis_url == "redis://h:1/0"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        # A user name alone is more likely a misplaced password.
        (f"redis://{SECRET}@h:6379/0", "redis://***@h:6379/0"),
        ("unix:///run/redis.sock?db=1", "unix:///run/redis.sock?db=1"),
    ],
)
def test_redacted_urls(url: str, shown: str) -> None:
    assert redacted_url(url) == shown


def _connection_error(cause: BaseException) -> redis.ConnectionError:
    try:
        try:
            raise cause
        except OSError as low:
            raise redis.ConnectionError(f"Error connecting: {low}") from low
    except redis.ConnectionError as e:
        return e


@pytest.mark.parametrize(
    ("error", "check"),
    [
        (_connection_error(socket.gaierror(-2, "Name or service not known")), "the host name"),
        (_connection_error(ConnectionRefusedError(111, "refused")), "that Redis is running"),
        (_connection_error(FileNotFoundError(2, "No such file")), "the socket path"),
        (redis.TimeoutError("Timeout connecting to server"), "rediss:// for a Redis that"),
        (redis.ConnectionError("Connection closed by server"), "the scheme (rediss:// for TLS)"),
    ],
)
def test_an_unreachable_redis_says_what_to_check(error: Exception, check: str) -> None:
    said = redis_problem(error, f"redis://:{SECRET}@h:6379/0")
    assert said.startswith("cannot reach Redis at redis://:***@h:6379/0: ")
    assert "; check " in said and check in said
    assert SECRET not in said and "\n" not in said


@pytest.mark.parametrize(
    ("version", "refused"),
    [
        ("6.2.14", True),
        ("6.0.0", True),
        ("5.0.7", True),
        ("7.0.0", False),
        ("7.0.15", False),
        ("7.2.4", False),  # Valkey answers with the Redis version it matches
        ("8.0.1", False),
        ("10.0.0", False),
        ("", False),  # a server that does not say: not refused on a guess
        ("unknown", False),
    ],
)
def test_the_oldest_redis_is_7_0(version: str, refused: bool) -> None:
    said = version_problem({"redis_version": version}, "redis://h:6379/0")
    if refused:
        assert said == (
            f"Redis at redis://h:6379/0 is version {version}; warroom needs Redis 7.0 or newer "
            "(it uses EXPIRE ... NX)"
        )
    else:
        assert said is None
    assert version_problem({}, "redis://h:6379/0") is None

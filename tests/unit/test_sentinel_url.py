"""REDIS_URL naming Redis behind Sentinel: `redis+sentinel://` read into the sentinels, the
service, the database and the passwords; refused in one line when malformed; never shown
with a password; and the client it builds (no connection is opened here)."""

from __future__ import annotations

import pytest
import redis
from redis.sentinel import (
    MasterNotFoundError,
    SentinelConnectionPool,
    SentinelManagedSSLConnection,
)

from bot.boot import SentinelPrimary, redis_from_url, redis_problem
from bot.settings import (
    SentinelURL,
    Settings,
    parse_sentinel_url,
    redacted_url,
    url_password,
    url_secrets,
)

THREE = "10.0.0.1:26379,10.0.0.2:26379,10.0.0.3:26380"


@pytest.mark.parametrize(
    ("url", "read"),
    [
        (
            f"redis+sentinel://{THREE}/warroom",
            SentinelURL(
                sentinels=(("10.0.0.1", 26379), ("10.0.0.2", 26379), ("10.0.0.3", 26380)),
                service="warroom",
            ),
        ),
        (
            "redis+sentinel://:p%40ss@s1,s2:26390/main/3?sentinel_password=t%26p",
            SentinelURL(
                sentinels=(("s1", 26379), ("s2", 26390)),
                service="main",
                db=3,
                password="p@ss",
                sentinel_password="t&p",
            ),
        ),
        (
            "REDIS+SENTINEL://app:pw@[::1]:26379,[fe80::2]/warroom/0?sentinel_username=s",
            SentinelURL(
                sentinels=(("::1", 26379), ("fe80::2", 26379)),
                service="warroom",
                username="app",
                password="pw",
                sentinel_username="s",
            ),
        ),
        (
            f"rediss+sentinel://:pw@{THREE}/warroom?ssl_ca_certs=/etc/warroom/ca.crt",
            SentinelURL(
                sentinels=(("10.0.0.1", 26379), ("10.0.0.2", 26379), ("10.0.0.3", 26380)),
                service="warroom",
                password="pw",
                tls=True,
                ca_certs="/etc/warroom/ca.crt",
            ),
        ),
    ],
)
def test_a_sentinel_url_names_the_sentinels_the_service_and_the_passwords(
    url: str, read: SentinelURL
) -> None:
    assert parse_sentinel_url(url) == read
    assert Settings(redis_url=url, _env_file=None).redis_sentinel  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("redis+sentinel:///warroom/0", "it names no sentinel"),
        (f"redis+sentinel://{THREE}", "it names no service"),
        (f"redis+sentinel://{THREE}/", "it names no service"),
        (f"redis+sentinel://{THREE}/warroom/zero", "only the database number"),
        (f"redis+sentinel://{THREE}/warroom/0/1", "only the database number"),
        ("redis+sentinel://10.0.0.1:port/warroom", "sentinel '10.0.0.1:port' is not host:port"),
        ("redis+sentinel://10.0.0.1:0/warroom", "is not host:port"),
        ("redis+sentinel://10.0.0.1:65536/warroom", "is not host:port"),
        ("redis+sentinel://::1/warroom", "is not host:port"),
        # The option is not named: it may be the tail of a password holding an unencoded &.
        (f"redis+sentinel://{THREE}/warroom/0?ssl=true", "unknown option \\(a redis\\+sentinel"),
        # a CA is for TLS, which is rediss+sentinel://
        (f"redis+sentinel://{THREE}/warroom/0?ssl_ca_certs=/ca.crt", "unknown option"),
    ],
)
def test_a_malformed_sentinel_url_is_refused_in_one_line(url: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason) as refused:
        redis_from_url(url)
    assert "\n" not in str(refused.value)


def test_no_password_of_a_sentinel_url_is_ever_shown() -> None:
    url = f"redis+sentinel://:s3cret@{THREE}/warroom/0?sentinel_password=t0ken&x=1"
    assert redacted_url(url) == (
        f"redis+sentinel://:***@{THREE}/warroom/0?sentinel_password=***&x=1"
    )
    assert url_password(url) == "s3cret"
    assert url_secrets(url) == ["s3cret", "t0ken"]
    with pytest.raises(ValueError) as refused:
        redis_from_url(url)
    assert "s3cret" not in str(refused.value) and "t0ken" not in str(refused.value)


def test_the_client_asks_the_sentinels_for_the_primary_of_the_service() -> None:
    client = redis_from_url(f"redis+sentinel://:pw@{THREE}/warroom/2?sentinel_password=sp")
    try:
        assert isinstance(client, SentinelPrimary)
        pool = client.connection_pool
        assert isinstance(pool, SentinelConnectionPool) and pool.is_master
        assert client.service == "warroom"
        kwargs = pool.connection_kwargs
        # the short timeouts and the one retry of a single Redis, on the primary...
        assert (kwargs["db"], kwargs["password"], kwargs["socket_timeout"]) == (2, "pw", 1)
        assert kwargs["retry"].get_retries() == 1
        # ...and each sentinel asked once, in turn, with its own password
        asked = [s.connection_pool.connection_kwargs for s in client.sentinel.sentinels]
        assert [(k["host"], k["port"]) for k in asked] == [
            ("10.0.0.1", 26379),
            ("10.0.0.2", 26379),
            ("10.0.0.3", 26380),
        ]
        assert {k["password"] for k in asked} == {"sp"}
        assert {k["retry"].get_retries() for k in asked} == {0}
    finally:
        client.close()


def test_over_tls_the_sentinels_and_the_servers_are_verified_against_the_ca() -> None:
    client = redis_from_url(f"rediss+sentinel://{THREE}/warroom?ssl_ca_certs=/ca.crt")
    try:
        pool = client.connection_pool
        assert pool.connection_class is SentinelManagedSSLConnection
        assert pool.connection_kwargs["ssl_ca_certs"] == "/ca.crt"
        for sentinel in client.sentinel.sentinels:  # type: ignore[attr-defined]
            assert sentinel.connection_pool.connection_class is redis.SSLConnection
            assert sentinel.connection_pool.connection_kwargs["ssl_ca_certs"] == "/ca.crt"
    finally:
        client.close()


@pytest.mark.parametrize(
    ("error", "said"),
    [
        (
            MasterNotFoundError(
                "No master found for 'warroom' : <redis.client.Redis(<...Connection(host="
                "10.0.0.1,port=26379,...)>)> - network:ConnectionError, <redis.client.Redis("
                "<...Connection(host=10.0.0.2,port=26379,...)>)> - network:ConnectionError, "
                "<redis.client.Redis(<...Connection(host=10.0.0.3,port=26380,...)>)> - "
                "network:ConnectionError"
            ),
            "no sentinel answered (10.0.0.1:26379, 10.0.0.2:26379, 10.0.0.3:26380); check "
            "that the sentinels run, on the hosts and ports REDIS_URL names",
        ),
        (
            MasterNotFoundError("No master found for 'warroom'"),
            "the sentinels name no primary that answers for 'warroom'; check the service "
            "name in REDIS_URL, and that its primary runs",
        ),
        (
            MasterNotFoundError(
                "No master found for 'warroom' : Redis<...host=10.0.0.1,port=26379...> - "
                "AuthenticationError('invalid username-password pair')"
            ),
            "the sentinels refused sentinel_password",
        ),
    ],
)
def test_what_the_sentinels_said_is_one_short_line(error: Exception, said: str) -> None:
    url = f"redis+sentinel://:pw@{THREE}/warroom/0?sentinel_password=sp"
    where = f"redis+sentinel://:***@{THREE}/warroom/0?sentinel_password=***"
    assert redis_problem(error, url) == f"cannot reach Redis at {where}: {said}"


def test_a_primary_that_wants_a_password_says_how_to_give_it() -> None:
    url = f"redis+sentinel://{THREE}/warroom/0"
    said = redis_problem(redis.AuthenticationError("Authentication required."), url)
    assert said == (
        f"Redis at {url} wants a password: give it in REDIS_URL, as "
        "redis+sentinel://:PASSWORD@host:26379,.../SERVICE/0"
    )

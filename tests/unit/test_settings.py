"""Settings read from the environment: addresses checked at start-up, and URLs that never
show a password in a message or a log line."""

from __future__ import annotations

import pytest

from bot.settings import Settings, SettingsError, load_settings, redacted_url, url_password


@pytest.mark.parametrize(
    ("url", "shown", "password"),
    [
        ("redis://localhost:6379/0", "redis://localhost:6379/0", None),
        ("rediss://:s3cret@h:6380/0", "rediss://:***@h:6380/0", "s3cret"),
        (
            "rediss://app:p%40ss@h/0?ssl_ca_certs=/ca.crt",
            "rediss://app:***@h/0?ssl_ca_certs=/ca.crt",
            "p@ss",
        ),
        # redis-py also takes the password as a query argument.
        ("redis://h/0?password=s3cret&db=1", "redis://h/0?password=***&db=1", "s3cret"),
        ("redis://h/0?db=1&password=s3cret", "redis://h/0?db=1&password=***", "s3cret"),
    ],
)
def test_redis_urls_are_shown_without_their_password(
    url: str, shown: str, password: str | None
) -> None:
    assert redacted_url(url) == shown
    assert url_password(url) == password


@pytest.mark.parametrize(
    ("address", "bind"),
    [("127.0.0.1:9100", ("127.0.0.1", 9100)), ("[::1]:9100", ("::1", 9100)), ("", None)],
)
def test_the_metrics_address_is_host_and_port(address: str, bind: object) -> None:
    assert Settings(metrics_address=address).metrics_bind == bind


@pytest.mark.parametrize("address", ["9100", "127.0.0.1", ":9100", "host:0", "host:99999", "h:x"])
def test_an_unusable_metrics_address_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, address: str
) -> None:
    monkeypatch.setenv("WARROOM_METRICS_ADDRESS", address)
    with pytest.raises(SettingsError, match=r"^WARROOM_METRICS_ADDRESS: .*host:port"):
        load_settings()


def test_an_empty_metrics_token_asks_for_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WARROOM_METRICS_TOKEN", "")
    assert not load_settings().metrics_token

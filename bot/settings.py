"""Process settings from the environment (pydantic-settings); built only by entry points."""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REDIS_URL_DEFAULT = "redis://localhost:6379/0"


def _env(name: str, field: str) -> AliasChoices:
    # Accept the documented environment name and the plain field name, so tests can pass
    # explicit values without going through the environment.
    return AliasChoices(name, field)


class Settings(BaseSettings):
    """Every environment variable warroom reads, with SPEC's defaults."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    slack_bot_token: SecretStr | None = Field(
        None,
        description="the bot's token from the Slack app (xoxb-...)",
        json_schema_extra={"run": "required"},
        validation_alias=_env("SLACK_BOT_TOKEN", "slack_bot_token"),
    )
    slack_signing_secret: SecretStr | None = Field(
        None,
        description="verifies Slack's requests",
        json_schema_extra={"run": "required without SLACK_APP_TOKEN"},
        validation_alias=_env("SLACK_SIGNING_SECRET", "slack_signing_secret"),
    )
    slack_app_token: SecretStr | None = Field(
        None,
        description="an app-level token (xapp-...): Socket Mode, no public URL needed",
        validation_alias=_env("SLACK_APP_TOKEN", "slack_app_token"),
    )
    slack_api_url: str = Field(
        "https://slack.com/api/", validation_alias=_env("SLACK_API_URL", "slack_api_url")
    )
    redis_url: str = Field(
        REDIS_URL_DEFAULT,
        description="the Redis that holds all state (rediss:// for TLS; redis+sentinel://)",
        validation_alias=_env("REDIS_URL", "redis_url"),
    )
    redis_prefix: str = Field(
        "warroom",
        min_length=1,
        pattern=r"^[A-Za-z0-9_.:-]+$",
        description="prefix of every Redis key",
        validation_alias=_env("WARROOM_REDIS_PREFIX", "redis_prefix"),
    )
    anthropic_api_key: SecretStr | None = Field(
        None,
        description="enables the model; without it drafts come from templates",
        validation_alias=_env("ANTHROPIC_API_KEY", "anthropic_api_key"),
    )
    anthropic_base_url: str | None = Field(
        None, validation_alias=_env("ANTHROPIC_BASE_URL", "anthropic_base_url")
    )
    model: str | None = Field(
        None, description="the model id", validation_alias=_env("WARROOM_MODEL", "model")
    )
    # Seconds the war room waits for the model before the offline draft is posted instead.
    model_timeout: float = Field(
        30.0, gt=0, le=300, validation_alias=_env("WARROOM_MODEL_TIMEOUT", "model_timeout")
    )
    config_file: Path | None = Field(
        None,
        description="the config file (VPs, IC rotation, responders)",
        validation_alias=_env("WARROOM_CONFIG", "config_file"),
    )
    protocol_file: Path | None = Field(
        None,
        description="the protocol YAML",
        validation_alias=_env("WARROOM_PROTOCOL", "protocol_file"),
    )
    memory_dir: Path = Field(
        Path("Agent_Memory"),
        description="the agent's memory folder on this host",
        validation_alias=_env("WARROOM_MEMORY_DIR", "memory_dir"),
    )
    clock_scale: float = Field(
        1.0, gt=0, validation_alias=_env("WARROOM_CLOCK_SCALE", "clock_scale")
    )
    port: int = Field(
        3000,
        ge=1,
        le=65535,
        description="the HTTP port (--port wins)",
        validation_alias=_env("PORT", "port"),
    )
    # Threads that run work after the ack (channel creation, model calls). Acks never wait
    # for these: they run on the request thread.
    workers: int = Field(16, ge=1, le=256, validation_alias=_env("WARROOM_WORKERS", "workers"))
    # The model's lane (a bulkhead): model calls run on threads of their own, at most this many
    # at once, with at most `agent_queue` more waiting; beyond that people are told it is busy.
    agent_workers: int = Field(
        4, ge=1, le=64, validation_alias=_env("WARROOM_AGENT_WORKERS", "agent_workers")
    )
    agent_queue: int = Field(
        16, ge=0, le=1000, validation_alias=_env("WARROOM_AGENT_QUEUE", "agent_queue")
    )
    # How often one person may ask the agent for something (drafts, reviews, answers) per minute.
    agent_requests_per_minute: int = Field(
        6,
        ge=1,
        le=600,
        validation_alias=_env("WARROOM_AGENT_REQUESTS_PER_MINUTE", "agent_requests_per_minute"),
    )
    # Seconds a repeated identical /escalate is recognised as the same declaration.
    dedup_seconds: int = Field(
        600, ge=1, validation_alias=_env("WARROOM_DEDUP_SECONDS", "dedup_seconds")
    )

    # Slack lets an app create about 20 channels a minute (conversations.create, Tier 2): a
    # burst beyond that is queued, and each declarer told when their room will open.
    channel_creates_per_minute: int = Field(
        20,
        ge=1,
        validation_alias=_env("WARROOM_CHANNEL_CREATES_PER_MINUTE", "channel_creates_per_minute"),
    )
    # A process building a war room holds its declaration this long: if the process dies,
    # another finishes the room then.
    declaration_lease_seconds: float = Field(
        60.0,
        ge=1,
        le=600,
        validation_alias=_env("WARROOM_DECLARATION_LEASE_SECONDS", "declaration_lease_seconds"),
    )
    # On SIGTERM, how long rooms being built may take to finish; past it, each stops at its
    # next step and is left, recorded, to the next process (within gunicorn's graceful
    # timeout, 10 s under `warroom run`).
    shutdown_grace_seconds: float = Field(
        7.0,
        ge=0,
        le=300,
        validation_alias=_env("WARROOM_SHUTDOWN_GRACE_SECONDS", "shutdown_grace_seconds"),
    )
    # The front door (`bot.connections`): a request's headers must all be here this long after
    # its connection opened, and at most this many connections are held per worker (one more
    # closes the one that has waited longest for its headers).
    header_timeout_seconds: float = Field(
        5.0,
        gt=0,
        le=60,
        validation_alias=_env("WARROOM_HEADER_TIMEOUT_SECONDS", "header_timeout_seconds"),
    )
    max_connections: int = Field(
        1000,
        ge=10,
        le=100_000,
        validation_alias=_env("WARROOM_MAX_CONNECTIONS", "max_connections"),
    )
    # The scheduler's lease: another process takes over this long after the leader dies.
    lease_seconds: float = Field(
        10.0, gt=0, le=60, validation_alias=_env("WARROOM_LEASE_SECONDS", "lease_seconds")
    )
    # How often the leader looks for timers other processes wrote (and renews its lease).
    scheduler_poll: float = Field(
        0.5, gt=0, le=10, validation_alias=_env("WARROOM_SCHEDULER_POLL", "scheduler_poll")
    )

    # How often the leader reconciles the timers with every escalation's state (the safety net
    # under a reminder whose retry could not be written).
    reconcile_minutes: float = Field(
        5.0, gt=0, le=1440, validation_alias=_env("WARROOM_RECONCILE_MINUTES", "reconcile_minutes")
    )

    # /metrics on a listener of its own ("host:port", e.g. 127.0.0.1:9100), and no longer on
    # the port Slack's requests arrive on, which is public. Unset: /metrics on that port.
    metrics_address: str | None = Field(
        None,
        description="host:port of a listener of its own for /metrics",
        validation_alias=_env("WARROOM_METRICS_ADDRESS", "metrics_address"),
    )
    # Set: /metrics answers only requests carrying `Authorization: Bearer <token>`.
    metrics_token: SecretStr | None = Field(
        None,
        description="a bearer token /metrics asks for",
        validation_alias=_env("WARROOM_METRICS_TOKEN", "metrics_token"),
    )

    # Where approved letters are emailed: smtp://USER:PASSWORD@HOST:587 (STARTTLS) or
    # smtps://USER:PASSWORD@HOST:465. Unset: no email.
    smtp_url: SecretStr | None = Field(
        None,
        description="where approved letters are emailed",
        validation_alias=_env("WARROOM_SMTP_URL", "smtp_url"),
    )
    # The organisation's sending address (the letters' From, with the signer's name) and the
    # team's support address the customer's replies go to (Reply-To).
    mail_from: str | None = Field(None, validation_alias=_env("WARROOM_MAIL_FROM", "mail_from"))
    mail_reply_to: str | None = Field(
        None, validation_alias=_env("WARROOM_MAIL_REPLY_TO", "mail_reply_to")
    )

    # The reply mailbox (the Reply-To address's), read for the customer's email replies:
    # imaps://USER:PASSWORD@HOST:993/INBOX or imap://USER:PASSWORD@HOST:143 (STARTTLS).
    # Unset: replies by email stay in that mailbox for people to read.
    imap_url: SecretStr | None = Field(
        None,
        description="the reply mailbox read for the customer's email replies",
        validation_alias=_env("WARROOM_IMAP_URL", "imap_url"),
    )
    # How often the reply mailbox is read (by one process at a time).
    imap_poll_seconds: float = Field(
        60.0, ge=5, le=3600, validation_alias=_env("WARROOM_IMAP_POLL_SECONDS", "imap_poll_seconds")
    )

    # The support desk. All of URL, email and token set: tickets can be linked to escalations.
    zendesk_url: str | None = Field(
        None,
        description="the Zendesk account, https://SUBDOMAIN.zendesk.com (unset: no tickets)",
        validation_alias=_env("WARROOM_ZENDESK_URL", "zendesk_url"),
    )
    zendesk_email: str | None = Field(
        None,
        description="the email of the Zendesk agent whose API token is given",
        validation_alias=_env("WARROOM_ZENDESK_EMAIL", "zendesk_email"),
    )
    zendesk_token: SecretStr | None = Field(
        None,
        description="that agent's Zendesk API token",
        validation_alias=_env("WARROOM_ZENDESK_TOKEN", "zendesk_token"),
    )
    zendesk_webhook_secret: SecretStr | None = Field(
        None,
        description="the signing secret of the Zendesk webhook (unset: webhooks refused)",
        validation_alias=_env("WARROOM_ZENDESK_WEBHOOK_SECRET", "zendesk_webhook_secret"),
    )
    zendesk_webhook_secret_previous: SecretStr | None = Field(
        None,
        description="the webhook's signing secret before it, accepted too while it is rotated",
        validation_alias=_env(
            "WARROOM_ZENDESK_WEBHOOK_SECRET_PREVIOUS", "zendesk_webhook_secret_previous"
        ),
    )
    # Where Zendesk's API is called, when not at WARROOM_ZENDESK_URL (a proxy; the tests).
    zendesk_api_url: str | None = Field(
        None, validation_alias=_env("WARROOM_ZENDESK_API_URL", "zendesk_api_url")
    )

    @field_validator("zendesk_url")
    @classmethod
    def _zendesk_account(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        return zendesk_account_url(value)

    @field_validator("zendesk_email", "zendesk_api_url")
    @classmethod
    def _blank_is_unset(cls, value: str | None) -> str | None:
        return value.strip() if value and value.strip() else None

    @property
    def zendesk(self) -> bool:
        """Zendesk is configured: its account, the API agent's email and token."""
        return bool(
            self.zendesk_url
            and self.zendesk_email
            and self.zendesk_token
            and self.zendesk_token.get_secret_value()
        )

    @field_validator("redis_url")
    @classmethod
    def _no_surrounding_space(cls, value: str) -> str:
        # A URL pasted with a trailing newline is still the URL.
        return value.strip()

    @field_validator("metrics_address")
    @classmethod
    def _host_and_port(cls, value: str | None) -> str | None:
        if not value or not value.strip():
            return None
        split_address(value)
        return value.strip()

    @property
    def metrics_bind(self) -> tuple[str, int] | None:
        """The metrics listener's (host, port), when it has one of its own."""
        return split_address(self.metrics_address) if self.metrics_address else None

    def config_path(self) -> Path | None:
        """The config file to read: the explicit one, else ./warroom.yaml when present."""
        if self.config_file is not None:
            return self.config_file
        default = Path("warroom.yaml")
        return default if default.exists() else None

    def missing_for_run(self) -> list[str]:
        """Names of the variables `warroom run` cannot start without."""
        missing = []
        if not self.slack_bot_token or not self.slack_bot_token.get_secret_value():
            missing.append("SLACK_BOT_TOKEN")
        # Socket Mode receives Slack's requests over its own connection: nothing to verify.
        if not self.socket_mode and not (
            self.slack_signing_secret and self.slack_signing_secret.get_secret_value()
        ):
            missing.append("SLACK_SIGNING_SECRET")
        # Zendesk is all three or none: one or two of them is a deployment half done.
        zendesk = {
            "WARROOM_ZENDESK_URL": bool(self.zendesk_url),
            "WARROOM_ZENDESK_EMAIL": bool(self.zendesk_email),
            "WARROOM_ZENDESK_TOKEN": bool(
                self.zendesk_token and self.zendesk_token.get_secret_value()
            ),
        }
        if any(zendesk.values()):
            missing += [name for name, given in zendesk.items() if not given]
        return missing

    @property
    def redis_sentinel(self) -> bool:
        """REDIS_URL names the sentinels of a replicated Redis (`redis+sentinel://`)."""
        return is_sentinel_url(self.redis_url)

    @property
    def socket_mode(self) -> bool:
        return bool(self.slack_app_token and self.slack_app_token.get_secret_value())


def environment_help(width: int = 100) -> str:
    """The environment variables `warroom run` reads, for its `--help`: those with a
    description one to an entry (the required ones first), then the names of the others."""
    required: list[str] = []
    optional: list[str] = []
    others: list[str] = []
    for field in Settings.model_fields.values():
        name = str(field.validation_alias.choices[0])  # type: ignore[union-attr]
        if not field.description:
            others.append(name)
            continue
        need = (field.json_schema_extra or {}).get("run")  # type: ignore[union-attr]
        if need:
            text = f"{field.description} ({need})"
        elif field.default is not None:
            text = f"{field.description} (default {field.default})"
        else:
            text = field.description
        entry = textwrap.fill(
            f"{name:<26}{text}", width, initial_indent="  ", subsequent_indent=" " * 28
        )
        (required if need else optional).append(entry)
    tuning = textwrap.fill(
        f"Also read (tuning, see docs/configuration.md): {', '.join(others)}.", width
    )
    return "\n".join(["environment variables:", *required, *optional, "", tuning])


_ZENDESK = re.compile(r"https://([a-z0-9][a-z0-9-]{0,62})\.zendesk\.com/?", re.IGNORECASE)


def zendesk_account_url(value: str) -> str:
    """`https://SUBDOMAIN.zendesk.com`, as given (a trailing slash dropped); ValueError,
    quoting none of it, for anything else (another host, http://, a path, credentials)."""
    m = _ZENDESK.fullmatch(value.strip())
    if not m:
        raise ValueError(
            "it must be your Zendesk account's address, https://SUBDOMAIN.zendesk.com, "
            "with nothing after it"
        )
    return f"https://{m.group(1).lower()}.zendesk.com"


def split_address(address: str) -> tuple[str, int]:
    """("host", port) of "host:port" ("[::1]:port" for IPv6); ValueError if it is not one."""
    host, colon, port = address.strip().rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not colon or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"{address!r} is not host:port (like 127.0.0.1:9100)")
    return host, int(port)


class SettingsError(ValueError):
    """The environment holds a value warroom cannot use; the message is one line."""


def load_settings() -> Settings:
    """Settings from the environment, or SettingsError naming the variable at fault."""
    try:
        return Settings()
    except ValidationError as e:
        err = e.errors()[0]
        name = str(err["loc"][0]).upper() if err["loc"] else "environment"
        raise SettingsError(f"{name}: {err['msg']}") from None


def url_password(url: str) -> str | None:
    """The password a Redis URL carries: before the host, or as redis-py's `?password=`."""
    parts = urlsplit(url)
    if parts.password:
        return unquote(parts.password)
    given = parse_qs(parts.query).get("password")
    return given[-1] if given else None


def url_secrets(url: str) -> list[str]:
    """Every password a Redis URL carries (the server's, and the sentinels' of a Sentinel
    URL): what a message about it must never show."""
    try:
        sentinels = parse_qs(urlsplit(url).query).get("sentinel_password", [])
        secrets = [url_password(url), *sentinels]
    except ValueError:  # not a URL: see `redis_url_problem`, whose messages quote none of it
        return []
    return [s for s in secrets if s]


def redacted_url(url: str) -> str:
    """A URL fit for a message or a log line: its passwords, if any, shown as `***`. A URL
    that cannot be split safely (see `redis_url_problem`) is not shown at all: where its
    password ends is not known, so any part of it might be the password."""
    if redis_url_problem(url):
        return "(not shown)"
    parts = urlsplit(url.strip())
    userinfo, at, host = parts.netloc.rpartition("@")
    if at:
        # A user name alone is more often a password put where the user name goes than an
        # ACL user without one.
        shown = f"{userinfo.partition(':')[0]}:***" if ":" in userinfo else "***"
        parts = parts._replace(netloc=f"{shown}@{host}")
    query = re.sub(r"(^|&)((?:sentinel_)?password)=[^&]*", r"\1\2=***", parts.query)
    # Not urlunsplit: it drops the `//` of a URL with no host (unix:///path/redis.sock).
    return f"{parts.scheme}://{parts.netloc}{parts.path}" + (f"?{query}" if query else "")


REDIS_SCHEMES = ("redis", "rediss", "unix")
# What redis-py reads from a redis:// or rediss:// URL's query. Any other name is refused: a
# password holding an unencoded `&` would otherwise pass its tail on as an option, shown in
# messages and handed to redis-py, which fails on it.
REDIS_URL_OPTIONS = frozenset(
    {
        "db", "password", "username", "client_name", "protocol", "timeout",
        "socket_timeout", "socket_connect_timeout", "socket_keepalive", "socket_read_size",
        "retry_on_timeout", "max_connections", "health_check_interval",
        "ssl_ca_certs", "ssl_ca_path", "ssl_cert_reqs", "ssl_certfile", "ssl_keyfile",
        "ssl_password", "ssl_check_hostname", "ssl_ciphers", "ssl_min_version",
    }
)  # fmt: skip
_ENCODE = "/ as %2F, ? as %3F, # as %23, @ as %40, & as %26 and % as %25"


def redis_url_problem(url: str) -> str | None:
    """What makes REDIS_URL unusable before anything is sent, in words that quote none of it
    (any part might be a password), or None.

    A password must be percent-encoded: its unencoded `/`, `?` or `#` ends the host part of
    the URL early, so the rest of the password would be read as a port, a path or an option,
    and shown as one."""
    url = url.strip()
    if not url:
        return (
            f"it is empty; set it to your Redis, like {REDIS_URL_DEFAULT}, or leave it unset "
            "for that default"
        )
    scheme, sep, rest = url.partition("://")
    schemes = (*REDIS_SCHEMES, *SENTINEL_SCHEMES)
    if not sep or scheme.lower() not in schemes:
        # A scheme is never secret, but text without `://` might be a bare password.
        said = f" (it starts with {scheme}://)" if sep and _SCHEME_RE.fullmatch(scheme) else ""
        return (
            "it must start with redis://, rediss:// (TLS), unix://, redis+sentinel:// or "
            f"rediss+sentinel://{said}"
        )
    end = min([i for i in (rest.find(c) for c in "/?#") if i != -1], default=len(rest))
    authority, tail = rest[:end], rest[end:]
    if "#" in rest or ("@" in tail and (authority or scheme.lower() != "unix")):
        return (
            f"its password (or user name) holds a character that must be percent-encoded: {_ENCODE}"
        )
    try:
        parts = urlsplit(url)
        # Sentinel URLs name several hosts, whose ports urllib cannot read: see
        # `parse_sentinel_url`. urllib's own message quotes the port, which here may be part
        # of a password, so it is not passed on.
        port = None if is_sentinel_url(url) else parts.port
    except ValueError:
        return (
            "its host and port cannot be read: the port must be a number from 1 to 65535, "
            f"and a password's special characters percent-encoded ({_ENCODE})"
        )
    if port == 0:
        return "its port must be a number from 1 to 65535"
    options = [piece.partition("=") for piece in parts.query.split("&") if piece]
    if any(not equals or not value for _, equals, value in options):
        return (
            "an option after ? has no value (options are name=value, joined by &); "
            "a & in a password must be percent-encoded as %26"
        )
    if is_sentinel_url(url):
        return None  # parse_sentinel_url checks the rest
    if any(unquote(name) not in REDIS_URL_OPTIONS for name, _, _ in options):
        return (
            "it has an option after ? that redis-py does not take; check its spelling "
            "(a & in a password must be percent-encoded as %26)"
        )
    if scheme.lower() != "unix" and parts.path.strip("/") and not parts.path.strip("/").isdigit():
        return "the database after the host (like /0) is not a number"
    return None


_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]{0,19}")


SENTINEL_SCHEMES = ("redis+sentinel", "rediss+sentinel")  # the second: TLS throughout
SENTINEL_PORT = 26379
SENTINEL_FORM = "redis+sentinel://[:PASSWORD@]HOST:26379,HOST:26379,.../SERVICE[/DB]"
SENTINEL_OPTIONS = {
    "redis+sentinel": {"sentinel_password", "sentinel_username"},
    "rediss+sentinel": {"sentinel_password", "sentinel_username", "ssl_ca_certs"},
}


@dataclass(frozen=True)
class SentinelURL:
    """What a `redis+sentinel://` REDIS_URL names: the sentinels to ask where the primary
    is, the service (the name the sentinels monitor it under), the database, the
    credentials of the Redis servers and of the sentinels, and whether all of them speak
    TLS (`rediss+sentinel://`, with the CA of their certificates when a private one)."""

    sentinels: tuple[tuple[str, int], ...]
    service: str
    db: int = 0
    username: str | None = None
    password: str | None = None
    sentinel_username: str | None = None
    sentinel_password: str | None = None
    tls: bool = False
    ca_certs: str | None = None


def is_sentinel_url(url: str) -> bool:
    return url.strip().lower().startswith(tuple(f"{s}://" for s in SENTINEL_SCHEMES))


def parse_sentinel_url(url: str) -> SentinelURL:
    """`redis+sentinel://[[USER]:PASSWORD@]HOST[:PORT],HOST[:PORT],.../SERVICE[/DB]
    [?sentinel_password=...&sentinel_username=...]`, or the same with `rediss+sentinel://`
    (TLS to the sentinels and the servers; `&ssl_ca_certs=/path/ca.crt` for a private CA);
    ValueError, in one line that shows no password, when `url` is not one. A port left out
    is Sentinel's 26379."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in SENTINEL_SCHEMES:
        raise ValueError("a Sentinel URL starts with redis+sentinel:// or rediss+sentinel://")
    userinfo, at, hosts = parts.netloc.rpartition("@")
    user, colon, password = userinfo.partition(":")
    sentinels = tuple(_sentinel_address(a) for a in hosts.split(",") if a.strip())
    if not sentinels:
        raise ValueError(f"it names no sentinel: {SENTINEL_FORM}")
    path = [p for p in parts.path.split("/") if p]
    if not path:
        raise ValueError(
            f"it names no service (the name the sentinels monitor the primary under): "
            f"{SENTINEL_FORM}"
        )
    if len(path) > 2 or (len(path) == 2 and not path[1].isdigit()):
        raise ValueError(f"after the service comes only the database number: {SENTINEL_FORM}")
    options = parse_qs(parts.query, keep_blank_values=True)
    unknown = sorted(options.keys() - SENTINEL_OPTIONS[scheme])
    if unknown:
        known = ", ".join(sorted(SENTINEL_OPTIONS[scheme]))
        # Not named: it may be the tail of a password holding an unencoded `&`.
        raise ValueError(f"unknown option (a {scheme} URL takes {known})")

    def option(name: str) -> str | None:
        return options.get(name, [""])[-1] or None

    return SentinelURL(
        sentinels=sentinels,
        service=unquote(path[0]),
        db=int(path[1]) if len(path) == 2 else 0,
        username=unquote(user) if at and user else None,
        password=unquote(password) if at and colon and password else None,
        sentinel_username=option("sentinel_username"),
        sentinel_password=option("sentinel_password"),
        tls=scheme == "rediss+sentinel",
        ca_certs=option("ssl_ca_certs"),
    )


def _sentinel_address(address: str) -> tuple[str, int]:
    """(host, port) of "host", "host:port", "[v6]" or "[v6]:port"."""
    address = address.strip()
    if address.startswith("[") and address.endswith("]"):
        host, colon, port = address, "", ""
    else:
        host, colon, port = address.rpartition(":") if ":" in address else (address, "", "")
    bracketed = host.startswith("[") and host.endswith("]")
    host = host[1:-1] if bracketed else host
    if (
        not host
        or (":" in host and not bracketed)
        or (colon and not (port.isdigit() and 1 <= int(port) <= 65535))
    ):
        raise ValueError(f"sentinel {address!r} is not host:port (like 10.0.0.1:26379)")
    return host, int(port) if colon else SENTINEL_PORT

"""The composition root: builds every long-lived object from settings, once per process."""

from __future__ import annotations

import logging
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from slack_bolt import App
from slack_sdk import WebClient

from agents.checks import DEFAULT_FLAG_TERMS
from agents.vp import VPAgent
from bot import jobs
from bot.acks_first import AcksFirst
from bot.config import WarroomConfig, load_config
from bot.drafting import DraftDesk
from bot.home import Home, digest
from bot.listeners import actions, commands, drafts, errors, home, mentions, views
from bot.memory import Memory
from bot.metrics import Metrics
from bot.scheduling import Scheduler
from bot.service import EscalationService
from bot.settings import Settings
from bot.slack.gateway import SlackGateway, build_client
from bot.store import Keys, Store
from protocols.loader import load_protocol
from protocols.schema import Protocol

log = logging.getLogger(__name__)


class StartupError(Exception):
    """Configuration or a dependency stops the bot from starting; the message is one line."""


@dataclass
class Runtime:
    settings: Settings
    protocol: Protocol
    config: WarroomConfig
    metrics: Metrics
    redis: redis.Redis
    store: Store
    client: WebClient
    gateway: SlackGateway
    service: EscalationService
    scheduler: Scheduler
    agent: VPAgent
    desk: DraftDesk
    app: App
    executor: AcksFirst

    def ready(self) -> bool:
        return self.store.ping()

    def start(self) -> None:
        """Run timers: register the job handler, then compete for the scheduler's lease."""
        jobs.register(self.settings.redis_prefix, self.service)
        self.scheduler.start(on_leadership=self.service.reconcile)

    def close(self) -> None:
        """Finish the work already accepted, then let go of pools and connections."""
        self.executor.shutdown(wait=True)
        self.scheduler.stop()
        jobs.unregister(self.settings.redis_prefix)
        self.agent.close()
        self.gateway.close()
        self.redis.close()


def load_definitions(settings: Settings) -> tuple[Protocol, WarroomConfig]:
    """The protocol and the config file, validated; errors name the file and the key."""
    protocol = load_protocol(settings.protocol_file)
    config = load_config(settings.config_path(), protocol.criterion_ids)
    return protocol, config


def connect_redis(settings: Settings) -> redis.Redis:
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


def warm_pool(client: redis.Redis, size: int) -> None:
    """Open `size` connections now. A new connection costs a handshake of several round
    trips; a burst of declarations on a cold pool would pay it on the ack path (measured:
    20 concurrent SETs take 20 ms on a cold pool, 2 ms on a warm one)."""
    pool = client.connection_pool
    conns = []
    try:
        for _ in range(size):
            conn = pool.get_connection()
            conn.connect()
            conns.append(conn)
    except redis.RedisError as e:
        log.warning("Redis is not answering yet (%s); connections will open on demand", e)
    finally:
        for conn in conns:
            pool.release(conn)


def build_runtime(
    settings: Settings,
    *,
    listener_executor: Executor | None = None,
    verify_token: bool = True,
) -> Runtime:
    """Everything the bot needs. `listener_executor` runs work after the ack (tests pass one
    that runs inline, so a request's work is finished when dispatch returns)."""
    missing = settings.missing_for_run()
    if missing:
        raise StartupError(f"{' and '.join(missing)} must be set (see README, Configuration)")
    protocol, config = load_definitions(settings)
    metrics = Metrics()
    token = settings.slack_bot_token.get_secret_value()  # type: ignore[union-attr]
    client = build_client(token, settings.slack_api_url, metrics)
    gateway = SlackGateway(client, threads=64)
    redis_client = connect_redis(settings)
    warm_pool(redis_client, 24)
    keys = Keys(settings.redis_prefix)
    store = Store(redis_client, keys)
    scheduler = Scheduler(
        redis_client,
        keys,
        lease_seconds=settings.lease_seconds,
        poll_seconds=settings.scheduler_poll,
    )
    service = EscalationService(
        store=store,
        gateway=gateway,
        memory=Memory(Path(settings.memory_dir)),
        protocol=protocol,
        config=config,
        metrics=metrics,
        timers=scheduler,
        clock_scale=settings.clock_scale,
        dedup_seconds=settings.dedup_seconds,
        creates_per_minute=settings.channel_creates_per_minute,
    )
    executor = AcksFirst(
        listener_executor
        or ThreadPoolExecutor(max_workers=settings.workers, thread_name_prefix="after-ack")
    )
    app = App(
        signing_secret=(
            settings.slack_signing_secret.get_secret_value()
            if settings.slack_signing_secret
            else ""
        ),
        client=client,
        # Acks run on the request's own thread and never queue behind slow work, which runs
        # on `executor`; Bolt's default shares one 5-thread pool between both.
        process_before_response=True,
        listener_executor=executor,
        token_verification_enabled=verify_token,
    )
    agent = VPAgent(
        api_key=settings.anthropic_api_key.get_secret_value()
        if settings.anthropic_api_key
        else None,
        base_url=settings.anthropic_base_url,
        model=settings.model,
        timeout=settings.model_timeout,
    )
    desk = DraftDesk(service, agent, flag_words=config.flag_terms or DEFAULT_FLAG_TERMS)
    # The post-incident review is drafted at resolution, beside the resolution's own replies.
    service.on_resolved.append(lambda esc: gateway.submit(desk.review_at_resolution, esc))
    app_home = Home(service)
    service.digest = lambda start, end: digest(service, start, end)
    service.on_changed.append(app_home.changed)
    errors.register(app)
    commands.register(app, service)
    views.register(app, service)
    actions.register(app, service)
    mentions.register(app, service, desk)
    drafts.register(app, desk)
    home.register(app, app_home)
    if verify_token:
        # Learn the bot's user id now, not on the first declaration's clock.
        _ = gateway.bot_user_id
    return Runtime(
        settings=settings,
        protocol=protocol,
        config=config,
        metrics=metrics,
        redis=redis_client,
        store=store,
        client=client,
        gateway=gateway,
        service=service,
        scheduler=scheduler,
        agent=agent,
        desk=desk,
        app=app,
        executor=executor,
    )

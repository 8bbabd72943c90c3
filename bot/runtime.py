"""The composition root: builds every long-lived object from settings, once per process."""

from __future__ import annotations

import logging
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
from slack_bolt import App

from agents.vp import VPAgent
from bot import jobs
from bot.acks_first import AcksFirst
from bot.boot import connect_redis, load_definitions, redis_too_old
from bot.clock import Clock, system_clock
from bot.config import WarroomConfig
from bot.delivery.imap import ImapURLError, Mailbox, parse_imap_url
from bot.delivery.mail import LetterError, address
from bot.delivery.outbox import Outbox
from bot.delivery.smtp import SmtpSender, SmtpURLError, parse_smtp_url
from bot.desk.letters import TicketLetters
from bot.desk.zendesk import ZendeskDesk
from bot.domain.delivery import RouteError, RouteKind, route_of
from bot.domain.escalation import Escalation
from bot.listeners import (
    actions,
    commands,
    drafts,
    errors,
    home,
    mentions,
    messages,
    reactions,
    views,
)
from bot.memory import Memory
from bot.metrics import Metrics
from bot.scheduling import Every, Scheduler
from bot.services.briefing import Briefing
from bot.services.declaring import Declaring, Pacing
from bot.services.drafting import DraftDesk
from bot.services.escalations import Escalations
from bot.services.grounds import Grounds
from bot.services.home import Digest, Home
from bot.services.lane import ModelLane
from bot.services.mailbox import MailReplies
from bot.services.mentions import Mentions
from bot.services.replies import CustomerReplies
from bot.services.room import RoomChanges
from bot.services.sending import MailSetup, Sending
from bot.services.tickets import TicketLinks
from bot.services.timers import TimerFiring
from bot.settings import Settings
from bot.slack.gateway import SlackGateway, build_client
from bot.store import Keys, MemoryRecords, Store
from protocols.schema import Protocol

log = logging.getLogger(__name__)

# Behind Sentinel, how long a firing's claim waits for a replica to acknowledge it (see
# `Store.begin_once`): a replica on the same network answers in about a round trip, and
# the wait must stay under the client's 1 s socket timeout.
REPLICA_WAIT_MS = 500


class StartupError(Exception):
    """Configuration or a dependency stops the bot from starting; the message is one line."""


@dataclass
class Runtime:
    settings: Settings
    clock: Clock
    protocol: Protocol
    config: WarroomConfig
    metrics: Metrics
    redis: redis.Redis
    store: Store
    gateway: SlackGateway
    scheduler: Scheduler
    agent: VPAgent
    escalations: Escalations
    declaring: Declaring
    room: RoomChanges
    desk: DraftDesk
    sending: Sending
    home: Home
    timers: TimerFiring
    replies: CustomerReplies
    app: App
    executor: AcksFirst
    declarations: Every
    # The support desk (Zendesk), when configured: the tickets' service, the route that adds
    # approved letters to tickets (for Send), the timer that counts the organisations' tickets.
    tickets: TicketLinks | None = None
    ticket_letters: TicketLetters | None = None
    desk_refresh: Every | None = None
    # The reply mailbox, when WARROOM_IMAP_URL is set: the customer's email replies, and the
    # timer that reads them.
    mail_replies: MailReplies | None = None
    mailbox_poll: Every | None = None
    closed: bool = False

    def ready(self) -> bool:
        return self.store.ping()

    def start(self) -> None:
        """Run timers (compete for the scheduler's lease: the leader processes the jobs), and
        watch the queue of declarations for rooms whose turn came and that no live process
        holds."""
        self.scheduler.start(on_leadership=self.reconcile)
        self.declarations.start()
        if self.desk_refresh is not None:
            self.desk_refresh.start()
        if self.mailbox_poll is not None:
            self.mailbox_poll.start()

    def reconcile(self) -> None:
        """What the scheduler's leader does on taking over and every few minutes: the timers
        restored, and drafts whose process died while writing them offered to regenerate."""
        self.timers.reconcile()
        try:
            recovered = self.desk.recover_abandoned()
        except Exception:
            log.exception("looking for drafts abandoned mid-writing failed")
        else:
            if recovered:
                log.warning("%d draft(s) abandoned mid-writing offered to regenerate", recovered)

    def run_due(self) -> int:
        """Run the timers due at this runtime's clock, here and now (tests, drills)."""
        return self.scheduler.run_due(self.clock())

    def close(self) -> None:
        """Finish the work already accepted, then let go of pools and connections. Rooms being
        built get `shutdown_grace_seconds` to finish; past it each stops at its next step and
        is left, recorded, to the next process. Nothing is rolled back for the shutdown."""
        if self.closed:  # a second signal, or the entry point after the shutdown hook
            return
        self.closed = True
        grace = self.settings.shutdown_grace_seconds
        # Drafts streaming have the same grace to finish; then each stops and offers to be
        # regenerated, never left half-written with its Approve button.
        self.desk.lane.stop(grace)
        # Declarations waiting for their turn stay queued in Redis, for the next process.
        self.declaring.hand_over(grace)
        self.declarations.stop()
        self.executor.shutdown(wait=True)
        # Builds woken on their turn run on threads of their own: they finish or leave too,
        # before the Slack pool they use is let go (a step under way ends first).
        still = self.declaring.drain(grace + 30)
        if still:
            log.warning("%d room build(s) still under way at shutdown; left to the lease", still)
        # Drafts under way finish or are interrupted at their next piece of text (one still
        # waiting for the model's first word, within the model's timeout); none is dropped.
        if self.desk.lane.executor is not self.executor.inner:
            self.desk.lane.executor.shutdown(wait=True)
        still = self.desk.lane.drain(grace + 30)
        if still:
            log.warning("%d draft(s) still under way at shutdown", still)
        if self.desk_refresh is not None:
            self.desk_refresh.stop()
        if self.mailbox_poll is not None:
            self.mailbox_poll.stop()
        if self.tickets is not None:
            if isinstance(self.tickets.executor, ThreadPoolExecutor):
                self.tickets.executor.shutdown(wait=True)
            self.tickets.desk.close()
        self.scheduler.stop()
        jobs.unregister(self.settings.redis_prefix, self.timers)
        self.agent.close()
        self.gateway.close()
        self.redis.close()


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


def mail_setup(settings: Settings, client: redis.Redis, clock: Clock) -> MailSetup:
    """The outbox and SMTP transport of WARROOM_SMTP_URL, with the sending and reply
    addresses, checked (StartupError in one line that shows no password); no email unless
    the URL is set."""
    outbox = Outbox(client, settings.redis_prefix, clock=clock)
    if settings.smtp_url is None:
        return MailSetup(outbox=outbox)
    try:
        url = parse_smtp_url(settings.smtp_url.get_secret_value())
    except SmtpURLError as e:
        raise StartupError(f"WARROOM_SMTP_URL is not usable: {e}") from None
    for name, value in (
        ("WARROOM_MAIL_FROM", settings.mail_from),
        ("WARROOM_MAIL_REPLY_TO", settings.mail_reply_to),
    ):
        if not value:
            raise StartupError(f"{name} must be set when WARROOM_SMTP_URL is")
        try:
            address(value)
        except LetterError as e:
            raise StartupError(f"{name}: {e}") from None
    return MailSetup(
        outbox=outbox,
        transport=SmtpSender(url),
        sender=settings.mail_from,
        reply_to=settings.mail_reply_to,
    )


def check_routes(memory: Memory, config: WarroomConfig, mail: MailSetup) -> None:
    """Every account's `email`, `cc`, `slack_connect` and `delivery` in customer_insights.yaml
    usable, and email set up when an account's letters go by email: StartupError naming the
    key's path otherwise."""
    problems = []
    for n, entry in enumerate(memory.customer_entries()):
        where = f"customer_insights.yaml: customers[{n}]"
        try:
            route = route_of(entry, config.delivery, where)
        except RouteError as e:
            problems.append(str(e))
            continue
        if route.sends and RouteKind.EMAIL in route.kinds and mail.missing:
            problems.append(f"{where}.email: letters go by email, and {mail.missing}")
    if problems:
        raise StartupError("; ".join(problems))


def build_runtime(
    settings: Settings,
    *,
    clock: Clock = system_clock,
    listener_executor: Executor | None = None,
    model_executor: Executor | None = None,
    desk_executor: Executor | None = None,
    verify_token: bool = True,
    create_window: float = 60.0,
    publish_window: float = 60.0,
) -> Runtime:
    """Everything the bot needs, built once, each part given exactly what it uses.

    `clock` is the time escalations run on (tests pass a ManualClock); `listener_executor`
    runs work after the ack (tests pass one that runs inline, so a request's work is finished
    when dispatch returns); `model_executor` runs the model's lane (by default a pool of its
    own; with only a `listener_executor` given, that one, so inline stays inline);
    `create_window` and `publish_window` are the windows of Slack's
    channel-creation and views.publish limits (tests and benchmarks shrink them)."""
    missing = settings.missing_for_run()
    if missing:
        raise StartupError(f"{' and '.join(missing)} must be set (see docs/configuration.md)")
    protocol, config = load_definitions(settings)
    metrics = Metrics()
    token = settings.slack_bot_token.get_secret_value()  # type: ignore[union-attr]
    # A call waits out Slack's Retry-After only while its room's build surely holds its lease.
    max_wait = settings.declaration_lease_seconds / 2
    client = build_client(token, settings.slack_api_url, metrics, max_wait=max_wait)
    gateway = SlackGateway(client, threads=64)
    redis_client = connect_redis(settings)
    warm_pool(redis_client, 24)
    too_old = redis_too_old(redis_client, settings.redis_url)
    if too_old:  # gunicorn's workers start here without `warroom run`'s checks
        redis_client.close()
        raise StartupError(too_old)
    keys = Keys(settings.redis_prefix)
    store = Store(
        redis_client, keys, replica_wait_ms=REPLICA_WAIT_MS if settings.redis_sentinel else 0
    )
    scheduler = Scheduler(
        redis_client,
        keys,
        lease_seconds=settings.lease_seconds,
        poll_seconds=settings.scheduler_poll,
        reconcile_seconds=settings.reconcile_minutes * 60,
    )
    memory = Memory(MemoryRecords(redis_client, keys), Path(settings.memory_dir))
    agent = VPAgent(
        api_key=settings.anthropic_api_key.get_secret_value()
        if settings.anthropic_api_key
        else None,
        base_url=settings.anthropic_base_url,
        model=settings.model,
        timeout=settings.model_timeout,
        concurrency=settings.agent_workers,
    )
    scale = settings.clock_scale

    app_home = Home(store, gateway, protocol, clock, window=publish_window)
    escalations = Escalations(store, scheduler, protocol, scale, on_changed=app_home.changed)
    briefing = Briefing(gateway, protocol, scale)
    # Every service that acts in a room starts with the same collaborators (RoomService).
    kit = (escalations, briefing, gateway, memory, protocol, config, clock)
    flag_terms = tuple(config.flag_terms or ())
    grounds = Grounds(
        escalations,
        memory,
        gateway,
        protocol,
        clock,
        flag_terms,
        config.press_contact,
        config.business_hours,
    )
    lane = ModelLane(
        model_executor
        or listener_executor
        or ThreadPoolExecutor(max_workers=settings.agent_workers, thread_name_prefix="model-lane"),
        store,
        workers=settings.agent_workers,
        queue=settings.agent_queue,
        deadline=settings.model_timeout,
        per_person=settings.agent_requests_per_minute,
    )
    desk = DraftDesk(*kit, store, agent, grounds, lane, metrics=metrics)
    try:
        mail = mail_setup(settings, redis_client, clock)
        check_routes(memory, config, mail)
    except StartupError:
        redis_client.close()
        raise
    sending = Sending(*kit, store, mail, show=desk.show)
    desk.outgoing = sending.outgoing
    desk.on_approved = sending.after_approval

    tickets, ticket_letters, desk_refresh = _support_desk(
        settings, kit, store, redis_client, desk_executor or listener_executor
    )
    if tickets is not None and ticket_letters is not None:
        # The linked tickets are a route of the letters: Send adds the letter to each.
        sending.ticket_letters_for = tickets.letters_for
        sending.ticket_letters = ticket_letters
    desk.route_for = sending.route

    def resolved(esc: Escalation) -> None:
        # The post-incident review is drafted at resolution, on the model's lane; the linked
        # tickets take the configured status.
        desk.review_at_resolution(esc)
        if tickets is not None:
            tickets.resolved(esc)

    room = RoomChanges(*kit, resolved)
    pacing = Pacing(
        settings.channel_creates_per_minute,
        create_window,
        settings.dedup_seconds,
        lease=settings.declaration_lease_seconds,
    )
    declaring = Declaring(
        *kit, store, metrics, pacing, on_opened=tickets.opened if tickets is not None else None
    )
    digest = Digest(store, protocol)
    timers = TimerFiring(
        store, escalations, scheduler, gateway, protocol, clock, config.exec_channel, digest.build
    )
    timers.deliver = sending.retry
    # The scheduler's jobs name their deployment by its Redis prefix (see bot/jobs.py).
    jobs.register(settings.redis_prefix, timers)

    # The customer's words, whichever way they come back (Slack Connect here; a desk's
    # webhook calls the same service).
    replies = CustomerReplies(store, escalations, gateway, memory, clock)
    if tickets is not None:
        tickets.on_reply = replies.received
    try:
        mail_replies, mailbox_poll = _reply_mailbox(settings, store, mail, replies, clock)
    except StartupError:
        redis_client.close()
        raise

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
        client=gateway.client,
        # Acks run on the request's own thread and never queue behind slow work, which runs
        # on `executor`; Bolt's default shares one 5-thread pool between both.
        process_before_response=True,
        listener_executor=executor,
        token_verification_enabled=verify_token,
    )
    errors.register(app)
    commands.register(app, declaring)
    views.register(app, declaring, gateway)
    views.register_facts(app, room, gateway)
    actions.register(app, room)
    mentions.register(app, Mentions(store, escalations, room, desk, tickets), gateway)
    drafts.register(app, desk, gateway)
    drafts.register_send(app, sending)
    reactions.register(app, room, gateway, config.pin_reaction)
    home.register(app, app_home)
    messages.register(app, replies)
    if verify_token:
        # Learn the bot's user id now, not on the first declaration's clock.
        _ = gateway.bot_user_id
    return Runtime(
        settings=settings,
        clock=clock,
        protocol=protocol,
        config=config,
        metrics=metrics,
        redis=redis_client,
        store=store,
        gateway=gateway,
        scheduler=scheduler,
        agent=agent,
        escalations=escalations,
        declaring=declaring,
        room=room,
        desk=desk,
        sending=sending,
        home=app_home,
        timers=timers,
        replies=replies,
        app=app,
        executor=executor,
        declarations=Every(settings.scheduler_poll, declaring.run_due, "declaration-queue"),
        tickets=tickets,
        ticket_letters=ticket_letters,
        desk_refresh=desk_refresh,
        mail_replies=mail_replies,
        mailbox_poll=mailbox_poll,
    )


def _reply_mailbox(
    settings: Settings, store: Store, mail: MailSetup, replies: CustomerReplies, clock: Clock
) -> tuple[MailReplies | None, Every | None]:
    """The reader of the reply mailbox, when WARROOM_IMAP_URL is set, and the timer that runs
    it on its own thread (off every path that answers Slack); StartupError in one line that
    shows no password when the URL is not usable."""
    if settings.imap_url is None or mail.outbox is None:
        return None, None
    try:
        url = parse_imap_url(settings.imap_url.get_secret_value())
    except ImapURLError as e:
        raise StartupError(f"WARROOM_IMAP_URL is not usable: {e}") from None
    own = frozenset(a.rpartition("@")[2].strip().lower() for a in (mail.sender, mail.reply_to) if a)
    seconds = settings.imap_poll_seconds
    # A poll ends well inside its turn (0.9 of the period, below), whatever the server's pace.
    reader = MailReplies(
        Mailbox(url), mail.outbox, replies, store, clock, own_domains=own,
        budget_seconds=seconds * 0.6,
    )  # fmt: skip

    def poll() -> None:
        # Every process runs the loop; one a period reads the mailbox.
        if store.take_turn("mailbox-poll", 1, seconds * 0.9):
            reader.poll()

    return reader, Every(seconds, poll, "mailbox-poll")


def _support_desk(
    settings: Settings,
    kit: tuple[Any, ...],
    store: Store,
    redis_client: redis.Redis,
    executor: Executor | None,
) -> tuple[TicketLinks | None, TicketLetters | None, Every | None]:
    """Zendesk, when WARROOM_ZENDESK_URL, _EMAIL and _TOKEN are set: the tickets' service,
    the letters' route and the timer that counts the organisations' tickets."""
    if not settings.zendesk:
        return None, None, None
    config: WarroomConfig = kit[5]
    client = ZendeskDesk(
        settings.zendesk_url,  # type: ignore[arg-type]
        settings.zendesk_email,  # type: ignore[arg-type]
        settings.zendesk_token.get_secret_value(),  # type: ignore[union-attr]
        api_url=settings.zendesk_api_url,
    )
    secret = settings.zendesk_webhook_secret
    previous = settings.zendesk_webhook_secret_previous
    tickets = TicketLinks(
        *kit,
        desk=client,
        # A pool of its own: a slow desk holds none of the threads that answer Slack.
        executor=executor or ThreadPoolExecutor(max_workers=4, thread_name_prefix="desk"),
        store=store,
        webhook_secret=secret.get_secret_value() if secret else None,
        webhook_previous_secret=previous.get_secret_value() if previous else None,
    )
    letters = TicketLetters(
        redis_client, settings.redis_prefix, client, status_on_send=config.zendesk.on_send
    )
    seconds = config.zendesk.refresh_minutes * 60

    def refresh() -> None:
        # Every process runs the loop; one a period does the counting.
        if store.take_turn("desk-refresh", 1, seconds * 0.9):
            tickets.refresh(tickets.open_escalations())

    return tickets, letters, Every(seconds, refresh, "desk-refresh")

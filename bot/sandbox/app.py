"""`warroom sandbox`: the bot running against a local Slack workspace in the browser.

This module owns ``Sandbox`` (starts and stops every part, in order) and ``main`` (the
command line). The parts: a Redis (``bot.sandbox.state``); the Slack emulator with the
fictional workspace (``bot.sandbox.workspace``) and its web page (``bot.sandbox.web``) on
``--port``; the bot itself, built by ``build_runtime`` exactly as ``warroom run`` builds it
and served over HTTP by a threaded WSGI server on a free port, so every request reaches it
the way Slack's would (``bot.sandbox.interactions``); the customers' side: a mail server
for their inboxes (``bot.sandbox.customer``) and a Zendesk with their tickets
(``bot.sandbox.desk``); and, with ``--drill``, a scripted escalation (``bot.sandbox.drill``).
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import shutil
import signal
import sys
import tempfile
import threading
import webbrowser
from collections.abc import Callable, Mapping
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from pydantic import ValidationError

if TYPE_CHECKING:
    from bot.runtime import Runtime
    from bot.sandbox.customer import CustomerSide
    from bot.sandbox.desk import SandboxDesk
    from bot.sandbox.drill import Drill
    from bot.sandbox.interactions import Interactions
    from bot.sandbox.state import SandboxRedis
    from bot.sandbox.web import WorkspacePage
    from loopback.slack import SlackEmulator
    from loopback.smtp import MailServer

DEFAULT_PORT = 3100
# 15 minutes in 30 s: the drill's first deadline passes about when the drill, at its usual
# pace, has shown the room and its first messages.
DRILL_CLOCK_SCALE = 30.0

OFFLINE_BANNER = (
    "No ANTHROPIC_API_KEY: the VP agent's drafts come from the offline drafter "
    "(templates on the escalation's facts, labelled “Drafted offline”)."
)


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass  # the bot logs what matters; one line per request would bury it


def serve_wsgi(app: Any) -> tuple[str, Callable[[], None]]:
    """Serve a WSGI app on a free 127.0.0.1 port, one thread per request: its base URL and a
    function that stops it (and waits for its loop to end)."""
    server = make_server(
        "127.0.0.1", 0, app, server_class=_ThreadingWSGIServer, handler_class=_QuietHandler
    )
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="warroom-http"
    )
    thread.start()

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join()

    return f"http://127.0.0.1:{server.server_address[1]}", stop


class Sandbox:
    """Every part of the sandbox; ``start`` brings them up, ``close`` takes them down."""

    def __init__(
        self,
        *,
        port: int = DEFAULT_PORT,
        clock_scale: float | None = None,
        drill: bool = False,
        env: Mapping[str, str] | None = None,
        redis_server: str | None = None,
        say: Callable[[str], None] = print,
        drill_pace: float | None = None,
        folder: Path | None = None,
        keep: bool = False,
    ) -> None:
        """``drill_pace``: seconds between two things the drill does (``Drill``'s default
        if None). ``env``: where REDIS_URL, WARROOM_REDIS_PREFIX and ANTHROPIC_API_KEY are read
        (the process environment by default); the bot's other settings come from the process
        environment, as for `warroom run`. ``redis_server``: see ``open_redis``. ``folder``:
        where the sandbox writes its files (a new temporary one by default); removed on close
        unless ``keep``, which also creates it if it is missing."""
        self.port = port
        self.drill_enabled = drill
        self.clock_scale = clock_scale or (DRILL_CLOCK_SCALE if drill else None)
        self.env = dict(os.environ if env is None else env)
        self.redis_server = redis_server
        self.say = say
        self.drill_pace = drill_pace
        self.url = ""
        self.folder = folder
        self.keep = keep
        self._closers: list[Callable[[], None]] = []
        self.emulator: SlackEmulator | None = None
        self.runtime: Runtime | None = None
        self.interactions: Interactions | None = None
        self.page: WorkspacePage | None = None
        self.drill: Drill | None = None
        self.redis: SandboxRedis | None = None
        self.mail: MailServer | None = None
        self.desk: SandboxDesk | None = None
        self.customers: list[CustomerSide] = []

    def start(self) -> Sandbox:
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def _start(self) -> None:
        from bot.runtime import build_runtime
        from bot.sandbox import workspace
        from bot.sandbox.customer import CustomerSide
        from bot.sandbox.desk import SandboxDesk
        from bot.sandbox.interactions import Interactions, Outcome
        from bot.sandbox.state import open_redis
        from bot.sandbox.web import WorkspacePage
        from bot.settings import Settings, SettingsError
        from bot.wsgi import DESK_WEBHOOK, WarroomWSGI

        folder = self.folder or Path(tempfile.mkdtemp(prefix="warroom-sandbox-"))
        self.folder = folder
        if self.keep:
            folder.mkdir(parents=True, exist_ok=True)
            self._closers.append(lambda: self.say(f"  files:  kept in {folder}"))
        else:
            self._closers.append(lambda: self._remove(folder))

        state = self.redis = open_redis(self.env, folder, redis_server=self.redis_server)
        self._closers.append(state.close)
        self.say(f"  state:  {state.description}")

        bot_token = f"xoxb-sandbox-{secrets.token_hex(8)}"
        signing_secret = secrets.token_hex(16)
        emulator = self.emulator = workspace.new_emulator(bot_token=bot_token)
        emulator.start(port=self.port)
        self._closers.append(emulator.stop)
        workspace.seed(emulator)
        self.url = f"{emulator.root}/"

        # The customer's executive's mail server: the bot emails its letters here.
        from loopback.smtp import MailServer

        mail = self.mail = MailServer().start()
        self._closers.append(mail.stop)
        # The team's reply mailbox (the letters' Reply-To): the customer's email answers land
        # here, and the bot reads them over IMAP.
        from loopback.imap import ImapServer

        mailbox_password = secrets.token_urlsafe(12)
        replies = ImapServer(users={"support": mailbox_password}).start()
        self._closers.append(replies.stop)

        # The accounts' Zendesk, with a ticket each; its changes reach the page.
        desk = self.desk = SandboxDesk.start()
        self._closers.append(desk.stop)
        desk.zendesk.on_change = emulator.touch
        acme_ticket = desk.ticket_of(workspace.CUSTOMER_NAME)
        emulator.add_message(
            workspace.SUPPORT_CHANNEL,
            workspace.SUPPORT_LEAD,
            f"Acme Corp's Zendesk ticket is #{acme_ticket}: add `--ticket {acme_ticket}` to "
            "the /escalate and the brief shows it; Acme Corp (their side) replies on it.",
        )

        shared = workspace.shared_channel(emulator)
        config_file, memory_dir = workspace.write_files(folder, slack_connect=shared)
        api_key = self.env.get("ANTHROPIC_API_KEY") or None
        overrides: dict[str, Any] = {
            "slack_bot_token": bot_token,
            "slack_signing_secret": signing_secret,
            "slack_app_token": None,  # HTTP, never Socket Mode, whatever the environment says
            "slack_api_url": emulator.url,
            "redis_url": state.url,
            "redis_prefix": state.prefix,
            "config_file": config_file,
            "memory_dir": memory_dir,
            "anthropic_api_key": api_key,
            # /metrics stays beside the bot, on 127.0.0.1 like everything the sandbox serves.
            "metrics_address": None,
            "metrics_token": None,
            # Letters go to the local mail server, whatever the environment says.
            "smtp_url": mail.url(),
            "mail_from": workspace.MAIL_FROM,
            "mail_reply_to": workspace.MAIL_REPLY_TO,
            "imap_url": replies.url("support", mailbox_password),
            "imap_poll_seconds": 5,
            # Tickets in the local Zendesk, whatever the environment says.
            **desk.settings(),
        }
        if self.clock_scale is not None:
            overrides["clock_scale"] = self.clock_scale
        try:
            settings = Settings(**overrides)
        except ValidationError as e:
            # The rest comes from the environment, as for `warroom run`: name the variable.
            err = e.errors()[0]
            name = str(err["loc"][0]).upper() if err["loc"] else "environment"
            raise SettingsError(f"{name}: {err['msg']}") from None
        self.clock_scale = settings.clock_scale
        runtime = self.runtime = build_runtime(settings)
        self._closers.append(runtime.close)
        runtime.start()

        base, stop_server = serve_wsgi(WarroomWSGI(runtime))
        self._closers.append(stop_server)
        desk.webhook_url = f"{base}{DESK_WEBHOOK}"
        request_url = f"{base}/slack/events"
        acts = self.interactions = Interactions(emulator, request_url, signing_secret)
        self._closers.append(acts.close)

        page = self.page = WorkspacePage(
            emulator,
            acts,
            people=[p.id for p in workspace.PEOPLE],
            default_channel=workspace.SUPPORT_CHANNEL,
            banner="" if api_key else OFFLINE_BANNER,
            refusal=lambda action, value: approval_refusal(runtime, action, value),
        ).mount()

        # Each account's side: Acme Corp's executive with their shared channel, Globex's by
        # email only. One watcher tells the page of any new mail.
        def read_mailbox_now() -> None:
            # The customer just answered by email: the bot reads its mailbox at once, on a
            # thread of its own, rather than at its next poll.
            if runtime.mail_replies is not None:
                threading.Thread(
                    target=runtime.mail_replies.poll, name="sandbox-mailbox", daemon=True
                ).start()

        def signed(account: dict[str, Any]) -> str:
            return str(account.get("executive_contact") or "").split(",")[0].strip()

        sides = self.customers = [
            CustomerSide(
                emulator,
                mail,
                account=workspace.CUSTOMER_NAME,
                address=workspace.CUSTOMER_EMAIL,
                person=workspace.CUSTOMER_PERSON.id,
                channel=shared,
                desk=desk,
                replies=replies,
                name=workspace.CUSTOMER_PERSON.real_name,
                on_email=read_mailbox_now,
            ),
            *(
                CustomerSide(
                    emulator,
                    mail,
                    account=str(c["name"]),
                    address=str(c["email"]),
                    desk=desk,
                    replies=replies,
                    name=signed(c),
                    on_email=read_mailbox_now,
                )
                for c in workspace.CUSTOMERS["customers"]
                if c.get("email") and c["name"] != workspace.CUSTOMER_NAME
            ),
        ]
        sides[0].watch()
        self._closers.append(sides[0].stop)
        page.customers = lambda: [side.state() for side in sides]
        page.ticket_reply = desk.reply

        def email_reply(account: str, text: str) -> Outcome:
            side = next((c for c in sides if c.account == account), None)
            if side is None:
                return Outcome(False, f"No account {account!r} here.")
            return side.answer_by_email(text)

        page.email_reply = email_reply

        self.say(f"  slack:  a local workspace at {self.url} (its Web API under /api/)")
        self.say(
            f"  mail:   the customer's inbox at {mail.url()} (shown in the page's customer view)"
        )
        self.say(
            f"  desk:   a local Zendesk at {desk.zendesk.url}, a ticket per account "
            "(shown in the customer view)"
        )
        self.say(f"  replies: the team's reply mailbox at {replies.url('support', '***')}")
        scale = f", clock {settings.clock_scale:g}x faster" if settings.clock_scale != 1 else ""
        self.say(f"  bot:    warroom at {request_url}{scale}")
        if api_key:
            self.say("  drafts: the model (ANTHROPIC_API_KEY is set)")
        else:
            self.say("  drafts: the offline drafter (no ANTHROPIC_API_KEY set)")
        self.say(f"  files:  {folder} (warroom.yaml, Agent_Memory, sandbox.log)")
        if not self.keep:
            self.say(
                "          deleted on stop, with the approved updates and reviews in "
                "Agent_Memory: --keep DIR keeps them"
            )

        if self.drill_enabled:
            from bot.sandbox.drill import CUSTOMER as DRILL_CUSTOMER
            from bot.sandbox.drill import Drill

            paced = {} if self.drill_pace is None else {"pace": self.drill_pace}
            drill = self.drill = Drill(
                emulator,
                acts,
                page,
                clock_scale=settings.clock_scale,
                ticket=desk.ticket_of(DRILL_CUSTOMER),
                **paced,
            )
            self._closers.append(drill.stop)

    def _remove(self, folder: Path) -> None:
        shutil.rmtree(folder, ignore_errors=True)
        self.say(f"  files:  deleted {folder} (--keep DIR keeps them)")

    def close(self) -> None:
        """Stop everything started, newest first; safe to call twice."""
        while self._closers:
            closer = self._closers.pop()
            try:
                closer()
            except Exception:
                logging.getLogger(__name__).exception("stopping the sandbox")


def approval_refusal(runtime: Runtime, action_id: str, value: str) -> str:
    """Why the bot would refuse an Approve button now (placeholders still in the draft, or a
    draft no longer the one shown), in its own words; "" for any other button."""
    from datetime import UTC, datetime

    import redis

    from bot.domain import drafts
    from bot.domain.errors import InvalidInput, WarroomError
    from bot.slack.draft_view import read_button_value
    from bot.slack.ids import ActionId

    if action_id != ActionId.DRAFT_APPROVE:
        return ""
    draft_id, seen = read_button_value(value)
    try:
        draft = runtime.store.get_draft(draft_id)
    except (redis.RedisError, WarroomError):
        # The button stays on: pressed, the bot itself says what is wrong.
        return ""
    if draft is None:
        return ""
    try:
        # As someone who may give every approval still missing: only what holds for
        # everyone (the text itself, the version shown) is left to refuse.
        drafts.approve(draft, seen, "", datetime.now(UTC), draft.missing())
    except InvalidInput as e:
        return str(e)
    return ""


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="warroom sandbox",
        description="A local Slack-like workspace in the browser with warroom running in it: "
        "no Slack account, Redis server or API key needed.",
    )
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"the page's port (default {DEFAULT_PORT})"
    )
    parser.add_argument(
        "--clock-scale",
        type=float,
        default=None,
        help="run every protocol duration this many times faster (60: a 15-minute deadline "
        f"in 15 s; default $WARROOM_CLOCK_SCALE or 1, or {DRILL_CLOCK_SCALE:g} with --drill)",
    )
    parser.add_argument(
        "--drill", action="store_true", help="play a scripted escalation, for training"
    )
    parser.add_argument("--no-browser", action="store_true", help="do not open the browser")
    parser.add_argument(
        "--keep",
        metavar="DIR",
        type=Path,
        default=None,
        help="write the sandbox's files (warroom.yaml, Agent_Memory with the approved updates "
        "and reviews, sandbox.log) to DIR and keep them; by default they go to a temporary "
        "folder deleted on stop",
    )
    args = parser.parse_args(argv)
    if not 1 <= args.port <= 65535:
        parser.error("--port must be between 1 and 65535")
    if args.clock_scale is not None and args.clock_scale <= 0:
        parser.error("--clock-scale must be more than 0")
    if args.keep is not None and args.keep.exists() and not args.keep.is_dir():
        parser.error(f"--keep {args.keep}: not a folder")
    return args


def _configure_logging(folder: Path) -> logging.Handler:
    """Everything to sandbox.log; only errors to the terminal, which stays readable. The
    file's handler is returned so it can be closed."""
    level = os.environ.get("WARROOM_LOG_LEVEL", "INFO").upper()
    to_file = logging.FileHandler(folder / "sandbox.log", encoding="utf-8")
    to_file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    to_terminal = logging.StreamHandler(sys.stderr)
    to_terminal.setLevel(logging.ERROR)
    to_terminal.setFormatter(logging.Formatter("warroom sandbox: %(levelname)s %(message)s"))
    root = logging.getLogger()
    root.setLevel(level)
    root.addHandler(to_file)
    root.addHandler(to_terminal)
    return to_file


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)

    def say(line: str) -> None:
        print(line, flush=True)

    say("warroom sandbox")
    stop = threading.Event()
    previous = {
        sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    if args.keep is not None:
        folder = args.keep.resolve()
        folder.mkdir(parents=True, exist_ok=True)
    else:
        folder = Path(tempfile.mkdtemp(prefix="warroom-sandbox-"))
    log_handler = _configure_logging(folder)
    sandbox = Sandbox(
        port=args.port,
        clock_scale=args.clock_scale,
        drill=args.drill,
        say=say,
        folder=folder,
        keep=args.keep is not None,
    )
    try:
        try:
            sandbox.start()
        except Exception as e:
            if isinstance(e, OSError) and sandbox.emulator is not None and not sandbox.url:
                problem = (
                    f"cannot serve on port {args.port} ({e.strerror}); choose another with --port"
                )
            else:
                problem = str(e).replace("\n", "; ")
            print(f"warroom sandbox: {problem}", file=sys.stderr)
            return 2
        assert sandbox.page is not None
        if sandbox.page.banner:
            say(f"  note:   {sandbox.page.banner}")
        say(f"Open {sandbox.url} — Ctrl-C stops everything.")
        if sandbox.drill is not None:
            say("Drill: a scripted escalation starts in a few seconds; follow it on the page.")
            sandbox.drill.start(delay=0.5 if args.no_browser else 3.0)
        if not args.no_browser and not webbrowser.open(sandbox.url):
            say("(No browser could be opened here: open the address above yourself.)")
        # Never a wait without a timeout: the kernel hands a signal to any thread, and Python
        # runs the handler on the main thread only once it runs Python code again.
        while not stop.wait(0.5):
            pass
        # A second Ctrl-C while stopping ends the process at once.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        say("stopping…")
        return 0
    finally:
        sandbox.close()
        logging.getLogger().removeHandler(log_handler)
        log_handler.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        say("stopped.")

"""Fixtures of the sandbox's tests: its workspace in the emulator, the production bot (work
after the ack run inline) served over HTTP, and the people's actions delivered to it."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.runtime import Runtime, build_runtime
from bot.sandbox import workspace
from bot.sandbox.app import approval_refusal, serve_wsgi
from bot.sandbox.interactions import Interactions
from bot.sandbox.web import WorkspacePage
from bot.settings import Settings
from bot.wsgi import WarroomWSGI
from loopback.harness import InlineExecutor
from loopback.imap import ImapServer
from loopback.slack import SlackEmulator
from loopback.smtp import MailServer

SECRET = "sandbox-test-signing-secret"


@pytest.fixture
def emulator() -> Iterator[SlackEmulator]:
    em = workspace.new_emulator(bot_token="xoxb-sandbox-test").start()
    workspace.seed(em)
    try:
        yield em
    finally:
        em.stop()


@pytest.fixture
def mail() -> Iterator[MailServer]:
    """The customer's executive's mail server, as the sandbox runs it."""
    with MailServer() as server:
        yield server


@pytest.fixture
def imap() -> Iterator[ImapServer]:
    """The team's reply mailbox, as the sandbox runs it: the customer's email answers."""
    with ImapServer(users={"support": "mailbox-pw"}) as server:
        yield server


@pytest.fixture
def bot(
    emulator: SlackEmulator,
    redis_url: str,
    prefix: str,
    tmp_path: Path,
    mail: MailServer,
    imap: ImapServer,
) -> Iterator[Runtime]:
    config, memory = workspace.write_files(tmp_path)
    settings = Settings(
        slack_bot_token=emulator.bot_token,
        slack_signing_secret=SECRET,
        slack_app_token=None,
        slack_api_url=emulator.url,
        redis_url=redis_url,
        redis_prefix=prefix,
        config_file=config,
        memory_dir=memory,
        anthropic_api_key=None,
        smtp_url=mail.url(),
        mail_from=workspace.MAIL_FROM,
        mail_reply_to=workspace.MAIL_REPLY_TO,
        imap_url=imap.url("support", "mailbox-pw"),
    )
    rt = build_runtime(settings, listener_executor=InlineExecutor())
    try:
        yield rt
    finally:
        rt.close()


@pytest.fixture
def bot_url(bot: Runtime) -> Iterator[str]:
    base, stop = serve_wsgi(WarroomWSGI(bot))
    try:
        yield f"{base}/slack/events"
    finally:
        stop()


@pytest.fixture
def acts(emulator: SlackEmulator, bot_url: str) -> Iterator[Interactions]:
    # Work after the ack runs inline, so a request is answered once its work is done: give it
    # more than Slack's 3 s on a slow machine.
    interactions = Interactions(emulator, bot_url, SECRET, timeout=20)
    try:
        yield interactions
    finally:
        interactions.close()


@pytest.fixture
def page(emulator: SlackEmulator, acts: Interactions, bot: Runtime) -> WorkspacePage:
    return WorkspacePage(
        emulator,
        acts,
        people=[p.id for p in workspace.PEOPLE],
        banner="offline drafter",
        refusal=lambda action, value: approval_refusal(bot, action, value),
    ).mount()


def ui(emulator: SlackEmulator, path: str, body: dict[str, Any] | None = None) -> Any:
    """GET (no body) or POST JSON to the page's endpoints; the decoded JSON answer."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        f"{emulator.root}{path}",
        data=data,
        headers={"Content-Type": "application/json"} if data else {},
        method="POST" if data is not None else "GET",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as e:
        with e:
            return json.loads(e.read())


def fetch(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read()
    except urllib.error.HTTPError as e:
        with e:
            return e.code, e.headers.get("Content-Type", ""), e.read()

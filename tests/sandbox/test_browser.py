"""`warroom sandbox` in a real browser: Debian's Chromium driven by Playwright against the
sandbox run as its own process, as a newcomer would use it. Screenshots of every step go to
test-artifacts/sandbox/; with WARROOM_TEST_SANDBOX_DOCS_SHOT=<path> the README's screenshot is
written there too."""

from __future__ import annotations

import json
import os
import re
import signal
import smtplib
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from loopback.harness import signal_another_thread
from loopback.server import free_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "sandbox"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def sandbox_command(port: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "bot.sandbox", "--no-browser", "--port", str(port), *extra]


@contextmanager
def serving(
    redis_url: str,
    prefix: str,
    folder: Path,
    *extra: str,
    stop: Callable[[subprocess.Popen[bytes]], None] = subprocess.Popen.terminate,
) -> Iterator[str]:
    """`warroom sandbox` run as its own process, as a newcomer runs it: its address; `stop`
    asks it to stop at the end (SIGTERM)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "WARROOM_"))}
    env.pop("ANTHROPIC_API_KEY", None)
    env.update(REDIS_URL=redis_url, WARROOM_REDIS_PREFIX=prefix)
    log_path = folder / "sandbox.out"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            sandbox_command(port, *extra), cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                if proc.poll() is not None:
                    pytest.fail(f"the sandbox exited:\n{log_path.read_text()}")
                try:
                    with urllib.request.urlopen(f"{base}/", timeout=2) as r:
                        if r.status == 200:
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    pytest.fail(f"the sandbox did not serve in 30 s:\n{log_path.read_text()}")
                time.sleep(0.1)
            yield base
        finally:
            stop(proc)
            try:
                code = proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                code = None
    out = log_path.read_text()
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0] == "warroom sandbox" and lines[1].startswith(f"  state:  Redis at {redis_url}")
    assert "drafts: the offline drafter" in out and lines[-1] == "stopped."


@pytest.fixture
def sandbox(redis_url: str, prefix: str, tmp_path: Path) -> Iterator[str]:
    with serving(redis_url, prefix, tmp_path) as base:
        yield base


@pytest.fixture
def page(sandbox: str) -> Iterator[Any]:
    """A Chromium page at 1400x900, once the sandbox serves; no script error allowed."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing (CI installs Debian's chromium package)")
    sync_api = pytest.importorskip("playwright.sync_api")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    errors: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.set_default_timeout(20_000)
            yield page
        finally:
            browser.close()
    assert errors == [], errors


def shot(page: Any, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


@pytest.mark.timeout(120)
def test_a_newcomer_declares_marks_a_step_done_and_asks_for_status(sandbox: str, page: Any) -> None:
    page.goto(f"{sandbox}/?as=U0SUPLEAD&channel=support")
    page.wait_for_selector("#channel-title:has-text('support')")
    banner = page.locator("#banner")
    assert banner.is_visible() and "offline drafter" in banner.inner_text()
    shot(page, "01-support")

    composer = page.locator("#composer-input")
    composer.fill("/escalate Acme Corp: checkout fails --arr 250k")
    composer.press("Enter")
    page.locator("#warrooms a.channel", has_text="acme-corp").wait_for()
    ready = page.locator(".message.ephemeral", has_text="is ready")
    ready.wait_for()
    # "Opening a war room…" gave way to the answer that followed it.
    assert page.locator(".message", has_text="Opening a war room").count() == 0
    link = ready.locator("a.chan")  # <#C…> rendered as a link to the channel
    assert link.inner_text().endswith("-acme-corp")
    shot(page, "02-declared")

    link.click()
    page.wait_for_selector("#channel-title:has-text('acme-corp')")
    brief = page.locator(".message.pinned")
    brief.locator(".b-header", has_text="Escalation: Acme Corp").wait_for()
    assert "Pinned" in brief.locator(".badge-pin").inner_text()
    assert page.locator("#pin-count").inner_text() == "1"
    topic = page.locator("#channel-topic").inner_text()
    assert topic.startswith("Acme Corp · IC @ivan")
    buttons = brief.locator("button[data-action-id='step_done']")
    assert buttons.count() == 2
    # <!date^…> shown in the reader's time, not as the UTC fallback
    assert brief.locator("time.date").count() >= 3 and " UTC" not in brief.inner_text()
    brief.locator(".b-header").scroll_into_view_if_needed()
    shot(page, "03-war-room")
    docs_shot = os.environ.get("WARROOM_TEST_SANDBOX_DOCS_SHOT")
    if docs_shot:
        page.screenshot(path=docs_shot)

    step = brief.locator("[data-block-id='step:assessment']")
    step.locator("button", has_text="Mark done").click()
    step.locator("button").wait_for(state="detached")
    page.wait_for_selector(".message.pinned .edited")
    assert "Done by" in step.inner_text()
    assert buttons.count() == 1
    shot(page, "04-marked-done")

    composer.fill("@vp status")
    composer.press("Enter")
    reply = page.locator(".thread .message.reply", has_text="open for")
    reply.wait_for()
    text = reply.inner_text()
    done = next(line for line in text.splitlines() if "Done:" in line)
    assert "Immediate assessment" in done and "Open the war room" in done
    assert page.locator(".thread .message.reply .author").first.inner_text() == "vp"
    reply.scroll_into_view_if_needed()
    shot(page, "05-status")


@pytest.mark.timeout(120)
def test_a_reload_closes_the_open_modal_as_slack_does(sandbox: str, page: Any) -> None:
    page.goto(f"{sandbox}/?as=U0SUPLEAD&channel=support")
    page.wait_for_selector("#channel-title:has-text('support')")

    composer = page.locator("#composer-input")
    composer.fill("/escalate")
    composer.press("Enter")
    page.wait_for_selector("#modal-form")
    assert page.locator("#modal-backdrop").is_visible()
    shot(page, "06-form-open")

    page.reload()
    page.wait_for_selector("#channel-title:has-text('support')")
    # Let a state that still had the modal come and go: it must not come back.
    page.wait_for_timeout(1000)
    assert not page.locator("#modal-backdrop").is_visible()
    shot(page, "07-reloaded")


@pytest.mark.timeout(120)
def test_the_customer_view_shows_their_inbox_and_their_reply_reaches_the_war_room(
    sandbox: str, page: Any, tmp_path: Path
) -> None:
    # A letter in the executive's inbox, written as hostile as anyone could: shown as text.
    out = (tmp_path / "sandbox.out").read_text()
    port = int(re.search(r"mail: .* at smtp://127\.0\.0\.1:(\d+)", out).group(1))  # type: ignore[union-attr]
    msg = EmailMessage()
    msg["From"] = "Victoria Hale <updates@northwind.example>"
    msg["To"] = "morgan.lee@acme.example"
    msg["Subject"] = "Checkout errors <img src=x onerror=alert(1)>"
    msg.set_content("Dear Morgan,\n<script>alert(1)</script>\nKind regards")
    with smtplib.SMTP("127.0.0.1", port) as smtp:
        smtp.send_message(msg)

    page.goto(f"{sandbox}/?as=U0SUPLEAD&channel=support")
    page.wait_for_selector("#channel-title:has-text('support')")
    composer = page.locator("#composer-input")
    composer.fill("/escalate Acme Corp: checkout fails --arr 250k")
    composer.press("Enter")
    room = page.locator("#warrooms a.channel", has_text="acme-corp")
    room.wait_for()

    page.locator("#customers a.channel", has_text="Acme Corp").click()
    page.wait_for_selector("#customer-view:not([hidden])")
    assert page.locator("#channel-view").is_hidden()
    thread = page.locator("#inbox .mail-thread", has_text="Checkout errors")
    thread.wait_for()
    assert "<img src=x onerror=alert(1)>" in thread.locator(".mail-subject").inner_text()
    assert "<script>alert(1)</script>" in thread.locator(".mail-body").inner_text()
    assert page.locator("#inbox img, #inbox script").count() == 0
    assert "morgan.lee@acme.example" in thread.inner_text()
    assert "acme-corp-northwind" in page.locator("#shared-title").inner_text()
    shot(page, "08-customer-inbox")

    reply = page.locator("#customer-input")
    reply.fill("Thanks. When will checkout work again?")
    reply.press("Enter")
    page.locator("#shared-messages .message", has_text="When will checkout work again?").wait_for()
    shot(page, "09-customer-replied")

    room.click()
    page.wait_for_selector("#channel-title:has-text('acme-corp')")
    shown = page.locator(".message", has_text="Morgan Lee (Acme Corp) replied")
    shown.wait_for()
    assert "When will checkout work again?" in shown.inner_text()
    shown.scroll_into_view_if_needed()
    shot(page, "10-reply-in-war-room")


@pytest.mark.timeout(120)
def test_the_customer_view_shows_their_ticket_and_their_reply_on_it_reaches_the_war_room(
    sandbox: str, page: Any
) -> None:
    with urllib.request.urlopen(f"{sandbox}/ui/state?as=U0SUPLEAD", timeout=10) as r:
        state = json.loads(r.read())
    (acme,) = [c for c in state["customers"] if c["account"] == "Acme Corp"]
    ticket = acme["tickets"][0]["id"]

    page.goto(f"{sandbox}/?as=U0SUPLEAD&channel=support")
    page.wait_for_selector("#channel-title:has-text('support')")
    composer = page.locator("#composer-input")
    composer.fill(f"/escalate Acme Corp: checkout fails --ticket {ticket}")
    composer.press("Enter")
    room = page.locator("#warrooms a.channel", has_text="acme-corp")
    room.wait_for()

    page.locator("#customers a.channel", has_text="Acme Corp").click()
    shown = page.locator("#tickets .ticket", has_text=f"#{ticket}")
    shown.wait_for()
    assert "the payment step spins" in shown.inner_text()
    reply = page.locator("#ticket-input")
    reply.fill("Still failing <img src=x onerror=alert(1)> here")
    reply.press("Enter")
    said = shown.locator(".ticket-comment", has_text="Still failing")
    said.wait_for()
    assert "<img src=x onerror=alert(1)>" in said.inner_text()
    assert page.locator("#tickets img, #tickets script").count() == 0
    shot(page, "11-customer-ticket")

    room.click()
    page.wait_for_selector("#channel-title:has-text('acme-corp')")
    heard = page.locator(".message", has_text="Morgan Lee (Acme Corp) replied")
    heard.wait_for()
    assert "Still failing" in heard.inner_text()


def test_a_sigterm_any_thread_receives_stops_the_sandbox(
    redis_url: str, prefix: str, tmp_path: Path
) -> None:
    """Python runs a signal's handler on the main thread once it runs Python code again: the
    sandbox waiting there without a timeout ignored a SIGTERM the kernel handed to another of
    its threads. `serving` checks that it stopped, with code 0, and said so."""

    def to_another_thread(proc: subprocess.Popen[bytes]) -> None:
        if not signal_another_thread(proc.pid, signal.SIGTERM):
            proc.terminate()
            pytest.skip("no tgkill here, or no thread besides the main one")

    with serving(redis_url, prefix, tmp_path, stop=to_another_thread):
        pass

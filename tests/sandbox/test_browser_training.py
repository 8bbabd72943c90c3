"""The sandbox page as a newcomer trains on it, in Debian's Chromium at 390 px (a phone),
820 px (a tablet) and 1400 px wide: nothing runs off the side, the room's topic is read
whole, Approve is off while the bot would refuse it and says why, Mark done answers the
person who pressed it, the Edit box fits the letter, the app's Messages tab is read-only,
emoji show (or their names where the system has no emoji font), and the drill is paused,
stepped and slowed from the page. Screenshots go to the test's tmp_path."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.sandbox import workspace
from bot.sandbox.interactions import MESSAGES_OFF
from tests.sandbox.test_browser import CHROMIUM, CHROMIUM_ARGS, serving

pytestmark = pytest.mark.slow

WIDTHS = [(390, 844), (820, 1180), (1400, 900)]
DANA = workspace.SUPPORT_LEAD


@pytest.fixture
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing (CI installs Debian's chromium package)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def open_page(browser: Any) -> Iterator[Any]:
    """Pages of the browser; no script error allowed on any."""
    errors: list[str] = []

    def new(width: int = 1400, height: int = 900) -> Any:
        page = browser.new_page(viewport={"width": width, "height": height})
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.set_default_timeout(20_000)
        return page

    yield new
    assert errors == [], errors


def emoji_font() -> bool:
    """Whether the system has a font for 📌 (fontconfig's answer, as Chromium asks it)."""
    if shutil.which("fc-list") is None:
        return True  # unknown: the page's own test decides; nothing is asserted of it
    found = subprocess.run(
        ["fc-list", ":charset=1f4cc", "family"], capture_output=True, text=True, check=False
    )
    return bool(found.stdout.strip())


def overflow(page: Any) -> list[str]:
    """What runs off the side: the page itself, or a box wider than it shows."""
    return page.evaluate(
        """() => {
          const out = [];
          const w = window.innerWidth;
          for (const el of [document.documentElement, document.body]) {
            if (el.scrollWidth > w) out.push(`${el.tagName} ${el.scrollWidth} > ${w}`);
          }
          for (const id of ["topbar", "notice", "main", "channel-header", "messages",
                            "composer", "modal"]) {
            const el = document.getElementById(id);
            if (el && el.offsetParent !== null && el.scrollWidth > el.clientWidth + 1) {
              out.push(`#${id} ${el.scrollWidth} > ${el.clientWidth}`);
            }
            if (el && el.offsetParent !== null && el.getBoundingClientRect().right > w + 1) {
              out.push(`#${id} ends at ${el.getBoundingClientRect().right} > ${w}`);
            }
          }
          return out;
        }"""
    )


def topic_is_whole(page: Any) -> bool:
    return page.locator("#channel-topic").evaluate(
        "t => t.offsetParent !== null && t.scrollWidth <= t.clientWidth + 1 "
        "&& t.scrollHeight <= t.clientHeight + 1"
    )


def declare(page: Any, base: str) -> str:
    page.goto(f"{base}/?as={DANA}&channel=support")
    page.wait_for_selector("#channel-title:has-text('support')")
    composer = page.locator("#composer-input")
    composer.fill("/escalate Acme Corp: checkout fails for every EU customer --arr 250k")
    composer.press("Enter")
    ready = page.locator(".message.ephemeral", has_text="is ready")
    ready.wait_for()
    return ready.locator("a.chan").get_attribute("data-channel")


@pytest.mark.timeout(240)
def test_a_war_room_reads_right_on_a_phone_a_tablet_and_a_desktop(
    redis_url: str, prefix: str, tmp_path: Path, open_page: Any
) -> None:
    with serving(redis_url, prefix, tmp_path) as base:
        page = open_page()
        room = declare(page, base)
        # "Opening a war room…" gave way to "… is ready".
        assert page.locator(".message", has_text="Opening a war room").count() == 0
        page.screenshot(path=str(tmp_path / "01-declared.png"))

        page.goto(f"{base}/?as={DANA}&channel={room}")
        brief = page.locator(".message.pinned")
        brief.locator(".b-header", has_text="Escalation: Acme Corp").wait_for()
        composer = page.locator("#composer-input")
        composer.fill("@vp draft update")
        composer.press("Enter")
        approve = page.locator(".thread button[data-action-id='draft_approve']")
        approve.wait_for()
        draft = page.locator(
            ".thread .message.reply", has=page.locator("button[data-action-id='draft_approve']")
        )

        # Approve is off, and says why; Edit and Regenerate are on.
        assert "off" in approve.get_attribute("class").split()
        assert "primary" not in approve.get_attribute("class").split()
        assert approve.get_attribute("aria-disabled") == "true"
        assert "placeholder" in approve.get_attribute("title")
        hint = draft.locator(".b-refusal")
        assert hint.is_visible() and "Approve is off" in hint.inner_text()
        edit = draft.locator("button[data-action-id='draft_edit']")
        assert edit.get_attribute("aria-disabled") is None
        # Each placeholder is listed once under the draft.
        notes = draft.locator(".b-context").all_inner_texts()
        assert sum("[impact:" in n for n in notes) == 1, notes
        approve.click(force=True)  # off, as Playwright sees it too: a person can still press it
        toast = page.locator("#toast")
        toast.wait_for()
        assert "placeholder" in toast.inner_text()
        draft.scroll_into_view_if_needed()
        page.screenshot(path=str(tmp_path / "02-approve-off.png"))

        # The Edit box shows the whole letter.
        edit.click()
        box = page.locator("#modal-form textarea").first
        box.wait_for()
        letter = box.input_value()
        assert letter.count("\n") >= 10
        sizes = box.evaluate("b => [b.scrollHeight, b.clientHeight]")
        assert sizes[0] <= sizes[1] + 2, f"the letter scrolls in its box: {sizes}"
        page.screenshot(path=str(tmp_path / "03-edit.png"))
        page.locator("#modal-form button[data-close]").last.click()
        page.locator("#modal-backdrop").wait_for(state="hidden")

        # Mark done with its step scrolled away: the answer comes where the person is.
        page.locator("#messages").evaluate("m => { m.scrollTop = m.scrollHeight; }")
        step = brief.locator("[data-block-id='step:assessment'] button", has_text="Mark done")
        step.evaluate("b => b.click()")  # a press without scrolling the step into view
        page.wait_for_function(
            "() => /Done/.test(document.getElementById('toast').textContent)"
            " && !document.getElementById('toast').hidden"
        )
        assert "Immediate assessment" in toast.inner_text()
        page.screenshot(path=str(tmp_path / "04-marked-done.png"))

        # The app's Messages tab is read-only, as in Slack.
        page.locator("#app-link").click()
        page.locator("#app-tabs button[data-tab='messages']").click()
        off = page.locator("#messages-off")
        off.wait_for()
        assert off.inner_text() == MESSAGES_OFF
        assert not page.locator("#composer").is_visible()
        page.screenshot(path=str(tmp_path / "05-app-messages.png"))
        page.close()

        has_emoji_font = emoji_font()
        for width, height in WIDTHS:
            page = open_page(width, height)
            page.goto(f"{base}/?as={DANA}&channel={room}")
            page.locator(".message.pinned .b-header").wait_for()
            topic = page.locator("#channel-topic")
            assert re.match(r"Acme Corp · IC @\w+ · Investigating", topic.inner_text())
            assert topic_is_whole(page), f"the topic is cut at {width} px"
            assert overflow(page) == [], (width, overflow(page))
            # Emoji are drawn, or named where the system has no font for them.
            names = page.locator("#pins-toggle .emoji-name")
            if has_emoji_font:
                assert names.count() == 0
            else:
                assert names.inner_text() == ":pushpin:"
            page.screenshot(path=str(tmp_path / f"06-room-{width}.png"))
            sidebar = page.locator("#sidebar")
            if width < 760:
                # The channel list is a drawer: out of the way until asked for.
                assert sidebar.bounding_box()["x"] + sidebar.bounding_box()["width"] <= 0
                page.locator("#sidebar-toggle").click()
                page.wait_for_function(
                    "() => document.getElementById('sidebar').getBoundingClientRect().left >= 0"
                )
                page.screenshot(path=str(tmp_path / f"07-channels-{width}.png"))
                sidebar.locator("a.channel", has_text="support").click()
                page.wait_for_selector("#channel-title:has-text('support')")
                assert overflow(page) == []
            else:
                assert sidebar.is_visible() and not page.locator("#sidebar-toggle").is_visible()
            page.close()


@pytest.mark.timeout(240)
def test_the_drill_is_paused_stepped_and_slowed_from_the_page(
    redis_url: str, prefix: str, tmp_path: Path, open_page: Any
) -> None:
    with serving(redis_url, prefix, tmp_path, "--drill") as base:
        page = open_page()
        page.goto(f"{base}/?as={DANA}&channel=support")
        controls = page.locator("#drill-controls")
        controls.wait_for()
        state = page.locator("#drill-state")

        page.locator("#drill-pause").click()
        page.wait_for_function(
            "() => document.getElementById('drill-state').textContent === 'Paused'"
        )
        assert page.locator("#drill-pause").inner_text() == "Resume"
        before = page.locator("#notice-step").inner_text()
        number = int(before.split()[-1].split("/")[0]) if "/" in before else 0

        page.locator("#drill-step").click()
        page.wait_for_function(
            "([before]) => document.getElementById('notice-step').textContent !== before"
            " && document.getElementById('drill-state').textContent === 'Paused'",
            arg=[before],
        )
        after = page.locator("#notice-step").inner_text()
        assert after == f"Drill {number + 1}/9", (before, after)
        look = page.locator("#notice-look")
        assert look.is_visible() and look.inner_text().startswith("Look at:")
        page.screenshot(path=str(tmp_path / "01-drill-stepped.png"))

        page.locator("#drill-speed").select_option("0.5")
        page.wait_for_function(
            "() => document.querySelector('#drill-speed option[selected]').value === '0.5'"
        )
        page.locator("#drill-pause").click()
        page.wait_for_function(
            "() => document.getElementById('drill-state').textContent === 'Playing'"
        )
        assert state.inner_text() == "Playing"
        page.screenshot(path=str(tmp_path / "02-drill-playing.png"))

        for width, height in WIDTHS[:2]:
            page.set_viewport_size({"width": width, "height": height})
            assert controls.is_visible()
            assert overflow(page) == [], (width, overflow(page))
            page.screenshot(path=str(tmp_path / f"03-drill-{width}.png"))

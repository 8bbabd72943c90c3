"""`warroom sandbox --drill`: a scripted escalation, played out for training.

This module owns ``Drill``: on its own thread, fictional people declare an escalation, talk
in its war room, let a deadline pass, ask the bot for a status update and a customer-update
draft, approve it and resolve — every step sent through ``Interactions``, so the bot gets
exactly what Slack would send it, a few seconds apart, each step announced on the page.
The drill waits for the bot's answers (the room, the overdue reminder, the draft) rather
than for fixed times, so a slow machine slows it down instead of breaking it.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bot.sandbox import workspace
from bot.sandbox.interactions import Interactions
from bot.sandbox.web import WorkspacePage
from bot.slack.ids import ActionId
from loopback.slack import Message, SlackEmulator

log = logging.getLogger(__name__)

CUSTOMER = "Globex"
DECLARATION = f"/escalate {CUSTOMER}: EU checkout returns 502 for 40% of orders --arr 480k"
ASSESSMENT_MINUTES = 15  # the shipped protocol's first deadline


class _Stopped(Exception):
    pass


@dataclass
class Drill:
    """A scripted escalation played in the sandbox's workspace, narrated on the page."""

    emulator: SlackEmulator
    acts: Interactions
    page: WorkspacePage
    clock_scale: float
    pace: float = 4.0
    finished: threading.Event = field(default_factory=threading.Event, init=False)
    failed: str | None = field(default=None, init=False)
    _stop: threading.Event = field(default_factory=threading.Event, init=False, repr=False)
    _thread: threading.Thread | None = field(default=None, init=False, repr=False)
    _room: str = field(default="", init=False, repr=False)

    @property
    def room(self) -> str:
        """The id of the drill's war room, once it is open ("" before)."""
        return self._room

    def start(self, *, delay: float = 0.0) -> None:
        self._thread = threading.Thread(target=self._run, args=(delay,), name="drill")
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    # ------------------------------------------------------------------ the script

    def _run(self, delay: float) -> None:
        try:
            self._sleep(delay)
            self._script()
        except _Stopped:
            pass
        except Exception as e:
            self.failed = str(e)
            log.exception("the drill stopped")
            self.page.announce(f"⚠️ The drill stopped: {e}", step="")
        finally:
            self.finished.set()

    def _script(self) -> None:
        scale = self.clock_scale
        support = self._channel_id(workspace.SUPPORT_CHANNEL)
        deadline_s = ASSESSMENT_MINUTES * 60 / scale
        self._say(
            "🎓 Drill: an escalation plays out here on its own, step by step"
            + (f", with the clock running {scale:g}x faster" if scale != 1 else "")
            + ". Watch #support, then the war room; the people are fictional.",
            channel=support,
            step="",
        )
        self._sleep(self.pace)

        before = {c["id"] for c in self.page.state(workspace.SUPPORT_LEAD, None)["channels"]}
        self._say(
            "Dana, the support lead, declares the escalation in #support.",
            channel=support,
            step="1/9",
        )
        self._act(self.acts.say(workspace.SUPPORT_LEAD, support, DECLARATION))
        room = self._wait(lambda: self._new_room(before), 30, "the war room to open")
        self._room = room.id
        self._wait(lambda: room_ready(self.emulator, room.id), 30, "the brief to be pinned")
        ic = ic_of(self.emulator, room.id) or workspace.IC
        ic_name = self.emulator.user(ic)["real_name"].split()[0]
        self._say(
            f"The war room #{room.name} is open: the right people are in, {ic_name} is "
            "the incident commander, the brief with every deadline is pinned, and "
            "#exec-escalations has been told.",
            channel=room.id,
            step="2/9",
        )
        self._sleep(self.pace)

        self._say("Engineers and the CSM share what they see.", channel=room.id, step="3/9")
        self._post(
            workspace.ENGINEER,
            "Seeing 502s from the EU payment gateway since 09:12 UTC; error rate 38% and climbing.",
        )
        self._sleep(self.pace)
        self._post(
            workspace.CSM,
            "Globex's CTO has emailed twice. Their EU flash sale starts tomorrow morning.",
        )
        self._sleep(self.pace)
        self._post(
            workspace.ENGINEER,
            "Gateway pods are OOM-killed since this morning's deploy (v2025.06.3). Rolling back.",
        )

        self._say(
            f"Nobody marks the assessment done, so its {ASSESSMENT_MINUTES}-minute "
            f"deadline passes ({deadline_s:g} s here). Watch for the bot's reminder.",
            channel=room.id,
            step="4/9",
        )
        self._wait(lambda: self._bot_said("overdue"), deadline_s + 60, "the overdue reminder")
        self._sleep(self.pace)
        self._say(
            f"{ic_name} marks the assessment done and records a status update.",
            channel=room.id,
            step="5/9",
        )
        self._post(ic, f"@{workspace.BOT_NAME} done assessment")
        self._sleep(self.pace)
        self._post(
            ic,
            f"@{workspace.BOT_NAME} update Rolled back the gateway deploy; 502s down to "
            "5% and falling. Next: confirm EU checkout has fully recovered.",
        )
        self._sleep(self.pace)
        # What the customer may be told is recorded apart from the internal notes above.
        self._post(
            workspace.CSM,
            f"@{workspace.BOT_NAME} impact Some EU customers cannot complete checkout",
        )
        self._post(
            ic,
            f"@{workspace.BOT_NAME} doing Rolling back this morning's change to the EU "
            "payment service",
        )
        self._post(
            workspace.CSM,
            f"@{workspace.BOT_NAME} workaround An order that fails goes through when it is "
            "placed again a minute later",
        )
        # Each mention is handled on a thread of its own: the draft must not be asked for
        # before the facts it is drafted from are recorded.
        for fact in ("the impact", "what we are doing", "the workaround"):
            self._wait(lambda fact=fact: self._told(f"({fact})"), 30, f"{fact} recorded")
        self._sleep(self.pace)

        self._say(
            "Victoria, the VP, asks the bot to draft the customer update.",
            channel=room.id,
            step="6/9",
        )
        ask = self._post(workspace.VP, f"@{workspace.BOT_NAME} draft update")
        draft = self._wait(lambda: self._draft_in_thread(ask), 60, "the draft")
        self._sleep(self.pace)
        self._say(
            f"{ic_name} reads the draft and approves it: nothing reaches the customer "
            "until a person sends it.",
            channel=room.id,
            step="7/9",
        )
        self._act(
            self.acts.click(
                ic,
                block_id=draft[1],
                action_id=ActionId.DRAFT_APPROVE,
                channel=room.id,
                message_ts=draft[0].ts,
            )
        )
        self._sleep(self.pace)
        self._post(
            workspace.ENGINEER,
            "EU checkout success back at 99.9% for 10 minutes. The new gateway build needs "
            "more memory than its limit.",
        )
        self._post(
            ic,
            f"@{workspace.BOT_NAME} cause confirmed A change to the EU payment service "
            "needed more memory than it was given",
        )
        self._sleep(self.pace)

        self._say(f"{ic_name} resolves the escalation.", channel=room.id, step="8/9")
        self._post(
            ic,
            f"@{workspace.BOT_NAME} resolve Rolled back gateway v2025.06.3; EU checkout "
            "healthy for 10 minutes.",
        )
        self._wait(lambda: self._bot_said("Resolved"), 30, "the resolution")
        self._wait(lambda: self._bot_said("Post-incident review"), 60, "the review")
        self._say(
            "Resolved: topic and brief say so, reminders stopped, follow-ups are "
            "scheduled, the exec channel was told, and the post-incident review is posted in "
            "the room. The drill is over — now try it yourself: /escalate Acme Corp: checkout "
            "fails --arr 250k",
            channel=room.id,
            step="9/9",
        )

    # ------------------------------------------------------------------ helpers

    def _say(self, text: str, *, channel: str | None, step: str) -> None:
        log.info("drill %s", text)
        self.page.announce(text, channel=channel, step=step)

    def _act(self, outcome: Any) -> None:
        if not outcome.ok:
            raise RuntimeError(outcome.error or str(outcome.errors))

    def _post(self, user: str, text: str) -> str:
        """Post in the war room as ``user``, typed as in the composer (``@vp`` and all)."""
        outcome = self.acts.post(user, self._room, text)
        self._act(outcome)
        return str(outcome.ts)

    def _channel_id(self, name: str) -> str:
        found = self.emulator.find_channel(name)
        if found is None:
            raise RuntimeError(f"no #{name}")
        return found.id

    def _new_room(self, before: set[str]) -> Any:
        slug = re.compile(rf"^esc-\d{{8}}-{CUSTOMER.lower()}(-\d+)?$")
        for ch in self.emulator.snapshot()["channels"]:
            if ch.id not in before and slug.match(ch.name or ""):
                return ch
        return None

    def _bot_messages(self) -> list[Message]:
        return [
            m
            for m in self.emulator.messages_in(self._room)
            if m.user == self.emulator.bot_user_id and m.ephemeral_for is None
        ]

    def _told(self, needle: str) -> bool:
        """Whether the bot said `needle` to anyone in the room (answers only one person
        sees included)."""
        return any(
            m.user == self.emulator.bot_user_id and needle in f"{m.text} {m.blocks}"
            for m in self.emulator.messages_in(self._room)
        )

    def _bot_said(self, needle: str) -> bool:
        return any(needle in f"{m.text} {m.blocks}" for m in self._bot_messages())

    def _draft_in_thread(self, parent: str) -> tuple[Message, str] | None:
        for m in self._bot_messages():
            if m.thread_ts != parent:
                continue
            for block in m.blocks or ():
                actions = [
                    e.get("action_id") for e in block.get("elements") or () if isinstance(e, dict)
                ]
                if ActionId.DRAFT_APPROVE in actions:
                    return m, str(block.get("block_id"))
        return None

    def _wait(self, found: Callable[[], Any], timeout: float, what: str) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            result = found()
            if result:
                return result
            if time.monotonic() > deadline:
                raise RuntimeError(f"waited {timeout:g} s for {what}")
            self._sleep(0.2)

    def _sleep(self, seconds: float) -> None:
        if self._stop.wait(seconds):
            raise _Stopped


def room_ready(emulator: SlackEmulator, channel: str) -> bool:
    """The war room's brief is pinned (the last of the three waves of a declaration)."""
    found = emulator.find_channel(channel)
    return bool(found and found.pins)


def ic_of(emulator: SlackEmulator, channel: str) -> str | None:
    """The incident commander named in the room's topic (`Acme · IC <@U…> · …`)."""
    found = emulator.find_channel(channel)
    match = re.search(r"IC <@([UW][A-Z0-9]+)", found.topic if found else "")
    return match.group(1) if match else None

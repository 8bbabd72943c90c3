"""`warroom sandbox --drill`: a scripted escalation, played out for training.

This module owns ``Drill``: on its own thread, fictional people declare an escalation (from the
customer's Zendesk ticket, when the sandbox has one), talk in its war room, let a deadline
pass, ask the bot for a status update and a customer-update draft, approve it, send it to the
customer's executive by email and resolve — every step sent through ``Interactions``, so the
bot gets exactly what Slack would send it, a beat apart, each step announced on the page with
what to look at. Its pace is ``Pacing``'s: the page pauses, resumes, steps and speeds it up or
down. The drill waits for the bot's answers (the room, the overdue reminder, the draft, the
letter sent) by watching the workspace change rather than for fixed times, so a slow machine
slows it down instead of breaking it.
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
from bot.sandbox.pacing import Pacing, Stopped
from bot.sandbox.web import WorkspacePage
from bot.slack.ids import ActionId
from loopback.slack import Message, SlackEmulator

log = logging.getLogger(__name__)

CUSTOMER = "Globex"
DECLARATION = f"/escalate {CUSTOMER}: EU checkout returns 502 for 40% of orders --arr 480k"
ASSESSMENT_MINUTES = 15  # the shipped protocol's first deadline
STEPS = 9
DEFAULT_BEAT = 4.0  # seconds between two things the drill does, at speed 1
READING_BEATS = 2  # a step's announcement stays this many beats before anything happens


@dataclass
class Drill:
    """A scripted escalation played in the sandbox's workspace, narrated on the page."""

    emulator: SlackEmulator
    acts: Interactions
    page: WorkspacePage
    clock_scale: float
    pace: float = DEFAULT_BEAT
    ticket: int | None = None  # the customer's Zendesk ticket the escalation starts from
    finished: threading.Event = field(default_factory=threading.Event, init=False)
    failed: str | None = field(default=None, init=False)
    pacing: Pacing = field(init=False)
    _thread: threading.Thread | None = field(default=None, init=False, repr=False)
    _room: str = field(default="", init=False, repr=False)

    def __post_init__(self) -> None:
        self.pacing = Pacing(self.pace, on_change=self.emulator.touch)
        self.page.drill = self.pacing

    @property
    def room(self) -> str:
        """The id of the drill's war room, once it is open ("" before)."""
        return self._room

    def start(self, *, delay: float = 0.0) -> None:
        self._thread = threading.Thread(target=self._run, args=(delay,), name="drill")
        self._thread.start()

    def stop(self) -> None:
        self.pacing.stop()
        if self._thread is not None:
            self._thread.join()

    # ------------------------------------------------------------------ the script

    def _run(self, delay: float) -> None:
        try:
            self.pacing.beat(delay / self.pace if self.pace else 0)
            self._script()
        except Stopped:
            pass
        except Exception as e:
            self.failed = str(e)
            log.exception("the drill stopped")
            self.page.announce(f"⚠️ The drill stopped: {e}", step="")
        finally:
            self.pacing.finish()
            self.finished.set()

    def _script(self) -> None:
        scale = self.clock_scale
        support = self._channel_id(workspace.SUPPORT_CHANNEL)
        deadline_s = ASSESSMENT_MINUTES * 60 / scale
        self._step(
            0,
            "🎓 Drill: an escalation plays out here on its own, step by step"
            + (f", with the clock running {scale:g}x faster" if scale != 1 else "")
            + ". The people are fictional. Pause, step or change the speed with the buttons "
            "on the right.",
            look="#support: the escalation is declared there first.",
            channel=support,
        )

        before = {c["id"] for c in self.page.state(workspace.SUPPORT_LEAD, None)["channels"]}
        from_ticket = f" from {CUSTOMER}'s Zendesk ticket #{self.ticket}" if self.ticket else ""
        self._step(
            1,
            f"Dana, the support lead, declares the escalation in #support{from_ticket}.",
            look="The /escalate command in #support, and the bot's answer only Dana sees.",
            channel=support,
        )
        declaration = f"{DECLARATION} --ticket {self.ticket}" if self.ticket else DECLARATION
        self._act(self.acts.say(workspace.SUPPORT_LEAD, support, declaration))
        room = self._wait(lambda: self._new_room(before), 30, "the war room to open")
        self._room = room.id
        self._wait(lambda: room_ready(self.emulator, room.id), 30, "the brief to be pinned")
        ic = ic_of(self.emulator, room.id) or workspace.IC
        ic_name = self.emulator.user(ic)["real_name"].split()[0]
        self._step(
            2,
            f"The war room #{room.name} is open: the right people are in, {ic_name} is "
            "the incident commander, the brief with every deadline is pinned, and "
            "#exec-escalations has been told.",
            look="The room under War rooms on the left, its topic (customer, IC, status) and "
            "the pinned brief: one line per step, each with its deadline"
            + (
                f", and ticket #{self.ticket} as Zendesk has it. {CUSTOMER} (their side), on "
                "the left, shows the ticket's conversation as the customer sees it."
                if self.ticket
                else "."
            ),
            channel=room.id,
        )

        self._step(
            3,
            "Engineers and the CSM share what they see.",
            look="The room's messages: internal notes, for the team. None of it reaches the "
            "customer.",
            channel=room.id,
        )
        self._post(
            workspace.ENGINEER,
            "Seeing 502s from the EU payment gateway since 09:12 UTC; error rate 38% and climbing.",
        )
        self.pacing.beat()
        self._post(
            workspace.CSM,
            "Globex's CTO has emailed twice. Their EU flash sale starts tomorrow morning.",
        )
        self.pacing.beat()
        self._post(
            workspace.ENGINEER,
            "Gateway pods are OOM-killed since this morning's deploy (v2025.06.3). Rolling back.",
        )
        self.pacing.beat()

        self._step(
            4,
            f"Nobody marks the assessment done, so its {ASSESSMENT_MINUTES}-minute "
            f"deadline passes ({deadline_s:g} s here) and the bot reminds the room.",
            look="The bot's overdue reminder in the room, and step 1 of the pinned brief, "
            "still open.",
            channel=room.id,
        )
        self._wait(lambda: self._bot_said("overdue"), deadline_s + 60, "the overdue reminder")
        self.pacing.beat()

        self._step(
            5,
            f"{ic_name} marks the assessment done and records a status update; the CSM and "
            f"{ic_name} record what the customer may be told.",
            look="Step 1 of the pinned brief now says Done; the bot confirms the update and "
            "each fact for the customer (impact, what we are doing, the workaround).",
            channel=room.id,
        )
        self._post(ic, f"@{workspace.BOT_NAME} done assessment")
        self.pacing.beat()
        self._post(
            ic,
            f"@{workspace.BOT_NAME} update Rolled back the gateway deploy; 502s down to "
            "5% and falling. Next: confirm EU checkout has fully recovered.",
        )
        self.pacing.beat()
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
        self.pacing.beat()

        self._step(
            6,
            "Victoria, the VP, asks the bot to draft the customer update.",
            look="The thread under Victoria's message: the draft, the notes under it, and "
            "its Approve, Edit and Regenerate buttons.",
            channel=room.id,
        )
        ask = self._post(workspace.VP, f"@{workspace.BOT_NAME} draft update")
        draft = self._wait(lambda: self._draft_in_thread(ask), 60, "the draft")
        self.pacing.beat()

        self._step(
            7,
            f"{ic_name} reads the draft, approves it and sends it: it goes to {CUSTOMER}'s "
            "CTO by email, once, exactly as approved.",
            look=f"Under the draft: who approved it, then where it went. {CUSTOMER} (their "
            "side), on the left, shows the letter in their CTO's inbox.",
            channel=room.id,
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
        send = self._wait(lambda: self._button(draft[0].ts, ActionId.DRAFT_SEND), 30, "Send")
        self.pacing.beat()
        self._act(
            self.acts.click(
                ic,
                block_id=send,
                action_id=ActionId.DRAFT_SEND,
                channel=room.id,
                message_ts=draft[0].ts,
            )
        )
        self._wait(lambda: self._bot_said("📨 Sent"), 60, "the letter to be sent")
        self.pacing.beat()
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
        self.pacing.beat()

        self._step(
            8,
            f"{ic_name} resolves the escalation.",
            look="The topic and the pinned brief say Resolved; the bot drafts the "
            "post-incident review.",
            channel=room.id,
        )
        self._post(
            ic,
            f"@{workspace.BOT_NAME} resolve Rolled back gateway v2025.06.3; EU checkout "
            "healthy for 10 minutes.",
        )
        self._wait(lambda: self._bot_said("Resolved"), 30, "the resolution")
        self._wait(lambda: self._bot_said("Post-incident review"), 60, "the review")
        self.pacing.beat()
        self._step(
            9,
            "Resolved: topic and brief say so, reminders stopped, follow-ups are "
            "scheduled, the exec channel was told, and the post-incident review is posted in "
            "the room. The drill is over — now try it yourself: /escalate Acme Corp: checkout "
            "fails --arr 250k",
            look="The post-incident review in the room, and #exec-escalations on the left.",
            channel=room.id,
            then_beat=False,
        )

    # ------------------------------------------------------------------ helpers

    def _step(
        self, number: int, text: str, *, look: str, channel: str | None, then_beat: bool = True
    ) -> None:
        """Announce step ``number`` (0: the introduction), then give people time to read it
        before anything happens; a Next step that asked for this step pauses here."""
        self.pacing.check()
        log.info("drill %s", text)
        step = f"{number}/{STEPS}" if number else ""
        self.page.announce(text, channel=channel, step=step, look=look)
        self.pacing.entered_step(number)
        if then_beat:
            self.pacing.beat(READING_BEATS)

    def _act(self, outcome: Any) -> None:
        if not outcome.ok:
            raise RuntimeError(outcome.error or str(outcome.errors))

    def _post(self, user: str, text: str) -> str:
        """Post in the war room as ``user``, typed as in the composer (``@vp`` and all)."""
        self.pacing.check()
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

    def _button(self, ts: str, action: str) -> str | None:
        """The block id of the button `action` on the bot's message `ts`, once it shows."""
        for m in self._bot_messages():
            if m.ts != ts:
                continue
            for block in m.blocks or ():
                elements = block.get("elements") or ()
                if any(isinstance(e, dict) and e.get("action_id") == action for e in elements):
                    return str(block.get("block_id"))
        return None

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
        """Wait for the bot: ``found()`` is checked again each time the workspace changes."""
        deadline = time.monotonic() + timeout
        while True:
            version = self.emulator.version
            result = found()
            if result:
                return result
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError(f"waited {timeout:g} s for {what}")
            if self.pacing.stopped:
                raise Stopped
            # Short waits: a stopping sandbox is noticed soon even if nothing changes.
            self.emulator.wait_for_change(version, min(left, 0.5))


def room_ready(emulator: SlackEmulator, channel: str) -> bool:
    """The war room's brief is pinned (the last of the three waves of a declaration)."""
    found = emulator.find_channel(channel)
    return bool(found and found.pins)


def ic_of(emulator: SlackEmulator, channel: str) -> str | None:
    """The incident commander named in the room's topic (`Acme · IC <@U…> · …`)."""
    found = emulator.find_channel(channel)
    match = re.search(r"IC <@([UW][A-Z0-9]+)", found.topic if found else "")
    return match.group(1) if match else None

"""A declaration becomes a war room: claimed once on the ack path, paced to Slack's channel
creation limit, then built in three waves of Slack calls.

The build's results are named (`RoomBuild`), and everything that went wrong after the channel
exists is said to the declarer in one line.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime

from bot.domain import escalation as domain
from bot.domain.declaration import Accepted, Declaration
from bot.domain.errors import Unavailable
from bot.domain.escalation import Escalation
from bot.domain.naming import channel_name
from bot.domain.timeline import EventKind, event
from bot.metrics import Metrics
from bot.services.base import RoomService
from bot.slack import blocks
from bot.slack.gateway import describe
from bot.slack.text import channel_link, mention
from bot.store import Claim, Store, fingerprint

log = logging.getLogger(__name__)

Reply = Callable[[str], None]
# Runs work after the ack so that failures reach the person (see bot/listeners/errors.py).
Guard = Callable[[Callable[[], object]], object]


@dataclass(frozen=True)
class Pacing:
    """How fast channels may be created: Slack allows an app about 20 a minute."""

    creates_per_minute: int = 20
    window: float = 60.0  # seconds; tests and benchmarks shrink it
    dedup_seconds: int = 600  # how long an identical declaration opens no second room


@dataclass
class RoomBuild:
    """What building the room did, by name; each value that failed is the exception."""

    escalation: Escalation
    failed_invites: dict[str, str] = field(default_factory=dict)
    failed_groups: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def summary(self) -> str:
        link = channel_link(self.escalation.channel_id)
        if self.problems:
            return f"War room {link} is open, but: " + "; ".join(self.problems) + "."
        return f"War room {link} is ready. IC: {mention(self.escalation.ic)}."


@dataclass
class Declaring(RoomService):
    store: Store
    metrics: Metrics
    pacing: Pacing = field(default_factory=Pacing)

    @property
    def known_criteria(self) -> tuple[str, ...]:
        return self.protocol.criterion_ids

    def refused(self) -> None:
        """A declaration could not be read (the caller was told why)."""
        self.metrics.declarations.labels("invalid").inc()

    # -- the ack path ----------------------------------------------------------------------
    def accept(self, decl: Declaration, token: str) -> Accepted:
        """Claim the declaration so a double submit or a retried delivery opens one room, and
        reserve its turn to create a channel. Two Redis round trips; Unavailable when Redis is
        down."""
        fp = _fingerprint(decl)
        # Pending for minutes, not the whole dedup window: if the process that took it dies,
        # the declarer can declare again soon. Queued declarations extend it (below).
        claim = self.store.claim_declaration(fp, token, ttl=min(self.pacing.dedup_seconds, 300))
        if not claim.mine:
            self.metrics.declarations.labels("duplicate").inc()
            return Accepted(token=None, channel_id=claim.channel_id)
        return Accepted(token=claim.token, wait=self._reserve_creation(fp, claim))

    def _reserve_creation(self, fp: str, claim: Claim) -> float:
        """Seconds until this declaration may create its channel (0: now). Slack's limit is in
        real time, whatever clock the escalations run on."""
        now_ms = int(time.time() * 1000)
        # 5% more than the window: the call itself comes a little after its reserved time
        window_ms = int(self.pacing.window * 1050)
        slot = self.store.reserve_slot(now_ms, window_ms, max(1, self.pacing.creates_per_minute))
        wait = max(0.0, (slot - now_ms) / 1000)
        if wait > 120:
            self.store.hold_claim(fp, claim.token, ttl=int(wait) + 180)
        return wait

    # -- after the ack ---------------------------------------------------------------------
    def open_form(self, trigger_id: str) -> None:
        self.gateway.open_view(trigger_id, blocks.declaration_form(self.protocol))

    def open_war_room_after(
        self, delay: float, decl: Declaration, token: str, reply: Reply, guard: Guard
    ) -> None:
        """Open the room now, or when its turn comes without holding a worker meanwhile."""
        if delay <= 0:
            guard(lambda: self.open_war_room(decl, token, reply))
            return
        timer = threading.Timer(
            delay, guard, args=(lambda: self.open_war_room(decl, token, reply),)
        )
        timer.daemon = True
        timer.name = f"queued-room-{decl.customer[:20]}"
        timer.start()

    def open_war_room(self, decl: Declaration, token: str, reply: Reply) -> Escalation | None:
        """Create the room and tell the declarer how it went; None when another request for
        the same declaration is doing it."""
        started = time.monotonic()
        fp = _fingerprint(decl)
        if not self.store.holds_claim(fp, token):
            return None
        try:
            build = self.build(decl)
        except BaseException:
            self._release(fp)
            self.metrics.declarations.labels("failed").inc()
            raise
        esc = build.escalation
        self.store.complete_claim(fp, esc, ttl=self.pacing.dedup_seconds)
        self.metrics.declarations.labels("opened").inc()
        self.metrics.room_seconds.observe(time.monotonic() - started)
        try:
            reply(build.summary())
        except Exception:
            # The room exists; failing to say so must not undo it.
            log.exception("escalation %s: could not tell the declarer", esc.id)
        return esc

    def build(self, decl: Declaration) -> RoomBuild:
        """The room, in three waves of Slack calls: the channel (with the user-group look-ups
        beside it); then invites, brief, topic and exec notice at once; then the pin."""
        facts = self.memory.customer_facts(decl.customer) or {}
        if decl.arr is None and isinstance(facts.get("arr"), int):
            decl = replace(decl, arr=facts["arr"])
        now = self.clock()
        bot = self.gateway.bot_user_id
        rotation = None if decl.ic else self.store.next_in_rotation(self.config.incident_commanders)
        ic = domain.choose_ic(decl.ic, rotation, decl.declarer)
        ic_source = "requested" if decl.ic else ("rotation" if rotation else "declarer")
        criteria = domain.effective_criteria(decl.criteria, decl.arr, self.protocol)
        wanted = self.config.responders_for(criteria)
        csm = facts.get("csm")
        if isinstance(csm, str) and csm:
            wanted.append(csm)
        groups = [m for m in wanted if m.startswith("S")]
        people = [m for m in wanted if not m.startswith("S")]

        # Wave 1: the channel, with the user-group lookups running beside it.
        groups_future = self.gateway.submit(self.gateway.usergroup_members, groups)
        channel_id, name = self.gateway.create_channel(
            lambda attempt: channel_name(now.date(), decl.customer, attempt),
            private=decl.private,
            skip=self.store.exists,
        )
        esc, events = domain.open_escalation(
            id=name,
            channel_id=channel_id,
            declaration=decl,
            ic=ic,
            vps=self.config.vp,
            protocol=self.protocol,
            now=now,
            clock_scale=self.escalations.clock_scale,
            ic_source=ic_source,
            bot_user_id=bot,
        )
        try:
            self.escalations.create(esc, events)
        except Unavailable:
            # Nothing half-created: the channel goes too.
            self._archive_quietly(channel_id)
            raise
        log.info("escalation %s: channel %s created", esc.id, channel_id)

        group_members, failed_groups = groups_future.result()
        build = RoomBuild(escalation=esc, failed_groups=failed_groups)
        self._furnish(build, decl, [*people, *group_members], now, ic_source)
        self._pin_brief(build)
        self._note_failed_invites(build)
        seconds = (self.clock() - now).total_seconds()
        self.escalations.append(
            esc.id,
            event(self.clock(), EventKind.WAR_ROOM_READY, bot, "War room ready", seconds=seconds),
        )
        return build

    def _furnish(
        self, build: RoomBuild, decl: Declaration, others: list[str], now: datetime, source: str
    ) -> None:
        """Wave 2: everything that needs only the channel."""
        esc = build.escalation
        channel_id = esc.channel_id
        invite = domain.invitees(esc, others, exclude=[self.gateway.bot_user_id])
        brief = self.briefing.brief(esc)
        calls: dict[str, Callable[[], object]] = {
            "invites": lambda: self.gateway.invite(channel_id, invite),
            "brief": lambda: self.gateway.post(channel_id, brief),
            "topic": lambda: self.briefing.set_topic(esc),
            "instruction": lambda: self.memory.write_instruction(
                esc, protocol_name=self.protocol.name
            ),
            "decision": lambda: self.memory.record_decision(
                esc.id, "ic_assigned", decl.declarer, now, ic=esc.ic, source=source
            ),
        }
        exec_channel = (self.config.exec_channel or "").lstrip("#")
        if exec_channel:
            notice = blocks.exec_notice(esc, self.protocol)
            calls["exec_notice"] = lambda: self.gateway.post(exec_channel, notice)
        done = self.gateway.together(calls)

        problems = build.problems
        if isinstance(done["invites"], Exception):
            problems.append(f"inviting people failed ({describe(done['invites'])})")
        else:
            build.failed_invites = done["invites"]
        if isinstance(done["topic"], Exception):
            problems.append(f"setting the channel topic failed ({describe(done['topic'])})")
        written = [done["instruction"], done["decision"]]
        if any(isinstance(w, Exception) for w in written):
            log.error("escalation %s: writing its memory failed: %s", esc.id, written)
            problems.append("writing the escalation's memory files failed")
        if isinstance(done.get("exec_notice"), Exception):
            problems.append(f"telling #{exec_channel} failed ({describe(done['exec_notice'])})")
        for group, code in build.failed_groups.items():
            problems.append(f"user group {group} could not be expanded ({code})")
        if isinstance(done["brief"], Exception):
            problems.append(f"posting the brief failed ({describe(done['brief'])})")
        else:
            build.escalation = esc.model_copy(update={"brief_ts": done["brief"]})

    def _pin_brief(self, build: RoomBuild) -> None:
        """Wave 3: pin the brief, and remember where it is to update it in place later."""
        esc = build.escalation
        brief_ts = esc.brief_ts
        if not brief_ts:
            return
        done = self.gateway.together(
            {
                "pin": lambda: self.gateway.pin(esc.channel_id, brief_ts),
                "saved": lambda: self.escalations.update(
                    esc.id, lambda e: (e.model_copy(update={"brief_ts": brief_ts}), [])
                ),
            }
        )
        if isinstance(done["pin"], Exception):
            build.problems.append(f"pinning the brief failed ({describe(done['pin'])})")
        if isinstance(done["saved"], Exception):
            log.error("escalation %s: saving the brief's ts failed: %s", esc.id, done["saved"])
        else:
            build.escalation = done["saved"][0]

    def _note_failed_invites(self, build: RoomBuild) -> None:
        failed = build.failed_invites
        if not failed:
            return
        esc = build.escalation
        lines = [f"• {mention(u)}: {reason}" for u, reason in failed.items()]
        note = "⚠️ Could not invite everyone:\n" + "\n".join(lines)
        if esc.ic in failed:
            note += (
                f"\nThe incident commander {mention(esc.ic)} is not in the room: "
                "reassign with `ic @someone`."
            )
        build.problems.append(f"{len(failed)} invite(s) failed")
        try:
            self.gateway.post_text(esc.channel_id, note)
        except Exception:
            log.exception("could not post a note in %s", esc.channel_id)

    def _release(self, fp: str) -> None:
        try:
            self.store.release_claim(fp)
        except Unavailable:
            log.warning("could not release declaration claim %s (Redis down); it expires", fp)

    def _archive_quietly(self, channel_id: str) -> None:
        try:
            self.gateway.archive(channel_id)
        except Exception:
            log.exception("could not archive half-created channel %s", channel_id)


def _fingerprint(decl: Declaration) -> str:
    return fingerprint(decl.declarer, decl.customer, decl.summary)

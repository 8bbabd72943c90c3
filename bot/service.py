"""The escalation service: load, decide (domain), save, then do what the decision says.

It owns the clock and the order of Slack calls. Listeners call it; it never sees Bolt.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Protocol as TypingProtocol

from slack_sdk.errors import SlackApiError

from bot.config import WarroomConfig
from bot.domain import escalation as domain
from bot.domain.declaration import Declaration
from bot.domain.errors import NotAllowed, NotAWarRoom, Unavailable, WarroomError
from bot.domain.escalation import Escalation
from bot.domain.naming import channel_name
from bot.domain.timeline import EventKind, event
from bot.domain.timers import Timer, digest_timer, followup_offsets, timers_for
from bot.memory import Memory
from bot.metrics import Metrics
from bot.slack import blocks
from bot.slack.gateway import SlackGateway, error_code
from bot.store import Claim, Store, fingerprint
from protocols.schema import Protocol

log = logging.getLogger(__name__)

Reply = Callable[[str], None]
# Runs work after the ack so that failures reach the person (see bot/listeners/errors.py).
Guard = Callable[[Callable[[], object]], object]

# What an invite failure means to the people in the room.
_INVITE_REASONS = {
    "user_not_found": "not found in this workspace (they may have left)",
    "user_disabled": "deactivated",
    "cant_invite": "Slack does not allow inviting them here",
    "user_is_restricted": "a guest who cannot be invited to this channel",
    "user_is_ultra_restricted": "a single-channel guest",
}


class TimerPort(TypingProtocol):
    """What the service needs of the scheduler."""

    def schedule(self, timer: Timer) -> None: ...
    def cancel(self, timer_id: str) -> None: ...
    def apply(self, before: list[Timer], after: list[Timer]) -> None: ...
    def job_ids(self) -> set[str]: ...
    def schedule_many(self, timers: Iterable[Timer]) -> None: ...
    def cancel_many(self, timer_ids: Iterable[str]) -> None: ...


# Slack's answers when a war room can no longer be posted in.
_ROOM_GONE = frozenset({"is_archived", "channel_not_found", "not_in_channel"})


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class EscalationService:
    store: Store
    gateway: SlackGateway
    memory: Memory
    protocol: Protocol
    config: WarroomConfig
    metrics: Metrics
    timers: TimerPort
    clock_scale: float = 1.0
    dedup_seconds: int = 600
    clock: Callable[[], datetime] = utcnow
    # How long one timer firing may take before another process may try it again.
    firing_seconds: int = 120
    creates_per_minute: int = 20
    create_window: float = 60.0  # seconds; tests and benchmarks shrink it
    # Called with the escalation once it is resolved (the review is drafted then).
    on_resolved: list[Callable[[Escalation], object]] = field(default_factory=list)
    # Called after an escalation changed (App Home refreshes then).
    on_changed: list[Callable[[Escalation], object]] = field(default_factory=list)
    # Builds the weekly digest for (week start, week end); None: no digest.
    digest: Callable[[datetime, datetime], blocks.Message] | None = None

    # -- declaring -------------------------------------------------------------------------
    def claim(self, decl: Declaration, token: str) -> Claim:
        """Reserve this declaration so a double submit or a retried delivery opens one room.

        Runs on the ack path: one Redis round trip. Raises Unavailable when Redis is down.
        """
        fp = self._fingerprint(decl)
        # Pending for minutes, not the whole dedup window: if the process that took it dies,
        # the declarer can declare again soon. Queued declarations extend it (below).
        claim = self.store.claim_declaration(fp, token, ttl=min(self.dedup_seconds, 300))
        if not claim.mine:
            self.metrics.declarations.labels("duplicate").inc()
        return claim

    def reserve_creation(self, decl: Declaration, token: str) -> float:
        """Seconds until this declaration may create its channel (0: now). Slack allows about
        20 channel creations a minute; a burst beyond that waits its turn."""
        now_ms = int(self.clock().timestamp() * 1000)
        # 5% more than the window: the call itself comes a little after its reserved time
        window_ms = int(self.create_window * 1050)
        slot = self.store.reserve_slot(now_ms, window_ms, max(1, self.creates_per_minute))
        wait = max(0.0, (slot - now_ms) / 1000)
        if wait > 120:
            self.store.hold_claim(self._fingerprint(decl), token, ttl=int(wait) + 180)
        return wait

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

    def open_form(self, trigger_id: str) -> None:
        self.gateway.open_view(trigger_id, blocks.declaration_form(self.protocol))

    def open_war_room(self, decl: Declaration, token: str, reply: Reply) -> Escalation | None:
        """Create the room. Slack calls run in three waves: the channel (with the user-group
        lookups beside it); then invites, brief, topic and exec notice at once; then the pin."""
        started = time.monotonic()
        fp = self._fingerprint(decl)
        if not self.store.holds_claim(fp, token):
            return None  # another request for the same declaration is doing it
        try:
            esc, summary = self._open(decl)
        except BaseException:
            self._release(fp)
            self.metrics.declarations.labels("failed").inc()
            raise
        self.store.complete_claim(fp, esc, ttl=self.dedup_seconds)
        self.metrics.declarations.labels("opened").inc()
        self.metrics.room_seconds.observe(time.monotonic() - started)
        try:
            reply(summary)
        except Exception:
            # The room exists; failing to say so must not undo it.
            log.exception("escalation %s: could not tell the declarer", esc.id)
        return esc

    def _open(self, decl: Declaration) -> tuple[Escalation, str]:
        """The room, and what to tell the declarer about it."""
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
        try:
            channel_id, name = self.gateway.create_channel(
                lambda attempt: channel_name(now.date(), decl.customer, attempt),
                private=decl.private,
                skip=self.store.exists,
            )
        except SlackApiError as e:
            code = error_code(e)
            log.error("conversations.create failed for %s: %s", decl.customer, code)
            raise WarroomError(
                f"Slack refused to create the war-room channel ({code}). Nothing was created; "
                "try again, and if it keeps failing check the app's channel permissions."
            ) from e

        esc, events = domain.open_escalation(
            id=name,
            channel_id=channel_id,
            declaration=decl,
            ic=ic,
            vps=self.config.vp,
            protocol=self.protocol,
            now=now,
            clock_scale=self.clock_scale,
            ic_source=ic_source,
            bot_user_id=bot,
        )
        try:
            self.store.create(esc, events)
        except Unavailable:
            # Nothing half-created: the channel goes too.
            self._archive_quietly(channel_id)
            raise
        self.timers.apply([], self.timers_for(esc))
        self._changed(esc)
        log.info("escalation %s: channel %s created", esc.id, channel_id)

        group_members, failed_groups = groups_future.result()
        invite = domain.invitees(esc, [*people, *group_members], exclude=[bot])
        brief = blocks.brief(esc, self.protocol, self.clock_scale)

        # Wave 2: everything that needs only the channel.
        calls: list[Callable[[], object]] = [
            lambda: self.gateway.invite(channel_id, invite),
            lambda: self.gateway.post(channel_id, brief),
            lambda: self.gateway.set_topic(channel_id, blocks.topic(esc)),
            lambda: self.memory.write_instruction(esc, protocol_name=self.protocol.name),
            lambda: self.memory.record_decision(
                esc.id, "ic_assigned", decl.declarer, now, ic=esc.ic, source=ic_source
            ),
        ]
        exec_channel = self.config.exec_channel
        if exec_channel:
            notice = blocks.exec_notice(esc, self.protocol)
            calls.append(lambda: self.gateway.post(exec_channel.lstrip("#"), notice))
        failed_invites, brief_ts, *rest = self.gateway.together(*calls)

        problems: list[str] = []
        if isinstance(failed_invites, Exception):
            problems.append(f"inviting people failed ({_describe(failed_invites)})")
            failed_invites = {}
        if isinstance(rest[0], Exception):
            problems.append(f"setting the channel topic failed ({_describe(rest[0])})")
        for written in rest[1:3]:
            if isinstance(written, Exception):
                log.error("escalation %s: writing its memory failed: %s", esc.id, written)
                problems.append("writing the escalation's memory files failed")
                break
        if exec_channel and isinstance(rest[3], Exception):
            problems.append(f"telling #{exec_channel.lstrip('#')} failed ({_describe(rest[3])})")
        for group, code in failed_groups.items():
            problems.append(f"user group {group} could not be expanded ({code})")

        # Wave 3: pin the brief (and remember where it is, to update it in place later).
        if isinstance(brief_ts, Exception):
            problems.append(f"posting the brief failed ({_describe(brief_ts)})")
        else:
            pinned, saved = self.gateway.together(
                lambda: self.gateway.pin(channel_id, brief_ts),
                lambda: self.store.update(
                    esc.id, lambda e: (e.model_copy(update={"brief_ts": brief_ts}), [])
                ),
            )
            if isinstance(pinned, Exception):
                problems.append(f"pinning the brief failed ({_describe(pinned)})")
            if isinstance(saved, Exception):
                log.error("escalation %s: saving the brief's ts failed: %s", esc.id, saved)
            else:
                esc = saved[0]

        if failed_invites:
            lines = [
                f"• {blocks.mention(u)}: {_INVITE_REASONS.get(code, code)}"
                for u, code in failed_invites.items()
            ]
            note = "⚠️ Could not invite everyone:\n" + "\n".join(lines)
            if esc.ic in failed_invites:
                note += (
                    f"\nThe incident commander {blocks.mention(esc.ic)} is not in the room: "
                    "reassign with `ic @someone`."
                )
            problems.append(f"{len(failed_invites)} invite(s) failed")
            self._post_quietly(channel_id, note)

        seconds = (self.clock() - now).total_seconds()
        self.store.append(
            esc.id,
            event(self.clock(), EventKind.WAR_ROOM_READY, bot, "War room ready", seconds=seconds),
        )
        link = blocks.channel_link(channel_id)
        if problems:
            return esc, f"War room {link} is open, but: " + "; ".join(problems) + "."
        return esc, f"War room {link} is ready. IC: {blocks.mention(esc.ic)}."

    # -- changes in the war room -----------------------------------------------------------
    def mark_done(self, channel_id: str, step_id: str, user: str) -> tuple[Escalation, bool]:
        """Mark a protocol step done; returns the escalation and whether this call did it."""
        esc = self.in_channel(channel_id)
        now = self.clock()
        esc, events = self.update_escalation(
            esc.id, lambda e: domain.mark_step_done(e, step_id, user, now, self.protocol)
        )
        if events:
            self.record_decision(esc, "step_done", user, step=step_id)
            self.refresh_brief(esc)
        return esc, bool(events)

    def record_update(self, channel_id: str, user: str, text: str) -> Escalation:
        esc = self.in_channel(channel_id)
        now = self.clock()
        esc, _ = self.update_escalation(
            esc.id,
            lambda e: domain.record_update(e, user, text, now, self.protocol, self.clock_scale),
        )
        self.refresh_brief(esc)
        return esc

    def resolve(self, channel_id: str, user: str, summary: str) -> Escalation:
        esc = self.in_channel(channel_id)
        self.authorize(esc, user, "resolve this escalation")
        now = self.clock()
        esc, _ = self.update_escalation(esc.id, lambda e: domain.resolve(e, user, summary, now))
        self.store.track_follow_ups(esc.id, bool(self.timers_for(esc)))
        self.record_decision(esc, "resolved", user, summary=esc.resolution)
        calls: list[Callable[[], object]] = [
            lambda: self.gateway.set_topic(esc.channel_id, blocks.topic(esc)),
            lambda: self.refresh_brief(esc),
        ]
        if self.config.exec_channel:
            notice = blocks.resolved_notice(esc)
            calls.append(lambda: self.gateway.post(self.config.exec_channel.lstrip("#"), notice))
        for result in self.gateway.together(*calls):
            if isinstance(result, Exception):
                log.error("escalation %s: after resolving: %s", esc.id, _describe(result))
        for hook in self.on_resolved:
            hook(esc)
        return esc

    def reassign_ic(self, channel_id: str, user: str, new_ic: str) -> Escalation:
        esc = self.in_channel(channel_id)
        self.authorize(esc, user, "reassign the incident commander")
        now = self.clock()
        esc, events = self.update_escalation(
            esc.id, lambda e: domain.reassign_ic(e, user, new_ic, now)
        )
        if events:
            self.record_decision(
                esc, "ic_changed", user, ic=new_ic, previous=events[0].data["previous"]
            )
            failed = self.gateway.invite(esc.channel_id, [new_ic])
            if failed:
                reason = _INVITE_REASONS.get(failed[new_ic], failed[new_ic])
                raise WarroomError(
                    f"{blocks.mention(new_ic)} is now IC but could not be invited: {reason}."
                )
            self.gateway.together(
                lambda: self.gateway.set_topic(esc.channel_id, blocks.topic(esc)),
                lambda: self.refresh_brief(esc),
            )
        return esc

    def next_update_due(self, esc: Escalation) -> datetime | None:
        """When the protocol's next status update is due (None once resolved)."""
        step = self.protocol.update_step
        if step is None or esc.status is not domain.Status.INVESTIGATING:
            return None
        return next((s.due_at for s in esc.steps if s.id == step.id), None)

    def status(self, channel_id: str) -> str:
        return blocks.status(self.in_channel(channel_id), self.protocol, self.clock())

    def timeline(self, channel_id: str) -> str:
        return blocks.timeline(self.store.timeline(self.in_channel(channel_id).id))

    # -- timers ----------------------------------------------------------------------------
    def fire_deadline(self, esc_id: str, step_id: str) -> None:
        esc = self.store.get(esc_id)
        state = domain.reminder_due(esc, step_id) if esc else None
        if esc is None or state is None or state.due_at is None:
            return
        step = self.protocol.step(step_id)
        vps = esc.vps if step.notify_vp else ()
        message = blocks.overdue_reminder(esc, step.title, step.id, state.due_at, vps)
        self._fire_once(
            f"deadline:{esc_id}:{step_id}",
            esc,
            lambda: self.gateway.post(esc.channel_id, message),
            lambda e: domain.note_reminder(e, step_id, self.clock()),
        )

    def fire_nudge(self, esc_id: str, due: str) -> None:
        esc = self.store.get(esc_id)
        when = datetime.fromisoformat(due)
        step = self.protocol.update_step
        if esc is None or step is None or step.every is None:
            return
        if not domain.nudge_due(esc, self.protocol, when):
            return
        vps = esc.vps if step.notify_vp else ()
        message = blocks.update_nudge(esc, step.every / self.clock_scale, vps)
        self._fire_once(
            f"nudge:{esc_id}:{int(when.timestamp() * 1000)}",
            esc,
            lambda: self.gateway.post(esc.channel_id, message),
            lambda e: domain.note_nudge(e, self.protocol, when, self.clock(), self.clock_scale),
        )

    def fire_follow_up(self, esc_id: str, index: str) -> None:
        esc = self.store.get(esc_id)
        i = int(index)
        if esc is None or not domain.followup_due(esc, i):
            return
        offsets = followup_offsets(self.protocol)
        if i >= len(offsets):
            return
        what = (
            "confirm with the customer that they are satisfied with the resolution"
            if i == 0
            else "the post-incident review is due: mention me with `review`"
        )
        message = blocks.follow_up(esc, i, len(offsets), offsets[i] / self.clock_scale, what)

        def record(e: Escalation) -> tuple[Escalation, list]:
            return domain.note_followup(e, i, self.clock())

        self._fire_once(
            f"follow_up:{esc_id}:{i}",
            esc,
            lambda: self.gateway.post(esc.channel_id, message),
            record,
        )
        after = self.store.get(esc_id)
        if after is not None:
            self.store.track_follow_ups(esc_id, bool(self.timers_for(after)))

    def fire_digest(self, week: str) -> None:
        """The weekly digest to the exec channel, once; then the next week's is scheduled."""
        channel = self.config.exec_channel
        if channel is None or self.digest is None:
            return
        now = self.clock()
        message = self.digest(now - timedelta(days=7), now)  # the seven days up to now
        this = digest_timer(now - timedelta(days=7))

        def retry(seconds: float) -> None:
            later = self.clock() + timedelta(seconds=seconds)
            self.timers.schedule(replace(this, id=f"digest:{week}", detail=week, at=later))

        self._fire_once(
            f"digest:{week}",
            None,
            lambda: self.gateway.post(channel.lstrip("#"), message),
            None,
            retry,
        )
        self.timers.schedule(digest_timer(now + timedelta(minutes=1)))

    def _fire_once(
        self,
        name: str,
        esc: Escalation | None,
        post: Callable[[], object],
        record: Callable[[Escalation], tuple[Escalation, list]] | None,
        retry: Callable[[float], None] | None = None,
    ) -> None:
        """Post at most once across every process, and never lose the firing: an attempt that
        fails, or that another process has under way, is tried again later."""
        if retry is None:
            assert esc is not None

            def retry(seconds: float) -> None:
                self._retry_later(esc, seconds)

        claim = self.store.begin_once(name, ttl=self.firing_seconds)
        if claim == "done":
            return
        if claim != "mine":
            retry(float(claim) + 1)
            return
        try:
            post()
        except SlackApiError as e:
            if error_code(e) not in _ROOM_GONE:
                self._post_failed(name, e, retry)
                return
            # The room was archived, deleted or closed to the bot: no retry can post there.
            log.warning("%s not posted, the channel is gone (%s)", name, error_code(e))
        except Exception as e:
            self._post_failed(name, e, retry)
            return
        if esc is not None and record is not None:
            self.update_escalation(esc.id, record)
        self.store.finish_once(name)

    def _post_failed(self, name: str, e: Exception, retry: Callable[[float], None]) -> None:
        log.error("posting %s failed (%s); retrying", name, _describe(e))
        self.store.abandon_once(name)
        retry(30)

    def _retry_later(self, esc: Escalation, seconds: float) -> None:
        later = self.clock() + timedelta(seconds=seconds)
        for timer in self.timers_for(esc):
            if timer.at <= self.clock():
                self.timers.schedule(replace(timer, at=later))

    def reconcile(self) -> tuple[int, int]:
        """Make the job store hold exactly the timers every escalation's state calls for.

        Runs when a process becomes the scheduler's leader. Returns (scheduled, cancelled)."""
        ids = sorted({*self.store.open_ids(), *self.store.following_up_ids()})
        wanted: dict[str, Timer] = {}
        for esc in self.store.get_many(ids):
            for timer in self.timers_for(esc):
                wanted[timer.id] = timer
        present = self.timers.job_ids()
        if self.config.exec_channel and self.digest is not None:
            # the weekly digest; one already due (the leader was down on Monday) fires late
            for job in present:
                if job.startswith("digest:"):
                    week = job.removeprefix("digest:")
                    wanted[job] = replace(digest_timer(self.clock()), id=job, detail=week)
            if not any(t.startswith("digest:") for t in wanted):
                weekly = digest_timer(self.clock())
                wanted[weekly.id] = weekly
        self.timers.cancel_many(present - wanted.keys())
        self.timers.schedule_many(wanted[t] for t in wanted.keys() - present)
        log.info(
            "timers reconciled: %d scheduled, %d cancelled, %d kept",
            len(wanted.keys() - present),
            len(present - wanted.keys()),
            len(wanted.keys() & present),
        )
        return len(wanted.keys() - present), len(present - wanted.keys())

    # -- helpers ---------------------------------------------------------------------------
    def timers_for(self, esc: Escalation) -> list[Timer]:
        return timers_for(esc, self.protocol, self.clock_scale)

    def update_escalation(
        self, esc_id: str, change: Callable[[Escalation], tuple[Escalation, list]]
    ) -> tuple[Escalation, list]:
        """A versioned update, then the timers it implies (scheduled or cancelled)."""
        seen: list[Escalation] = []

        def tracked(current: Escalation) -> tuple[Escalation, list]:
            seen.append(current)
            return change(current)

        new, events = self.store.update(esc_id, tracked)
        if events and seen:
            self.timers.apply(self.timers_for(seen[-1]), self.timers_for(new))
            self._changed(new)
        return new, events

    def _changed(self, esc: Escalation) -> None:
        for hook in self.on_changed:
            try:
                hook(esc)
            except Exception:
                log.exception("escalation %s: a change hook failed", esc.id)

    def record_decision(
        self, esc: Escalation, decision: str, by: str | None, **details: object
    ) -> None:
        """Append to the escalation's decision log; a disk problem is logged, not fatal."""
        try:
            self.memory.record_decision(esc.id, decision, by, self.clock(), **details)
        except OSError:
            log.exception("escalation %s: could not record decision %s", esc.id, decision)

    def refresh_brief(self, esc: Escalation) -> None:
        if esc.brief_ts:
            self.gateway.update(
                esc.channel_id, esc.brief_ts, blocks.brief(esc, self.protocol, self.clock_scale)
            )

    def authorize(self, esc: Escalation, user: str, what: str) -> None:
        roles = self.config.authorized_roles
        if not domain.may_act(esc, user, roles):
            names = {"ic": "the incident commander", "vp": "a VP", "declarer": "the declarer"}
            allowed = ", ".join(names[r] for r in roles)
            raise NotAllowed(f"Sorry — only {allowed} may {what}. Nothing was changed.")

    def first_delivery(self, event_id: str) -> bool:
        return not event_id or self.store.first_delivery(event_id)

    def in_channel(self, channel_id: str) -> Escalation:
        esc = self.store.by_channel(channel_id)
        if esc is None:
            raise NotAWarRoom(
                "This channel is not a war room. Declare an escalation with `/escalate` first."
            )
        return esc

    def _fingerprint(self, decl: Declaration) -> str:
        return fingerprint(decl.declarer, decl.customer, decl.summary)

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

    def _post_quietly(self, channel_id: str, text: str) -> None:
        try:
            self.gateway.post_text(channel_id, text)
        except Exception:
            log.exception("could not post a note in %s", channel_id)


def _describe(e: BaseException) -> str:
    if isinstance(e, SlackApiError):
        return f"Slack said {error_code(e)}"
    return type(e).__name__

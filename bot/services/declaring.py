"""A declaration becomes a war room: accepted once on the ack path (claimed, given its turn
under Slack's channel-creation limit and queued in Redis with everything it needs, in one
step), then built in three waves of Slack calls by whichever process takes it when its turn
comes.

All or nothing. The queued declaration records how far its room got (the channel, then the
escalation); a process that dies mid-build leaves it to be taken again when its lease runs out,
and the next attempt finishes the room from there. A build renews its lease on a heartbeat
while it works, and every write it makes checks that it still holds the lease (its fencing
token): a build that stalled past its lease and was taken over writes nothing more, rolls
nothing back and tells no one; the build that took over finishes the room.

A failure Slack or Redis may get over is tried again; one they will not, or one that lasts
past `Pacing.give_up`, rolls the room back (timers cancelled, record removed, channel
archived). Either way the declarer is told which.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field, replace
from datetime import date, datetime
from typing import Any

from bot.domain import escalation as domain
from bot.domain.declaration import Accepted, Declaration
from bot.domain.errors import Unavailable, WarroomError
from bot.domain.escalation import Escalation
from bot.domain.naming import channel_name
from bot.domain.timeline import EventKind, event
from bot.metrics import Metrics
from bot.services.base import RoomService
from bot.slack import blocks
from bot.slack.gateway import describe, may_pass, shutting_down
from bot.slack.text import channel_link, inert, mention
from bot.store import Claim, Fence, Fenced, Store, fingerprint

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Pacing:
    """How fast channels may be created (Slack allows an app about 20 a minute), and how a
    queued declaration is worked."""

    creates_per_minute: int = 20
    window: float = 60.0  # seconds; tests and benchmarks shrink it
    dedup_seconds: int = 600  # how long an identical declaration opens no second room
    # A process building a room holds it this long; if it dies, another takes over then.
    lease: float = 60.0
    # A room Slack or Redis keeps failing is rolled back this long after it was declared.
    give_up: float = 600.0
    # The first wait before trying a failed build again; it doubles, up to a minute.
    retry: float = 2.0
    # The process that queued or last tried a declaration wakes up for it on time; any other
    # takes it up only this late (that process died, or stopped), so a burst is not built
    # one by one on the queue's watcher.
    adopt_after: float = 3.0


@dataclass(frozen=True)
class ReplyTo:
    """Where the declarer hears how it went: the slash command's response_url (any process
    may answer it for 30 minutes), or their DM with the app (`user`)."""

    response_url: str | None = None
    user: str | None = None


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


def _passing(e: BaseException) -> bool:
    """Whether a failure may pass if the build is tried again."""
    return isinstance(e, Unavailable) or may_pass(e)


@dataclass
class Declaring(RoomService):
    store: Store
    metrics: Metrics
    pacing: Pacing = field(default_factory=Pacing)
    # Told of each room once it is open (the tickets it links are read then, off this path).
    on_opened: Callable[[Escalation], None] | None = None
    # The wake-ups this process set for declarations (their turn, or their next try).
    _timers: dict[str, threading.Timer] = field(default_factory=dict, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _closed: bool = field(default=False, init=False, repr=False)
    # Builds under way here, and when (monotonic) those still going at shutdown stop.
    _building: int = field(default=0, init=False, repr=False)
    _idle: threading.Condition = field(default_factory=threading.Condition, init=False, repr=False)
    _leave_at: float | None = field(default=None, init=False, repr=False)

    @property
    def known_criteria(self) -> tuple[str, ...]:
        return self.protocol.criterion_ids

    def refused(self) -> None:
        """A declaration could not be read (the caller was told why)."""
        self.metrics.declarations.labels("invalid").inc()

    # -- the ack path ----------------------------------------------------------------------
    def accept(self, decl: Declaration, token: str, reply: ReplyTo | None = None) -> Accepted:
        """Claim the declaration so that a double submit or a retried delivery opens one room,
        reserve its turn to create a channel, and queue it with everything needed to open it
        (here or in any other process): one Redis round trip, all or nothing. Unavailable when
        Redis is down (and then nothing was accepted)."""
        fp = _fingerprint(decl)
        now_ms = int(time.time() * 1000)
        queued = {
            "declaration": asdict(decl),
            "fingerprint": fp,
            "reply": asdict(reply or ReplyTo(user=decl.declarer)),
            "day": self.clock().date().isoformat(),
            "accepted_ms": now_ms,
            "tries": 0,
        }
        turn = self.store.accept_declaration(
            fp,
            token,
            queued,
            # the claim outlives every try of the build (see `give_up`)
            claim_ttl=int(self.pacing.give_up + self.pacing.lease) + 60,
            now_ms=now_ms,
            # 5% more than the window: the call itself comes a little after its reserved time
            window_ms=int(self.pacing.window * 1050),
            limit=self.pacing.creates_per_minute,
        )
        if isinstance(turn, Claim):
            self.metrics.declarations.labels("duplicate").inc()
            return Accepted(token=None, channel_id=turn.channel_id)
        return Accepted(token=token, wait=max(0.0, (turn - now_ms) / 1000))

    # -- after the ack ---------------------------------------------------------------------
    def open_form(self, trigger_id: str) -> None:
        self.gateway.open_view(
            trigger_id,
            blocks.declaration_form(self.protocol, ticket_field=self.on_opened is not None),
        )

    def open_when_due(self, token: str, delay: float) -> None:
        """Open the room now, or when its turn comes without holding a worker meanwhile. The
        declaration waits in Redis: if this process stops first, another opens it."""
        if delay <= 0:
            self.open_queued(token)
        else:
            self._wake(token, delay)

    def open_queued(self, token: str) -> Escalation | None:
        """Build the room of the queued declaration `token` if its turn has come and no other
        process holds it; None when there was nothing to do here."""
        if self._leaving():
            return None  # past the shutdown's grace: left in the queue for the next process
        holder = uuid.uuid4().hex
        try:
            taken = self.store.take_declaration(
                self._now_ms(), self._lease_ms(), token, holder=holder
            )
        except Unavailable:
            log.warning("declaration %s not taken (Redis down); trying again shortly", token)
            self._wake(token, self.pacing.retry)
            return None
        return self._work(*taken, holder) if taken else None

    def run_due(self) -> int:
        """Build every queued room whose turn came `adopt_after` ago or more and that no live
        process holds (the safety net after a crash, a restart or a lost wake-up); returns how
        many were taken."""
        taken = 0
        late_ms = int(self.pacing.adopt_after * 1000)
        while not self._closed:
            holder = uuid.uuid4().hex
            job = self.store.take_declaration(
                self._now_ms(), self._lease_ms(), late_ms=late_ms, holder=holder
            )
            if job is None:
                return taken
            taken += 1
            self._work(*job, holder)
        return taken

    def hand_over(self, grace: float = 0.0) -> None:
        """At shutdown: take no more declarations, and forget the wake-ups; the declarations
        they were for wait in Redis for whichever process comes next (their turn is kept).
        Builds under way go on for `grace` seconds; past it, each stops at its next step and
        leaves its declaration, recorded and due at once, to the next process. The process's
        own shutdown never rolls a room back."""
        with self._lock:
            self._closed = True
            self._leave_at = time.monotonic() + grace
            timers, self._timers = list(self._timers.values()), {}
        for timer in timers:
            timer.cancel()

    def drain(self, timeout: float) -> int:
        """Wait up to `timeout` seconds for the builds under way to finish or leave; returns
        how many are still going."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._building and (left := deadline - time.monotonic()) > 0:
                self._idle.wait(left)
            return self._building

    def _leaving(self) -> bool:
        return self._leave_at is not None and time.monotonic() >= self._leave_at

    def _wake(self, token: str, delay: float) -> None:
        with self._lock:
            if self._closed:
                return
            old = self._timers.pop(token, None)
            # a little after the turn, so the turn has surely come when it fires
            timer = threading.Timer(delay + 0.05, self._woken, args=(token,))
            timer.daemon = True
            timer.name = f"queued-room-{token[:12]}"
            self._timers[token] = timer
        if old:
            old.cancel()
        timer.start()

    def _woken(self, token: str) -> None:
        with self._lock:
            self._timers.pop(token, None)
        try:
            self.open_queued(token)
        except Exception:
            log.exception("declaration %s: opening its room failed", token)

    # -- one attempt -----------------------------------------------------------------------
    def _work(self, token: str, queued: dict[str, Any], holder: str) -> Escalation | None:
        """One attempt at the room of a declaration this process now holds (under the fencing
        token `holder`); the declarer is told when the room is open, or rolled back."""
        with self._idle:
            self._building += 1
        try:
            with self._heartbeat(token, holder) as lease:
                try:
                    return self._attempt(lease, queued)
                except Fenced:
                    log.warning(
                        "declaration %s: another process took its build over; leaving it the room",
                        token,
                    )
                except HandOver:
                    self._leave(lease, queued)
                return None
        finally:
            with self._idle:
                self._building -= 1
                self._idle.notify_all()

    def _leave(self, lease: Lease, queued: dict[str, Any]) -> None:
        """This process is stopping: the declaration goes back to the queue as far as it got,
        due at once, for the next process to finish from there (nothing is undone, no one is
        told anything new). If Redis cannot take that, its lease runs out and the same
        happens later."""
        with suppress(Unavailable, Fenced):
            self.store.save_declaration(
                lease.token, queued, self._now_ms(), holder=lease.holder, release=True
            )
        log.warning(
            "declaration %s: this process is stopping; its room (%s) is left to the next one",
            lease.token,
            queued.get("name") or "no channel yet",
        )

    def _attempt(self, lease: Lease, queued: dict[str, Any]) -> Escalation | None:
        started = time.monotonic()
        token = lease.token
        if queued.get("tries") and self._age(queued) >= self.pacing.give_up:
            # Tried for long enough: say so now rather than open a room no one waits for.
            self._roll_back(lease, queued, None)
            return None
        fields = queued["declaration"]
        decl = Declaration(
            **{
                **fields,
                "criteria": tuple(fields["criteria"]),
                "tickets": tuple(fields.get("tickets") or ()),
            }
        )
        try:
            build = self._build(lease, queued, decl)
        except (Fenced, HandOver):
            raise
        except Exception as e:
            self._failed(lease, queued, e)
            return None
        esc = build.escalation
        lease.check()
        # Told before the declaration leaves the queue: a process that dies in between leaves
        # it to another, which finds the room complete and tells again (twice, never never).
        self._tell(queued, build.summary())
        try:
            self.store.finish_declaration(
                token,
                holder=lease.holder,
                claim=(queued["fingerprint"], esc, self.pacing.dedup_seconds),
            )
        except Unavailable:
            # Taken again later, the declaration finds its room complete and only says so.
            log.warning("escalation %s: open, but its declaration is still queued", esc.id)
        self.metrics.declarations.labels("opened").inc()
        self.metrics.room_seconds.observe(time.monotonic() - started)
        if self.on_opened is not None and esc.tickets:
            # Hands the room's tickets to be read elsewhere: nothing here waits on the desk.
            self.on_opened(esc)
        return esc

    @contextmanager
    def _heartbeat(self, token: str, holder: str) -> Iterator[Lease]:
        """The build's lease, renewed every third of it while the build runs (a call waiting
        out Slack's Retry-After included); a renewal that finds it taken over marks it lost."""
        lease = Lease(self.store, token, holder, self._leaving)
        stop = threading.Event()
        every = self.pacing.lease / 3

        def beat() -> None:
            while not stop.wait(every):
                try:
                    if not self.store.renew_declaration(token, holder, self._lease_ms()):
                        lease.lost.set()
                        return
                except Unavailable:
                    log.warning("declaration %s: its lease could not be renewed", token)

        thread = threading.Thread(target=beat, name=f"lease-{token[:12]}", daemon=True)
        thread.start()
        try:
            yield lease
        finally:
            stop.set()

    def _failed(self, lease: Lease, queued: dict[str, Any], e: Exception) -> None:
        token = lease.token
        if self._closed or shutting_down(e):
            # Failed because this process is stopping (its pools refuse work), or while it
            # does: for the next process to judge, never a reason to roll the room back.
            raise HandOver from e
        queued = {**queued, "failure": describe(e)}
        if _passing(e) and self._age(queued) < self.pacing.give_up:
            tries = int(queued.get("tries", 0)) + 1
            delay = min(60.0, self.pacing.retry * 2 ** (tries - 1))
            log.warning(
                "declaration %s: building its room failed (%s); try %d again in %.0f s",
                token,
                describe(e),
                tries,
                delay,
            )
            try:
                self.store.save_declaration(
                    token,
                    {**queued, "tries": tries},
                    self._now_ms() + int(delay * 1000),
                    holder=lease.holder,
                    release=True,
                )
            except Unavailable:
                # Still queued and leased: taken again when the lease runs out.
                delay = self.pacing.lease
            if tries == 1:
                customer = inert(queued["declaration"]["customer"])
                self._tell(
                    queued,
                    f"⏳ Opening the war room for *{customer}* hit a problem ({describe(e)}); "
                    "it is being tried again, and the link follows here.",
                )
            self._wake(token, delay)
            return
        if not isinstance(e, WarroomError):
            log.error("declaration %s: building its room failed", token, exc_info=e)
        self._roll_back(lease, queued, e)

    def _roll_back(self, lease: Lease, queued: dict[str, Any], cause: Exception | None) -> None:
        """Undo what the build did (timers, record, channel), then say so. If Redis is away
        meanwhile the declaration stays queued and is taken up again later. Only by the build
        holding the lease (`Fenced` otherwise): never a room another build is finishing."""
        token = lease.token
        name, channel_id = queued.get("name"), queued.get("channel_id")
        try:
            lease.check()
            esc = self.escalations.get(name) if name else None
            if esc is not None:
                self.escalations.remove(esc)
            if channel_id:
                archived = name if self._archive(channel_id) else None
            else:
                archived = self._undo_names(token)
            self.store.finish_declaration(token, holder=lease.holder, release=queued["fingerprint"])
        except Unavailable:
            log.warning("declaration %s: rolling back waits for Redis", token)
            self._wake(token, self.pacing.lease)
            return
        self.metrics.declarations.labels("failed").inc()
        if isinstance(cause, WarroomError):
            why = cause.message
        else:
            minutes = max(1, round(self._age(queued) / 60))
            why = (
                f"Opening it kept failing for {minutes} min ({queued.get('failure')}). Nothing "
                "was created; declare it again when Slack and Redis are back."
            )
        undone = f" The channel #{archived} made for it is archived." if archived else ""
        self._tell(queued, f"⚠️ No war room was opened. {why}{undone}")

    # -- the build -------------------------------------------------------------------------
    def _build(self, lease: Lease, queued: dict[str, Any], decl: Declaration) -> RoomBuild:
        """The room, in three waves of Slack calls: the channel (with the user-group look-ups
        beside it); then invites, brief, topic and exec notice at once; then the pin. Taken
        up again, it goes on from what the declaration records."""
        facts = self.memory.customer_facts(decl.customer) or {}
        if decl.arr is None and isinstance(facts.get("arr"), int):
            decl = replace(decl, arr=facts["arr"])
        now = self.clock()
        bot = self.gateway.bot_user_id
        criteria = domain.effective_criteria(decl.criteria, decl.arr, self.protocol)
        wanted = self.config.responders_for(criteria)
        csm = facts.get("csm")
        if isinstance(csm, str) and csm:
            wanted.append(csm)
        groups = [m for m in wanted if m.startswith("S")]
        people = [m for m in wanted if not m.startswith("S")]
        token, fence = lease.token, lease.fence
        lease.check()

        # Wave 1: the channel, with the user-group lookups running beside it.
        group_members_of = self.gateway.usergroup_members_later(groups)
        channel_id, name = queued.get("channel_id"), queued.get("name")
        if not (channel_id and name):
            day = date.fromisoformat(queued["day"])
            channel_id, name = self.gateway.create_channel(
                lambda attempt: channel_name(day, decl.customer, attempt),
                private=decl.private,
                reserve=lambda candidate: self._reserve(candidate, lease),
            )
            queued.update(channel_id=channel_id, name=name)
            # From here on a rollback knows what to archive, whoever does it.
            self.store.save_declaration(
                token, queued, self._now_ms() + self._lease_ms(), holder=lease.holder
            )
            log.info("escalation %s: channel %s created", name, channel_id)

        esc = self.escalations.get(name)
        first = esc is None
        was_ready = False
        if esc is None:
            rotation = (
                None
                if decl.ic
                else self.store.next_in_rotation(self.config.incident_commanders, token)
            )
            ic = domain.choose_ic(decl.ic, rotation, decl.declarer)
            ic_source = "requested" if decl.ic else ("rotation" if rotation else "declarer")
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
            if not self.escalations.create(esc, events, fence=fence):
                # Made meanwhile, under this lease before it lapsed or by a build since: the
                # room goes on from that record, never from a second one.
                first = False
                esc = self.escalations.get(name)
                if esc is None:
                    raise Unavailable(f"escalation {name} vanished while being built")
        if not first:
            # Taken up again: the record was written; its timers may not have been.
            self.escalations.schedule(esc)
            timeline = self.escalations.timeline(esc.id)
            assigned = [e for e in timeline if e.kind is EventKind.IC_ASSIGNED]
            ic_source = str(assigned[0].data.get("source")) if assigned else "declarer"
            was_ready = any(e.kind is EventKind.WAR_ROOM_READY for e in timeline)

        group_members, failed_groups = group_members_of()
        build = RoomBuild(escalation=esc, failed_groups=failed_groups)
        lease.check()
        self._furnish(build, decl, [*people, *group_members], now, ic_source, first=first)
        lease.check()
        self._pin_brief(build, fence)
        self._note_failed_invites(build)
        if not was_ready:
            at = self.clock()
            seconds = (at - esc.declared_at).total_seconds()  # a resumed room's, all told
            ready = event(at, EventKind.WAR_ROOM_READY, bot, "War room ready", seconds=seconds)
            # Once, whichever build of the room gets here first.
            self.escalations.append(esc.id, ready, once="war_room_ready")
        return build

    def _reserve(self, name: str, lease: Lease) -> str | None:
        """A channel name for this declaration: "new", "again" (reserved by an attempt
        before), or None (an escalation's, or another declaration's). Only while the build
        holds its lease (`Fenced` otherwise): a build taken over while it waited on Slack
        never goes on to create a channel under the next name."""
        if not self.store.renew_declaration(lease.token, lease.holder, self._lease_ms()):
            lease.lost.set()
            raise Fenced(f"declaration {lease.token}")
        if self.escalations.get(name) is not None:
            return None
        return self.store.reserve_channel_name(name, lease.token)

    def _undo_names(self, token: str) -> str | None:
        """The names this declaration reserved are free again; a channel made under one whose
        answer was lost (and so never recorded) is archived. Returns that channel's name."""
        archived = None
        for name in self.store.reserved_names(token):
            if self.store.reserve_channel_name(name, token) == "again":
                try:
                    found = self.gateway.find_channel(name)
                except Exception as e:
                    log.warning("could not look for #%s to archive it: %s", name, describe(e))
                    found = None
                if found and self._archive(found):
                    archived = name
            self.store.free_channel_name(name, token)
        return archived

    def _furnish(
        self,
        build: RoomBuild,
        decl: Declaration,
        others: list[str],
        now: datetime,
        source: str,
        *,
        first: bool,
    ) -> None:
        """Wave 2: everything that needs only the channel. Posts carry keys, so that an
        attempt after one whose answer was lost, or that died, posts nothing twice."""
        esc = build.escalation
        channel_id = esc.channel_id
        invite = domain.invitees(esc, others, exclude=[self.gateway.bot_user_id])
        brief = self.briefing.brief(esc)
        calls: dict[str, Callable[[], object]] = {
            "invites": lambda: self.gateway.invite(channel_id, invite),
            "brief": lambda: self.gateway.post(
                channel_id, brief, key=f"brief:{esc.id}", look_first=not first
            ),
            "topic": lambda: self.briefing.set_topic(esc),
            "instruction": lambda: self.memory.write_instruction(
                esc, protocol_name=self.protocol.name
            ),
            "decision": lambda: (
                (first or not self._ic_recorded(esc.id))
                and self.memory.record_decision(
                    esc.id, "ic_assigned", decl.declarer, now, ic=esc.ic, source=source
                )
            ),
        }
        exec_channel = (self.config.exec_channel or "").lstrip("#")
        if exec_channel:
            notice = blocks.exec_notice(esc, self.protocol)
            calls["exec_notice"] = lambda: self.gateway.post(
                exec_channel, notice, key=f"declared:{esc.id}", look_first=not first
            )
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

    def _pin_brief(self, build: RoomBuild, fence: Fence) -> None:
        """Wave 3: pin the brief, and remember where it is to update it in place later."""
        esc = build.escalation
        brief_ts = esc.brief_ts
        if not brief_ts:
            return
        done = self.gateway.together(
            {
                "pin": lambda: self.gateway.pin(esc.channel_id, brief_ts),
                "saved": lambda: self.escalations.update(
                    esc.id,
                    lambda e: (e.model_copy(update={"brief_ts": brief_ts}), []),
                    fence=fence,
                ),
            }
        )
        if isinstance(done["pin"], Exception):
            build.problems.append(f"pinning the brief failed ({describe(done['pin'])})")
        if isinstance(done["saved"], Fenced):
            raise done["saved"]
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

    def _ic_recorded(self, esc_id: str) -> bool:
        decisions = self.memory.records.decisions(esc_id)
        return any(d.get("decision") == "ic_assigned" for d in decisions)

    def _archive(self, channel_id: str) -> bool:
        """Archive a channel being rolled back; whether it is (Slack may refuse: logged)."""
        try:
            self.gateway.archive(channel_id)
        except Exception:
            log.exception("could not archive the rolled-back channel %s", channel_id)
            return False
        return True

    def _tell(self, queued: dict[str, Any], text: str) -> None:
        """Tell the declarer; failing to must not undo or redo anything."""
        reply = ReplyTo(**queued["reply"])
        try:
            if reply.response_url:
                self.gateway.respond(reply.response_url, text)
            else:
                self.gateway.post_text(reply.user or queued["declaration"]["declarer"], text)
        except Exception:
            log.exception("could not tell the declarer of %s", queued["declaration"]["customer"])

    def _age(self, queued: dict[str, Any]) -> float:
        """Seconds since the declaration was accepted."""
        return (self._now_ms() - int(queued["accepted_ms"])) / 1000

    def _now_ms(self) -> int:
        # Slack's limit and the leases are in real time, whatever clock escalations run on.
        return int(time.time() * 1000)

    def _lease_ms(self) -> int:
        return int(self.pacing.lease * 1000)


class HandOver(Exception):
    """The process is stopping: the build stops here and leaves its room to the next one."""


@dataclass
class Lease:
    """A build's hold on its declaration: the fencing token its writes carry, and whether a
    heartbeat found it taken over."""

    store: Store
    token: str
    holder: str
    # Whether the process is stopping and builds are to leave their rooms to the next one.
    leaving: Callable[[], bool] = lambda: False
    lost: threading.Event = field(default_factory=threading.Event)

    @property
    def fence(self) -> Fence:
        return self.store.lease_of(self.token, self.holder)

    def check(self) -> None:
        """Raise `Fenced` when another build holds the declaration now, `HandOver` when the
        process is stopping: before each wave of Slack calls, so a build that was taken over
        stops acting in Slack too, and one past the shutdown's grace stops where it is."""
        if self.lost.is_set():
            raise Fenced(f"declaration {self.token}")
        if self.leaving():
            raise HandOver(self.token)


def _fingerprint(decl: Declaration) -> str:
    return fingerprint(decl.declarer, decl.customer, decl.summary)

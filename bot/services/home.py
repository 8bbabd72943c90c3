"""The App Home tab: open escalations, the viewer's own, and the last 30 days' KPIs; and the
weekly digest for the exec channel. Both read the KPIs of `bot.domain.kpi` over the stored
history; `bot.slack.home_view` draws them.

A refresh (after any change) reaches everyone who opened the tab in the last 7 days, so its
cost is counted per refresh, not per viewer: the escalations and their history are read once,
each private room's members are asked of Slack once (and kept a minute), the KPIs are
computed once per distinct set of private escalations a viewer may see, and `views.publish`
is paced under Slack's limit across every process, the most recent viewers first. One
process refreshes at a time; a change during a refresh makes it read again and go on, and
come back to those it already did, so no viewer is starved by a stream of changes.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot.clock import Clock
from bot.domain import kpi
from bot.domain.errors import Unavailable
from bot.domain.escalation import Escalation
from bot.domain.kpi import Kpis
from bot.domain.timeline import Event
from bot.slack import blocks, home_view
from bot.slack.gateway import SlackGateway
from bot.store import Store
from protocols.schema import Protocol

log = logging.getLogger(__name__)

HOME_DAYS = 30
VIEWER_DAYS = 7
# Slack allows views.publish "100+ per minute" (Tier 4, per app and workspace); the tabs take
# 90 of them, evenly spaced, so people opening the tab never wait long for their turn.
PUBLISHES_PER_MINUTE = 90
# A refresher that stops renewing its lease (it died) is replaced by the next change after.
LEASE_MS = 30_000
# How long a private room's member list is trusted: who was invited a minute ago may wait
# that long to see the room on their tab.
MEMBERS_TTL = 60.0


@dataclass
class Refreshed:
    """What one refresh did (the benchmark prints it)."""

    published: int = 0
    # Times the escalations and their 30 days of history were read.
    reads: int = 0
    # The last generation of the escalations it drew.
    generation: int = 0


@dataclass
class HomeData:
    """What every tab is drawn from, read once: the open escalations, the last 30 days, and
    who is in each private room (None: Slack would not say)."""

    now: datetime
    since: datetime
    opened: list[Escalation]
    history: list[tuple[Escalation, list[Event]]]
    members: dict[str, frozenset[str] | None]
    _kpis: dict[frozenset[str], Kpis] = field(default_factory=dict)

    @property
    def private(self) -> list[Escalation]:
        seen = {e.id: e for e in (*self.opened, *(e for e, _ in self.history)) if e.private}
        return list(seen.values())

    def may_see(self, esc: Escalation, user: str) -> bool:
        """A private escalation is shown only to the people in its room."""
        if not esc.private or user in (esc.ic, esc.declarer, *esc.vps):
            return True
        members = self.members.get(esc.channel_id)
        return members is not None and user in members

    def kpis(self, user: str, protocol: Protocol) -> Kpis:
        """The KPIs over what `user` may see, computed once per set of private escalations
        seen (most viewers share one)."""
        seen = frozenset(e.id for e, _ in self.history if e.private and self.may_see(e, user))
        if seen not in self._kpis:
            shown = [(e, ev) for e, ev in self.history if not e.private or e.id in seen]
            self._kpis[seen] = kpi.compute(shown, protocol, self.now, since=self.since)
        return self._kpis[seen]

    def view(self, user: str, protocol: Protocol) -> home_view.View:
        opened = [e for e in self.opened if self.may_see(e, user)]
        k = self.kpis(user, protocol)
        return home_view.home_view(user, opened, k, protocol, self.now, HOME_DAYS)


@dataclass
class Home:
    store: Store
    gateway: SlackGateway
    protocol: Protocol
    clock: Clock
    # Slack's views.publish limit as this deployment paces it; tests and benchmarks shrink
    # the window.
    publishes_per_minute: int = PUBLISHES_PER_MINUTE
    window: float = 60.0
    _members: dict[str, tuple[float, frozenset[str] | None]] = field(default_factory=dict)
    _members_lock: threading.Lock = field(default_factory=threading.Lock)

    # -- one viewer ------------------------------------------------------------------------
    def publish(self, user: str) -> None:
        """Build and publish `user`'s Home tab (they opened it): the escalations they may
        see, the KPIs."""
        now = self.clock()
        self.store.note_home_viewer(user, now)
        data = self.read(now, lambda esc: user not in (esc.ic, esc.declarer, *esc.vps))
        self._wait_turn()
        self.gateway.publish_home(user, data.view(user, self.protocol))

    # -- every recent viewer -----------------------------------------------------------------
    def changed(self, _esc: Escalation, delay: float = 2.0) -> None:
        """An escalation changed: every recent viewer's tab is refreshed, by one process,
        starting once the burst settles."""
        self.store.bump_home_generation()
        self._start_refresher(delay)

    def _start_refresher(self, delay: float) -> None:
        token = uuid.uuid4().hex
        if self.store.claim_home_refresher(token, LEASE_MS):
            timer = threading.Timer(delay, self._refresh_quietly, args=(token,))
            timer.daemon = True
            timer.start()

    def _refresh_quietly(self, token: str) -> None:
        while True:
            try:
                served = self.refresh_viewers(token=token).generation
            except Unavailable as e:  # Redis away (a failover): expected, and said in a line
                log.warning("App Home tabs not refreshed: %s", e)
                self._release(token)
                return
            except Exception:
                log.exception("refreshing App Home tabs failed")
                self._release(token)
                return  # the next change tries again (no loop against a Slack that is down)
            self._release(token)
            # A change made between the last look and the release found the lease taken and
            # started nothing: take the lease again and serve it.
            try:
                if self.store.home_generation() <= served:
                    return
                if not self.store.claim_home_refresher(token, LEASE_MS):
                    return  # someone else serves it
            except Unavailable as e:
                log.warning("App Home tabs not refreshed: %s", e)
                return
            except Exception:
                log.exception("refreshing App Home tabs failed")
                return

    def _release(self, token: str) -> None:
        try:
            self.store.release_home_refresher(token)
        except Unavailable:
            log.warning("the App Home refresh lease was not released; it lapses by itself")
        except Exception:
            log.exception("could not release the App Home refresh lease")

    def refresh_viewers(self, days: int = VIEWER_DAYS, token: str = "") -> Refreshed:
        """Publish every tab opened in the last `days` that does not show the latest state,
        the most recent viewers first, paced under Slack's limit. When the escalations change
        meanwhile, the data is read again and the pass goes on, then comes back for those it
        drew before the change. `token`: the refresh lease (the pass stops if it is lost)."""
        done = Refreshed()
        shown: dict[str, int] = {}  # viewer -> generation their tab shows
        while True:
            generation = self.store.home_generation()
            now = self.clock()
            viewers = self.store.home_viewers(now - timedelta(days=days))
            # Those who were shown nothing yet come first, then those shown the oldest state,
            # each group the most recent viewer first (the sort is stable): a stream of
            # changes cannot keep a pass from reaching the last viewer.
            stale = sorted(
                (u for u in viewers if shown.get(u, -1) < generation),
                key=lambda u: shown.get(u, -1),
            )
            if not stale:
                done.generation = generation
                return done
            data = self.read(now)
            done.reads += 1
            for user in stale:
                current, held = self._wait_turn(token)
                if token and not held:
                    done.generation = generation
                    return done  # the lease lapsed: another process refreshes now
                if current != generation:
                    break  # changed meanwhile: read again, go on with those not yet shown it
                self.gateway.publish_home(user, data.view(user, self.protocol))
                shown[user] = generation
                done.published += 1

    # -- reading -------------------------------------------------------------------------------
    def read(
        self, now: datetime, needs_members: Callable[[Escalation], bool] = lambda _e: True
    ) -> HomeData:
        """The open escalations, the last 30 days and the members of each private room
        (only of those `needs_members` says), each read once."""
        since = now - timedelta(days=HOME_DAYS)
        history = self.store.history(since)
        in_history = {e.id: e for e, _ in history}
        open_ids = self.store.open_ids()
        older = [i for i in open_ids if i not in in_history]
        opened = [in_history[i] for i in open_ids if i in in_history]
        opened += self.store.get_many(older) if older else []
        data = HomeData(now=now, since=since, opened=opened, history=history, members={})
        wanted = [e.channel_id for e in data.private if needs_members(e)]
        data.members = self._room_members(wanted)
        return data

    def _room_members(self, channels: Iterable[str]) -> dict[str, frozenset[str] | None]:
        """Members of each channel, from the last minute's answer or asked of Slack at once."""
        now = time.monotonic()
        found: dict[str, frozenset[str] | None] = {}
        ask = []
        with self._members_lock:
            for channel in dict.fromkeys(channels):
                cached = self._members.get(channel)
                if cached is not None and now - cached[0] < MEMBERS_TTL:
                    found[channel] = cached[1]
                else:
                    ask.append(channel)
        answers = self.gateway.together({c: (lambda c=c: self.gateway.members(c)) for c in ask})
        with self._members_lock:
            for channel, members in answers.items():
                if isinstance(members, Exception):
                    log.warning("members of %s unknown: %s", channel, members)
                    members = None
                else:
                    self._members[channel] = (now, members)
                found[channel] = members
        return found

    def _wait_turn(self, token: str = "") -> tuple[int, bool]:
        """Wait for this process's turn to call views.publish, shared by every process (Slack's
        limit is per app, in real time whatever clock escalations run on); the current
        generation and whether `token` still holds the refresh lease."""
        now_ms = int(time.time() * 1000)
        # Evenly spaced, with 5% to spare: the call comes a little after its reserved time.
        spacing_ms = int(self.window * 1050 / max(1, self.publishes_per_minute))
        slot, generation, held = self.store.home_publish_turn(
            now_ms, spacing_ms, 1, token, LEASE_MS
        )
        wait = (slot - now_ms) / 1000
        if wait > 0:
            time.sleep(wait)
        return generation, held


@dataclass
class Digest:
    """The week's escalations, SLA compliance and what is still open, for the exec channel."""

    store: Store
    protocol: Protocol

    def build(self, week_start: datetime, week_end: datetime) -> blocks.Message:
        week = [(e, ev) for e, ev in self.store.history(week_start) if e.declared_at < week_end]
        k = kpi.compute(week, self.protocol, week_end, since=week_start)
        still_open = self.store.get_many(self.store.open_ids())
        return home_view.digest_message(k, [e for e, _ in week], still_open, week_end)

"""The App Home tab: open escalations, the viewer's own, and the last 30 days' KPIs; and the
weekly digest for the exec channel. Both read the KPIs of `bot.domain.kpi` over the stored
history; `bot.slack.home_view` draws them."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.clock import Clock
from bot.domain import kpi
from bot.domain.escalation import Escalation
from bot.slack import blocks, home_view
from bot.slack.gateway import SlackGateway
from bot.store import Store
from protocols.schema import Protocol

log = logging.getLogger(__name__)

HOME_DAYS = 30


@dataclass
class Home:
    store: Store
    gateway: SlackGateway
    protocol: Protocol
    clock: Clock

    def publish(self, user: str) -> None:
        """Build and publish `user`'s Home tab: the escalations they may see, the KPIs."""
        now = self.clock()
        self.store.note_home_viewer(user, now)
        since = now - timedelta(days=HOME_DAYS)
        history = self.store.history(since)
        opened = [e for e in self.store.get_many(self.store.open_ids()) if self._visible(e, user)]
        shown = [(esc, events) for esc, events in history if self._visible(esc, user)]
        k = kpi.compute(shown, self.protocol, now, since=since)
        view = home_view.home_view(user, opened, k, self.protocol, now, HOME_DAYS)
        self.gateway.publish_home(user, view)

    def changed(self, _esc: Escalation, delay: float = 2.0) -> None:
        """An escalation changed: refresh recent viewers' tabs once the burst settles (one
        refresh per few seconds across every process)."""
        if self.store.claim_home_refresh(max(1, int(delay * 2))):
            timer = threading.Timer(delay, self._refresh_quietly)
            timer.daemon = True
            timer.start()

    def _refresh_quietly(self) -> None:
        try:
            self.refresh_viewers()
        except Exception:
            log.exception("refreshing App Home tabs failed")

    def refresh_viewers(self, days: int = 7) -> int:
        """Re-publish for everyone who opened the tab lately (after an escalation changed)."""
        viewers = self.store.home_viewers(self.clock() - timedelta(days=days))
        for user in viewers:
            self.publish(user)
        return len(viewers)

    def _visible(self, esc: Escalation, user: str) -> bool:
        """A private escalation is shown only to the people in its room."""
        if not esc.private or user in (esc.ic, esc.declarer, *esc.vps):
            return True
        members = self.gateway.members(esc.channel_id)
        return members is not None and user in members


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

"""The App Home tab: open escalations, the viewer's own, and the last 30 days' KPIs; and the
weekly digest for the exec channel. Both read the KPIs of `bot.kpi` over the stored history."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from slack_sdk.errors import SlackApiError
from slack_sdk.models.blocks import (
    Block,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)
from slack_sdk.models.views import View

from bot.domain import kpi
from bot.domain.escalation import Escalation
from bot.service import EscalationService
from bot.slack import blocks
from protocols.durations import human_duration

log = logging.getLogger(__name__)

HOME_DAYS = 30
_MAX_ROWS = 15  # App Home views hold up to 100 blocks


def _pct(share: float | None) -> str:
    return "n/a" if share is None else f"{share:.0%}"


def _dur(value: timedelta | None) -> str:
    return "n/a" if value is None else human_duration(value)


@dataclass
class Home:
    service: EscalationService

    def publish(self, user: str) -> None:
        """Build and publish `user`'s Home tab."""
        self.service.store.note_home_viewer(user, self.service.clock())
        self.service.gateway.client.views_publish(user_id=user, view=self.view(user))

    def changed(self, _esc: Escalation, delay: float = 2.0) -> None:
        """An escalation changed: refresh recent viewers' tabs once the burst settles (one
        refresh per few seconds across every process)."""
        key = f"{self.service.store.keys.prefix}:home-refresh"
        if self.service.store.redis.set(key, 1, nx=True, ex=max(1, int(delay * 2))):
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
        since = self.service.clock() - timedelta(days=days)
        viewers = self.service.store.home_viewers(since)
        for user in viewers:
            try:
                self.publish(user)
            except SlackApiError as e:
                log.warning("App Home for %s not refreshed: %s", user, e.response.get("error"))
        return len(viewers)

    def view(self, user: str) -> View:
        s = self.service
        now = s.clock()
        history = s.store.history(now - timedelta(days=HOME_DAYS))
        opened = [esc for esc in s.store.get_many(s.store.open_ids()) if self._visible(esc, user)]
        shown = [(esc, events) for esc, events in history if self._visible(esc, user)]
        k = kpi.compute(shown, s.protocol, now, since=now - timedelta(days=HOME_DAYS))
        body: list[Block] = [HeaderBlock(text=PlainTextObject(text="War rooms"))]
        mine = [e for e in opened if user in (e.ic, e.declarer)]
        body.append(SectionBlock(text=MarkdownTextObject(text=f"*Yours* ({len(mine)})")))
        body.extend(self._rows(mine, now) or [self._note("Nothing of yours is open.")])
        body.append(DividerBlock())
        body.append(SectionBlock(text=MarkdownTextObject(text=f"*All open* ({len(opened)})")))
        body.extend(self._rows(opened, now) or [self._note("No escalation is open.")])
        body.append(DividerBlock())
        body.append(
            SectionBlock(
                text=MarkdownTextObject(text=f"*Last {HOME_DAYS} days* — {k.total} escalations"),
                fields=[
                    MarkdownTextObject(text=f"*SLA compliance*\n{_pct(k.sla_overall.share)}"),
                    MarkdownTextObject(
                        text=f"*Update cadence met*\n{_pct(k.update_cadence.share)}"
                    ),
                    MarkdownTextObject(
                        text=f"*Time to assessment (median)*\n{_dur(k.time_to_assessment.median)}"
                    ),
                    MarkdownTextObject(
                        text="*First customer update (median)*\n"
                        f"{_dur(k.time_to_first_customer_communication.median)}"
                    ),
                    MarkdownTextObject(
                        text=f"*Time to resolve (median)*\n{_dur(k.time_to_resolve.median)}"
                    ),
                    MarkdownTextObject(text=f"*Follow-up in 48 h*\n{_pct(k.follow_up.share)}"),
                ],
            )
        )
        body.append(
            ContextBlock(
                elements=[
                    MarkdownTextObject(
                        text=f"Updated {blocks.slack_time(now)} · `warroom report` has the rest"
                    )
                ]
            )
        )
        return View(type="home", blocks=body)

    def _rows(self, escs: list[Escalation], now: datetime) -> list[Block]:
        rows: list[Block] = []
        for esc in sorted(escs, key=lambda e: e.declared_at)[:_MAX_ROWS]:
            nxt = esc.next_deadline()
            overdue = [
                self.service.protocol.step(st.id).title
                for st in esc.steps
                if st.overdue(now)
                and st.id in self.service.protocol.step_ids
                and self.service.protocol.step(st.id).due is not None
            ]
            parts = [
                f"*{blocks.escape(esc.customer)}* · {blocks.channel_link(esc.channel_id)}",
                f"IC {blocks.mention(esc.ic)} · open {human_duration(now - esc.declared_at)}",
            ]
            if nxt is not None and nxt.due_at is not None:
                title = self.service.protocol.step(nxt.id).title
                parts.append(f"next: {title}, {blocks.slack_time(nxt.due_at)}")
            if overdue:
                parts.append(f"⏰ overdue: {', '.join(overdue)}")
            rows.append(SectionBlock(text=MarkdownTextObject(text="\n".join(parts))))
        return rows

    @staticmethod
    def _note(text: str) -> Block:
        return ContextBlock(elements=[MarkdownTextObject(text=text)])

    def _visible(self, esc: Escalation, user: str) -> bool:
        """A private escalation is shown only to the people in its room."""
        if not esc.private or user in (esc.ic, esc.declarer, *esc.vps):
            return True
        try:
            resp = self.service.gateway.client.conversations_members(channel=esc.channel_id)
        except SlackApiError:
            return False
        return user in (resp.get("members") or [])


def digest(service: EscalationService, week_start: datetime, week_end: datetime) -> blocks.Message:
    """The week's escalations, SLA compliance and what is still open, for the exec channel."""
    history = service.store.history(week_start)
    week = [(e, ev) for e, ev in history if e.declared_at < week_end]
    k = kpi.compute(week, service.protocol, week_end, since=week_start)
    still_open = [e for e in service.store.get_many(service.store.open_ids())]
    shown = [e for e in week if not e[0].private]
    lines = [
        f"*Weekly escalation digest* — the seven days to {week_end:%a %d %b %H:%M} UTC",
        f"{k.total} declared · {k.resolved} resolved · SLA compliance {_pct(k.sla_overall.share)}"
        f" · update cadence met {_pct(k.update_cadence.share)}"
        f" · median time to resolve {_dur(k.time_to_resolve.median)}",
    ]
    if shown:
        lines.append(
            "This week: "
            + ", ".join(
                f"{blocks.escape(e.customer)} ({e.status.label.lower()})" for e, _ in shown[:20]
            )
        )
    if k.total - len(shown):
        lines.append(f"{k.total - len(shown)} private escalation(s) not listed.")
    if still_open:
        lines.append(
            "Still open: " + ", ".join(blocks.channel_link(e.channel_id) for e in still_open[:20])
        )
    else:
        lines.append("Nothing is still open.")
    text = "\n".join(lines)
    return blocks.Message(
        text=f"Weekly escalation digest: {k.total} declared", blocks=blocks.text_blocks(text)
    )

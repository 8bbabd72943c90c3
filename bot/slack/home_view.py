"""Block Kit for the App Home tab and the weekly digest (pure: no I/O).

Both show the KPIs of `bot.domain.kpi`; what goes in them (which escalations a viewer may see,
which week) is decided by `bot.services.home`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from slack_sdk.models.blocks import (
    Block,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)
from slack_sdk.models.views import View

from bot.domain.escalation import Escalation
from bot.domain.kpi import Kpis, Share
from bot.slack.blocks import Message, md, note, section, text_blocks
from bot.slack.text import channel_link, inert, mention, slack_time
from protocols.durations import human_duration
from protocols.schema import Protocol

_MAX_ROWS = 15  # App Home views hold up to 100 blocks
_DIGEST_NAMES = 20


def counted(n: int, noun: str) -> str:
    """`1 escalation`, `3 escalations`."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _pct(share: float | None) -> str:
    return "n/a" if share is None else f"{share:.0%}"


def _promises(kept: Share) -> str:
    """ "2 of 3 (67%)"; "n/a" before any promised time has come."""
    return "n/a" if not kept.due else f"{kept.met} of {kept.due} ({kept.share:.0%})"


def _dur(value: timedelta | None) -> str:
    return "n/a" if value is None else human_duration(value)


def _field(title: str, value: str) -> MarkdownTextObject:
    return md(f"*{title}*\n{value}")


def home_view(
    user: str,
    opened: Sequence[Escalation],
    kpis: Kpis,
    protocol: Protocol,
    now: datetime,
    days: int,
) -> View:
    """`user`'s Home tab: their open escalations, every open one they may see, the KPIs."""
    mine = [e for e in opened if user in (e.ic, e.declarer)]
    k = kpis
    body: list[Block] = [
        HeaderBlock(text=PlainTextObject(text="War rooms")),
        section(f"*Yours* ({len(mine)})"),
        *(_rows(mine, protocol, now) or [note("Nothing of yours is open.")]),
        DividerBlock(),
        section(f"*All open* ({len(opened)})"),
        *(_rows(opened, protocol, now) or [note("No escalation is open.")]),
        DividerBlock(),
        SectionBlock(
            text=md(f"*Last {days} days* — {counted(k.total, 'escalation')}"),
            fields=[
                _field("SLA compliance", _pct(k.sla_overall.share)),
                _field("Update cadence met", _pct(k.update_cadence.share)),
                _field("Customer promises kept", _promises(k.promises)),
                _field("Time to assessment (median)", _dur(k.time_to_assessment.median)),
                _field(
                    "First customer update (median)",
                    _dur(k.time_to_first_customer_communication.median),
                ),
                _field("Time to resolve (median)", _dur(k.time_to_resolve.median)),
                _field("Follow-up in 48 h", _pct(k.follow_up.share)),
            ],
        ),
        note(f"Updated {slack_time(now)} · `warroom report` has the rest"),
    ]
    return View(type="home", blocks=body)


def _rows(escs: Sequence[Escalation], protocol: Protocol, now: datetime) -> list[Block]:
    rows: list[Block] = []
    for esc in sorted(escs, key=lambda e: e.declared_at)[:_MAX_ROWS]:
        overdue = [
            protocol.step(st.id).title
            for st in esc.steps
            if st.overdue(now)
            and st.id in protocol.step_ids
            and protocol.step(st.id).due is not None
        ]
        parts = [
            f"*{inert(esc.customer)}* · {channel_link(esc.channel_id)}",
            f"IC {mention(esc.ic)} · open {human_duration(now - esc.declared_at)}",
        ]
        nxt = esc.next_deadline()
        if nxt is not None and nxt.due_at is not None:
            parts.append(f"next: {protocol.step(nxt.id).title}, {slack_time(nxt.due_at)}")
        if overdue:
            parts.append(f"⏰ overdue: {', '.join(overdue)}")
        rows.append(section("\n".join(parts)))
    return rows


def digest_message(
    kpis: Kpis,
    week: Sequence[Escalation],
    still_open: Sequence[Escalation],
    week_end: datetime,
) -> Message:
    """The week's escalations, SLA compliance and what is still open (private ones counted,
    not named)."""
    k = kpis
    shown = [e for e in week if not e.private]
    lines = [
        f"*Weekly escalation digest* — the seven days to {week_end:%a %d %b %H:%M} UTC",
        f"{k.total} declared · {k.resolved} resolved"
        f" · SLA compliance {_pct(k.sla_overall.share)}"
        f" · update cadence met {_pct(k.update_cadence.share)}"
        f" · customer promises kept {_promises(k.promises)}"
        f" · median time to resolve {_dur(k.time_to_resolve.median)}",
    ]
    if shown:
        names = ", ".join(
            f"{inert(e.customer)} ({e.status.label.lower()})" for e in shown[:_DIGEST_NAMES]
        )
        lines.append(f"This week: {names}")
    hidden = k.total - len(shown)
    if hidden:
        lines.append(f"{counted(hidden, 'private escalation')} not listed.")
    if still_open:
        links = ", ".join(channel_link(e.channel_id) for e in still_open[:_DIGEST_NAMES])
        lines.append(f"Still open: {links}")
    else:
        lines.append("Nothing is still open.")
    return Message(
        text=f"Weekly escalation digest: {k.total} declared",
        blocks=text_blocks("\n".join(lines)),
    )

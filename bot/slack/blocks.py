"""Block Kit for the war room's messages and the declaration form (pure: no I/O).

People's text enters every message here through `inert` (bot/slack/text.py), exactly once,
inside mrkdwn that goes out `verbatim`; the only markup is the bot's own (the mentions it
means, channel links, dates). Every message has a plain-text fallback for notifications and
screen readers, made inert the same way, and stays within Slack's limits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from slack_sdk.models.blocks import (
    Block,
    CheckboxesElement,
    ContextBlock,
    HeaderBlock,
    InputBlock,
    MarkdownTextObject,
    Option,
    PlainTextInputElement,
    PlainTextObject,
    SectionBlock,
    UserSelectElement,
)
from slack_sdk.models.views import View

from bot.domain.declaration import MAX_CUSTOMER, MAX_SUMMARY, Accepted
from bot.domain.escalation import Escalation, Status
from bot.domain.facts import ActionItem
from bot.domain.timeline import Event, EventKind
from bot.slack.ids import VALUE, BlockId, CallbackId
from bot.slack.text import Names, channel_link, clip, inert, mention, named, slack_time
from protocols.durations import human_duration
from protocols.schema import Protocol

# Slack's limits (https://docs.slack.dev/reference/block-kit/blocks): a section's text, a
# field, a header, blocks per message; and what a topic or a fallback text may hold.
SECTION_LIMIT = 3000
FIELD_LIMIT = 2000
HEADER_LIMIT = 150
BLOCKS_PER_MESSAGE = 50
TOPIC_LIMIT = 250
FALLBACK_LIMIT = 3000
# Slack refuses a message whose blocks hold more than about 12,000 characters of text in all
# (`msg_blocks_too_long`, undocumented); a message of ours stays under this.
MESSAGE_TEXT_BUDGET = 10_000
TIMELINE_EVENTS = 40


@dataclass(frozen=True)
class Message:
    text: str
    blocks: list[Block]


def md(text: str) -> MarkdownTextObject:
    """mrkdwn the bot wrote around people's (inert) words: `verbatim`, so Slack turns no URL
    into a link and no `@here` into a broadcast; the bot's own `<@U…>`, `<#C…>` stay live."""
    return MarkdownTextObject(text=text, verbatim=True)


def section(text: str, **kwargs: object) -> SectionBlock:
    return SectionBlock(text=md(clip(text, SECTION_LIMIT)), **kwargs)  # type: ignore[arg-type]


def note(text: str) -> ContextBlock:
    return ContextBlock(elements=[md(clip(text, SECTION_LIMIT))])


def header(text: str) -> HeaderBlock:
    """A header from readable text. Plain text is not parsed, but Slack still reads `&`, `<`
    and `>` as its control characters there, so they are escaped like everywhere else."""
    return HeaderBlock(text=PlainTextObject(text=clip(inert(text), HEADER_LIMIT)))


def fallback(text: str, limit: int = FALLBACK_LIMIT) -> str:
    """A message's plain-text fallback, already inert mrkdwn, within limits."""
    return clip(text, limit)


def text_blocks(text: str) -> list[Block]:
    """Long mrkdwn as sections of at most SECTION_LIMIT, cut between paragraphs, then lines,
    where possible."""
    return [section(c) for c in chunks(text, SECTION_LIMIT)[:BLOCKS_PER_MESSAGE]]


def chunks(mrkdwn: str, limit: int) -> list[str]:
    """mrkdwn cut into pieces of at most `limit`, between paragraphs, then lines, where it can
    be, and never inside an escape."""
    pieces: list[str] = []
    current = ""
    for paragraph in mrkdwn.split("\n\n"):
        candidate = f"{current}\n\n{paragraph}" if current else paragraph
        if len(candidate) <= limit:
            current = candidate
            continue
        if current:
            pieces.append(current)
        current = paragraph
        while len(current) > limit:
            cut = current.rfind("\n", 0, limit)
            head = current[:cut] if cut > 0 else clip(current, limit)[:-1]
            pieces.append(head)
            current = current[len(head) :].lstrip("\n")
    if current:
        pieces.append(current)
    return pieces or ["…"]


def as_dicts(blocks: Sequence[Block]) -> list[dict]:
    return [b.to_dict() for b in blocks]


def money(amount: int | None) -> str:
    return "not given" if amount is None else f"${amount:,}"


def criteria_titles(esc: Escalation, protocol: Protocol) -> str:
    """The criteria's titles, as plain words (the protocol file is data too)."""
    titles = []
    for cid in esc.criteria:
        try:
            titles.append(protocol.criterion(cid).title)
        except KeyError:
            titles.append(cid)
    return ", ".join(titles) or "none given"


# -- the room --------------------------------------------------------------------------------


def topic(esc: Escalation) -> str:
    """`Acme Corp · IC @ivan · Investigating`; Slack caps topics at 250 characters."""
    tail = f" · IC {mention(esc.ic)} · {esc.status.label}"
    return clip(inert(esc.customer), TOPIC_LIMIT - len(tail)) + tail


def exec_notice(esc: Escalation, protocol: Protocol) -> Message:
    """What the exec channel sees. A private escalation shows only a link. The link to the
    room is never clipped away: only the summary gives way to Slack's limit."""
    room = channel_link(esc.channel_id)
    if esc.private:
        text = f"🔒 A private escalation was declared: {room}"
        return Message(text=text, blocks=[section(text)])
    facts = (
        f"ARR {money(esc.arr)} · {inert(criteria_titles(esc, protocol))} · "
        f"IC {mention(esc.ic)} · War room {room}"
    )
    head = f"🚨 New escalation for *{inert(esc.customer)}*: "
    summary = clip(inert(esc.summary), SECTION_LIMIT - len(head) - len(facts) - 1)
    return Message(
        text=fallback(f"New escalation for {inert(esc.customer)}: war room {room}"),
        blocks=[section(f"{head}{summary}\n{facts}")],
    )


def declaration_form(
    protocol: Protocol, *, private_metadata: str = "", ticket_field: bool = False
) -> View:
    """The modal `/escalate` opens when given no text (with a ticket field when a support
    desk is configured)."""
    criteria = [
        Option(value=c.id, text=PlainTextObject(text=clip(inert(c.title), 75)))
        for c in protocol.criteria
    ]
    return View(
        type="modal",
        callback_id=CallbackId.DECLARE_FORM,
        title=PlainTextObject(text="Declare an escalation"),
        submit=PlainTextObject(text="Open war room"),
        close=PlainTextObject(text="Cancel"),
        private_metadata=private_metadata,
        blocks=[
            InputBlock(
                block_id=BlockId.CUSTOMER,
                label=PlainTextObject(text="Customer"),
                element=PlainTextInputElement(action_id=VALUE, max_length=MAX_CUSTOMER),
            ),
            InputBlock(
                block_id=BlockId.SUMMARY,
                label=PlainTextObject(text="What is happening"),
                element=PlainTextInputElement(
                    action_id=VALUE, multiline=True, max_length=MAX_SUMMARY
                ),
            ),
            InputBlock(
                block_id=BlockId.ARR,
                label=PlainTextObject(text="ARR"),
                hint=PlainTextObject(text="e.g. 250000, 250k or $1.2M"),
                optional=True,
                element=PlainTextInputElement(action_id=VALUE, max_length=20),
            ),
            InputBlock(
                block_id=BlockId.CRITERIA,
                label=PlainTextObject(text="Escalation criteria"),
                optional=True,
                element=CheckboxesElement(action_id=VALUE, options=criteria[:10]),
            ),
            InputBlock(
                block_id=BlockId.IC,
                label=PlainTextObject(text="Incident commander"),
                hint=PlainTextObject(text="Leave empty to take the next one in the rotation"),
                optional=True,
                element=UserSelectElement(action_id=VALUE),
            ),
            InputBlock(
                block_id=BlockId.PRIVATE,
                label=PlainTextObject(text="Visibility"),
                optional=True,
                element=CheckboxesElement(
                    action_id=VALUE,
                    options=[
                        Option(value="private", text=PlainTextObject(text="Private war room"))
                    ],
                ),
            ),
            *(
                [
                    InputBlock(
                        block_id=BlockId.TICKETS,
                        label=PlainTextObject(text="Support tickets"),
                        hint=PlainTextObject(text="Numbers or URLs, e.g. 4711 or 4711, 4712"),
                        optional=True,
                        element=PlainTextInputElement(action_id=VALUE, max_length=500),
                    )
                ]
                if ticket_field
                else []
            ),
        ],
    )


def declaration_ack(customer: str, accepted: Accepted, creates_per_minute: int) -> str:
    """What `/escalate` answers at once, visible only to the declarer."""
    if not accepted.mine:
        if accepted.channel_id:
            return f"This escalation is already open: {channel_link(accepted.channel_id)}."
        return "This escalation is already being opened; its link follows in a moment."
    name = inert(customer)
    if accepted.wait >= 1:
        return (
            f"🚨 Your war room for *{name}* is queued: Slack lets an app create about "
            f"{creates_per_minute:g} channels a minute, and others came first. It opens "
            f"in about {round(accepted.wait)} s; the link follows here."
        )
    return f"🚨 Opening a war room for *{name}*…"


def queued_notice(customer: str, wait: float) -> str:
    """The declarer's DM when a room declared with the form waits its turn."""
    return (
        f"🚨 Your war room for *{inert(customer)}* is queued behind others; it opens in about "
        f"{round(wait)} s."
    )


def usage_message(problems: Sequence[str], usage: str) -> str:
    """A refused command: each problem on its own line, then the usage."""
    head = "".join(f"⚠️ {problem}\n" for problem in problems)
    return f"{head}{inert(usage)}"


# -- timers ------------------------------------------------------------------------------------


def _reminder(text: str, plain: str) -> Message:
    return Message(text=fallback(plain), blocks=[section(text)])


def overdue_reminder(
    esc: Escalation, step_title: str, step_id: str, due_at: datetime, vps: tuple[str, ...]
) -> Message:
    who = " ".join(mention(u) for u in (esc.ic, *vps) if u)
    title = inert(step_title)
    return _reminder(
        f"⏰ *{title}* is overdue — it was due {slack_time(due_at)}. {who}: finish it, "
        f"then press *Mark done* in the pinned brief or say `@vp done {step_id}`.",
        f"Overdue: {title} (due {due_at:%H:%M} UTC)",
    )


def update_nudge(
    esc: Escalation,
    interval: timedelta,
    vps: tuple[str, ...] = (),
    promised: datetime | None = None,
) -> Message:
    who = " ".join(mention(u) for u in (esc.ic, *vps) if u)
    since = esc.last_update_at or esc.declared_at
    customer = inert(esc.customer)
    if promised is not None:
        return _reminder(
            f"⏰ {customer} was promised our next update by {slack_time(promised)}: that is "
            f"now. {who}: `@vp draft update` and approve it; the letter will own the delay.",
            f"The update promised to {customer} is due now",
        )
    return _reminder(
        f"🔔 No status update for {customer} since {slack_time(since)} — the "
        f"protocol asks for one every {human_duration(interval)}. {who}: post one with "
        "`@vp update &lt;what changed and what happens next&gt;`.",
        f"Status update overdue for {customer}",
    )


def promise_reminder(esc: Escalation, promised: datetime) -> Message:
    customer = inert(esc.customer)
    return _reminder(
        f"⏳ {customer} was promised our next update by {slack_time(promised)}. "
        f"{mention(esc.ic)}: `@vp draft update` and approve it before then.",
        f"The update promised to {customer} is due soon",
    )


def follow_up(esc: Escalation, index: int, total: int, offset: timedelta, what: str) -> Message:
    customer = inert(esc.customer)
    return _reminder(
        f"📋 Follow-up {index + 1} of {total} for {customer}, {human_duration(offset)} "
        f"after the resolution: {what}. {mention(esc.ic)}",
        f"Follow-up for {customer}: {what}",
    )


def action_reminder(item: ActionItem) -> Message:
    return _reminder(
        f"📌 Action item `{item.id}` is due: {inert(item.text)} — {mention(item.owner)}. "
        f"When it is done, say `@vp done {item.id}`.",
        f"Action item due: {inert(item.text)}",
    )


def resolved_notice(esc: Escalation) -> Message:
    room = channel_link(esc.channel_id)
    if esc.private:
        text = f"✅ A private escalation was resolved: {room}"
        return Message(text=text, blocks=[section(text)])
    tail = f" ({room}, IC {mention(esc.ic)})"
    head = f"✅ Resolved: *{inert(esc.customer)}* — "
    resolution = clip(inert(esc.resolution), SECTION_LIMIT - len(head) - len(tail))
    return Message(
        text=fallback(f"Resolved: {inert(esc.customer)}{tail}"),
        blocks=[section(f"{head}{resolution}{tail}")],
    )


# -- what the room asks to read ---------------------------------------------------------------


def _link(url: str, label: str) -> str:
    """A link to a URL we built (the desk's address and a number): shown only when it cannot
    break out of Slack's `<url|label>`."""
    if url.startswith(("https://", "http://")) and not any(c in url for c in "<>| "):
        return f"<{url}|{label}>"
    return label


def tickets_text(esc: Escalation) -> str:
    """The linked tickets as last read (their text inert), and the organisation's others."""
    if not esc.tickets:
        return ""
    lines = ["*Support tickets*"]
    for t in esc.tickets:
        name = _link(t.url, f"#{t.id}")
        if t.problem:
            lines.append(f"• {name}: ⚠️ {inert(t.problem)}")
            continue
        if t.read_at is None:
            lines.append(f"• {name}: _being read_")
            continue
        who = clip(inert(t.requester or "unknown requester"), 80)
        org = f" at {clip(inert(t.organization), 80)}" if t.organization else ""
        tags = f" · tags {clip(inert(', '.join(t.tags)), 150)}" if t.tags else ""
        lines.append(
            f"• {name} {clip(inert(t.subject or ''), 200)} — {who}{org} · priority "
            f"{inert(t.priority or 'none')} · {inert(t.status or '?')}{tags}"
        )
    org = esc.org_tickets
    if org is not None:
        lines.append(
            f"• {_link(org.link, f'{org.count} ticket' + ('s' if org.count != 1 else ''))} from "
            f"{clip(inert(org.organization), 80)} since {slack_time(org.since)} "
            f"(counted {slack_time(org.checked_at, '{time}')})"
        )
    return "\n".join(lines)


def status(esc: Escalation, protocol: Protocol, now: datetime) -> str:
    elapsed = human_duration(now - esc.declared_at)
    lines = [
        f"*{inert(esc.customer)}* · {esc.status.label} · open for {elapsed} · IC {mention(esc.ic)}"
    ]
    done, overdue, due = [], [], []
    for step in protocol.steps:
        if step.id not in {s.id for s in esc.steps} or step.every is not None:
            continue
        state = esc.step(step.id)
        title = inert(step.title)
        if state.done:
            done.append(title)
        elif state.due_at is not None and now >= state.due_at:
            overdue.append(f"{title} (due {slack_time(state.due_at)})")
        elif state.due_at is not None:
            due.append(f"{title} (due {slack_time(state.due_at)})")
    lines.append(f"✅ Done: {', '.join(done) or 'nothing yet'}")
    if overdue:
        lines.append(f"⏰ Overdue: {', '.join(overdue)}")
    if due:
        lines.append(f"🕒 Still due: {', '.join(due)}")
    nxt = esc.next_deadline()
    if nxt is not None and nxt.due_at is not None and esc.status is Status.INVESTIGATING:
        title = protocol.step(nxt.id).title if nxt.id in protocol.step_ids else nxt.id
        lines.append(f"Next deadline: {inert(title)}, {slack_time(nxt.due_at)}")
    if esc.last_update_at is not None:
        lines.append(f"Last update: {slack_time(esc.last_update_at)}")
    else:
        lines.append("Last update: none yet")
    if esc.tickets:
        lines.append(tickets_text(esc))
    if esc.status is Status.RESOLVED and esc.resolved_at is not None:
        resolution = clip(inert(esc.resolution), SECTION_LIMIT // 2)
        lines.append(f"Resolved {slack_time(esc.resolved_at)}: {resolution}")
    return "\n".join(lines)


def _timeline_line(e: Event, names: Names) -> str:
    # Anyone in the room can ask for the timeline, again and again: the people on it are
    # named, never mentioned, so asking pings no one.
    who = f" {named(e.actor, names)}" if e.actor else ""
    what = e.kind.value.replace("_", " ")
    said = inert(" ".join(e.text.split()))
    if e.kind is EventKind.IC_ASSIGNED and e.data.get("ic"):
        said = f"{named(str(e.data['ic']), names)} is incident commander"
    if e.kind is EventKind.CUSTOMER_REPLY:
        who = f" {_customer(str(e.data.get('who') or ''), str(e.data.get('organisation') or ''))}"
    return clip(f"• {slack_time(e.at, '{time}')} {what}{who}: {said}", SECTION_LIMIT // 4)


def _customer(author: str, organisation: str) -> str:
    """`Dana Whitfield (Acme)`: a customer's person as text, inert like anything they set."""
    who = " ".join(author.split()) or "The customer"
    org = " ".join(organisation.split())
    return inert(f"{who} ({org})" if org else who)


# The most of a customer's reply shown in the room; the timeline keeps more.
REPLY_SHOWN = 2500


def customer_reply(author: str, organisation: str, text: str) -> str:
    """A customer's reply, brought into the war room: who wrote it, then their words quoted,
    inert (no mention, broadcast or link of theirs becomes live)."""
    words = clip(inert(text.strip()), REPLY_SHOWN)
    quoted = "\n".join(f">{line}" if line else ">" for line in words.split("\n"))
    return (
        f"📨 {_customer(author, organisation)} replied:\n{quoted}\n"
        "_The customer's own words: material for the next letter to answer, never to quote._"
    )


def timeline(
    events: Sequence[Event], budget: int = SECTION_LIMIT, names: Names = lambda _user: None
) -> str:
    """The latest events that fit, oldest first; what gives way is the oldest, never the
    newest. People by their names from `names`, never as mentions."""
    if not events:
        return "The timeline is empty."
    recent = list(events[-TIMELINE_EVENTS:])
    lines: list[str] = []
    used = 0
    for e in reversed(recent):
        line = _timeline_line(e, names)
        if lines and used + len(line) + 1 > budget - 60:
            break
        lines.append(line)
        used += len(line) + 1
    lines.reverse()
    head = "" if len(lines) == len(events) else f"(the last {len(lines)} of {len(events)} events)\n"
    return head + "\n".join(lines)


HELP = inert(
    """\
In a war room, mention me with:
• `status` — time open, steps done, due and overdue, next deadline, last update
• `done <step-id>` — mark a protocol step done (the brief's buttons do the same)
• `update <text>` — record a status update (internal); restarts the update clock
• `impact <text>`, `workaround <text>`, `doing <text>`, `eta <text>` — what the customer may be told
• `advice <text>` — what the customer should do themselves (rotate keys, re-sync, ...)
• `impact <text> --since 2h` or `impact ... since 09:10` — when it began; `impact ended [15:05]`
• `workaround none` — there is no workaround; `fixed <text>` — what fixed it, in their terms
• `cause <text>` — a suspected cause (internal); `cause confirmed` — the IC or a VP confirms it
• `action @person <text> [--due 3d]` — an action item; `done A1` closes it
• `ic @person` — hand the incident commander role to someone else
• `resolve <summary>` — resolve: timers stop, follow-ups are scheduled, execs are told
• `timeline` — what has happened so far
• `ticket <number or URL>` — link a support ticket: the brief shows it and its organisation's others
• `ticket remove <number or URL>` — unlink it: off the brief, its comments and letters no more
• `draft update` — I draft an update for the customer; a person approves, edits or redoes it
• `review` — I draft the post-incident review from the timeline
• anything else — I answer from this escalation's facts
• `help` — this list"""
)

OUTSIDE = inert(
    "I run war rooms for customer escalations. Declare one with `/escalate <customer>: "
    "<what is happening>`; inside its channel, mention me with `help`."
)

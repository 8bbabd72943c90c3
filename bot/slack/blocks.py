"""Block Kit for the brief, the exec notice and the declaration form (pure: no I/O).

Every message has a plain-text fallback for notifications and screen readers.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    CheckboxesElement,
    ContextBlock,
    DividerBlock,
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
from bot.domain.drafts import Draft, DraftKind
from bot.domain.escalation import Escalation, Status
from bot.domain.timeline import Event
from bot.slack.ids import STEP_BLOCK_PREFIX, VALUE, ActionId, BlockId, CallbackId
from protocols.durations import human_duration
from protocols.schema import Protocol

# Slack refuses section text over 3000 characters.
_SECTION_LIMIT = 3000


@dataclass(frozen=True)
class Message:
    text: str
    blocks: list[Block]


# Slack entities people type (mentions, channels, groups, links) stay markup; any other
# <, > and & in their text are escaped so they cannot become markup.
_ENTITY = re.compile(r"<(?:[@#!]|https?://|mailto:)[^<>]*>")


def escape(text: str) -> str:
    """People's text, safe to put into mrkdwn."""
    out, last = [], 0
    for m in _ENTITY.finditer(text):
        out.append(_escape_plain(text[last : m.start()]))
        out.append(m.group(0))
        last = m.end()
    out.append(_escape_plain(text[last:]))
    return "".join(out)


def _escape_plain(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def mention(user_id: str) -> str:
    return f"<@{user_id}>"


def channel_link(channel_id: str) -> str:
    return f"<#{channel_id}>"


def money(amount: int | None) -> str:
    return "not given" if amount is None else f"${amount:,}"


def slack_time(at: datetime, fmt: str = "{date_short_pretty} at {time}") -> str:
    """A time every reader sees in their own timezone, with a UTC fallback."""
    fallback = at.strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(at.timestamp())}^{fmt}|{fallback}>"


def _clip(text: str, limit: int = _SECTION_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def topic(esc: Escalation) -> str:
    """`Acme Corp · IC @ivan · Investigating`; Slack caps topics at 250 characters."""
    tail = f" · IC {mention(esc.ic)} · {esc.status.label}"
    return _clip(esc.customer, 250 - len(tail)) + tail


def criteria_titles(esc: Escalation, protocol: Protocol) -> str:
    titles = []
    for cid in esc.criteria:
        try:
            titles.append(protocol.criterion(cid).title)
        except KeyError:
            titles.append(cid)
    return ", ".join(titles) or "none given"


def brief(esc: Escalation, protocol: Protocol, clock_scale: float = 1.0) -> Message:
    """The pinned brief: who and what, then every protocol step with its due time."""
    status = "✅ Resolved" if esc.status is Status.RESOLVED else "🔥 Investigating"
    blocks: list[Block] = [
        HeaderBlock(text=PlainTextObject(text=_clip(f"Escalation: {esc.customer}", 150))),
        SectionBlock(text=MarkdownTextObject(text=_clip(f"*Summary*\n{escape(esc.summary)}"))),
        SectionBlock(
            fields=[
                MarkdownTextObject(text=f"*Customer*\n{escape(_clip(esc.customer, 1900))}"),
                MarkdownTextObject(text=f"*ARR*\n{money(esc.arr)}"),
                MarkdownTextObject(text=f"*Incident commander*\n{mention(esc.ic)}"),
                MarkdownTextObject(text=f"*Declared by*\n{mention(esc.declarer)}"),
                MarkdownTextObject(
                    text=f"*Criteria*\n{_clip(criteria_titles(esc, protocol), 1900)}"
                ),
                MarkdownTextObject(text=f"*Status*\n{status}"),
            ]
        ),
        ContextBlock(
            elements=[
                MarkdownTextObject(
                    text=f"Declared {slack_time(esc.declared_at)} · protocol {protocol.name}"
                )
            ]
        ),
        DividerBlock(),
    ]
    for number, step in enumerate(protocol.steps, start=1):
        state = esc.step(step.id) if step.id in {s.id for s in esc.steps} else None
        heading = f"*{number}. {step.title}* `{step.id}`"
        if state is not None and state.done:
            by = f" by {mention(state.done_by)}" if state.done_by else ""
            when = f"✅ Done{by} {slack_time(state.done_at)}"  # type: ignore[arg-type]
        elif step.every is not None:
            interval = human_duration(step.every / clock_scale)
            nxt = f", next by {slack_time(state.due_at)}" if state and state.due_at else ""
            when = f"🔁 Update every {interval}{nxt}"
        elif step.after_resolution:
            offsets = " and ".join(human_duration(d / clock_scale) for d in step.after_resolution)
            when = f"🗓 {offsets} after resolution"
        elif state is not None and state.due_at is not None:
            when = f"⏰ Due {slack_time(state.due_at)}"
        else:
            when = ""
        checklist = "\n".join(f"• {item}" for item in step.checklist)
        text = _clip(f"{heading} — {when}\n{checklist}")
        accessory = None
        if (
            esc.status is not Status.RESOLVED
            and state is not None
            and not state.done
            and (step.due is not None)
        ):
            accessory = ButtonElement(
                text=PlainTextObject(text="Mark done"),
                action_id=ActionId.STEP_DONE,
                value=step.id,
                style="primary",
            )
        blocks.append(
            SectionBlock(block_id=f"{STEP_BLOCK_PREFIX}{step.id}", text=text, accessory=accessory)
        )
    blocks.append(
        ContextBlock(
            elements=[
                MarkdownTextObject(
                    text=f"Escalation `{esc.id}` · mention the bot with `help` for what it can do"
                )
            ]
        )
    )
    fallback = (
        f"Escalation brief: {esc.customer} — {esc.summary} (IC {mention(esc.ic)}, "
        f"{esc.status.label})"
    )
    return Message(text=_clip(fallback), blocks=blocks)


def exec_notice(esc: Escalation, protocol: Protocol) -> Message:
    """What the exec channel sees. A private escalation shows only a link."""
    if esc.private:
        text = f"🔒 A private escalation was declared: {channel_link(esc.channel_id)}"
        return Message(text=text, blocks=[SectionBlock(text=MarkdownTextObject(text=text))])
    text = (
        f"🚨 New escalation for *{escape(esc.customer)}*: {escape(esc.summary)}\n"
        f"ARR {money(esc.arr)} · {criteria_titles(esc, protocol)} · "
        f"IC {mention(esc.ic)} · War room {channel_link(esc.channel_id)}"
    )
    return Message(
        text=_clip(f"New escalation for {esc.customer}: war room {channel_link(esc.channel_id)}"),
        blocks=[SectionBlock(text=MarkdownTextObject(text=_clip(text)))],
    )


def declaration_form(protocol: Protocol, *, private_metadata: str = "") -> View:
    """The modal `/escalate` opens when given no text."""
    criteria = [
        Option(value=c.id, text=PlainTextObject(text=_clip(c.title, 75))) for c in protocol.criteria
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
        ],
    )


def text_blocks(text: str) -> list[Block]:
    return [SectionBlock(text=MarkdownTextObject(text=_clip(text)))]


def declaration_ack(customer: str, accepted: Accepted, creates_per_minute: int) -> str:
    """What `/escalate` answers at once, visible only to the declarer."""
    if not accepted.mine:
        if accepted.channel_id:
            return f"This escalation is already open: {channel_link(accepted.channel_id)}."
        return "This escalation is already being opened; its link follows in a moment."
    if accepted.wait >= 1:
        return (
            f"🚨 Your war room for *{customer}* is queued: Slack lets an app create about "
            f"{creates_per_minute:g} channels a minute, and others came first. It opens "
            f"in about {round(accepted.wait)} s; the link follows here."
        )
    return f"🚨 Opening a war room for *{customer}*…"


def queued_notice(customer: str, wait: float) -> str:
    """The declarer's DM when a room declared with the form waits its turn."""
    return (
        f"🚨 Your war room for *{customer}* is queued behind others; it opens in about "
        f"{round(wait)} s."
    )


def usage_message(problem: str | None, usage: str) -> str:
    head = f"⚠️ {problem}\n\n" if problem else ""
    return f"{head}{usage}"


def as_dicts(blocks: Sequence[Block]) -> list[dict]:
    return [b.to_dict() for b in blocks]


# -- timers -----------------------------------------------------------------------------


def overdue_reminder(
    esc: Escalation, step_title: str, step_id: str, due_at: datetime, vps: tuple[str, ...]
) -> Message:
    who = " ".join(mention(u) for u in (esc.ic, *vps) if u)
    text = (
        f"⏰ *{step_title}* is overdue — it was due {slack_time(due_at)}. {who}: finish it, "
        f"then press *Mark done* in the pinned brief or say `@vp done {step_id}`."
    )
    return Message(text=f"Overdue: {step_title} (due {due_at:%H:%M} UTC)", blocks=text_blocks(text))


def update_nudge(esc: Escalation, interval: timedelta, vps: tuple[str, ...] = ()) -> Message:
    who = " ".join(mention(u) for u in (esc.ic, *vps) if u)
    since = esc.last_update_at or esc.declared_at
    text = (
        f"🔔 No status update for {escape(esc.customer)} since {slack_time(since)} — the "
        f"protocol asks for one every {human_duration(interval)}. {who}: post one with "
        "`@vp update <what changed and what happens next>`."
    )
    return Message(text=f"Status update overdue for {esc.customer}", blocks=text_blocks(text))


def follow_up(esc: Escalation, index: int, total: int, offset: timedelta, what: str) -> Message:
    text = (
        f"📋 Follow-up {index + 1} of {total} for {escape(esc.customer)}, {human_duration(offset)} "
        f"after the resolution: {what}. {mention(esc.ic)}"
    )
    return Message(text=f"Follow-up for {esc.customer}: {what}", blocks=text_blocks(text))


def resolved_notice(esc: Escalation) -> Message:
    if esc.private:
        text = f"✅ A private escalation was resolved: {channel_link(esc.channel_id)}"
    else:
        text = (
            f"✅ Resolved: *{escape(esc.customer)}* — {escape(esc.resolution)} "
            f"({channel_link(esc.channel_id)}, IC {mention(esc.ic)})"
        )
    return Message(text=_clip(text), blocks=text_blocks(text))


def status(esc: Escalation, protocol: Protocol, now: datetime) -> str:
    elapsed = human_duration(now - esc.declared_at)
    lines = [
        f"*{escape(esc.customer)}* · {esc.status.label} · open for {elapsed} · IC {mention(esc.ic)}"
    ]
    done, overdue, due = [], [], []
    for step in protocol.steps:
        if step.id not in {s.id for s in esc.steps} or step.every is not None:
            continue
        state = esc.step(step.id)
        if state.done:
            done.append(step.title)
        elif state.due_at is not None and now >= state.due_at:
            overdue.append(f"{step.title} (due {slack_time(state.due_at)})")
        elif state.due_at is not None:
            due.append(f"{step.title} (due {slack_time(state.due_at)})")
    lines.append(f"✅ Done: {', '.join(done) or 'nothing yet'}")
    if overdue:
        lines.append(f"⏰ Overdue: {', '.join(overdue)}")
    if due:
        lines.append(f"🕒 Still due: {', '.join(due)}")
    nxt = esc.next_deadline()
    if nxt is not None and nxt.due_at is not None and esc.status is Status.INVESTIGATING:
        title = protocol.step(nxt.id).title if nxt.id in protocol.step_ids else nxt.id
        lines.append(f"Next deadline: {title}, {slack_time(nxt.due_at)}")
    if esc.last_update_at is not None:
        lines.append(f"Last update: {slack_time(esc.last_update_at)}")
    else:
        lines.append("Last update: none yet")
    if esc.status is Status.RESOLVED and esc.resolved_at is not None:
        lines.append(f"Resolved {slack_time(esc.resolved_at)}: {escape(esc.resolution)}")
    return "\n".join(lines)


def timeline(events: Sequence[Event]) -> str:
    if not events:
        return "The timeline is empty."
    lines = []
    for e in events[-40:]:
        who = f" {mention(e.actor)}" if e.actor else ""
        lines.append(
            f"• {slack_time(e.at, '{time}')} {e.kind.value.replace('_', ' ')}{who}: "
            f"{escape(e.text)}"
        )
    head = "" if len(events) <= 40 else f"(last 40 of {len(events)} events)\n"
    return _clip(head + "\n".join(lines))


HELP = """\
In a war room, mention me with:
• `status` — time open, steps done, due and overdue, next deadline, last update
• `done <step-id>` — mark a protocol step done (the brief's buttons do the same)
• `update <text>` — record a status update; restarts the update clock
• `ic @person` — hand the incident commander role to someone else
• `resolve <summary>` — resolve: timers stop, follow-ups are scheduled, execs are told
• `timeline` — what has happened so far
• `draft update` — I draft an update for the customer; a person approves, edits or redoes it
• `review` — I draft the post-incident review from the timeline
• anything else — I answer from this escalation's facts
• `help` — this list"""

OUTSIDE = (
    "I run war rooms for customer escalations. Declare one with `/escalate <customer>: "
    "<what is happening>`; inside its channel, mention me with `help`."
)


# -- the VP agent's drafts ----------------------------------------------------------------


def _sections(text: str) -> list[Block]:
    """Long text as several sections (Slack caps one at 3000 characters)."""
    chunks: list[str] = []
    current = ""
    for paragraph in text.split("\n\n"):
        candidate = f"{current}\n\n{paragraph}" if current else paragraph
        if len(candidate) <= _SECTION_LIMIT:
            current = candidate
            continue
        if current:
            chunks.append(current)
        while len(paragraph) > _SECTION_LIMIT:
            chunks.append(paragraph[:_SECTION_LIMIT])
            paragraph = paragraph[_SECTION_LIMIT:]
        current = paragraph
    if current:
        chunks.append(current)
    return [SectionBlock(text=MarkdownTextObject(text=c)) for c in chunks[:40] or ["…"]]


_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)


def _headings_as_bold(markdown: str) -> str:
    """Slack's mrkdwn has no headings: `## Root cause` is shown as *Root cause*."""
    return _HEADING.sub(lambda m: f"*{m.group(1).strip('*')}*", markdown)


def drafting(kind: DraftKind, text: str = "") -> Message:
    """A draft while it streams in."""
    label = {
        DraftKind.CUSTOMER_UPDATE: "Drafting a customer update",
        DraftKind.REVIEW: "Drafting the post-incident review",
        DraftKind.ANSWER: "Thinking",
    }[kind]
    shown = f"{text} ▌" if text else f"✍️ {label}…"
    return Message(text=_clip(shown, 3000), blocks=_sections(_clip(shown, 38000)))


def draft_message(draft: Draft, customer: str) -> Message:
    blocks: list[Block] = []
    notes: list[str] = []
    if draft.offline:
        reason = f" ({draft.offline_reason})" if draft.offline_reason else ""
        notes.append(f"⚠️ Drafted offline from templates — the model was unavailable{reason}.")
    if draft.truncated:
        notes.append("✂️ The model stopped at its length limit; the end may be missing.")
    if draft.kind is DraftKind.CUSTOMER_UPDATE:
        blocks.append(
            ContextBlock(
                elements=[
                    MarkdownTextObject(
                        text=f"📝 Draft customer update for *{escape(customer)}* — not sent. "
                        "Nothing reaches the customer until a person approves it and sends it."
                    )
                ]
            )
        )
    elif draft.kind is DraftKind.REVIEW:
        blocks.append(
            HeaderBlock(text=PlainTextObject(text=_clip(f"Post-incident review: {customer}", 150)))
        )
    shown = draft.text or "…"
    if draft.kind is DraftKind.REVIEW:
        shown = _headings_as_bold(shown)
    blocks.extend(_sections(shown))
    if draft.flags:
        notes.append("🔎 Look twice before sending: " + ", ".join(f"“{f}”" for f in draft.flags))
    if notes:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=n) for n in notes]))
    if draft.kind is DraftKind.CUSTOMER_UPDATE:
        if draft.approved_by and draft.approved_at:
            saved = f" · saved as `{draft.output_file}`" if draft.output_file else ""
            blocks.append(
                ContextBlock(
                    elements=[
                        MarkdownTextObject(
                            text=f"✅ Approved by {mention(draft.approved_by)} "
                            f"{slack_time(draft.approved_at)}{saved}. Send it to the customer "
                            "through your usual channel."
                        )
                    ]
                )
            )
        else:
            if draft.edited_by:
                edited = f"✏️ Edited by {mention(draft.edited_by)}"
                blocks.append(ContextBlock(elements=[MarkdownTextObject(text=edited)]))
            blocks.append(
                ActionsBlock(
                    block_id=f"draft:{draft.id}",
                    elements=[
                        ButtonElement(
                            text=PlainTextObject(text="Approve"),
                            action_id=ActionId.DRAFT_APPROVE,
                            value=draft.id,
                            style="primary",
                        ),
                        ButtonElement(
                            text=PlainTextObject(text="Edit"),
                            action_id=ActionId.DRAFT_EDIT,
                            value=draft.id,
                        ),
                        ButtonElement(
                            text=PlainTextObject(text="Regenerate"),
                            action_id=ActionId.DRAFT_REGENERATE,
                            value=draft.id,
                        ),
                    ],
                )
            )
    fallback = {
        DraftKind.CUSTOMER_UPDATE: f"Draft customer update for {customer} (not sent)",
        DraftKind.REVIEW: f"Post-incident review: {customer}",
        DraftKind.ANSWER: draft.text,
    }[draft.kind]
    return Message(text=_clip(fallback or "…", 3000), blocks=blocks)


def edit_draft_form(draft: Draft) -> View:
    return View(
        type="modal",
        callback_id=CallbackId.EDIT_DRAFT,
        private_metadata=draft.id,
        title=PlainTextObject(text="Edit the update"),
        submit=PlainTextObject(text="Save"),
        close=PlainTextObject(text="Cancel"),
        blocks=[
            InputBlock(
                block_id=BlockId.DRAFT_TEXT,
                label=PlainTextObject(text="Customer update"),
                element=PlainTextInputElement(
                    action_id=VALUE,
                    multiline=True,
                    initial_value=draft.text[:3000],
                    max_length=3000,
                ),
            )
        ],
    )

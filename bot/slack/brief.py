"""The pinned brief, and the form that records what the customer may be told (pure: no I/O).

The brief is the room's standing information: who and what, what the customer may be told
(and what stays internal), the action items, and every protocol step with its id, its due time
and a button to mark it done. It is updated in place after every change.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from slack_sdk.models.blocks import (
    Block,
    ButtonElement,
    DividerBlock,
    InputBlock,
    PlainTextInputElement,
    PlainTextObject,
    SectionBlock,
)
from slack_sdk.models.views import View

from bot.domain.delivery import RouteKind, SentLetter
from bot.domain.escalation import Escalation, Status
from bot.domain.facts import ActionItem, CustomerFacts, FactKind, promises_kept
from bot.domain.letters import last_sent
from bot.slack.blocks import (
    FIELD_LIMIT,
    Message,
    criteria_titles,
    fallback,
    header,
    md,
    money,
    note,
    section,
    tickets_text,
)
from bot.slack.ids import STEP_BLOCK_PREFIX, VALUE, ActionId, CallbackId
from bot.slack.text import clip, inert, mention, slack_time
from protocols.durations import human_duration
from protocols.schema import Protocol

FACTS_BLOCK = "facts"
# The facts form's inputs, one per fact, with Slack's limit on a text input.
_FACT_LABELS = {
    FactKind.IMPACT: "Impact, in the customer's terms",
    FactKind.WORKAROUND: "Workaround the customer may use",
    FactKind.DOING: "What we are doing about it",
    FactKind.ETA: "ETA (only one someone is prepared to give)",
    FactKind.ADVICE: "What the customer should do themselves (e.g. rotate keys)",
    FactKind.FIXED: "What fixed it, in the customer's terms",
}
_FACT_INPUT_LIMIT = 1000


_BEGAN_FROM = {
    "since": "as given with --since",
    "text": "from the time written in it",
    "declared": "the declaration: nobody said when it began; confirm with --since",
}


def told(facts: CustomerFacts, now: datetime | None = None) -> str:
    """What the customer may be told, and what is missing; suspected causes marked internal;
    then what the letters approved so far told them, and the time they were promised."""
    lines = ["*What the customer may be told*"]
    impact = facts.impact
    if impact is None:
        lines.append("• Impact: _not recorded_ — `@vp impact &lt;what the customer sees&gt;`")
    else:
        began = f"began {slack_time(impact.began)} ({_BEGAN_FROM.get(impact.began_from, '')})"
        ended = f", ended {slack_time(impact.ended)}" if impact.ended else ""
        lines.append(f"• Impact: {clip(inert(impact.text), 600)} — {began}{ended}")
        if impact.stated_began is not None:
            lines.append(
                f"⚠️ Two starts: `--since` says {slack_time(impact.began)}, the text says "
                f"{slack_time(impact.stated_began)}. Letters give the first; record the impact "
                "again to correct it."
            )
    for kind, label in (
        (FactKind.WORKAROUND, "Workaround"),
        (FactKind.DOING, "What we are doing"),
        (FactKind.ETA, "ETA"),
        (FactKind.ADVICE, "What the customer should do"),
        (FactKind.FIXED, "What fixed it"),
    ):
        fact = facts.fact(kind)
        if kind is FactKind.WORKAROUND and facts.no_workaround:
            shown = "none (letters say there is no workaround)"
        else:
            shown = clip(inert(fact.text), 500) if fact else f"_none recorded_ — `@vp {kind.value}`"
        lines.append(f"• {label}: {shown}")
    cause = facts.confirmed_cause
    if cause is not None:
        by = mention(cause.confirmed_by) if cause.confirmed_by else ""
        lines.append(f"• Cause: {clip(inert(cause.text), 500)} (confirmed by {by})")
    else:
        lines.append("• Cause: _not confirmed_ — a customer is not told a cause until it is")
    suspected = facts.suspected_causes
    if suspected:
        shown = "; ".join(clip(inert(c.text), 200) for c in suspected[-3:])
        lines.append(f"_Internal, not for the customer:_ suspected cause: {shown}")
    if facts.told:
        last = facts.told[-1]
        promised = f"; it promised {slack_time(last.promised)}" if last.promised else ""
        kept, missed = promises_kept(facts.told, now)
        record = f" Promises: {kept} kept, {missed} missed." if kept or missed else ""
        lines.append(
            f"• Letters approved: {len(facts.told)}, the last {slack_time(last.at)}"
            f"{promised}.{record}"
        )
    return "\n".join(lines)


def action_items(items: Sequence[ActionItem]) -> str:
    lines = ["*Action items*"]
    for item in items[-12:]:
        due = f", due {slack_time(item.due_at)}" if item.due_at else ""
        done = " ✅" if item.done_at else ""
        lines.append(
            f"• `{item.id}` {clip(inert(item.text), 200)} — {mention(item.owner)}{due}{done}"
        )
    return "\n".join(lines)


def _last_letter(sent: SentLetter) -> str:
    """The last letter the customer was sent: when, how and to whom."""
    if sent.route is RouteKind.EMAIL:
        copies = f" (cc {', '.join(inert(a) for a in sent.cc)})" if sent.cc else ""
        where = f"by email to {', '.join(inert(a) for a in sent.to)}{copies}"
    elif sent.route is RouteKind.TICKET:
        where = "on ticket " + ", ".join(f"#{inert(t)}" for t in sent.to)
    else:
        where = "in " + ", ".join(f"<#{c}>" for c in sent.to)
    when = slack_time(sent.sent_at) if sent.sent_at else ""
    return f"📨 *Last letter sent* {when} {where}: “{clip(inert(sent.subject), 150)}”"


def brief(esc: Escalation, protocol: Protocol, clock_scale: float = 1.0) -> Message:
    """The pinned brief: who and what, then every protocol step with its id and due time."""
    status = "✅ Resolved" if esc.status is Status.RESOLVED else "🔥 Investigating"
    blocks: list[Block] = [
        header(f"Escalation: {esc.customer}"),
        section(f"*Summary*\n{inert(esc.summary)}"),
        SectionBlock(
            fields=[
                md(f"*Customer*\n{clip(inert(esc.customer), FIELD_LIMIT - 20)}"),
                md(f"*ARR*\n{money(esc.arr)}"),
                md(f"*Incident commander*\n{mention(esc.ic)}"),
                md(f"*Declared by*\n{mention(esc.declarer)}"),
                md(f"*Criteria*\n{clip(inert(criteria_titles(esc, protocol)), FIELD_LIMIT - 20)}"),
                md(f"*Status*\n{status}"),
            ]
        ),
        note(f"Declared {slack_time(esc.declared_at)} · protocol {inert(protocol.name)}"),
        section(
            told(esc.facts),
            block_id=FACTS_BLOCK,
            accessory=ButtonElement(
                text=PlainTextObject(text="Edit"),
                action_id=ActionId.FACTS_FORM,
                value=esc.id,
            ),
        ),
        *([section(action_items(esc.actions))] if esc.actions else []),
        *([section(clip(tickets_text(esc), 2900))] if esc.tickets else []),
        *([note(_last_letter(sent))] if (sent := last_sent(esc)) else []),
        DividerBlock(),
    ]
    known = {s.id for s in esc.steps}
    for number, step in enumerate(protocol.steps, start=1):
        state = esc.step(step.id) if step.id in known else None
        heading = f"*{number}. {inert(step.title)}* `{step.id}`"
        if state is not None and state.done:
            by = f" by {mention(state.done_by)}" if state.done_by else ""
            when = f"✅ Done{by} {slack_time(state.done_at)}"  # type: ignore[arg-type]
        elif step.every is not None:
            interval = human_duration(step.every / clock_scale)
            nxt = ""
            if state and state.due_at and esc.status is not Status.RESOLVED:
                nxt = f", next by {slack_time(state.due_at)}"
            when = f"🔁 Update every {interval}{nxt}"
        elif step.after_resolution and esc.resolved_at is not None:
            times = " and ".join(
                slack_time(esc.resolved_at + d / clock_scale) for d in step.after_resolution
            )
            when = f"🗓 Follow-ups {times}"
        elif step.after_resolution:
            offsets = " and ".join(human_duration(d / clock_scale) for d in step.after_resolution)
            when = f"🗓 {offsets} after resolution"
        elif state is not None and state.due_at is not None:
            when = f"⏰ Due {slack_time(state.due_at)}"
        else:
            when = ""
        checklist = "\n".join(f"• {inert(item)}" for item in step.checklist)
        accessory = None
        if esc.status is not Status.RESOLVED and state is not None and not state.done and step.due:
            accessory = ButtonElement(
                text=PlainTextObject(text="Mark done"),
                action_id=ActionId.STEP_DONE,
                value=step.id,
                style="primary",
            )
        blocks.append(
            section(
                f"{heading} — {when}\n{checklist}",
                block_id=f"{STEP_BLOCK_PREFIX}{step.id}",
                accessory=accessory,
            )
        )
    blocks.append(
        note(
            f"Escalation `{esc.id}` · mark a step with its button or `@vp done &lt;step-id&gt;` · "
            "mention the bot with `help` for what it can do"
        )
    )
    text = (
        f"Escalation brief: {inert(esc.customer)} — {inert(esc.summary)} "
        f"(IC {mention(esc.ic)}, {esc.status.label})"
    )
    return Message(text=fallback(text), blocks=blocks)


def facts_form(esc: Escalation) -> View:
    """The form that records what the customer may be told, filled with what is recorded."""
    inputs: list[Block] = []
    for kind, label in _FACT_LABELS.items():
        fact = esc.facts.fact(kind)
        element: dict[str, Any] = {
            "action_id": VALUE,
            "multiline": True,
            "max_length": _FACT_INPUT_LIMIT,
        }
        if fact is not None:
            element["initial_value"] = fact.text[:_FACT_INPUT_LIMIT]
        inputs.append(
            InputBlock(
                block_id=kind.value,
                label=PlainTextObject(text=label),
                optional=True,
                element=PlainTextInputElement(**element),
            )
        )
    return View(
        type="modal",
        callback_id=CallbackId.FACTS_FORM,
        private_metadata=esc.channel_id,
        title=PlainTextObject(text="For the customer"),
        submit=PlainTextObject(text="Save"),
        close=PlainTextObject(text="Cancel"),
        blocks=inputs,
    )


def read_facts_form(values: dict[str, Any]) -> dict[FactKind, str]:
    """The facts as typed into the form (Slack does not escape form values)."""
    read = {}
    for kind in _FACT_LABELS:
        value = ((values.get(kind.value) or {}).get(VALUE) or {}).get("value")
        if value is not None:
            read[kind] = value
    return read

"""Block Kit for the VP agent's drafts: a draft while it streams, a finished draft with its
buttons, and the form that edits it (pure: no I/O).

What the agent wrote is people's text as far as Slack is concerned: it goes in through `inert`
like everything else, so a draft can neither broadcast nor link. A draft too long for one
message (a long review) is shown on several pages, each within Slack's limits; the buttons go
on the last, carrying the draft's id and the version they show.
"""

from __future__ import annotations

import re

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    InputBlock,
    MarkdownTextObject,
    PlainTextInputElement,
    PlainTextObject,
)
from slack_sdk.models.views import View

from bot.domain.delivery import (
    DeliveryMode,
    LetterStatus,
    Outgoing,
    Route,
    RouteKind,
    SentLetter,
)
from bot.domain.drafts import Draft, DraftKind
from bot.slack.blocks import (
    BLOCKS_PER_MESSAGE,
    MESSAGE_TEXT_BUDGET,
    SECTION_LIMIT,
    Message,
    chunks,
    fallback,
    header,
    note,
    section,
)
from bot.slack.ids import VALUE, ActionId, BlockId, CallbackId
from bot.slack.text import clip, inert, mention, slack_time

# Slack's limit on a plain-text input, and on blocks in a modal.
INPUT_LIMIT = 3000
# Slack's limit on a confirm dialog's text.
CONFIRM_LIMIT = 300
BLOCKS_PER_VIEW = 100

_LABELS = {
    DraftKind.CUSTOMER_UPDATE: "Drafting a customer update",
    DraftKind.REVIEW: "Drafting the post-incident review",
    DraftKind.ANSWER: "Thinking",
}
_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)


def _headings_as_bold(markdown: str) -> str:
    """Slack's mrkdwn has no headings: `## Root cause` is shown as *Root cause*."""
    return _HEADING.sub(lambda m: f"*{m.group(1).strip('*')}*", markdown)


def button_value(draft: Draft) -> str:
    return f"{draft.id}:{draft.version}"


def send_value(draft: Draft, fingerprint: str) -> str:
    """The Send button's value: the draft, its version and the fingerprint of where the
    button says the letter goes (`Route.fingerprint`)."""
    return f"{draft.id}:{draft.version}:{fingerprint}"


def read_send_value(value: str) -> tuple[str, int, str]:
    """The draft id, the version and the destinations' fingerprint a Send button showed
    ('' for a button from before fingerprints)."""
    draft_id, _, rest = value.partition(":")
    version, _, fingerprint = rest.partition(":")
    return draft_id, int(version) if version.isdigit() else 0, fingerprint


def read_button_value(value: str) -> tuple[str, int]:
    """The draft id and the version a button showed (0 for a button from before versions)."""
    draft_id, _, version = value.partition(":")
    return draft_id, int(version) if version.isdigit() else 0


def drafting(kind: DraftKind, text: str = "") -> Message:
    """A draft while it streams in: its beginning, in one message."""
    shown = f"{inert(text)} ▌" if text else f"✍️ {_LABELS[kind]}…"
    return Message(text=fallback(shown), blocks=[section(shown)])


def _pages(mrkdwn: str) -> list[list[Block]]:
    """The text's sections grouped into messages Slack accepts."""
    sections = [section(c) for c in chunks(mrkdwn, SECTION_LIMIT)]
    pages: list[list[Block]] = [[]]
    used = 0
    for block in sections:
        size = len(block.text.text)  # type: ignore[union-attr]
        # room for the header, the notes and the buttons of the first or last page
        if pages[-1] and (used + size > MESSAGE_TEXT_BUDGET or len(pages[-1]) >= 40):
            pages.append([])
            used = 0
        pages[-1].append(block)
        used += size
    return pages


def draft_pages(
    draft: Draft, customer: str, *, waiting: str = "", outgoing: Outgoing | None = None
) -> list[Message]:
    """The finished draft: one message, or several pages for a long one. `waiting` says whose
    approval it still needs (bot-made mrkdwn: it mentions them); `outgoing`, where the
    account's letters go and what became of this one (None: nowhere, people send them)."""
    shown = inert(draft.text) or "…"
    if draft.kind is DraftKind.REVIEW:
        shown = _headings_as_bold(shown)
    pages = _pages(shown)
    name = inert(customer)
    if draft.kind is DraftKind.CUSTOMER_UPDATE:
        pages[0].insert(
            0,
            note(
                f"📝 Draft customer update for *{name}* — not sent. Nothing reaches the "
                "customer until a person approves it and sends it."
            ),
        )
    elif draft.kind is DraftKind.REVIEW:
        pages[0].insert(0, header(f"Post-incident review: {customer}"))
    pages[-1].extend(_closing(draft, waiting, outgoing))
    total = len(pages)
    titles = {
        DraftKind.CUSTOMER_UPDATE: f"Draft customer update for {name} (not sent)",
        DraftKind.REVIEW: f"Post-incident review: {name}",
        DraftKind.ANSWER: clip(shown, 500),
    }
    messages = []
    for number, blocks in enumerate(pages, start=1):
        title = titles[draft.kind] + (f" ({number} of {total})" if total > 1 else "")
        if total > 1 and number > 1:
            blocks.insert(0, note(f"_{title}_"))
        messages.append(Message(text=fallback(title), blocks=blocks[:BLOCKS_PER_MESSAGE]))
    return messages


def _closing(draft: Draft, waiting: str, outgoing: Outgoing | None = None) -> list[Block]:
    """The notes and, for an update still to approve, the buttons."""
    notes: list[str] = []
    if draft.interrupted:
        before = " What shows is the text from before." if draft.text else ""
        again = "Regenerate" if draft.kind is DraftKind.CUSTOMER_UPDATE else "Ask for it again"
        notes.append(
            f"⏹️ Interrupted: warroom restarted before this draft was finished.{before} "
            f"{again} to write it again."
        )
    if draft.offline:
        reason = f" ({inert(draft.offline_reason)})" if draft.offline_reason else ""
        notes.append(f"⚠️ Drafted offline from templates — the model was unavailable{reason}.")
    if draft.truncated:
        notes.append("✂️ The model stopped at its length limit; the end may be missing.")
    if draft.placeholders:
        notes.append(
            f"✍️ {len(draft.placeholders)} placeholder(s) to fill before it can be approved: "
            + "; ".join(f"`{clip(inert(p), 150)}`" for p in draft.placeholders[:5])
        )
    # The placeholders are listed just above: their findings would say it twice.
    findings = [
        f for f in draft.findings if not (draft.placeholders and f.startswith("placeholder:"))
    ]
    if findings:
        notes.append(
            "🔎 Check before approving: "
            + "; ".join(clip(inert(f), 300) for f in findings[:8])
            + (f" (and {len(findings) - 8} more)" if len(findings) > 8 else "")
        )
    if draft.unsupported:
        notes.append(
            "❓ Not backed by anything recorded: "
            + "; ".join(f"“{clip(inert(u), 200)}”" for u in draft.unsupported[:5])
            + (f" (and {len(draft.unsupported) - 5} more)" if len(draft.unsupported) > 5 else "")
        )
    blocks: list[Block] = [note(n) for n in notes]
    if draft.kind is not DraftKind.CUSTOMER_UPDATE:
        return blocks
    if draft.approved_by and draft.approved_at:
        saved = f" · saved as `{inert(draft.output_file)}`" if draft.output_file else ""
        approved = f"✅ Approved by {mention(draft.approved_by)} {slack_time(draft.approved_at)}"
        if outgoing is None or not (outgoing.route.exists or outgoing.problem):
            blocks.append(
                note(f"{approved}{saved}. Send it to the customer through your usual channel.")
            )
            return blocks
        blocks.append(note(f"{approved}{saved}."))
        blocks.extend(_sending(draft, outgoing))
        return blocks
    if draft.edited_by:
        blocks.append(note(f"✏️ Edited by {mention(draft.edited_by)}"))
    if draft.approvals:
        given = ", ".join(mention(a.by) for a in draft.approvals)
        blocks.append(note(f"☑️ Approved by {given}; it still needs the approval of {waiting}."))
    value = button_value(draft)
    regenerate = ButtonElement(
        text=PlainTextObject(text="Regenerate"), action_id=ActionId.DRAFT_REGENERATE, value=value
    )
    if not draft.text:  # nothing was written (it was interrupted): nothing to approve
        blocks.append(ActionsBlock(block_id=f"draft:{draft.id}", elements=[regenerate]))
        return blocks
    blocks.append(
        ActionsBlock(
            block_id=f"draft:{draft.id}",
            elements=[
                ButtonElement(
                    text=PlainTextObject(text="Approve"),
                    action_id=ActionId.DRAFT_APPROVE,
                    value=value,
                    style="primary",
                ),
                ButtonElement(
                    text=PlainTextObject(text="Edit"), action_id=ActionId.DRAFT_EDIT, value=value
                ),
                regenerate,
            ],
        )
    )
    return blocks


def destination(kind: RouteKind, to: tuple[str, ...], cc: tuple[str, ...] = ()) -> str:
    """Where a route goes, in mrkdwn: `email to a@b.c, cc d@e.f`, the shared channel, or
    `on ticket #4711`."""
    if kind is RouteKind.TICKET:
        numbers = ", ".join(f"#{inert(t)}" for t in to)
        return f"on ticket{'s' if len(to) > 1 else ''} {numbers}"
    if kind is RouteKind.SLACK_CONNECT:
        return "Slack Connect: " + ", ".join(f"<#{c}>" for c in to)
    copies = f", cc {', '.join(inert(a) for a in cc)}" if cc else ""
    return f"email to {', '.join(inert(a) for a in to)}{copies}"


def where_to(route: Route, kinds: tuple[RouteKind, ...]) -> str:
    """Where `kinds` of `route` go, in mrkdwn, joined with "and"."""
    parts = []
    for kind in kinds:
        if kind is RouteKind.EMAIL:
            parts.append(destination(kind, (route.email or "",), route.cc))
        elif kind is RouteKind.TICKET:
            parts.append(destination(kind, route.where(kind)))
        else:
            parts.append(destination(kind, (route.slack_connect or "",)))
    return " and ".join(parts)


def _letter_note(sent: SentLetter) -> str:
    where = destination(sent.route, sent.to, sent.cc)
    if sent.status is LetterStatus.SENT and sent.sent_at is not None:
        by = f" by {mention(sent.by)}" if sent.by else ""
        return f"📨 Sent{by} {slack_time(sent.sent_at)}: {where}."
    reason = clip(inert(sent.reason or sent.result), 300)
    if sent.retry_at is not None:
        when = slack_time(sent.retry_at, "{time}")
        return f"⚠️ Not sent yet ({where}): {reason}. Trying again at {when}."
    return f"⚠️ Not sent ({where}): {reason}. Press *Send* to try again once it is put right."


def _sending(draft: Draft, outgoing: Outgoing) -> list[Block]:
    """Under an approved letter: what became of each route, and Send while one is open."""
    blocks: list[Block] = [note(_letter_note(s)) for s in outgoing.letters]
    route = outgoing.route
    if outgoing.problem:
        blocks.append(note(f"⛔ This letter cannot be sent from here: {inert(outgoing.problem)}."))
        return blocks
    if route.mode is DeliveryMode.OFF:
        setting = "warroom.yaml" if route.mode_from == "warroom.yaml" else "this account's entry"
        blocks.append(
            note(
                f"⛔ Sending is switched off (`delivery: off` in {setting}): nothing goes to "
                "the customer from here. Send it through your usual channel."
            )
        )
        return blocks
    if route.mode is DeliveryMode.APPROVE_ONLY:
        blocks.append(note("Send it to the customer through your usual channel."))
        return blocks
    if not outgoing.may_send:
        return blocks
    where = where_to(route, outgoing.unsent)
    subject = inert(outgoing.subject)
    confirm = f"It goes to {where}, subject “{subject}”, as approved, once."
    if len(confirm) > CONFIRM_LIMIT:
        # Cut short, the dialog would hide some of where it goes: point at the whole list.
        confirm = (
            f"It goes to the {_count(route, outgoing.unsent)} listed just above the button, "
            "as approved, once."
        )
    blocks.append(note(f"📮 *Send* goes to {where} · subject “{subject}”"))
    blocks.append(
        ActionsBlock(
            block_id=f"send:{draft.id}",
            elements=[
                ButtonElement(
                    text=PlainTextObject(text="Send"),
                    action_id=ActionId.DRAFT_SEND,
                    value=send_value(draft, route.fingerprint),
                    style="primary",
                    confirm=ConfirmObject(
                        title="Send this letter?",
                        text=MarkdownTextObject(text=clip(confirm, CONFIRM_LIMIT)),
                        confirm="Send",
                        deny="Not yet",
                    ),
                )
            ],
        )
    )
    return blocks


def _count(route: Route, kinds: tuple[RouteKind, ...]) -> str:
    """How many places `kinds` of `route` go to, in words: "3 addresses and 2 tickets"."""
    nouns = {
        RouteKind.EMAIL: ("address", "addresses"),
        RouteKind.SLACK_CONNECT: ("channel", "channels"),
        RouteKind.TICKET: ("ticket", "tickets"),
    }
    parts = []
    for kind in kinds:
        n = len(route.where(kind))
        parts.append(f"{n} {nouns[kind][n != 1]}")
    return " and ".join(parts)


def _input_pieces(text: str) -> list[str]:
    """The draft as pieces a plain-text input holds (3,000 characters), cut between
    paragraphs where it can be (else between words): a long draft is edited whole, never cut
    short. `read_edit_form` joins the pieces with a blank line."""
    pieces: list[str] = []
    rest = text.strip()
    while len(rest) > INPUT_LIMIT:
        cut = rest.rfind("\n\n", 0, INPUT_LIMIT)
        if cut <= 0:
            cut = rest.rfind(" ", 0, INPUT_LIMIT)
        if cut <= 0:
            cut = INPUT_LIMIT
        pieces.append(rest[:cut].strip())
        rest = rest[cut:].strip()
    pieces.append(rest)
    return pieces


def edit_draft_form(draft: Draft) -> View:
    """The draft in a form, whole: one text box, or one per piece when it is longer than a box
    holds; the edit is saved against the version shown."""
    pieces = _input_pieces(draft.text)
    inputs: list[Block] = []
    for number, piece in enumerate(pieces, start=1):
        label = "Customer update" if len(pieces) == 1 else f"Customer update, part {number}"
        inputs.append(
            InputBlock(
                block_id=BlockId.DRAFT_TEXT if number == 1 else f"{BlockId.DRAFT_TEXT}_{number}",
                label=PlainTextObject(text=label),
                optional=number > 1,
                element=PlainTextInputElement(
                    action_id=VALUE,
                    multiline=True,
                    initial_value=piece,
                    max_length=INPUT_LIMIT,
                ),
            )
        )
    return View(
        type="modal",
        callback_id=CallbackId.EDIT_DRAFT,
        private_metadata=button_value(draft),
        title=PlainTextObject(text="Edit the update"),
        submit=PlainTextObject(text="Save"),
        close=PlainTextObject(text="Cancel"),
        blocks=inputs[:BLOCKS_PER_VIEW],
    )


def read_edit_form(values: dict) -> str:
    """The edited text: the form's pieces, in order, a blank line between them."""
    pieces = []
    number = 1
    while True:
        block = BlockId.DRAFT_TEXT if number == 1 else f"{BlockId.DRAFT_TEXT}_{number}"
        if block not in values:
            return "\n\n".join(p for p in pieces if p)
        pieces.append((((values[block] or {}).get(VALUE) or {}).get("value") or "").strip())
        number += 1

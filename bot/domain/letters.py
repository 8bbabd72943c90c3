"""The letters sent in an escalation: each route's record kept as attempts come in, and the
letter a customer's reply belongs to (pure)."""

from __future__ import annotations

from bot.domain.delivery import LetterStatus, RouteKind, SentLetter
from bot.domain.escalation import Escalation


def letter(esc: Escalation, draft_id: str, route: RouteKind) -> SentLetter | None:
    return next((s for s in esc.letters if s.draft == draft_id and s.route is route), None)


def note_attempt(esc: Escalation, attempt: SentLetter) -> tuple[Escalation, bool]:
    """`attempt` kept as the letter's record on its route: (the escalation, whether it
    changed). A letter on record as sent stays so (a late or repeated attempt changes
    nothing); the first attempt's time is kept."""
    current = letter(esc, attempt.draft, attempt.route)
    if current is not None and current.status is LetterStatus.SENT:
        return esc, False
    if current is not None:
        attempt = attempt.model_copy(update={"first_attempt_at": current.first_attempt_at})
        if attempt == current:
            return esc, False
    others = tuple(s for s in esc.letters if s.key != attempt.key)
    return esc.model_copy(update={"letters": (*others, attempt)}), True


def first_sent_of(esc: Escalation, draft_id: str) -> bool:
    """Whether no route of the draft is on record as sent yet."""
    return not any(s.draft == draft_id and s.status is LetterStatus.SENT for s in esc.letters)


def last_sent(esc: Escalation) -> SentLetter | None:
    sent = [s for s in esc.letters if s.status is LetterStatus.SENT and s.sent_at]
    return max(sent, key=lambda s: s.sent_at) if sent else None  # type: ignore[arg-type, return-value]


def letter_for_reply(
    esc: Escalation,
    *,
    channel: str | None = None,
    thread_ts: str | None = None,
    message_id: str | None = None,
) -> SentLetter | None:
    """The sent letter a customer's reply belongs to, or None.

    An email reply names the letter in In-Reply-To or References (pass each id until one
    answers); a Slack Connect reply is in the thread of the letter's message (`thread_ts`) or,
    said in the shared channel outside any thread, belongs to the last letter posted there."""
    sent = [s for s in esc.letters if s.status is LetterStatus.SENT]
    if message_id:
        wanted = message_id.strip()
        if not wanted.startswith("<"):
            wanted = f"<{wanted}>"
        return next((s for s in sent if s.message_id == wanted), None)
    if channel:
        there = [s for s in sent if s.channel == channel and s.ts]
        if thread_ts:
            return next((s for s in there if s.ts == thread_ts), None)
        return max(there, key=lambda s: float(s.ts or 0), default=None)
    return None

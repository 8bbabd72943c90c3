"""What the VP agent drafts, as kept between posting it and a person acting on it; and the rules
that make an approval cover exactly the text the approver saw (pure).

Every change to the text shown bumps `version`, and the buttons carry the version they were
shown with: a click on an older one is refused. While a draft is being (re)drafted nothing may
approve or edit it, and once approved nothing may change it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum

from pydantic import AwareDatetime

from bot.domain.errors import InvalidInput
from bot.domain.record import Record


class DraftKind(StrEnum):
    CUSTOMER_UPDATE = "customer_update"
    REVIEW = "review"
    ANSWER = "answer"


DECISIVE = "decisive"  # the approval of the IC, a VP or the declarer (authorized_roles)


class Approval(Record):
    by: str
    at: AwareDatetime
    # What the approval stands for: DECISIVE, or the criterion whose approvers gave it.
    role: str


class Draft(Record):
    id: str
    escalation: str
    kind: DraftKind
    channel: str
    ts: str = ""  # the Slack message that shows it
    # Further messages, when the draft is too long for one (a long review).
    more_ts: tuple[str, ...] = ()
    thread_ts: str | None = None
    text: str = ""
    version: int = 1
    drafting: bool = False  # the agent is writing it (again) right now
    # Its writing was cut short when the process stopped: what shows is what was there
    # before (nothing, for a new draft), to regenerate.
    interrupted: bool = False
    offline: bool = False
    offline_reason: str = ""
    truncated: bool = False
    # What to look at before approving: the checks' findings on the text shown (a leak,
    # another customer, an internal id, an unconfirmed cause, a flag term, ...).
    findings: tuple[str, ...] = ()
    # Sentences of the model's text that cite nothing in the record.
    unsupported: tuple[str, ...] = ()
    # Placeholders still in the text ("[impact: ...]"): it cannot be approved while any remain.
    placeholders: tuple[str, ...] = ()
    requested_by: str = ""
    created_at: AwareDatetime
    edited_by: str | None = None
    # Criteria whose own approvers must also approve (`approvals` in warroom.yaml).
    needs: tuple[str, ...] = ()
    # The approvals given to the version shown; it counts as approved once none is missing.
    approvals: tuple[Approval, ...] = ()
    approved_by: str | None = None
    approved_at: AwareDatetime | None = None
    output_file: str | None = None
    # Approved for warroom to send: the sending, not the approval, is the customer update.
    delivery_fact: bool = False

    def missing(self) -> tuple[str, ...]:
        """The approvals still needed: DECISIVE first, then each criterion's."""
        given = {a.role for a in self.approvals}
        return tuple(r for r in (DECISIVE, *self.needs) if r not in given)


def _current(draft: Draft, seen: int, what: str) -> None:
    """Refuse to act on a draft that is approved, being drafted, or not the one seen."""
    if draft.approved_by:
        raise InvalidInput(
            f"This update was already approved by <@{draft.approved_by}>; it can no longer "
            f"change. Ask for a new `draft update` to {what} another one."
        )
    if draft.drafting:
        raise InvalidInput(
            "This update is being drafted again right now; wait for the new text, read it, "
            f"then {what} that."
        )
    if seen != draft.version:
        raise InvalidInput(
            "This update has changed since you saw it; read the text now in the thread, "
            f"then {what} that."
        )


def redraft(draft: Draft, seen: int, user: str) -> Draft:
    """Start drafting the text again: the old one can no longer be approved."""
    _current(draft, seen, "redraft")
    return draft.model_copy(
        update={
            "version": draft.version + 1,
            "drafting": True,
            "interrupted": False,
            "edited_by": None,
            "requested_by": user,
            "approvals": (),  # they covered the text being replaced
        }
    )


def edit(draft: Draft, seen: int, user: str, text: str) -> Draft:
    text = text.strip()
    if not text:
        raise InvalidInput("The update cannot be empty.")
    _current(draft, seen, "edit")
    return draft.model_copy(
        update={"text": text, "version": draft.version + 1, "edited_by": user, "approvals": ()}
    )


def approve(draft: Draft, seen: int, user: str, now: datetime, roles: Iterable[str]) -> Draft:
    """`user` approves the version `seen`, as the first of `roles` (what they may approve as)
    still missing. One person gives one approval: a second approval comes from someone else.
    The draft counts as approved (`approved_by`) once no approval is missing."""
    _current(draft, seen, "approve")
    if draft.placeholders:
        raise InvalidInput(
            f"This update still has {len(draft.placeholders)} placeholder(s) to fill, such as "
            f"“{draft.placeholders[0][:200]}”. Press *Edit*, put the facts in (or record them "
            "and press *Regenerate*), then approve."
        )
    if any(a.by == user for a in draft.approvals):
        raise InvalidInput(
            "You already approved this update; it now waits for "
            f"{' and '.join(draft.missing())}'s approval."
        )
    missing = draft.missing()
    role = next((r for r in missing if r in set(roles)), None)
    if role is None:
        raise InvalidInput(f"This update waits for {' and '.join(missing)}'s approval, not yours.")
    approvals = (*draft.approvals, Approval(by=user, at=now, role=role))
    approved = draft.model_copy(update={"approvals": approvals})
    if approved.missing():
        return approved
    decisive = next(a.by for a in approvals if a.role == DECISIVE)
    return approved.model_copy(update={"approved_by": decisive, "approved_at": now})


def may_edit(draft: Draft, seen: int) -> None:
    """Raise unless the version `seen` may be opened for editing."""
    _current(draft, seen, "edit")

"""What the customer may be told, recorded for that purpose, apart from the internal record.

Updates, the declaration's summary and whatever is said in the room are internal notes. A
customer update is written from these facts only: the impact in the customer's terms (when it
began and, later, ended), a workaround, what we are doing, an ETA someone is prepared to give,
what the customer should do themselves (advice, as in a security incident), and the cause
once the IC or a VP confirmed it, and what fixed it once it is fixed. "No workaround" is a
fact too (`workaround none`): a letter then says so instead of asking for one. A suspected
cause stays internal. Each approved letter is kept as what the customer was told (`Told`), so
the next one can say what changed since, and own a promise it did not keep. Action items
(who does what after the incident, by when) are kept here too: the review lists them and their
owners are reminded when they fall due. Pure.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import AwareDatetime

from bot.domain.record import Record


class FactKind(StrEnum):
    IMPACT = "impact"
    WORKAROUND = "workaround"
    DOING = "doing"  # what we are doing about it
    ETA = "eta"
    ADVICE = "advice"  # what the customer should do (a security incident: rotate keys, ...)
    FIXED = "fixed"  # what fixed it, in the customer's terms


# `workaround none`: recorded as this text, so the brief and the timeline read it as said.
NO_WORKAROUND = "none"


class Fact(Record):
    text: str
    by: str
    at: AwareDatetime


class Impact(Fact):
    began: AwareDatetime
    ended: AwareDatetime | None = None
    # Where `began` comes from: "since" (`--since`), "text" (a time written in the fact, read
    # in the account's time zone) or "declared" (neither: the declaration).
    began_from: str = "declared"
    # A start the fact's text states that differs from `began` (`--since` says otherwise).
    stated_began: AwareDatetime | None = None


class Cause(Fact):
    confirmed_by: str | None = None
    confirmed_at: AwareDatetime | None = None

    @property
    def confirmed(self) -> bool:
        return self.confirmed_by is not None


class Told(Record):
    """What one approved letter told the customer: the facts as they stood when it was
    approved, the time it promised (the next update, or the check-in after resolution), and
    the facts the approver took out of it."""

    at: AwareDatetime
    by: str
    impact: str | None = None
    impact_began: AwareDatetime | None = None
    impact_ended: AwareDatetime | None = None
    workaround: str | None = None
    eta: str | None = None
    eta_at: AwareDatetime | None = None  # when the ETA fact was recorded
    advice: str | None = None
    doing: str | None = None
    cause: str | None = None
    fixed: str | None = None
    resolved: bool = False
    promised: AwareDatetime | None = None
    # Fact kinds recorded then that the approved text leaves out (a person removed them).
    left_out: tuple[str, ...] = ()


def promises_kept(told: tuple[Told, ...], now: datetime | None = None) -> tuple[int, int]:
    """How many promised updates were kept and missed: a promise is kept when the next letter
    was approved by its time, missed when it was approved later or, given `now`, none came by
    then (a promise still ahead counts as neither)."""
    kept = missed = 0
    for n, letter in enumerate(told):
        if letter.promised is None:
            continue
        following = told[n + 1].at if n + 1 < len(told) else None
        if following is not None and following <= letter.promised:
            kept += 1
        elif (following or now) is not None and (following or now) > letter.promised:
            missed += 1
    return kept, missed


class CustomerFacts(Record):
    impact: Impact | None = None
    workaround: Fact | None = None
    doing: Fact | None = None
    eta: Fact | None = None
    advice: Fact | None = None
    fixed: Fact | None = None
    # Every cause put forward, oldest first; at most one confirmed.
    causes: tuple[Cause, ...] = ()
    # What each approved letter told the customer, oldest first.
    told: tuple[Told, ...] = ()

    @property
    def no_workaround(self) -> bool:
        """Someone recorded that there is no workaround."""
        return self.workaround is not None and self.workaround.text.casefold() == NO_WORKAROUND

    def fact(self, kind: FactKind) -> Fact | None:
        return getattr(self, kind.value)

    @property
    def confirmed_cause(self) -> Cause | None:
        return next((c for c in reversed(self.causes) if c.confirmed), None)

    @property
    def suspected_causes(self) -> tuple[Cause, ...]:
        return tuple(c for c in self.causes if not c.confirmed)


class ActionItem(Record):
    id: str  # `A1`, `A2`: what `done A1` names
    owner: str
    text: str
    due_at: AwareDatetime | None = None
    by: str
    at: AwareDatetime
    reminded_at: AwareDatetime | None = None
    # Taken on so it does not happen again: the resolution notice says we are changing it.
    prevention: bool = False
    done_at: AwareDatetime | None = None
    done_by: str | None = None

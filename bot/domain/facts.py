"""What the customer may be told, recorded for that purpose, apart from the internal record.

Updates, the declaration's summary and whatever is said in the room are internal notes. A
customer update is written from these facts only: the impact in the customer's terms (when it
began and, later, ended), a workaround, what we are doing, an ETA someone is prepared to give,
what the customer should do themselves (advice, as in a security incident), and the cause
once the IC or a VP confirmed it. A suspected cause stays internal. Action items
(who does what after the incident, by when) are kept here too: the review lists them and their
owners are reminded when they fall due. Pure.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import AwareDatetime

from bot.domain.record import Record


class FactKind(StrEnum):
    IMPACT = "impact"
    WORKAROUND = "workaround"
    DOING = "doing"  # what we are doing about it
    ETA = "eta"
    ADVICE = "advice"  # what the customer should do (a security incident: rotate keys, ...)


class Fact(Record):
    text: str
    by: str
    at: AwareDatetime


class Impact(Fact):
    began: AwareDatetime
    ended: AwareDatetime | None = None


class Cause(Fact):
    confirmed_by: str | None = None
    confirmed_at: AwareDatetime | None = None

    @property
    def confirmed(self) -> bool:
        return self.confirmed_by is not None


class CustomerFacts(Record):
    impact: Impact | None = None
    workaround: Fact | None = None
    doing: Fact | None = None
    eta: Fact | None = None
    advice: Fact | None = None
    # Every cause put forward, oldest first; at most one confirmed.
    causes: tuple[Cause, ...] = ()

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
    done_at: AwareDatetime | None = None
    done_by: str | None = None

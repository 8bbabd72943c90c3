"""Recording what the customer may be told and who does what next: the changes people make
to an escalation's customer-facing facts and its action items, each with its timeline event
saying who made it (pure).

When the impact began or ended comes from what people said: `--since`, else a time they wrote
in the fact ("since 09:10"), read in the account's time zone; a fact whose own time disagrees
with `--since` keeps both, so the disagreement can be shown and flagged.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, tzinfo

from bot.domain.errors import InvalidInput
from bot.domain.escalation import Escalation
from bot.domain.facts import ActionItem, Cause, Fact, FactKind, Impact, Told
from bot.domain.timeline import Event, EventKind, event


def _with_facts(esc: Escalation, **changes: object) -> Escalation:
    return esc.model_copy(update={"facts": esc.facts.model_copy(update=changes)})


# "since 09:10", "from 9am", "started at 14:05 CET": a time written in the fact. The zone label,
# if any, is read as the account's own (a person writes their customer's local time).
_STATED_TIME = re.compile(
    r"(?<!\w)(?:since|from|at|starting|started(?: at)?|began(?: at)?|as of)\s+"
    r"(?P<h>[01]?\d|2[0-3])(?::(?P<m>[0-5]\d))?\s*(?P<ampm>[ap]\.?m\.?)?(?![\w:])",
    re.IGNORECASE,
)


def stated_time(text: str, now: datetime, zone: tzinfo = UTC) -> datetime | None:
    """The time a person wrote in `text` ("since 09:10"), as the latest such moment not after
    `now` in `zone`; None when the text gives none. A bare hour needs am/pm ("since 9am")."""
    for match in _STATED_TIME.finditer(text):
        if match.group("m") is None and match.group("ampm") is None:
            continue  # "at 3 sites" is not a time
        hour, minute = int(match.group("h")), int(match.group("m") or 0)
        ampm = match.group("ampm")
        if ampm:
            if hour > 12:
                continue
            hour = hour % 12 + (12 if ampm.lower().startswith("p") else 0)
        local = now.astimezone(zone)
        at = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
        if at > local:
            at -= timedelta(days=1)
        return at.astimezone(UTC)
    return None


def record_fact(
    esc: Escalation,
    kind: FactKind,
    text: str,
    user: str,
    now: datetime,
    since: timedelta | None = None,
    zone: tzinfo = UTC,
) -> tuple[Escalation, list[Event]]:
    """Record what the customer may be told (`impact`, `workaround`, `doing`, `eta`,
    `advice`, `fixed`; `workaround none` for no workaround).

    The impact began `since` ago when given, else at the time its text states ("since
    09:10", in `zone`), else when the existing impact began, else at the declaration."""
    text = " ".join(text.split())
    if not text:
        raise InvalidInput(f"Say what the customer may be told: `{kind.value} <text>`.")
    data: dict[str, object] = {"fact": kind.value}
    if kind is FactKind.IMPACT:
        previous = esc.facts.impact
        stated = stated_time(text, now, zone)
        stated_began = None
        if since:
            began, began_from = now - since, "since"
            if stated is not None and abs(stated - began) >= timedelta(minutes=1):
                stated_began = stated
        elif stated is not None:
            began, began_from = stated, "text"
        elif previous is not None:
            began, began_from = previous.began, previous.began_from
        else:
            began, began_from = esc.declared_at, "declared"
        fact: Fact = Impact(
            text=text,
            by=user,
            at=now,
            began=began,
            began_from=began_from,
            stated_began=stated_began,
        )
        data["began"] = began.isoformat()
        data["began_from"] = began_from
    else:
        fact = Fact(text=text, by=user, at=now)
    return _with_facts(esc, **{kind.value: fact}), [
        event(now, EventKind.FACT, user, f"{kind.value.capitalize()}: {text}", **data)
    ]


def end_impact(
    esc: Escalation,
    user: str,
    now: datetime,
    since: timedelta | None = None,
    at: datetime | None = None,
) -> tuple[Escalation, list[Event]]:
    """The customer is no longer affected: since `since` ago, else at `at` (a time the person
    wrote), else now."""
    impact = esc.facts.impact
    if impact is None:
        raise InvalidInput("No impact is recorded yet: `impact <what the customer sees>` first.")
    ended = now - since if since else (at or now)
    if ended < impact.began:
        raise InvalidInput("The impact cannot end before it began; check the time you gave.")
    return _with_facts(esc, impact=impact.model_copy(update={"ended": ended})), [
        event(
            now, EventKind.FACT, user, "Impact ended", fact="impact_ended", ended=ended.isoformat()
        )
    ]


def note_told(esc: Escalation, told: Told) -> Escalation:
    """Keep what an approved letter told the customer (no event: the approval has its own)."""
    return _with_facts(esc, told=(*esc.facts.told, told))


def told_now(
    esc: Escalation,
    user: str,
    now: datetime,
    promised: datetime | None,
    left_out: tuple[str, ...] = (),
) -> Told:
    """What a letter approved now tells the customer: the facts as they stand."""
    facts = esc.facts
    impact = facts.impact
    cause = facts.confirmed_cause

    def text(kind: FactKind) -> str | None:
        fact = facts.fact(kind)
        return fact.text if fact is not None else None

    return Told(
        at=now,
        by=user,
        impact=impact.text if impact else None,
        impact_began=impact.began if impact else None,
        impact_ended=impact.ended if impact else None,
        workaround=text(FactKind.WORKAROUND),
        eta=text(FactKind.ETA),
        eta_at=facts.eta.at if facts.eta else None,
        advice=text(FactKind.ADVICE),
        doing=text(FactKind.DOING),
        cause=cause.text if cause else None,
        fixed=text(FactKind.FIXED),
        resolved=esc.resolved_at is not None,
        promised=promised,
        left_out=left_out,
    )


def suspect_cause(
    esc: Escalation, text: str, user: str, now: datetime
) -> tuple[Escalation, list[Event]]:
    """A cause put forward: internal until the IC or a VP confirms it."""
    text = " ".join(text.split())
    if not text:
        raise InvalidInput("Say what the cause may be: `cause <what you think it is>`.")
    cause = Cause(text=text, by=user, at=now)
    return _with_facts(esc, causes=(*esc.facts.causes, cause)), [
        event(now, EventKind.CAUSE, user, text)
    ]


def confirm_cause(
    esc: Escalation, text: str, user: str, now: datetime
) -> tuple[Escalation, list[Event]]:
    """Confirm the cause: the one given, else the last one suspected. Only a confirmed cause
    reaches a customer; confirming another replaces it."""
    text = " ".join(text.split())
    causes = [
        c.model_copy(update={"confirmed_by": None, "confirmed_at": None}) for c in esc.facts.causes
    ]
    if text:
        causes.append(Cause(text=text, by=user, at=now, confirmed_by=user, confirmed_at=now))
    else:
        suspected = esc.facts.suspected_causes
        if not suspected:
            raise InvalidInput(
                "No cause has been put forward to confirm: `cause confirmed <the cause>`."
            )
        last = suspected[-1]
        causes = [
            c.model_copy(update={"confirmed_by": user, "confirmed_at": now}) if c == last else c
            for c in causes
        ]
    confirmed = next(c for c in reversed(causes) if c.confirmed)
    return _with_facts(esc, causes=tuple(causes)), [
        event(now, EventKind.CAUSE_CONFIRMED, user, confirmed.text)
    ]


def add_action(
    esc: Escalation,
    owner: str,
    text: str,
    due: datetime | None,
    user: str,
    now: datetime,
    prevention: bool = False,
) -> tuple[Escalation, list[Event]]:
    text = " ".join(text.split())
    if not text:
        raise InvalidInput("Say what is to be done: `action @owner <what> [--due 3d]`.")
    if due is not None and due <= now:
        raise InvalidInput("An action item is due in the future: `--due 3d`, `--due 12h`.")
    item = ActionItem(
        id=f"A{len(esc.actions) + 1}",
        owner=owner,
        text=text,
        due_at=due,
        by=user,
        at=now,
        prevention=prevention,
    )
    data = {"id": item.id, "owner": owner, "due_at": due.isoformat() if due else None}
    return esc.model_copy(update={"actions": (*esc.actions, item)}), [
        event(now, EventKind.ACTION, user, text, **data)
    ]


def action(esc: Escalation, action_id: str) -> ActionItem | None:
    return next((a for a in esc.actions if a.id.casefold() == action_id.casefold()), None)


def _replace_action(esc: Escalation, item: ActionItem) -> Escalation:
    actions = tuple(item if a.id == item.id else a for a in esc.actions)
    return esc.model_copy(update={"actions": actions})


def complete_action(
    esc: Escalation, action_id: str, user: str, now: datetime
) -> tuple[Escalation, list[Event]]:
    """Mark an action item done once; again changes nothing."""
    item = action(esc, action_id)
    if item is None:
        raise InvalidInput(f"There is no action item `{action_id}`; see `timeline`.")
    if item.done_at is not None:
        return esc, []
    done = item.model_copy(update={"done_at": now, "done_by": user})
    return _replace_action(esc, done), [
        event(now, EventKind.ACTION_DONE, user, item.text, id=item.id)
    ]


def action_reminder_due(esc: Escalation, action_id: str) -> ActionItem | None:
    """The action item, if its owner should be reminded now (once, when due, while open)."""
    item = action(esc, action_id)
    if item is None or item.done_at is not None or item.reminded_at is not None:
        return None
    return item if item.due_at is not None else None


def note_action_reminder(
    esc: Escalation, action_id: str, now: datetime
) -> tuple[Escalation, list[Event]]:
    item = action_reminder_due(esc, action_id)
    if item is None:
        return esc, []
    return _replace_action(esc, item.model_copy(update={"reminded_at": now})), [
        event(now, EventKind.ACTION_REMINDER, None, item.text, id=item.id)
    ]

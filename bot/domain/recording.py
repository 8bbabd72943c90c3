"""Recording what the customer may be told and who does what next: the changes people make
to an escalation's customer-facing facts and its action items, each with its timeline event
saying who made it (pure).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.domain.errors import InvalidInput
from bot.domain.escalation import Escalation
from bot.domain.facts import ActionItem, Cause, Fact, FactKind, Impact
from bot.domain.timeline import Event, EventKind, event


def _with_facts(esc: Escalation, **changes: object) -> Escalation:
    return esc.model_copy(update={"facts": esc.facts.model_copy(update=changes)})


def record_fact(
    esc: Escalation,
    kind: FactKind,
    text: str,
    user: str,
    now: datetime,
    since: timedelta | None = None,
) -> tuple[Escalation, list[Event]]:
    """Record what the customer may be told (`impact`, `workaround`, `doing`, `eta`,
    `advice`). The
    impact began `since` ago when given, else when the existing impact began, else at the
    declaration."""
    text = " ".join(text.split())
    if not text:
        raise InvalidInput(f"Say what the customer may be told: `{kind.value} <text>`.")
    if kind is FactKind.IMPACT:
        previous = esc.facts.impact
        began = now - since if since else (previous.began if previous else esc.declared_at)
        fact: Fact = Impact(text=text, by=user, at=now, began=began)
    else:
        fact = Fact(text=text, by=user, at=now)
    data: dict[str, object] = {"fact": kind.value}
    if isinstance(fact, Impact):
        data["began"] = fact.began.isoformat()
    return _with_facts(esc, **{kind.value: fact}), [
        event(now, EventKind.FACT, user, f"{kind.value.capitalize()}: {text}", **data)
    ]


def end_impact(
    esc: Escalation, user: str, now: datetime, since: timedelta | None = None
) -> tuple[Escalation, list[Event]]:
    """The customer is no longer affected (since `since` ago, else now)."""
    impact = esc.facts.impact
    if impact is None:
        raise InvalidInput("No impact is recorded yet: `impact <what the customer sees>` first.")
    ended = now - since if since else now
    if ended < impact.began:
        raise InvalidInput("The impact cannot end before it began; check `--since`.")
    return _with_facts(esc, impact=impact.model_copy(update={"ended": ended})), [
        event(
            now, EventKind.FACT, user, "Impact ended", fact="impact_ended", ended=ended.isoformat()
        )
    ]


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
    esc: Escalation, owner: str, text: str, due: datetime | None, user: str, now: datetime
) -> tuple[Escalation, list[Event]]:
    text = " ".join(text.split())
    if not text:
        raise InvalidInput("Say what is to be done: `action @owner <what> [--due 3d]`.")
    if due is not None and due <= now:
        raise InvalidInput("An action item is due in the future: `--due 3d`, `--due 12h`.")
    item = ActionItem(
        id=f"A{len(esc.actions) + 1}", owner=owner, text=text, due_at=due, by=user, at=now
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

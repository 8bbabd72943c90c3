"""The facts the VP agent may use about one escalation, and how those facts are written out.

A `Grounding` is built by the bot from the escalation, its timeline and the account facts in
`customer_insights.yaml`; prompts and the offline drafter read nothing else. It keeps apart
what a customer may be told (`Facts`: impact, workaround, what we are doing, an ETA, a
confirmed cause, each recorded by a person for that purpose) from the internal record (the
summary, status updates, suspected causes, what was said in the room), which is material to
translate, never to quote. Every entry carries an id (`T12`, `M3`) that a draft cites.

It also owns the few derived facts prompts and the offline drafter must agree on: the next
update time a draft promises, the formats of times and durations, and how people's text is
made safe to quote.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# When neither a due time nor an interval is known, a draft still has to promise something:
# two hours is the low end of the protocol's 2-4 h update cadence.
DEFAULT_UPDATE_INTERVAL = timedelta(hours=2)


@dataclass(frozen=True)
class TimelineEntry:
    """One line of the internal record."""

    at: datetime
    kind: str
    actor: str | None
    text: str
    id: str = ""  # `T7`: how a draft cites it


@dataclass(frozen=True)
class Fact:
    """Something a person recorded for the customer to be told, and who and when."""

    text: str
    by: str  # `@name`
    at: datetime
    id: str = ""  # the timeline entry that recorded it, as cited


@dataclass(frozen=True)
class Facts:
    """What the customer may be told. Only a confirmed cause is here as `cause`; a suspected
    one is internal (`suspected_causes`) and never reaches a customer."""

    impact: Fact | None = None
    impact_began: datetime | None = None
    impact_ended: datetime | None = None
    workaround: Fact | None = None
    doing: Fact | None = None  # what we are doing about it
    eta: Fact | None = None  # only when someone stated one
    cause: Fact | None = None  # confirmed by the IC or a VP
    suspected_causes: tuple[Fact, ...] = ()
    # What the customer should do (a security incident: rotate these keys, review those logs;
    # an outage: do not retry by hand), when someone stated it for the customer.
    advice: Fact | None = None
    fixed: Fact | None = None  # what fixed it, in the customer's terms
    # Someone recorded that there is no workaround (`workaround none`; `workaround` is None).
    no_workaround: bool = False
    # Where impact_began comes from: "since" (`--since`), "text" (a time in the impact fact,
    # read in the account's time zone) or "declared" (the declaration: nobody said).
    began_from: str = "declared"
    # A start the impact fact's text states that disagrees with impact_began.
    stated_began: datetime | None = None

    def said(self) -> tuple[Fact, ...]:
        """The facts a customer may be told, in the order a letter gives them."""
        facts = (
            self.impact,
            self.workaround,
            self.advice,
            self.doing,
            self.eta,
            self.cause,
            self.fixed,
        )
        return tuple(f for f in facts if f is not None)


@dataclass(frozen=True)
class Told:
    """What one approved letter told the customer: the customer facts as they stood when it was
    approved, the time it promised, and the facts the approver took out of it."""

    at: datetime
    impact: str | None = None
    impact_began: datetime | None = None
    impact_ended: datetime | None = None
    workaround: str | None = None
    eta: str | None = None
    eta_at: datetime | None = None  # when the ETA it gave was recorded
    advice: str | None = None
    doing: str | None = None
    cause: str | None = None
    fixed: str | None = None
    resolved: bool = False
    promised: datetime | None = None  # the next update, or the check-in after resolution
    left_out: tuple[str, ...] = ()  # fact kinds the approver removed


@dataclass(frozen=True)
class ActionItem:
    """A follow-up someone took on during the incident (`@vp action @owner ...`)."""

    owner: str  # `@name`
    text: str
    due_at: datetime | None
    by: str
    id: str = ""
    done: bool = False
    # Taken on so it does not happen again (`--prevention`): what a resolution notice says
    # we are changing.
    prevention: bool = False


@dataclass(frozen=True)
class RoomMessage:
    """Something said in the war room (a message pinned to the timeline, or the room's recent
    talk): internal material, translated, never quoted."""

    at: datetime
    by: str
    text: str
    id: str = ""  # `M3`


@dataclass(frozen=True)
class CustomerSaid:
    """A reply of the customer's, come back to the room (their shared channel, an email, a
    ticket comment): what they said and asked, for the next letter to answer. Their words
    are never a letter's text: a letter answers them, it does not quote them back."""

    at: datetime
    who: str  # the person, by name
    organisation: str
    via: str  # "slack_connect" | "email" | "zendesk"
    text: str
    id: str = ""  # the timeline entry (`T9`)

    @property
    def asks(self) -> bool:
        """The reply asks something (a question mark is the sign a reader goes by)."""
        return "?" in self.text


@dataclass(frozen=True)
class StepView:
    id: str
    title: str
    due_at: datetime | None
    done_at: datetime | None
    done_by: str | None

    def overdue(self, now: datetime) -> bool:
        # The same rule as the escalation domain: due and not done, from the deadline on.
        return self.done_at is None and self.due_at is not None and now >= self.due_at


@dataclass(frozen=True)
class Grounding:
    escalation_id: str
    customer: str
    summary: str
    arr: int | None
    criteria: tuple[str, ...]  # criterion titles
    status: str  # "investigating" | "resolved"
    ic: str  # display names or Slack mentions, as given
    declarer: str
    declared_at: datetime
    now: datetime
    steps: tuple[StepView, ...]
    timeline: tuple[TimelineEntry, ...]
    last_update_at: datetime | None
    next_update_due: datetime | None
    update_interval: timedelta | None
    resolved_at: datetime | None = None
    resolution: str = ""
    # Account facts from customer_insights.yaml: arr, tier, executive_contact, csm, notes, ...
    customer_facts: Mapping[str, Any] = field(default_factory=dict)
    # Customer updates a person already approved, most recent last.
    approved_updates: tuple[str, ...] = ()
    # What the customer may be told (see `Facts`).
    facts: Facts = field(default_factory=Facts)
    action_items: tuple[ActionItem, ...] = ()
    room_messages: tuple[RoomMessage, ...] = ()
    # Protocol criterion ids (the playbook: security, legal, churn risk, ...).
    criteria_ids: tuple[str, ...] = ()
    # The VP who signs what goes to the customer, by name; None when none is on record.
    signer: str | None = None
    # The protocol's first-customer-contact step: its deadline and when it was done.
    first_contact_due: datetime | None = None
    first_contact_done_at: datetime | None = None
    # When the follow-ups after resolution are scheduled (the check-in a notice promises).
    follow_ups: tuple[datetime, ...] = ()
    # WARROOM_CLOCK_SCALE the escalation ran with: a drill's durations are in its own time.
    clock_scale: float = 1.0
    # Other accounts' names: never to appear in this customer's letter.
    other_customers: tuple[str, ...] = ()
    # The organisation's flag terms (`flag_terms` in warroom.yaml); empty: the defaults.
    flag_terms: tuple[str, ...] = ()
    # What each approved letter told the customer, oldest first (the customer conversation).
    told: tuple[Told, ...] = ()
    # Who coordinates statements to the press (`press_contact` in warroom.yaml), if anyone.
    press_contact: str | None = None
    # The organisation's business hours (`business_hours` in warroom.yaml, "09:00-17:00"): when
    # an account whose facts name none of its own may be promised a check-in.
    business_hours: str = "09:00-17:00"
    # The customer's latest replies, oldest first: what they said and asked.
    customer_replies: tuple[CustomerSaid, ...] = ()

    @property
    def resolved(self) -> bool:
        return self.status == "resolved"

    def root_cause(self) -> str | None:
        """The cause a customer may be told: the confirmed one, else None. A suspected cause,
        or an update that says "root cause: ...", is internal material only."""
        return self.facts.cause.text if self.facts.cause is not None else None

    def overdue_steps(self) -> tuple[StepView, ...]:
        return tuple(step for step in self.steps if step.overdue(self.now))

    def promised_next_update(self) -> datetime:
        """The next update time a customer update commits to, rounded up to the minute.

        The scheduled due time when there is one still ahead of us (or the time the last
        letter promised, when that is earlier); otherwise one update interval from now;
        otherwise two hours from now. A due time already in the past
        (the update is late) cannot be promised, so it falls through to the interval.
        """
        due = self.next_update_due
        # The time the last letter promised is the customer's clock: approving it or an
        # internal update never moves it later.
        last = self.told[-1] if self.told else None
        kept = last.promised if last is not None and not last.resolved else None
        if kept is not None and kept > self.now and (due is None or kept < due):
            due = kept
        if due is not None and due > self.now:
            at = due
        else:
            at = self.now + (self.update_interval or DEFAULT_UPDATE_INTERVAL)
        return ceil_minute(at)

    def executive_contact(self) -> str | None:
        value = self.customer_facts.get("executive_contact")
        text = str(value).strip() if value is not None else ""
        return text or None

    def account_arr(self) -> int | None:
        """ARR from the escalation, else from the account facts."""
        if self.arr is not None:
            return self.arr
        value = self.customer_facts.get("arr")
        # bool is an int subclass; `arr: true` in YAML is not an amount.
        if isinstance(value, int | float) and not isinstance(value, bool):
            return int(value)
        return None

    def elapsed(self) -> timedelta:
        """How long the escalation has run: to its resolution, or to now."""
        end = self.resolved_at if self.resolved_at is not None else self.now
        return end - self.declared_at

    def updates(self) -> tuple[TimelineEntry, ...]:
        """Status updates recorded on the timeline, oldest first."""
        return tuple(e for e in sorted(self.timeline, key=lambda e: e.at) if e.kind == "update")

    def zone(self) -> tzinfo:
        """The account's time zone (`timezone` in its facts, IANA), else UTC."""
        name = str(self.customer_facts.get("timezone") or "").strip()
        if not name:
            return UTC
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            # A typo in customer_insights.yaml must not stop a draft: UTC, which says so.
            return UTC

    def first_contact_late(self) -> bool:
        """The first word to the customer missed its deadline: done after it, or not done and
        the deadline passed (from the deadline on, as the domain counts overdue)."""
        due = self.first_contact_due
        if due is None:
            return False
        if self.first_contact_done_at is not None:
            return self.first_contact_done_at > due
        return self.now >= due

    def drill(self, span: timedelta) -> timedelta:
        """A span of the record in the escalation's own time: a drill run at 60x speed lasted
        60 times longer in drill time than on the wall clock."""
        return span * self.clock_scale

    def unanswered_replies(self) -> tuple[CustomerSaid, ...]:
        """The customer's replies since the last approved letter (all of them before the
        first): what the next letter has to answer."""
        last = max((t.at for t in self.told), default=None)
        return tuple(r for r in self.customer_replies if last is None or r.at >= last)

    def record_ids(self) -> frozenset[str]:
        """Every id a draft may cite: timeline entries, room messages, facts, action items."""
        ids = {e.id for e in self.timeline}
        ids |= {m.id for m in self.room_messages}
        ids |= {f.id for f in (*self.facts.said(), *self.facts.suspected_causes)}
        ids |= {a.id for a in self.action_items}
        return frozenset(i for i in ids if i)

    def letter_ids(self) -> frozenset[str]:
        """The ids that may back what a customer letter says: the customer facts, the letters
        already approved and the items taken on so it does not happen again."""
        ids = {f.id for f in self.facts.said()}
        ids |= {e.id for e in self.timeline if e.kind == "customer_update"}
        ids |= {a.id for a in self.action_items if a.prevention}
        return frozenset(i for i in ids if i)

    def internal_texts(self) -> tuple[str, ...]:
        """What people wrote for the war room, not for the customer: the summary, the
        resolution, status updates and other timeline lines, the room's talk, suspected
        causes and the account notes."""
        said = {f.text for f in self.facts.said()}
        # A customer-facing fact's own timeline entry ("Impact: ...") is that fact, not
        # internal text; so is an approved letter's.
        recorded = {f.id for f in self.facts.said() if f.id}
        texts = [self.summary, self.resolution, str(self.customer_facts.get("notes") or "")]
        texts += [
            e.text
            for e in self.timeline
            if e.text not in said
            and e.id not in recorded
            and e.kind not in ("fact", "customer_update", "customer_reply")
        ]
        texts += [m.text for m in self.room_messages]
        texts += [f.text for f in self.facts.suspected_causes]
        return tuple(t for t in texts if t and t.strip())


# --- formats shared by prompts and the offline drafter ---------------------------------------

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def ceil_minute(at: datetime) -> datetime:
    trimmed = at.replace(second=0, microsecond=0)
    return trimmed if trimmed == at else trimmed + timedelta(minutes=1)


def iso_utc(at: datetime) -> str:
    """`2024-05-01T14:30:00Z`: the form the model gets."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def short_utc(at: datetime) -> str:
    """`2024-05-01 14:30 UTC`: for timelines and war-room answers."""
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def human_utc(at: datetime) -> str:
    """`Wed 1 May 2024, 14:30 UTC`: the form a customer reads. Names are spelled here rather
    than with strftime's %a/%b, which follow the process locale."""
    return human_time(at, UTC)


# Short names people write for zones the tz database names by offset ("+08").
ZONE_ABBREVIATIONS: dict[str, tuple[str, ...]] = {
    "Asia/Singapore": ("SGT",),
    "Asia/Kuala_Lumpur": ("MYT",),
    "Asia/Bangkok": ("ICT",),
    "Asia/Ho_Chi_Minh": ("ICT",),
    "America/Sao_Paulo": ("BRT",),
    "America/Argentina/Buenos_Aires": ("ART",),
}


def human_time(at: datetime, zone: tzinfo) -> str:
    """`Wed 1 May 2024, 09:30 CDT`: a time as the customer reads it, in their time zone."""
    local = at.astimezone(zone)
    label = local.tzname() or "UTC"
    if label[:1] in "+-":
        # Zones the tz database names by offset (Asia/Singapore is "+08"): the short name
        # people there use when there is one, else the offset from UTC.
        names = ZONE_ABBREVIATIONS.get(str(getattr(zone, "key", "")), ())
        label = names[0] if names else f"UTC{label}"
    return (
        f"{_DAYS[local.weekday()]} {local.day} {_MONTHS[local.month - 1]} {local.year}, "
        f"{local.hour:02d}:{local.minute:02d} {label}"
    )


def format_arr(amount: int) -> str:
    return f"${amount:,}"


# --- people's text, quoted -------------------------------------------------------------------

# Slack's user and channel mentions stay intact (the model may address people by them); any
# other `<...>` is disarmed. That covers tags that could close or fake our delimiters and
# Slack's broadcasts (`<!channel>`, `<!here>`), which a quoted line must never trigger.
_SLACK_MENTION = re.compile(r"<[@#][A-Z0-9]+(?:\|[^<>\n]*)?>")


# Stand-ins for `<` and `>`: single angle quotation marks, which read the same to a person.
LT, GT = "\u2039", "\u203a"


def escape_text(text: str) -> str:
    """People's text, verbatim except that `<` and `>` outside Slack user/channel mentions
    become LT and GT, so it cannot close or open a tag of the prompt around it."""
    out: list[str] = []
    pos = 0
    for match in _SLACK_MENTION.finditer(text):
        out.append(_disarm(text[pos : match.start()]))
        out.append(match.group(0))
        pos = match.end()
    out.append(_disarm(text[pos:]))
    return "".join(out)


def one_line(text: str) -> str:
    """People's text as one line, escaped: newlines and runs of spaces folded, so a line of a
    prompt or a bullet of a review cannot be made to look like two."""
    return escape_text(" ".join(text.split()))


def _disarm(text: str) -> str:
    return text.replace("<", LT).replace(">", GT)

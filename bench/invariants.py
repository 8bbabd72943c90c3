"""What a chaos run checks, from what anyone could observe afterwards: the loopback Slack's
channels, messages and the answers each declarer got; the escalations in Redis (read through
`Store`); and `warroom memory export`'s tree. Nothing here looks inside a process.

The invariants, each a row of the table `bench.chaos` prints:

- every declaration was answered: the declarer was told a room's link or that it failed;
- a room the declarer was told about is complete: the channel is there and not archived, an
  open escalation in Redis points at it, its brief is pinned;
- a declaration the declarer was told failed left nothing: no escalation, no open channel;
- every due reminder was posted exactly once: per (escalation, step, deadline) by the key in
  its metadata, and by its text; a status-update nudge once per due time, none left overdue;
- no orphan channel: every open channel the bot created has an open escalation pointing at it;
- Agent_Memory lost nothing: each open escalation's instruction, its IC decision and a
  decision for each step a person marked done.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from bot.domain.escalation import Escalation
from bot.domain.naming import slugify
from loopback.slack import Channel, Message
from protocols.schema import Protocol, Step

# A room's link in what the bot says: <#C0123|name> or <#C0123>.
_LINK = re.compile(r"<#(C[A-Z0-9]+)")
# What the bot says while a room is on its way (opening, queued, being tried again): not an
# answer yet.
_PROGRESS = ("🚨", "⏳")


@dataclass
class Declared:
    """One `/escalate` the run sent, and what came back at once."""

    index: int
    customer: str
    user: str
    response_url: str
    process: str
    sent_at: float  # time.time()
    ack_status: int = 0  # 0: no HTTP answer at all (the process died with the request)
    ack_text: str = ""


@dataclass
class Told:
    """Everything a declarer was told about their declaration, in order: the ack, the answers
    on the response URL, the app's DMs."""

    texts: list[str]

    @property
    def room(self) -> str | None:
        """The channel of the last room link the declarer was given."""
        links = [m.group(1) for t in self.texts for m in [_LINK.search(t)] if m]
        return links[-1] if links else None

    @property
    def failure(self) -> str | None:
        """The first thing said that is neither progress nor a link: a failure, in words."""
        return next(
            (t for t in self.texts if t and not t.startswith(_PROGRESS) and not _LINK.search(t)),
            None,
        )


@dataclass
class World:
    """What the run left, as observed after it: Slack, Redis and the exported memory."""

    at: datetime  # when it was observed (the reminders due are those due before this)
    bot_user: str
    channels: dict[str, Channel]  # every channel the bot created (conversations.create said ok)
    told: dict[int, Told]  # by declaration index
    escalations: list[Escalation]  # every escalation in Redis
    open_ids: set[str]
    by_channel: dict[str, str]  # channel id -> escalation id, as Redis maps it
    memory: Path | None = None  # `warroom memory export`'s tree; None: not checked


@dataclass
class Row:
    name: str
    checked: int = 0
    problems: list[str] = field(default_factory=list)

    def fail(self, what: str) -> None:
        self.problems.append(what)


@dataclass
class Reminders:
    due: int = 0
    posted: int = 0


def posted_key(message: Message) -> str | None:
    """The idempotency key a post carries in its metadata, if any."""
    metadata = message.metadata or {}
    if metadata.get("event_type") != "warroom_post":
        return None
    key = (metadata.get("event_payload") or {}).get("key")
    return str(key) if key else None


def _customer_channels(world: World, customer: str) -> list[Channel]:
    name = re.compile(rf"esc-[0-9]{{8}}-{re.escape(slugify(customer))}(-[0-9]+)?")
    return [c for c in world.channels.values() if name.fullmatch(c.name)]


def declarations(world: World, declared: list[Declared]) -> list[Row]:
    """Rows: answered; told a room, and it is complete; told a failure, and nothing is left."""
    answered = Row("every declaration answered (room link or failure)")
    complete = Row("told a room: channel open, escalation open, brief pinned")
    clean = Row("told it failed: no escalation, no open channel left")
    for d in declared:
        told = world.told.get(d.index, Told([]))
        records = [e for e in world.escalations if e.customer == d.customer]
        rooms = [c for c in _customer_channels(world, d.customer) if not c.is_archived]
        answered.checked += 1
        room, failure = told.room, told.failure
        if d.ack_status != 200 and room is None:
            # No ack: Slack itself tells the person the command failed.
            failure = failure or f"no ack (HTTP {d.ack_status or 'none'})"
        if room is None and failure is None:
            left = _state(records, rooms, world)
            built = [e.channel_id for e in records if not _incomplete(world, e.channel_id, records)]
            if built:
                left = f"its room {built[0]} is complete"
            answered.fail(f"{d.customer}: never answered; {left}")
            continue
        if room is not None:
            complete.checked += 1
            why = _incomplete(world, room, records)
            if why:
                said = next(t for t in reversed(told.texts) if room in t)
                complete.fail(f"{d.customer}: told {room}, but {why}; it was told {said[:90]!r}")
            continue
        clean.checked += 1
        if records or rooms:
            clean.fail(f"{d.customer}: told {failure[:60]!r}, but {_state(records, rooms, world)}")
    return [answered, complete, clean]


def _state(records: list[Escalation], rooms: list[Channel], world: World) -> str:
    if not records and not rooms:
        return "nothing was left"
    parts = [
        f"escalation {e.id} ({'open' if e.id in world.open_ids else 'closed'})" for e in records
    ]
    parts += [f"open channel {c.id}" for c in rooms]
    return "left " + ", ".join(parts)


def _incomplete(world: World, channel_id: str, records: list[Escalation]) -> str | None:
    channel = world.channels.get(channel_id)
    if channel is None:
        return "no such channel"
    if channel.is_archived:
        return "the channel is archived"
    esc = next((e for e in records if e.channel_id == channel_id), None)
    if esc is None or world.by_channel.get(channel_id) != esc.id:
        return "no escalation points at the channel"
    if esc.id not in world.open_ids:
        return f"escalation {esc.id} is not open"
    if not esc.brief_ts or esc.brief_ts not in channel.pins:
        return "the brief is not pinned"
    return None


def orphans(world: World) -> Row:
    row = Row("no orphan channel (open channel without open escalation)")
    for channel in world.channels.values():
        if channel.is_archived:
            continue
        row.checked += 1
        esc_id = world.by_channel.get(channel.id)
        if esc_id is None or esc_id not in world.open_ids:
            row.fail(f"{channel.name} ({channel.id}): no open escalation points at it")
    return row


def reminders(
    world: World, protocol: Protocol, scale: float, grace: timedelta
) -> tuple[Row, Reminders]:
    """Overdue reminders: one per (escalation, step) that fell due and was not done in time,
    none for a step done before its deadline; nudges: one per due time, spaced at least an
    interval apart, and none left overdue. `scale`: the run's WARROOM_CLOCK_SCALE; `grace`
    covers a post on its way."""
    row = Row("every due reminder posted exactly once (by key and text)")
    count = Reminders()
    for esc in world.escalations:
        channel = world.channels.get(esc.channel_id)
        if esc.id not in world.open_ids or channel is None:
            continue
        posts = [m for m in channel.messages if m.ephemeral_for is None]
        keys = Counter(k for m in posts if (k := posted_key(m)))
        for step in protocol.deadline_steps:
            _deadline(world, esc, step, posts, keys, grace, row, count)
        update = protocol.update_step
        if update is not None and update.every is not None:
            _nudges(world, esc, update.id, update.every / scale, keys, grace, row, count)
    return row, count


def _deadline(
    world: World,
    esc: Escalation,
    step: Step,
    posts: list[Message],
    keys: Counter[str],
    grace: timedelta,
    row: Row,
    count: Reminders,
) -> None:
    state = esc.step(step.id)
    if state.due_at is None:
        return
    key = f"deadline:{esc.id}:{step.id}"
    n = keys[key]
    count.posted += n
    done = state.done_at
    # Done within `grace` of the deadline: a reminder on its way may or may not go out.
    forbidden = done is not None and done < state.due_at - grace
    required = state.due_at <= world.at - grace and (done is None or done > state.due_at + grace)
    if required:
        row.checked += 1
        count.due += 1
        if n == 0:
            row.fail(f"{key}: due {_ago(world, state.due_at)}, not posted by then")
    if forbidden and n:
        row.fail(f"{key}: posted though the step was done before its deadline")
    texts = sum(1 for m in posts if m.text.startswith(f"Overdue: {step.title} "))
    if n > 1:
        row.fail(f"{key}: posted {n} times")
    elif texts > 1:
        row.fail(f"{key}: its text posted {texts} times")


def _nudges(
    world: World,
    esc: Escalation,
    step_id: str,
    interval: timedelta,
    keys: Counter[str],
    grace: timedelta,
    row: Row,
    count: Reminders,
) -> None:
    """Each nudge's key names its due time: no key twice, no two nudges closer than an
    interval (a nudge posted again under another key), and the next one not overdue."""
    prefix = f"nudge:{esc.id}:"
    dues = sorted(int(k.removeprefix(prefix)) for k in keys if k.startswith(prefix))
    count.posted += sum(keys[f"{prefix}{ms}"] for ms in dues)
    count.due += len(dues)
    row.checked += len(dues)
    for ms in dues:
        if keys[f"{prefix}{ms}"] > 1:
            row.fail(f"{prefix}{ms}: posted {keys[f'{prefix}{ms}']} times")
    for a, b in itertools.pairwise(dues):
        if (b - a) / 1000 < interval.total_seconds() * 0.99:
            row.fail(f"{prefix}{b}: only {(b - a) / 1000:.1f} s after the previous nudge")
    state = esc.step(step_id)
    due = state.due_at
    if due is None or state.done_at is not None or due > world.at - grace:
        return
    key = f"{prefix}{int(due.timestamp() * 1000)}"
    if key not in keys:
        row.checked += 1
        count.due += 1
        row.fail(f"{key}: due {_ago(world, due)}, not posted by then")


def _ago(world: World, when: datetime) -> str:
    return f"{(world.at - when).total_seconds():.1f} s before the end"


def memory(world: World) -> Row:
    """Each open escalation's documents in the exported tree."""
    row = Row("Agent_Memory: instruction and decisions of every escalation")
    assert world.memory is not None
    for esc in world.escalations:
        if esc.id not in world.open_ids:
            continue
        row.checked += 1
        missing = _memory_gaps(world.memory / esc.id, esc, world.bot_user)
        if missing:
            row.fail(f"{esc.id}: " + ", ".join(missing))
    return row


def _memory_gaps(folder: Path, esc: Escalation, bot_user: str) -> list[str]:
    missing = []
    instruction = _read(folder / "instruction.yaml")
    if not isinstance(instruction, dict) or instruction.get("id") != esc.id:
        missing.append("instruction.yaml")
    log = _read(folder / "decisions" / "vp_decisions.yaml")
    decisions = log.get("decisions", []) if isinstance(log, dict) else []
    made = Counter(
        (d.get("decision"), d.get("step") or d.get("ic")) for d in decisions if isinstance(d, dict)
    )
    if not made[("ic_assigned", esc.ic)]:
        missing.append("the IC decision")
    for step in esc.steps:
        by_person = step.done_at is not None and step.done_by not in (None, bot_user)
        if by_person and not made[("step_done", step.id)]:
            missing.append(f"the decision marking {step.id} done")
    return missing


def _read(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError:
        return None

"""A fault matrix, not anecdotes: for each thing a person does in a war room, the answer of
each Redis write it makes (every EXEC and every script, in turn) is lost once, and what the
room ends up with must equal the run without the fault: nothing doubled, nothing lost, the
person told the same.

Each case declares a room of its own, runs the action once with the proxy recording which
writes it made, then once more on a second room with the answer of the Nth of them dropped.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from bot.slack.ids import ActionId
from loopback.slack.driver import SlackDriver
from tests.conftest import SIGNING_SECRET, T0
from tests.rooms import Room, draft_id

pytestmark = pytest.mark.slow

MEMBER = "U0CSMGR01"  # in the room, neither IC nor VP
# What runs a change in Redis: a transaction's EXEC, or a script.
WRITES = ("EXEC", "EVAL", "EVALSHA")


def pin(room: Room) -> None:
    said = room.fake.add_message(room.channel.id, "U0SECENG1", "the cert expired at 09:38")
    room.slack.event(
        {
            "type": "reaction_added",
            "user": MEMBER,
            "reaction": "pushpin",
            "item_user": MEMBER,
            "item": {"type": "message", "channel": room.channel.id, "ts": said},
            "event_ts": said,
        }
    )


LETTER = "We are on it. Next update by 15:00 UTC."


def drafted(room: Room) -> Any:
    """A customer update drafted in the room (the model answers LETTER)."""
    ts = room.mention("draft update")
    (draft,) = room.thread(ts)
    return draft


def approve(room: Room) -> None:
    draft = room.draft
    room.slack.click(
        room.channel.id, ActionId.DRAFT_APPROVE, draft_id(draft), user="U0VPSUPRT", ts=draft.ts
    )


def edit(room: Room) -> None:
    room.click(ActionId.DRAFT_EDIT, room.draft)
    view = room.fake.views[next(reversed(room.fake.views))]
    room.slack.submit_view(
        view,
        {"draft_text": {"value": {"type": "plain_text_input", "value": "Edited by hand."}}},
        user="U0INCCMDR",
    )


def regenerate(room: Room) -> None:
    room.anthropic.reply_with("We rolled the change back. Next update by 16:00 UTC.")
    room.click(ActionId.DRAFT_REGENERATE, room.draft)


def timer(kind: str) -> Callable[[Room], None]:
    """The room's first timer of `kind` coming due: the clock moved to it, and it fired."""

    def fire(room: Room) -> None:
        jobs = [
            j for j in room.rt.scheduler.aps.get_jobs() if j.id.startswith(f"{room.esc_id}:{kind}:")
        ]
        job = min(jobs, key=lambda j: j.next_run_time)
        for _ in range(3):  # and, when it could not finish, its own next try, 30 s later
            room.clock.advance(job.next_run_time - room.clock() + timedelta(seconds=1))
            job.func(*job.args)
            job = room.rt.scheduler.aps.get_job(job.id)
            if job is None or job.next_run_time - room.clock() > timedelta(minutes=5):
                return

    return fire


# A firing that could not finish tries again 30 s later: what it records is the same, at
# times 30 s later.
TIMERS = ("reminder", "nudge", "follow-up")
TIMES = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|\+00:00)?|\d{10,13}")


# What is done before the action, unfaulted (its writes are not in the matrix).
SETUPS: dict[str, Callable[[Room], Any]] = {
    "approve": drafted,
    "edit": drafted,
    "regenerate": drafted,
    "follow-up": lambda r: r.mention("resolve rolled back the config push"),
}

ACTIONS: dict[str, Callable[[Room], Any]] = {
    "approve": approve,
    "draft": drafted,
    "edit": edit,
    "regenerate": regenerate,
    "update": lambda r: r.mention("update rollback started"),
    "facts": lambda r: r.mention("impact EU users cannot check out", user=MEMBER),
    "done": lambda r: r.slack.click(
        r.channel.id, ActionId.STEP_DONE, "assessment", user="U0INCCMDR"
    ),
    "ic": lambda r: r.mention("ic <@U0SECENG1>"),
    "action": lambda r: r.mention("action <@U0ENGINE1> add a canary --due 3d", user=MEMBER),
    "pin": pin,
    "resolve": lambda r: r.mention("resolve rolled back the config push"),
    "reminder": timer("deadline"),
    "nudge": timer("nudge"),
    "follow-up": timer("follow_up"),
}


def state(room: Room) -> dict[str, Any]:
    """What people see and what is on record, without ids and times that differ by room."""
    rt, esc = room.rt, room.esc
    exec_channel = room.fake.channel_by_name("exec-escalations")
    records = rt.desk.memory.records
    doc = esc.model_dump(mode="json", exclude={"id", "channel_id", "brief_ts"})
    return {
        "escalation": doc,
        "timeline": [(e.kind, e.actor, e.text) for e in rt.store.timeline(esc.id)],
        "decisions": [(d["decision"], d.get("by")) for d in records.decisions(esc.id)],
        "outputs": sorted(records.outputs(esc.id)),
        "room": sorted(m.text for m in room.fake.messages_in(room.channel.id)),
        "exec": [
            m.text for m in room.fake.messages_in(exec_channel.id) if room.channel.id in m.text
        ],
        "jobs": sorted(j for j in rt.scheduler.job_ids() if esc.id in j),
    }


def normalised(value: dict[str, Any], room: Room, *, times: bool = True) -> dict[str, str]:
    """Each part of the state as text, with what differs by room (ids, names) masked; and,
    with `times` False, every time."""
    customer = room.esc.customer
    masks = [
        (room.channel.id, "<room>"),
        (room.esc_id, "<esc>"),
        (customer, "<customer>"),
        (customer.lower(), "<customer>"),
    ]
    shown = {}
    for part, content in value.items():
        text = repr(content)
        for real, mask in masks:
            text = text.replace(real, mask)
        shown[part] = text if times else TIMES.sub("<time>", text)
    return shown


@pytest.fixture
def fresh(agent_runtime, fake_slack, fake_anthropic, proxy, clock) -> Callable[[str], Room]:
    # Every room drafts as the same person: the per-person limit is not what is tested.
    rt = agent_runtime(redis_url=proxy.url, agent_requests_per_minute=1000)
    driver = SlackDriver(fake_slack, SIGNING_SECRET, app=rt.app)
    made: list[Room] = []

    def room(action: str) -> Room:
        # Each room is its own customer: the clean and the faulted run do not meet.
        customer = f"Initech{len(made)}"
        clock.set(T0)  # every room from the same moment: the timers' rooms move the clock
        rt_room = Room.__new__(Room)
        rt_room.rt, rt_room.slack, rt_room.fake = rt, driver, fake_slack
        rt_room.anthropic, rt_room.clock = fake_anthropic, clock
        driver.command(
            f"{customer}: TPS reports missing for all EU users --arr 480k --ic <@U0INCCMDR>"
        )
        rt_room.channel = next(
            c for c in fake_slack.channels.values() if c.name.endswith(customer.lower())
        )
        rt_room.esc_id = rt_room.channel.name
        made.append(rt_room)
        fake_anthropic.reply_with(LETTER)  # the model's answer to this room's draft
        setup = SETUPS.get(action)
        if setup is not None:
            rt_room.draft = setup(rt_room)
        return rt_room

    return room


def writes_of(proxy, run: Callable[[], Any]) -> list[str]:
    before = len(proxy.seen)
    run()
    return [name for name, _key in proxy.seen[before:] if name in WRITES]


@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_each_write_of_an_action_whose_answer_is_lost_changes_nothing(action, fresh, proxy) -> None:
    clean = fresh(action)
    writes = writes_of(proxy, lambda: ACTIONS[action](clean))
    exact = action not in TIMERS
    expected = normalised(state(clean), clean, times=exact)
    assert writes, "the action wrote nothing"
    differences = {}
    for n, name in enumerate(writes):
        nth = writes[:n].count(name)
        room = fresh(action)
        proxy.drop_after(name, skip=nth)
        ACTIONS[action](room)
        hit = proxy.spent()
        proxy.clear()
        got = normalised(state(room), room, times=exact)
        if hit and got != expected:
            differences[f"{name} #{nth + 1}"] = {
                part: (expected[part], got[part]) for part in got if got[part] != expected[part]
            }
    assert not differences, f"{action}: " + "\n".join(
        f"{fault}: {parts}" for fault, parts in differences.items()
    )


def slack_methods_of(fake, run: Callable[[], Any]) -> list[str]:
    """The Slack methods `run` called, each once, in the order of their first call."""
    before = len(fake.calls)
    run()
    return list(dict.fromkeys(c.method for c in fake.calls[before:]))


@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_each_slack_answer_of_an_action_lost_after_slack_acted_changes_nothing(
    action, fresh, fake_slack
) -> None:
    """The same for Slack: for each method the action calls, Slack carries out its first call
    and the connection drops before the answer."""
    clean = fresh(action)
    methods = slack_methods_of(fake_slack, lambda: ACTIONS[action](clean))
    exact = action not in TIMERS
    expected = normalised(state(clean), clean, times=exact)
    assert methods, "the action called no Slack method"
    differences = {}
    for method in methods:
        room = fresh(action)
        fired = len(fake_slack.fired)
        fake_slack.lose_answer_next(method)
        ACTIONS[action](room)
        hit = len(fake_slack.fired) > fired
        fake_slack.clear_faults()
        got = normalised(state(room), room, times=exact)
        if hit and got != expected:
            differences[method] = {
                part: (expected[part], got[part]) for part in got if got[part] != expected[part]
            }
    assert not differences, f"{action}: " + "\n".join(
        f"{fault}: {parts}" for fault, parts in differences.items()
    )

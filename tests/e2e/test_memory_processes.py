"""Agent_Memory across real `warroom run` processes, each in a working directory of its own
(as on two hosts), on one Redis: one decision log, one numbering of outputs, and nothing lost
when every disk is wiped (a deploy on an ephemeral disk)."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from bot.slack.ids import ActionId
from loopback.harness import WarroomProcess, warroom, warroom_env
from loopback.slack import FakeSlack
from tests.conftest import SIGNING_SECRET

pytestmark = pytest.mark.slow


def wait_until(check: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def war_room(fake: FakeSlack, slug: str):
    """The processes run on the wall clock: the date in the room's name is today's there."""
    name = re.compile(rf"esc-[0-9]{{8}}-{slug}")
    found = [c for c in fake.channels.values() if name.fullmatch(c.name) and c.pins]
    return found[0] if found else None


def approve_buttons(fake: FakeSlack, channel_id: str) -> list[str]:
    """The draft ids behind every Approve button shown in the channel."""
    return [
        el["value"]
        for m in fake.messages_in(channel_id)
        for b in m.blocks or []
        if b.get("type") == "actions"
        for el in b["elements"]
        if el.get("action_id") == ActionId.DRAFT_APPROVE
    ]


def draft_and_approve(proc: WarroomProcess, fake: FakeSlack, channel_id: str) -> None:
    """`@vp draft update` and Approve, both through `proc` (no model key: the offline draft)."""
    before = set(approve_buttons(fake, channel_id))
    reply = proc.driver().event(
        {
            "type": "app_mention",
            "user": "U0INCCMDR",
            "text": f"<@{fake.bot_user_id}> draft update",
            "channel": channel_id,
            "ts": f"{time.time():.6f}",
        }
    )
    assert reply.status == 200
    wait_until(lambda: set(approve_buttons(fake, channel_id)) - before, 15, "the draft")
    (draft,) = set(approve_buttons(fake, channel_id)) - before
    # The offline letter holds placeholders (no contact on file): filled by hand, then approved.
    views = len(fake.views)
    proc.driver().click(channel_id, ActionId.DRAFT_EDIT, draft, user="U0INCCMDR")
    wait_until(lambda: len(fake.views) > views, 10, "the edit form")
    form = fake.views[next(reversed(fake.views))]
    text = "Dear Dana,\n\nEU users cannot open TPS reports; we are restoring them.\n\nVictoria"
    proc.driver().submit_view(
        form,
        {"draft_text": {"value": {"type": "plain_text_input", "value": text}}},
        user="U0INCCMDR",
    )
    wait_until(lambda: draft not in approve_buttons(fake, channel_id), 10, "the edit")
    (draft,) = set(approve_buttons(fake, channel_id)) - before
    proc.driver().click(channel_id, ActionId.DRAFT_APPROVE, draft, user="U0VPSUPRT")
    wait_until(lambda: draft not in approve_buttons(fake, channel_id), 10, "the approval")


def read(path: Path) -> object:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@pytest.fixture
def hosts(fake_slack, redis_url, prefix, tmp_path, config_file) -> Iterator[Callable]:
    """`start(name)`: a `warroom run` whose working directory is tmp_path/name, memory in
    its default ./Agent_Memory there."""
    env = warroom_env(
        fake_slack, redis_url, prefix, tmp_path, config_file, signing_secret=SIGNING_SECRET
    )
    del env["WARROOM_MEMORY_DIR"]
    started: list[WarroomProcess] = []

    def start(name: str) -> WarroomProcess:
        folder = tmp_path / name
        folder.mkdir()
        proc = WarroomProcess(env, fake_slack, tmp_path / f"{name}.log", cwd=folder)
        started.append(proc.start())
        return proc

    start.env = env  # type: ignore[attr-defined]
    yield start
    for proc in started:
        proc.stop()


def test_memory_is_one_across_hosts_and_survives_wiped_disks(hosts, fake_slack, tmp_path) -> None:
    a, b = hosts("host-a"), hosts("host-b")
    assert a.driver().command("Initech: TPS reports missing --arr 480k").status == 200
    wait_until(lambda: war_room(fake_slack, "initech"), 15, "the war room")
    channel = war_room(fake_slack, "initech")
    esc = channel.name
    # a decision through one process, an approval through the other
    a.driver().click(channel.id, ActionId.STEP_DONE, "assessment", user="U0INCCMDR")
    draft_and_approve(b, fake_slack, channel.id)

    expected = ["ic_assigned", "step_done", "customer_update_approved"]
    # each host's mirror holds the one log, whichever host wrote last
    mirror_b = tmp_path / "host-b" / "Agent_Memory" / esc
    assert [d["decision"] for d in read(mirror_b / "decisions/vp_decisions.yaml")["decisions"]] == (
        expected
    )
    assert (mirror_b / "outputs/final/1-customer-update.yaml").exists()
    assert (tmp_path / "host-a" / "Agent_Memory" / esc / "instruction.yaml").exists()

    # a deploy on ephemeral disks: every process stops, every working directory is wiped
    a.stop()
    b.stop()
    shutil.rmtree(tmp_path / "host-a")
    shutil.rmtree(tmp_path / "host-b")
    c = hosts("host-c")
    draft_and_approve(c, fake_slack, channel.id)  # numbered after the first, not over it

    export = tmp_path / "export"
    done = subprocess.run(
        warroom("memory", "export", str(export)),
        env=hosts.env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    tree = export / esc
    instruction = read(tree / "instruction.yaml")
    assert instruction["customer"] == "Initech" and instruction["arr"] == 480000
    decisions = read(tree / "decisions/vp_decisions.yaml")["decisions"]
    assert [d["decision"] for d in decisions] == [*expected, "customer_update_approved"]
    outputs = sorted(p.name for p in (tree / "outputs/final").iterdir())
    assert outputs == ["1-customer-update.yaml", "2-customer-update.yaml"]
    assert read(tree / "outputs/final/2-customer-update.yaml")["approved_by"] == "U0VPSUPRT"
    assert not list(export.rglob(".*"))  # no temporary or lock files left in an export

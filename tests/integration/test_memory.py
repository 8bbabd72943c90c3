"""Agent_Memory on real Redis: two `Memory`s with folders of their own stand for two hosts."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis
import yaml
from redis.backoff import NoBackoff
from redis.retry import Retry

from bot.memory import Memory
from bot.store import Keys, MemoryRecords
from loopback.harness import warroom
from loopback.server import free_port

AT = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


@pytest.fixture
def host(redis_url: str, prefix: str, tmp_path: Path) -> Iterator[Callable[[str], Memory]]:
    """`host(name)`: the memory of a process whose mirror is tmp_path/name, on its own Redis
    connection pool."""
    clients: list[redis.Redis] = []

    def make(name: str) -> Memory:
        client = redis.Redis.from_url(redis_url)
        clients.append(client)
        return Memory(MemoryRecords(client, Keys(prefix)), tmp_path / name)

    yield make
    for client in clients:
        client.close()


def read(path: Path) -> object:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def together(calls: list[Callable[[], object]]) -> None:
    """Start every call at the same moment, on threads of its own."""
    start = threading.Barrier(len(calls))
    failures: list[BaseException] = []

    def run(call: Callable[[], object]) -> None:
        start.wait()
        try:
            call()
        except BaseException as e:
            failures.append(e)

    threads = [threading.Thread(target=run, args=(c,)) for c in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures, failures


def test_concurrent_decisions_on_two_hosts_all_land_in_one_log(host, tmp_path) -> None:
    a, b = host("a"), host("b")
    calls: list[Callable[[], object]] = [
        lambda m=m, i=i: m.record_decision("esc-1", "step_done", "U1", AT, step=f"s{i}")
        for i in range(40)
        for m in [(a, b)[i % 2]]
    ]
    together(calls)
    log = a.records.decisions("esc-1")
    assert sorted(d["step"] for d in log) == sorted(f"s{i}" for i in range(40))
    for mirror in (a, b):
        # each mirror is valid YAML and holds the log as of its host's last write
        entries = read(mirror.decisions_path("esc-1"))["decisions"]
        assert entries == log[: len(entries)] and len(entries) >= 20
    export = tmp_path / "export"
    a.export(export)
    assert read(export / "esc-1/decisions/vp_decisions.yaml")["decisions"] == log


def test_output_numbers_are_unique_across_hosts(host) -> None:
    a, b = host("a"), host("b")
    paths: list[Path] = []
    calls: list[Callable[[], object]] = [
        lambda m=m, i=i: paths.append(m.write_output("esc-1", "customer-update", {"text": i}))
        for i in range(20)
        for m in [(a, b)[i % 2]]
    ]
    together(calls)
    assert sorted(int(p.name.split("-")[0]) for p in paths) == list(range(1, 21))
    texts = [o["text"] for o in b.outputs("esc-1", "customer-update")]
    assert sorted(texts) == list(range(20))
    a.write_output("esc-1", "review", {"summary": "done"})
    assert a.outputs("esc-1", "review") == [{"summary": "done"}]
    assert len(a.outputs("esc-1", "customer-update")) == 20


def test_lessons_from_two_hosts_keep_what_people_wrote_in_the_file(host) -> None:
    a, b = host("a"), host("b")
    a.strategy_path.parent.mkdir(parents=True)
    a.strategy_path.write_text("principles: [say what you know]\n")
    a.append_lessons("esc-1", "Acme", ["roll back sooner"], AT)
    b.append_lessons("esc-2", "Initech", ["page the DBA"], AT)
    a.append_lessons("esc-3", "Wayne", [], AT)  # nothing to add: nothing written
    mirrored = read(a.strategy_path)
    assert mirrored["principles"] == ["say what you know"]
    assert [e["escalation"] for e in mirrored["lessons_learned"]] == ["esc-1"]
    assert [e["escalation"] for e in read(b.strategy_path)["lessons_learned"]] == [
        "esc-1",
        "esc-2",
    ]


def test_customer_facts_come_from_this_hosts_file_else_from_redis(host) -> None:
    a, b = host("a"), host("b")
    insights = {"customers": [{"name": "Initech", "arr": 480000, "csm": "U0CSMGR01"}]}
    a.customer_insights_path.parent.mkdir(parents=True)
    a.customer_insights_path.write_text(yaml.safe_dump(insights))
    assert a.customer_facts("INITECH")["arr"] == 480000
    assert b.customer_facts("Initech") is None  # not on b's disk, not imported yet

    a.adopt(a.root)  # `warroom memory import` of a's folder
    assert b.customer_facts("initech")["csm"] == "U0CSMGR01"

    b.customer_insights_path.parent.mkdir(parents=True)
    b.customer_insights_path.write_text("customers: [unclosed\n")
    assert b.customer_facts("Initech")["arr"] == 480000  # a broken file: the shared copy
    b.customer_insights_path.write_text(yaml.safe_dump({"customers": [{"name": "Acme"}]}))
    assert b.customer_facts("Initech") is None  # this host's own file wins where it is


def test_a_tree_written_before_redis_is_taken_in_once(host, tmp_path) -> None:
    old = tmp_path / "old"
    esc = old / "esc-20250101-acme"
    (esc / "outputs/final").mkdir(parents=True)
    (esc / "instruction.yaml").write_text(yaml.safe_dump({"id": esc.name, "customer": "Acme"}))
    (esc / "decisions").mkdir()
    (esc / "decisions/vp_decisions.yaml").write_text(
        yaml.safe_dump({"decisions": [{"decision": "ic_assigned"}, {"decision": "resolved"}]})
    )
    (esc / "outputs/final/1-customer-update.yaml").write_text("text: first\n")
    (esc / "outputs/final/3-review.yaml").write_text("summary: fixed\n")
    (esc / "outputs/final/notes.yaml").write_text("not: numbered\n")
    (old / "_knowledge/semantic").mkdir(parents=True)
    (old / "_knowledge/semantic/support_strategy.yaml").write_text(
        yaml.safe_dump({"lessons_learned": [{"escalation": esc.name, "lessons": ["x"]}]})
    )

    a = host("a")
    adopted = a.adopt(old)
    assert adopted.lessons and adopted.escalations[esc.name] == [
        "instruction",
        "output",
        "output",
        "decisions",
    ]
    again = a.adopt(old)
    assert not again.lessons and again.escalations == {}
    assert [d["decision"] for d in a.records.decisions(esc.name)] == ["ic_assigned", "resolved"]
    # the next output is numbered after those on file
    assert a.write_output(esc.name, "customer-update", {"text": "next"}).name == (
        "4-customer-update.yaml"
    )

    export = tmp_path / "export"
    assert a.export(export) == 6  # instruction, decisions, three outputs, the lessons
    assert sorted(p.name for p in (export / esc.name / "outputs/final").iterdir()) == [
        "1-customer-update.yaml",
        "3-review.yaml",
        "4-customer-update.yaml",
    ]
    assert read(export / esc.name / "instruction.yaml") == {"id": esc.name, "customer": "Acme"}


def test_a_decision_is_logged_not_raised_when_redis_is_down(tmp_path, caplog) -> None:
    client = redis.Redis(port=free_port(), socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))
    memory = Memory(MemoryRecords(client, Keys("down")), tmp_path)
    memory.log_decision("esc-1", "step_done", "U1", AT)
    assert "could not record decision step_done" in caplog.text
    assert memory.customer_facts("Acme") is None  # no facts, no failure
    client.close()


def test_memory_cli_imports_and_exports(redis_url, prefix, tmp_path) -> None:
    env = {"REDIS_URL": redis_url, "WARROOM_REDIS_PREFIX": prefix, "PATH": "/usr/bin:/bin"}
    folder = tmp_path / "Agent_Memory"
    (folder / "_knowledge/semantic").mkdir(parents=True)
    (folder / "_knowledge/semantic/customer_insights.yaml").write_text(
        yaml.safe_dump({"customers": [{"name": "Initech", "arr": 480000}]})
    )

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            warroom("memory", *args), env=env, capture_output=True, text=True, timeout=30
        )

    imported = cli("import", str(folder))
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.startswith("imported customer_insights.yaml")
    exported = cli("export", str(tmp_path / "out"))
    assert exported.returncode == 0 and exported.stdout.strip().startswith("wrote 1 files")
    assert read(tmp_path / "out/_knowledge/semantic/customer_insights.yaml") == {
        "customers": [{"name": "Initech", "arr": 480000}]
    }

    missing = cli("import", str(tmp_path / "nowhere"))
    assert missing.returncode == 2
    assert missing.stderr.strip().splitlines() == [
        f"warroom: {tmp_path / 'nowhere'} is not a folder"
    ]
    env["REDIS_URL"] = f"redis://127.0.0.1:{free_port()}/0"
    down = cli("export", str(tmp_path / "out2"))
    assert down.returncode == 2
    (line,) = down.stderr.strip().splitlines()
    # What failed, and what to check.
    assert line.startswith(f"warroom: cannot reach Redis at {env['REDIS_URL']}: Error 111")
    assert line.endswith("; check that Redis is running there, on the port REDIS_URL names")

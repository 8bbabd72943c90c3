"""Agent_Memory (SPEC, Memory): the agent's documents, kept in Redis and laid out as the
seed's file tree.

Redis is where the documents live (`bot.store.MemoryRecords`): every process on every host
reads and appends the same ones, appends never lose an entry to a concurrent writer, output
numbers come from one counter, and a deploy on an ephemeral disk loses nothing. The tree
under WARROOM_MEMORY_DIR is a mirror for agents and people on this host: each write here
also writes the file it changed (a log is rewritten whole from Redis, so it holds other
hosts' entries too). `export` writes the whole tree from Redis; `adopt` takes a tree written
before Redis held memory. `customer_insights.yaml`, which people keep, is read from the tree
when this host has it, else from the copy in Redis that `warroom memory import` put there.

Files are written atomically (temp file, rename), so they are always valid YAML.
"""

from __future__ import annotations

import fcntl
import logging
import os
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from bot.domain.errors import Unavailable
from bot.domain.escalation import Escalation
from bot.store import EscalationMemory, MemoryRecords

log = logging.getLogger(__name__)

# The seed's layout, relative to the memory root.
KNOWLEDGE = Path("_knowledge") / "semantic"
INSIGHTS = KNOWLEDGE / "customer_insights.yaml"
STRATEGY = KNOWLEDGE / "support_strategy.yaml"
INSTRUCTION = Path("instruction.yaml")
DECISIONS = Path("decisions") / "vp_decisions.yaml"
REVIEW = Path("reviews") / "executive_review.yaml"
OUTPUTS = Path("outputs") / "final"


def write_yaml(path: Path, data: Any) -> None:
    """Write `data` to `path` so readers see the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=False)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _read_yaml(path: Path) -> Any:
    with path.open(encoding="utf-8") as f:
        return yaml.safe_load(f)


class Memory:
    """The agent's memory: one set of documents per escalation, plus the shared knowledge.

    `root` is the mirror on this host's disk (WARROOM_MEMORY_DIR); the paths returned name
    files under it."""

    def __init__(self, records: MemoryRecords, root: Path) -> None:
        self.records = records
        self.root = Path(root)

    # -- paths of the seed's layout ----------------------------------------------------------
    def escalation_dir(self, esc_id: str) -> Path:
        return self.root / esc_id

    def instruction_path(self, esc_id: str) -> Path:
        return self.escalation_dir(esc_id) / INSTRUCTION

    def decisions_path(self, esc_id: str) -> Path:
        return self.escalation_dir(esc_id) / DECISIONS

    def review_path(self, esc_id: str) -> Path:
        return self.escalation_dir(esc_id) / REVIEW

    def outputs_dir(self, esc_id: str) -> Path:
        return self.escalation_dir(esc_id) / OUTPUTS

    @property
    def customer_insights_path(self) -> Path:
        return self.root / INSIGHTS

    @property
    def strategy_path(self) -> Path:
        return self.root / STRATEGY

    # -- writing -------------------------------------------------------------------------------
    def write_instruction(
        self, esc: Escalation, *, protocol_name: str, permalink: str | None = None
    ) -> Path:
        """The declaration as the agent and people will read it later."""
        data = {
            "id": esc.id,
            "channel_id": esc.channel_id,
            "permalink": permalink,
            "customer": esc.customer,
            "summary": esc.summary,
            "arr": esc.arr,
            "criteria": list(esc.criteria),
            "private": esc.private,
            "declared_at": esc.declared_at.isoformat(),
            "declared_by": esc.declarer,
            "incident_commander": esc.ic,
            "vps": list(esc.vps),
            "protocol": {
                "id": esc.protocol_id,
                "version": esc.protocol_version,
                "name": protocol_name,
            },
            "steps": [
                {
                    "id": s.id,
                    "due_at": s.due_at.isoformat() if s.due_at else None,
                    "done_at": s.done_at.isoformat() if s.done_at else None,
                }
                for s in esc.steps
            ],
        }
        self.records.put_instruction(esc.id, data)
        path = self.instruction_path(esc.id)
        self._mirror(path, lambda: data)
        return path

    def record_decision(
        self, esc_id: str, decision: str, by: str | None, at: datetime, **details: Any
    ) -> None:
        """One line of the escalation's decision log (IC changes, steps done, approvals...)."""
        entry = {"at": at.isoformat(), "decision": decision, "by": by, **details}
        self.records.append_decision(esc_id, entry)
        self._mirror(
            self.decisions_path(esc_id), lambda: {"decisions": self.records.decisions(esc_id)}
        )

    def log_decision(
        self, esc_id: str, decision: str, by: str | None, at: datetime, **details: Any
    ) -> None:
        """`record_decision` for work that must go on anyway: a failure is logged."""
        try:
            self.record_decision(esc_id, decision, by, at, **details)
        except (Unavailable, OSError):
            log.exception("escalation %s: could not record decision %s", esc_id, decision)

    def write_output(self, esc_id: str, kind: str, data: dict[str, Any]) -> Path:
        """An approved customer update or the final review: `outputs/final/<n>-<kind>.yaml`,
        <n> unique across every process."""
        n = self.records.add_output(esc_id, kind, data)
        path = self.outputs_dir(esc_id) / f"{n}-{kind}.yaml"
        self._mirror(path, lambda: data)
        return path

    def output_path(self, esc_id: str, kind: str, number: int) -> Path:
        return self.outputs_dir(esc_id) / f"{number}-{kind}.yaml"

    def mirror_filed(self, esc_id: str, kind: str, number: int, data: dict[str, Any]) -> None:
        """Mirror an output and the decision log that Redis took in one unit elsewhere (an
        approval, see `Store.approve_draft`)."""
        self._mirror(self.output_path(esc_id, kind, number), lambda: data)
        self._mirror(
            self.decisions_path(esc_id), lambda: {"decisions": self.records.decisions(esc_id)}
        )

    def write_review(self, esc_id: str, review: dict[str, Any]) -> Path:
        self.records.put_review(esc_id, review)
        path = self.review_path(esc_id)
        self._mirror(path, lambda: review)
        return path

    def append_lessons(self, esc_id: str, customer: str, lessons: list[str], at: datetime) -> None:
        if lessons:
            entry = {
                "escalation": esc_id,
                "customer": customer,
                "at": at.isoformat(),
                "lessons": lessons,
            }
            self.records.append_lessons(entry)
            self._mirror_strategy()

    # -- reading -------------------------------------------------------------------------------
    def outputs(self, esc_id: str, kind: str) -> list[dict[str, Any]]:
        """Outputs of one kind, oldest first."""
        return [
            data
            for name, data in self.records.outputs(esc_id).items()
            if name.split("-", 1)[1] == kind and isinstance(data, dict)
        ]

    def customer_facts(self, customer: str) -> dict[str, Any] | None:
        """The account's entry in customer_insights.yaml, matched case-insensitively.

        The file is kept by people: this host's copy when it has one, else the one
        `warroom memory import` put in Redis. A missing or broken one means "no facts", not
        an error (a broken file on disk falls back to the copy in Redis)."""
        entries = _customers(self._customer_insights())
        wanted = customer.strip().casefold()
        for entry in entries:
            if isinstance(entry, dict) and str(entry.get("name", "")).strip().casefold() == wanted:
                return entry
        return None

    def accounts_sharing(self, channel_id: str) -> list[dict[str, Any]]:
        """Every account whose `slack_connect` (the channel shared with the customer) is
        `channel_id`, in file order: the one way a message in a shared channel finds its
        account (a group's companies may share one channel)."""
        if not channel_id:
            return []
        return [
            e for e in self.customer_entries() if str(e.get("slack_connect") or "") == channel_id
        ]

    def customer_entries(self) -> list[dict[str, Any]]:
        """Every account's entry in customer_insights.yaml, in file order."""
        return [e for e in _customers(self._customer_insights()) if isinstance(e, dict)]

    def customer_names(self) -> tuple[str, ...]:
        """Every account named in customer_insights.yaml (a letter to one must name no other)."""
        names = (
            str(e.get("name", "")).strip()
            for e in _customers(self._customer_insights())
            if isinstance(e, dict)
        )
        return tuple(n for n in names if n)

    def _customer_insights(self) -> Any:
        path = self.customer_insights_path
        try:
            return _read_yaml(path) or {}
        except FileNotFoundError:
            pass
        except (OSError, yaml.YAMLError) as e:
            log.warning("ignoring %s: %s", path, e)
        try:
            return self.records.customer_insights()
        except Unavailable:
            log.warning("account facts unavailable: Redis cannot be reached")
            return None

    # -- the tree --------------------------------------------------------------------------------
    def export(self, dest: Path) -> int:
        """Write the whole tree from Redis under `dest`, in the seed's layout; the number of
        files written."""
        written = 0
        for esc_id in self.records.escalation_ids():
            for rel, data in _files_of(self.records.escalation(esc_id)):
                write_yaml(dest / esc_id / rel, data)
                written += 1
        lessons = self.records.lessons()
        if lessons:
            write_yaml(dest / STRATEGY, {"lessons_learned": lessons})
            written += 1
        insights = self.records.customer_insights()
        if insights is not None:
            write_yaml(dest / INSIGHTS, insights)
            written += 1
        return written

    def adopt(self, src: Path) -> Adopted:
        """Take a tree into Redis: customer_insights.yaml replaces the shared copy (people
        keep it); escalations' documents and the lessons written before Redis held memory
        are added where Redis has none, so running it twice adds nothing twice."""
        adopted = Adopted()
        insights = src / INSIGHTS
        if insights.exists():
            data = _read_yaml(insights)
            if data is not None and not isinstance(_customers(data), list):
                raise ValueError(f"{insights}: expected a mapping with a `customers` list")
            self.records.put_customer_insights(data or {})
            adopted.customer_insights = True
        strategy = src / STRATEGY
        if strategy.exists():
            data = _read_yaml(strategy)
            entries = data.get("lessons_learned") if isinstance(data, dict) else None
            if isinstance(entries, list):
                adopted.lessons = self.records.adopt_lessons(
                    [e for e in entries if isinstance(e, dict)]
                )
        for folder in sorted(p for p in src.iterdir() if p.is_dir()):
            if folder.name.startswith(("_", ".")):
                continue
            taken = self.records.adopt(_read_escalation(folder))
            if taken:
                adopted.escalations[folder.name] = taken
        return adopted

    # -- the mirror ------------------------------------------------------------------------------
    def _mirror(self, path: Path, data: Any) -> None:
        """Write `data()` to the mirror. Redis already has it: a disk problem here is logged,
        never raised. Reading happens under the file's lock, so of two writers on this host
        the later one writes the later state."""
        try:
            with _file_lock(path):
                write_yaml(path, data())
        except (OSError, Unavailable):
            log.warning("could not write the memory mirror %s", path, exc_info=True)

    def _mirror_strategy(self) -> None:
        """support_strategy.yaml: the lessons from Redis under `lessons_learned`; whatever
        else people keep in the file stays (a file they broke is kept aside)."""
        path = self.strategy_path

        def merged() -> dict[str, Any]:
            try:
                current = _read_yaml(path) or {}
            except FileNotFoundError:
                current = {}
            except yaml.YAMLError:
                n = 1
                while path.with_name(f"{path.name}.broken-{n}").exists():
                    n += 1
                os.replace(path, path.with_name(f"{path.name}.broken-{n}"))
                log.warning("%s was not valid YAML; kept it as %s.broken-%d", path, path.name, n)
                current = {}
            if not isinstance(current, dict):
                current = {"previous": current}
            return {**current, "lessons_learned": self.records.lessons()}

        self._mirror(path, merged)


@dataclass
class Adopted:
    """What `Memory.adopt` took: escalation id -> the kinds of document taken."""

    customer_insights: bool = False
    lessons: bool = False
    escalations: dict[str, list[str]] = field(default_factory=dict)


def _customers(data: Any) -> list[Any]:
    entries = data.get("customers") if isinstance(data, dict) else None
    return entries if isinstance(entries, list) else []


def _files_of(memory: EscalationMemory) -> Iterator[tuple[Path, Any]]:
    """One escalation's documents as (path relative to its folder, content)."""
    if memory.instruction is not None:
        yield INSTRUCTION, memory.instruction
    if memory.decisions:
        yield DECISIONS, {"decisions": memory.decisions}
    if memory.review is not None:
        yield REVIEW, memory.review
    for name, output in memory.outputs.items():
        yield OUTPUTS / f"{name}.yaml", output


def _read_escalation(folder: Path) -> EscalationMemory:
    """One escalation's folder as written by the file-only memory; unreadable files are
    skipped with a warning."""

    def read(path: Path) -> Any:
        try:
            return _read_yaml(path)
        except FileNotFoundError:
            return None
        except (OSError, yaml.YAMLError) as e:
            log.warning("ignoring %s: %s", path, e)
            return None

    instruction = read(folder / INSTRUCTION)
    review = read(folder / REVIEW)
    log_file = read(folder / DECISIONS)
    decisions = log_file.get("decisions") if isinstance(log_file, dict) else None
    outputs: dict[str, dict[str, Any]] = {}
    numbered = []
    for path in (folder / OUTPUTS).glob("*-*.yaml"):
        number, _, _kind = path.stem.partition("-")
        if number.isdigit():
            numbered.append((int(number), path))
    for _n, path in sorted(numbered):
        data = read(path)
        if isinstance(data, dict):
            outputs[path.stem] = data
    return EscalationMemory(
        id=folder.name,
        instruction=instruction if isinstance(instruction, dict) else None,
        decisions=[d for d in decisions or [] if isinstance(d, dict)],
        review=review if isinstance(review, dict) else None,
        outputs=outputs,
    )


# Striped: writers of different files rarely wait for each other, and the table stays small.
_mirror_locks = tuple(threading.Lock() for _ in range(64))


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """Serialise writes of one mirror file across threads and processes on this host."""
    path.parent.mkdir(parents=True, exist_ok=True)
    stripe = _mirror_locks[hash(str(path)) % len(_mirror_locks)]
    with stripe, open(path.with_name(f".{path.name}.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)

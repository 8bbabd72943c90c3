"""The Agent_Memory files (SPEC, Memory): written atomically, always valid YAML."""

from __future__ import annotations

import fcntl
import logging
import os
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from bot.domain.escalation import Escalation

log = logging.getLogger(__name__)


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
    """The memory folder: one sub-folder per escalation, plus the shared `_knowledge`."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def escalation_dir(self, esc_id: str) -> Path:
        return self.root / esc_id

    def instruction_path(self, esc_id: str) -> Path:
        return self.escalation_dir(esc_id) / "instruction.yaml"

    @property
    def customer_insights_path(self) -> Path:
        return self.root / "_knowledge" / "semantic" / "customer_insights.yaml"

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
        path = self.instruction_path(esc.id)
        write_yaml(path, data)
        return path

    def decisions_path(self, esc_id: str) -> Path:
        return self.escalation_dir(esc_id) / "decisions" / "vp_decisions.yaml"

    def review_path(self, esc_id: str) -> Path:
        return self.escalation_dir(esc_id) / "reviews" / "executive_review.yaml"

    def outputs_dir(self, esc_id: str) -> Path:
        return self.escalation_dir(esc_id) / "outputs" / "final"

    @property
    def strategy_path(self) -> Path:
        return self.root / "_knowledge" / "semantic" / "support_strategy.yaml"

    def record_decision(
        self, esc_id: str, decision: str, by: str | None, at: datetime, **details: Any
    ) -> None:
        """One line of the escalation's decision log (IC changes, steps done, approvals...)."""
        entry = {"at": at.isoformat(), "decision": decision, "by": by, **details}
        append_yaml_list(self.decisions_path(esc_id), "decisions", [entry])

    def log_decision(
        self, esc_id: str, decision: str, by: str | None, at: datetime, **details: Any
    ) -> None:
        """`record_decision` for work that must go on anyway: a disk problem is logged."""
        try:
            self.record_decision(esc_id, decision, by, at, **details)
        except OSError:
            log.exception("escalation %s: could not record decision %s", esc_id, decision)

    def write_output(self, esc_id: str, kind: str, data: dict[str, Any]) -> Path:
        """An approved customer update or the final review: `outputs/final/<n>-<kind>.yaml`."""
        folder = self.outputs_dir(esc_id)
        with _file_lock(folder / "index"):
            folder.mkdir(parents=True, exist_ok=True)
            n = 1 + sum(1 for p in folder.glob("*.yaml"))
            path = folder / f"{n}-{kind}.yaml"
            write_yaml(path, data)
        return path

    def outputs(self, esc_id: str, kind: str) -> list[dict[str, Any]]:
        """Outputs of one kind, oldest first; unreadable files are skipped."""
        found = []
        folder = self.outputs_dir(esc_id)
        for path in sorted(folder.glob(f"*-{kind}.yaml"), key=lambda p: int(p.name.split("-")[0])):
            try:
                data = _read_yaml(path)
            except (OSError, yaml.YAMLError) as e:
                log.warning("ignoring %s: %s", path, e)
                continue
            if isinstance(data, dict):
                found.append(data)
        return found

    def write_review(self, esc_id: str, review: dict[str, Any]) -> Path:
        path = self.review_path(esc_id)
        write_yaml(path, review)
        return path

    def append_lessons(self, esc_id: str, customer: str, lessons: list[str], at: datetime) -> None:
        if lessons:
            entry = {
                "escalation": esc_id,
                "customer": customer,
                "at": at.isoformat(),
                "lessons": lessons,
            }
            append_yaml_list(self.strategy_path, "lessons_learned", [entry])

    def customer_facts(self, customer: str) -> dict[str, Any] | None:
        """The account's entry in customer_insights.yaml, matched case-insensitively.

        The file is kept by people; a missing or broken one means "no facts", not an error.
        """
        path = self.customer_insights_path
        try:
            data = _read_yaml(path) or {}
        except FileNotFoundError:
            return None
        except (OSError, yaml.YAMLError) as e:
            log.warning("ignoring %s: %s", path, e)
            return None
        entries = data.get("customers") if isinstance(data, dict) else None
        if not isinstance(entries, list):
            return None
        wanted = customer.strip().casefold()
        for entry in entries:
            if isinstance(entry, dict) and str(entry.get("name", "")).strip().casefold() == wanted:
                return entry
        return None


_append_lock = threading.Lock()


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """Serialise read-modify-write of one file across threads and processes on this host."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with _append_lock, open(path.with_name(f".{path.name}.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def append_yaml_list(path: Path, key: str, items: list[Any]) -> None:
    """Append to the list under `key` of a YAML mapping file, atomically (temp file + rename).

    A file people broke is kept aside as `<name>.broken-<n>` rather than overwritten."""
    with _file_lock(path):
        data: Any = {}
        try:
            data = _read_yaml(path) or {}
        except FileNotFoundError:
            pass
        except yaml.YAMLError:
            n = 1
            while path.with_name(f"{path.name}.broken-{n}").exists():
                n += 1
            os.replace(path, path.with_name(f"{path.name}.broken-{n}"))
            log.warning("%s was not valid YAML; kept it as %s.broken-%d", path, path.name, n)
            data = {}
        if not isinstance(data, dict):
            data = {"previous": data}
        existing = data.get(key)
        data[key] = [*(existing if isinstance(existing, list) else []), *items]
        write_yaml(path, data)

"""The Agent_Memory files (SPEC, Memory): written atomically, always valid YAML."""

from __future__ import annotations

import logging
import os
import tempfile
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

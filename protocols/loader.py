"""Reading protocol files: YAML in, a validated `Protocol` out, or every problem on its own line.

This module owns where the packaged protocol lives (`DEFAULT_PROTOCOL`) and how problems with a
protocol file are reported: each line names the file, the step or criterion by index and id,
and the field, so `warroom protocols check` output can be acted on without reading code.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from protocols.schema import Criterion, Protocol, Step

__all__ = ["DEFAULT_PROTOCOL", "ProtocolError", "check", "describe", "load_protocol"]

# Through importlib.resources so the file is found inside an installed wheel (or a zip), not
# only next to the source in a checkout. This builds a path object; nothing is read here.
DEFAULT_PROTOCOL: Traversable = files("protocols") / "tier4.yaml"

# Which model sits at a location (list indexes left out), to list a model's fields when a
# file has one it does not know.
_MODEL_AT: dict[tuple[str, ...], type[BaseModel]] = {
    (): Protocol,
    ("steps",): Step,
    ("criteria",): Criterion,
}


class ProtocolError(ValueError):
    """A protocol file cannot be used. `problems` has one line per problem; str() joins them."""

    def __init__(self, source: str, problems: Sequence[str]) -> None:
        self.source = source
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


def load_protocol(path: str | os.PathLike[str] | Traversable | None = None) -> Protocol:
    """Read and validate a protocol file; the packaged Tier 4 protocol when `path` is None.

    Raises ProtocolError listing every problem found: file missing or unreadable, not YAML,
    not a mapping, or each field that fails validation.
    """
    resource, label = _resolve(path)
    data = _read_yaml(resource, label)
    try:
        return Protocol.model_validate(data)
    except ValidationError as exc:
        raise ProtocolError(label, _problems(label, data, exc)) from None


def check(path: str | os.PathLike[str] | Traversable | None = None) -> list[str]:
    """The problems with a protocol file, one line each; [] when it is valid."""
    try:
        load_protocol(path)
    except ProtocolError as exc:
        return exc.problems
    return []


def describe(protocol: Protocol) -> str:
    """A one-line summary for `warroom protocols check`, e.g. "6 criteria, 5 steps"."""
    criteria = len(protocol.criteria)
    steps = len(protocol.steps)
    return (
        f"{criteria} {'criterion' if criteria == 1 else 'criteria'}, "
        f"{steps} {'step' if steps == 1 else 'steps'}"
    )


def _resolve(path: str | os.PathLike[str] | Traversable | None) -> tuple[Traversable, str]:
    if path is None:
        return DEFAULT_PROTOCOL, str(DEFAULT_PROTOCOL)
    if isinstance(path, str | os.PathLike):
        # Keep the path as the caller wrote it: that is what they will recognise in a message.
        return Path(path), os.fspath(path)
    return path, str(path)


def _read_yaml(resource: Traversable, label: str) -> Any:
    def fail(problem: str) -> ProtocolError:
        return ProtocolError(label, [f"{label}: {problem}"])

    try:
        with resource.open("r", encoding="utf-8") as f:
            data = yaml.safe_load(f) or {}
    except FileNotFoundError:
        raise fail("file not found") from None
    except IsADirectoryError:
        raise fail("is a directory, not a protocol file") from None
    except PermissionError:
        raise fail("cannot read the file: permission denied") from None
    except OSError as exc:
        raise fail(f"cannot read the file: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise fail(f"not UTF-8 text (byte {exc.start})") from None
    except yaml.MarkedYAMLError as exc:
        raise fail(_yaml_problem(exc)) from None
    except yaml.YAMLError as exc:
        raise fail(f"not valid YAML: {exc}") from None
    if not isinstance(data, Mapping):
        raise fail(
            f"the top level must be a mapping of fields (id, name, criteria, steps, ...), "
            f"not {_kind(data)}"
        )
    return data


def _yaml_problem(exc: yaml.MarkedYAMLError) -> str:
    mark = exc.problem_mark or exc.context_mark
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    what = exc.problem or exc.context or "unreadable"
    if exc.context and exc.problem:
        what = f"{exc.problem} ({exc.context})"
    return f"not valid YAML{where}: {what}"


def _problems(label: str, data: Any, exc: ValidationError) -> list[str]:
    lines: list[str] = []
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"])
        kind = error["type"]
        value = error.get("input")
        ctx = error.get("ctx") or {}
        # pydantic counts only the items that validated; when some failed, the list itself
        # is not empty and those items' own errors already say what is wrong.
        if kind == "too_short" and _has_items(value, ctx.get("min_length", 1)):
            continue
        if kind in ("extra_forbidden", "invalid_key"):
            field = loc[-1] if loc else value
            where = _where(data, loc[:-1])
            if kind == "extra_forbidden":
                message = _unknown_field(loc[:-1], field)
            else:
                message = f"field names must be text, got {field!r}"
        else:
            where = _where(data, loc)
            message = _message(kind, error["msg"], value, ctx)
        lines.append(f"{label}: {where}: {message}" if where else f"{label}: {message}")
    return lines


def _has_items(value: Any, count: int) -> bool:
    return isinstance(value, list | tuple) and len(value) >= count


def _where(data: Any, loc: tuple[int | str, ...]) -> str:
    """Turn ("steps", 2, "due") into "steps[2] (customer_communication).due"."""
    out = ""
    cursor = data
    for part in loc:
        if isinstance(part, int) and isinstance(cursor, Sequence) and not isinstance(cursor, str):
            out += f"[{part}]"
            cursor = cursor[part] if 0 <= part < len(cursor) else None
            item_id = cursor.get("id") if isinstance(cursor, Mapping) else None
            if isinstance(item_id, str) and item_id:
                out += f" ({item_id})"
        else:
            out += f".{part}" if out else str(part)
            cursor = cursor.get(part) if isinstance(cursor, Mapping) else None
    return out


def _unknown_field(parent: tuple[int | str, ...], field: Any) -> str:
    model = _MODEL_AT.get(tuple(p for p in parent if isinstance(p, str)))
    known = f" (known fields: {', '.join(model.model_fields)})" if model else ""
    return f"unknown field {field!r}{known}"


# pydantic's wording talks about Python types ("a valid tuple"); a protocol file is YAML.
_PLAIN: dict[str, str] = {
    "missing": "required field is missing",
    "string_type": "expected text",
    "int_type": "expected a whole number",
    "int_from_float": "expected a whole number",
    "bool_type": "expected true or false",
    "tuple_type": "expected a list",
    "list_type": "expected a list",
    "model_type": "expected a mapping of fields",
    "model_attributes_type": "expected a mapping of fields",
    "dict_type": "expected a mapping of fields",
    "string_too_short": "must not be empty",
    "too_short": "must not be empty",
    "string_pattern_mismatch": (
        "ids use lowercase letters, digits and underscores, starting with a letter"
    ),
}


def _message(kind: str, msg: str, value: Any, ctx: Mapping[str, Any]) -> str:
    if kind == "greater_than_equal" and "ge" in ctx:
        return f"must be at least {ctx['ge']}, got {_show(value)}"
    if kind == "literal_error" and "expected" in ctx:
        return f"expected one of {ctx['expected']}, got {_show(value)}"
    plain = _PLAIN.get(kind)
    if plain is None:
        return msg
    if kind == "missing":
        return plain
    return f"{plain}, got {_show(value)}"


def _show(value: Any) -> str:
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "an empty list" if not value else "a list"
    return repr(value)


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "text"
    return f"{type(value).__name__} {value!r}"

"""The protocol schema and loader: the shipped Tier 4 file, durations, and bad-file messages."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import TypeAdapter, ValidationError

from protocols import (
    DEFAULT_PROTOCOL,
    Protocol,
    ProtocolError,
    UnknownId,
    check,
    describe,
    load_protocol,
)
from protocols.durations import duration_code, human_duration
from protocols.schema import Duration

MIN = timedelta(minutes=1)
HOUR = timedelta(hours=1)


@pytest.fixture(scope="module")
def tier4() -> Protocol:
    return load_protocol()


def shipped_data() -> dict[str, Any]:
    return yaml.safe_load(DEFAULT_PROTOCOL.read_text(encoding="utf-8"))


# --- the shipped file -------------------------------------------------------------------------


def test_shipped_protocol_is_a_packaged_resource() -> None:
    assert DEFAULT_PROTOCOL.is_file()
    assert DEFAULT_PROTOCOL.name == "tier4.yaml"
    assert check() == []


def test_shipped_protocol_header(tier4: Protocol) -> None:
    assert tier4.id == "tier4"
    assert tier4.version == 1
    assert tier4.name
    assert tier4.description
    assert describe(tier4) == "6 criteria, 5 steps"


def test_shipped_criteria_ids_in_order(tier4: Protocol) -> None:
    assert tier4.criterion_ids == (
        "arr_churn_risk",
        "multi_customer_outage",
        "security_incident",
        "legal_regulatory",
        "media_pr",
        "systemic_product_failure",
    )
    for criterion in tier4.criteria:
        assert criterion.title and criterion.description


def test_shipped_arr_threshold(tier4: Protocol) -> None:
    assert [c.id for c in tier4.arr_criteria] == ["arr_churn_risk"]
    assert tier4.criterion("arr_churn_risk").arr_at_least == 100_000
    assert [c.id for c in tier4.criteria_for_arr(100_000)] == ["arr_churn_risk"]
    assert tier4.criteria_for_arr(99_999) == ()


@pytest.mark.parametrize(
    ("step_id", "kind", "timing", "notify_vp"),
    [
        ("assessment", "due", 15 * MIN, False),
        ("war_room", "due", 30 * MIN, False),
        ("customer_communication", "due", 1 * HOUR, True),
        ("incident_management", "every", 2 * HOUR, True),
        ("follow_up", "after_resolution", (24 * HOUR, 48 * HOUR), True),
    ],
)
def test_shipped_steps(
    tier4: Protocol, step_id: str, kind: str, timing: object, notify_vp: bool
) -> None:
    step = tier4.step(step_id)
    assert step.kind == kind
    assert getattr(step, kind) == timing
    assert step.notify_vp is notify_vp
    assert 4 <= len(step.checklist) <= 5
    assert all(item.strip() for item in step.checklist)
    assert step.title and step.description


def test_shipped_step_helpers(tier4: Protocol) -> None:
    assert tier4.step_ids == (
        "assessment",
        "war_room",
        "customer_communication",
        "incident_management",
        "follow_up",
    )
    assert [s.id for s in tier4.deadline_steps] == [
        "assessment",
        "war_room",
        "customer_communication",
    ]
    assert tier4.update_step is not None
    assert tier4.update_step.id == "incident_management"
    assert tier4.update_interval == 2 * HOUR
    assert [s.id for s in tier4.followup_steps] == ["follow_up"]


@pytest.mark.parametrize(
    ("lookup", "missing", "expected"),
    [
        ("step", "triage", "unknown step 'triage'"),
        ("criterion", "outage", "unknown criterion 'outage'"),
    ],
)
def test_unknown_ids_raise_key_error_naming_the_id(
    tier4: Protocol, lookup: str, missing: str, expected: str
) -> None:
    with pytest.raises(KeyError) as info:
        getattr(tier4, lookup)(missing)
    assert isinstance(info.value, UnknownId)
    assert str(info.value).startswith(expected)
    assert "assessment" in str(info.value) or "arr_churn_risk" in str(info.value)


def test_protocol_is_frozen(tier4: Protocol) -> None:
    with pytest.raises(ValidationError):
        tier4.step("assessment").due = HOUR  # type: ignore[misc]


def test_dump_round_trips_through_yaml(tier4: Protocol) -> None:
    dumped = tier4.model_dump()
    assert dumped["steps"][0]["due"] == "15m"
    assert list(dumped["steps"][4]["after_resolution"]) == ["1d", "2d"]
    assert Protocol.model_validate(yaml.safe_load(yaml.safe_dump(dumped))) == tier4
    assert Protocol.model_validate_json(tier4.model_dump_json()) == tier4


def test_deadline_steps_sorted_by_due_not_file_order() -> None:
    data = shipped_data()
    data["steps"][0], data["steps"][2] = data["steps"][2], data["steps"][0]
    protocol = Protocol.model_validate(data)
    assert protocol.step_ids[0] == "customer_communication"
    assert [s.id for s in protocol.deadline_steps] == [
        "assessment",
        "war_room",
        "customer_communication",
    ]


def test_protocol_without_recurring_step_has_no_update_interval() -> None:
    data = shipped_data()
    data["steps"] = [s for s in data["steps"] if "every" not in s]
    protocol = Protocol.model_validate(data)
    assert protocol.update_step is None
    assert protocol.update_interval is None


@pytest.mark.parametrize("as_type", [str, Path], ids=["str", "Path"])
def test_load_protocol_accepts_str_and_path(tmp_path: Path, as_type: type) -> None:
    target = tmp_path / "custom.yaml"
    target.write_text(DEFAULT_PROTOCOL.read_text(encoding="utf-8"), encoding="utf-8")
    assert load_protocol(as_type(target)) == load_protocol()
    assert check(as_type(target)) == []


def test_load_protocol_accepts_the_packaged_resource() -> None:
    assert load_protocol(DEFAULT_PROTOCOL) == load_protocol()


# --- durations --------------------------------------------------------------------------------

_DURATION = TypeAdapter(Duration)


@pytest.mark.parametrize(
    ("raw", "expected", "short"),
    [
        ("15m", timedelta(minutes=15), "15m"),
        ("1h", timedelta(hours=1), "1h"),
        ("2h30m", timedelta(hours=2, minutes=30), "2h30m"),
        ("90s", timedelta(seconds=90), "1m30s"),
        ("1d", timedelta(days=1), "1d"),
        ("24h", timedelta(days=1), "1d"),
        ("1d2h3m4s", timedelta(days=1, hours=2, minutes=3, seconds=4), "1d2h3m4s"),
        (" 2h 30m ", timedelta(hours=2, minutes=30), "2h30m"),
        ("1H", timedelta(hours=1), "1h"),
        (900, timedelta(minutes=15), "15m"),
        (1, timedelta(seconds=1), "1s"),
        (timedelta(hours=4), timedelta(hours=4), "4h"),
    ],
)
def test_duration_accepts(raw: object, expected: timedelta, short: str) -> None:
    value = _DURATION.validate_python(raw)
    assert value == expected
    assert _DURATION.dump_python(value) == short
    assert _DURATION.dump_json(value) == f'"{short}"'.encode()
    assert _DURATION.validate_python(short) == expected
    assert duration_code(value) == short


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("1 hour", "use a number and a unit"),
        ("15", "use a number and a unit"),
        ("15min", "use a number and a unit"),
        ("1.5h", "use a number and a unit"),
        ("30m2h", "use a number and a unit"),
        ("1h1h", "use a number and a unit"),
        ("-15m", "use a number and a unit"),
        ("", "use a number and a unit"),
        ("h", "use a number and a unit"),
        (True, "use a number and a unit"),
        (1.5, "use a number and a unit"),
        (None, "use a number and a unit"),
        ("0m", "it must be longer than zero"),
        ("0h0m", "it must be longer than zero"),
        (0, "it must be longer than zero"),
        (-5, "it must be longer than zero"),
        (timedelta(0), "it must be longer than zero"),
        (timedelta(seconds=-60), "it must be longer than zero"),
        (timedelta(milliseconds=1500), "use whole seconds"),
    ],
)
def test_duration_refuses(raw: object, reason: str) -> None:
    with pytest.raises(ValidationError) as info:
        _DURATION.validate_python(raw)
    (error,) = info.value.errors()
    shown = str(raw) if isinstance(raw, timedelta) else repr(raw)
    assert error["msg"] == f"invalid duration {shown} — {reason}, like 15m, 1h, 2h30m"


# --- bad files --------------------------------------------------------------------------------

Edit = Callable[[dict[str, Any]], object]


def _step(index: int, **changes: Any) -> Edit:
    def edit(data: dict[str, Any]) -> None:
        step = data["steps"][index]
        for key, value in changes.items():
            if value is _DELETE:
                del step[key]
            else:
                step[key] = value

    return edit


def _criterion(index: int, **changes: Any) -> Edit:
    def edit(data: dict[str, Any]) -> None:
        data["criteria"][index].update(changes)

    return edit


_DELETE = object()

# Each case edits the shipped data, writes it to custom.yaml and expects exactly this line
# among the problems (file, step or criterion by index and id, field, what is wrong).
BAD_DATA: list[tuple[str, Edit, str]] = [
    (
        "unknown top-level key",
        lambda d: d.update(owner="support"),
        "custom.yaml: unknown field 'owner' "
        "(known fields: id, name, description, version, criteria, steps)",
    ),
    (
        "unknown step key",
        _step(0, deadline="15m"),
        "custom.yaml: steps[0] (assessment): unknown field 'deadline' (known fields: id, "
        "title, description, checklist, notify_vp, milestone, due, every, after_resolution)",
    ),
    (
        "unknown criterion key",
        _criterion(2, severity="high"),
        "custom.yaml: criteria[2] (security_incident): unknown field 'severity' "
        "(known fields: id, title, description, arr_at_least)",
    ),
    (
        "bad duration",
        _step(2, due="1 hour"),
        "custom.yaml: steps[2] (customer_communication).due: invalid duration '1 hour' "
        "— use a number and a unit, like 15m, 1h, 2h30m",
    ),
    (
        "zero duration",
        _step(3, every="0m"),
        "custom.yaml: steps[3] (incident_management).every: invalid duration '0m' "
        "— it must be longer than zero, like 15m, 1h, 2h30m",
    ),
    (
        "bad follow-up duration",
        _step(4, after_resolution=["24h", "two days"]),
        "custom.yaml: steps[4] (follow_up).after_resolution[1]: invalid duration 'two days' "
        "— use a number and a unit, like 15m, 1h, 2h30m",
    ),
    (
        "wrong type: bool",
        _step(1, notify_vp="sometimes"),
        "custom.yaml: steps[1] (war_room).notify_vp: expected true or false, got 'sometimes'",
    ),
    (
        "version below 1",
        lambda d: d.update(version=0),
        "custom.yaml: version: must be at least 1, got 0",
    ),
    (
        "wrong type: version",
        lambda d: d.update(version="one"),
        "custom.yaml: version: expected a whole number, got 'one'",
    ),
    (
        "wrong type: checklist is text",
        _step(0, checklist="do everything"),
        "custom.yaml: steps[0] (assessment).checklist: expected a list, got 'do everything'",
    ),
    (
        "wrong type: title is a number",
        _step(1, title=42),
        "custom.yaml: steps[1] (war_room).title: expected text, got 42",
    ),
    (
        "wrong type: arr threshold",
        _criterion(0, arr_at_least="100k"),
        "custom.yaml: criteria[0] (arr_churn_risk).arr_at_least: expected a whole number, "
        "got '100k'",
    ),
    (
        "negative arr threshold",
        _criterion(0, arr_at_least=-1),
        "custom.yaml: criteria[0] (arr_churn_risk).arr_at_least: must be at least 0, got -1",
    ),
    (
        "missing step field",
        _step(0, title=_DELETE),
        "custom.yaml: steps[0] (assessment).title: required field is missing",
    ),
    (
        "bad step id",
        _step(0, id="Assess-Now"),
        "custom.yaml: steps[0] (Assess-Now).id: ids use lowercase letters, digits and "
        "underscores, starting with a letter, got 'Assess-Now'",
    ),
    (
        "duplicate step id",
        _step(3, id="war_room"),
        "custom.yaml: steps: duplicate step id 'war_room' at steps[1] and steps[3] "
        "— each step needs its own id",
    ),
    (
        "duplicate criterion id",
        _criterion(4, id="security_incident"),
        "custom.yaml: criteria: duplicate criterion id 'security_incident' at criteria[2] "
        "and criteria[4] — each criterion needs its own id",
    ),
    (
        "step with two timing kinds",
        _step(0, every="1h"),
        "custom.yaml: steps[0] (assessment): step 'assessment' needs exactly one of due, "
        "every or after_resolution, but has due and every",
    ),
    (
        "step with no timing",
        _step(1, due=_DELETE),
        "custom.yaml: steps[1] (war_room): step 'war_room' needs exactly one of due, "
        "every or after_resolution, but has none of them",
    ),
    (
        "two every steps",
        _step(2, due=_DELETE, every="4h", milestone=_DELETE),
        "custom.yaml: steps: only one step may use 'every' (the status-update cadence), "
        "but 'customer_communication' and 'incident_management' do",
    ),
    (
        "unknown milestone",
        _step(0, milestone="triage"),
        "custom.yaml: steps[0] (assessment).milestone: expected one of 'assessment', "
        "'war_room' or 'first_customer_contact', got 'triage'",
    ),
    (
        "a milestone twice",
        _step(0, milestone="war_room"),
        "custom.yaml: steps: only one step may be the war_room milestone, but 'assessment' "
        "and 'war_room' are",
    ),
    (
        "a milestone on a step without a deadline",
        _step(3, milestone="assessment"),
        "custom.yaml: steps[3] (incident_management): step 'incident_management' is the "
        "assessment milestone, which needs a `due` deadline",
    ),
    (
        "decreasing after_resolution",
        _step(4, after_resolution=["48h", "24h"]),
        "custom.yaml: steps[4] (follow_up).after_resolution: follow-up times must be "
        "strictly increasing, but 1d comes after 2d",
    ),
    (
        "empty after_resolution",
        _step(4, after_resolution=[]),
        "custom.yaml: steps[4] (follow_up).after_resolution: must not be empty, got an empty list",
    ),
    (
        "empty checklist",
        _step(3, checklist=[]),
        "custom.yaml: steps[3] (incident_management).checklist: must not be empty, "
        "got an empty list",
    ),
    (
        "blank checklist item",
        _step(3, checklist=["Update the customer", "  "]),
        "custom.yaml: steps[3] (incident_management).checklist[1]: must not be empty, got '  '",
    ),
    (
        "no steps",
        lambda d: d.update(steps=[]),
        "custom.yaml: steps: must not be empty, got an empty list",
    ),
    (
        "step is not a mapping",
        lambda d: d["steps"].append("follow up later"),
        "custom.yaml: steps[5]: expected a mapping of fields, got 'follow up later'",
    ),
    (
        "non-text key",
        lambda d: d["steps"][0].update({1: "x"}),
        "custom.yaml: steps[0] (assessment): field names must be text, got 1",
    ),
]


def _write(tmp_path: Path, data: object) -> Path:
    target = tmp_path / "custom.yaml"
    target.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return target


@pytest.mark.parametrize(("edit", "line"), [c[1:] for c in BAD_DATA], ids=[c[0] for c in BAD_DATA])
def test_bad_protocol_data_is_reported_by_file_step_and_field(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, edit: Edit, line: str
) -> None:
    data = copy.deepcopy(shipped_data())
    edit(data)
    _write(tmp_path, data)
    # A relative path, so messages carry the name exactly as the caller gave it.
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ProtocolError) as info:
        load_protocol("custom.yaml")
    error = info.value
    assert isinstance(error, ValueError)
    assert line in error.problems
    assert str(error) == "\n".join(error.problems)
    assert all("\n" not in problem for problem in error.problems)
    assert check("custom.yaml") == error.problems


def test_every_problem_in_a_file_is_reported(tmp_path: Path) -> None:
    data = shipped_data()
    data["steps"][0]["due"] = "soon"
    data["steps"][2]["notify_vp"] = "yes please"
    data["criteria"][1]["colour"] = "red"
    target = _write(tmp_path, data)
    problems = check(target)
    assert len(problems) == 3
    assert all(problem.startswith(f"{target}: ") for problem in problems)
    assert any("steps[0] (assessment).due" in p for p in problems)
    assert any("steps[2] (customer_communication).notify_vp" in p for p in problems)
    assert any("criteria[1] (multi_customer_outage): unknown field 'colour'" in p for p in problems)


BAD_FILES: list[tuple[str, bytes | None, str]] = [
    ("missing file", None, "custom.yaml: file not found"),
    (
        "invalid YAML",
        b"id: tier4\nsteps: [assessment\nname: x\n",
        "custom.yaml: not valid YAML at line 3, column 5",
    ),
    (
        "list at top level",
        b"- id: assessment\n  due: 15m\n",
        "custom.yaml: the top level must be a mapping of fields "
        "(id, name, criteria, steps, ...), not a list",
    ),
    (
        "text at top level",
        b"just some words\n",
        "custom.yaml: the top level must be a mapping of fields "
        "(id, name, criteria, steps, ...), not text",
    ),
    ("not UTF-8", b"id: tier4\nname: \xff\xfe\n", "custom.yaml: not UTF-8 text"),
    ("python tag refused", b"id: !!python/object:os.system {}\n", "custom.yaml: not valid YAML"),
    ("empty file", b"", "custom.yaml: steps: required field is missing"),
]


@pytest.mark.parametrize(
    ("content", "expected"), [c[1:] for c in BAD_FILES], ids=[c[0] for c in BAD_FILES]
)
def test_bad_files_are_one_clear_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: bytes | None, expected: str
) -> None:
    if content is not None:
        (tmp_path / "custom.yaml").write_bytes(content)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ProtocolError) as info:
        load_protocol(Path("custom.yaml"))
    assert any(problem.startswith(expected) for problem in info.value.problems), info.value.problems
    assert all(problem.startswith("custom.yaml: ") for problem in info.value.problems)


def test_directory_is_not_a_protocol_file(tmp_path: Path) -> None:
    assert check(tmp_path) == [f"{tmp_path}: is a directory, not a protocol file"]


def test_schema_refuses_extra_keys_without_the_loader() -> None:
    data = shipped_data()
    data["steps"][0]["deadline"] = "15m"
    with pytest.raises(ValidationError) as info:
        Protocol.model_validate(data)
    (error,) = info.value.errors()
    assert error["type"] == "extra_forbidden"
    assert error["loc"] == ("steps", 0, "deadline")


@pytest.mark.parametrize(
    ("span", "expected"),
    [
        (timedelta(0), "0 s"),
        (timedelta(seconds=20), "20 s"),
        (timedelta(seconds=89), "1 min"),
        (timedelta(minutes=45), "45 min"),
        (timedelta(hours=2), "2 h"),
        (timedelta(minutes=135), "2 h 15 min"),
        (timedelta(hours=27), "27 h"),
        (timedelta(hours=48), "48 h"),
        (timedelta(hours=80), "3 d 8 h"),
        (timedelta(days=5), "5 d"),
        (timedelta(minutes=-90), "-1 h 30 min"),
        (150.0, "2 min"),
    ],
)
def test_human_duration_is_the_one_way_people_read_a_duration(
    span: timedelta | float, expected: str
) -> None:
    assert human_duration(span) == expected

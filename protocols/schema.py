"""The shape of an escalation protocol: criteria, steps, deadlines, as frozen pydantic models.

This module owns what a valid protocol is (and the `Duration` type its deadlines are written
in). It knows nothing about files; `protocols.loader` reads YAML and turns validation errors
into messages that name the file.
"""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StrictBool,
    StrictInt,
    StringConstraints,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from protocols.durations import duration_code, parse_duration

__all__ = [
    "Criterion",
    "Duration",
    "Milestone",
    "Protocol",
    "Step",
    "StepKind",
    "UnknownId",
]

Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    # "always": model_dump() then gives data that yaml.safe_dump can write and this schema
    # reads back, which a timedelta is not.
    PlainSerializer(duration_code, return_type=str, when_used="always"),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": r"^(\d+d)?(\d+h)?(\d+m)?(\d+s)?$"},
                {"type": "integer", "minimum": 1, "description": "seconds"},
            ],
            "examples": ["15m", "1h", "2h30m"],
        }
    ),
]
"""A positive length of time, written "15m", "1h", "2h30m", "90s", "1d" or as seconds."""

# Ids end up in `@vp done <step-id>`, in Slack action values and in scheduler job ids
# (`deadline:{escalation}:{step}`), so they stay to lowercase ASCII without separators.
Id = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$")]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]

StepKind = Literal["due", "every", "after_resolution"]

# What a step stands for, so that the code never names a step by its id:
# - `assessment`: the first look at the problem ("time to assessment");
# - `war_room`: done by the bot the moment the room is open ("time to war room");
# - `first_customer_contact`: done by the first customer update a person approves
#   ("time to first customer communication").
Milestone = Literal["assessment", "war_room", "first_customer_contact"]
MILESTONES: tuple[Milestone, ...] = ("assessment", "war_room", "first_customer_contact")
_TIMING_FIELDS: tuple[StepKind, ...] = ("due", "every", "after_resolution")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class UnknownId(KeyError):
    """A criterion or step id that the protocol does not define."""

    def __str__(self) -> str:
        # KeyError's own str() is the repr of its argument, quotes and all.
        return str(self.args[0]) if self.args else ""


class Criterion(_Model):
    """A reason an escalation qualifies for this protocol (e.g. a security incident)."""

    id: Id
    title: Text
    description: Text
    arr_at_least: StrictInt | None = Field(default=None, ge=0)
    """When set, a declaration whose ARR is at least this many dollars gets this criterion."""


class Step(_Model):
    """One phase of the protocol, its checklist and exactly one kind of timing.

    - `due`: the step should be done this long after the declaration;
    - `every`: recurring while the escalation is open (the status-update cadence);
    - `after_resolution`: follow-ups at each of these times after resolution.
    """

    id: Id
    title: Text
    description: Text
    checklist: tuple[Text, ...] = Field(min_length=1)
    notify_vp: StrictBool = False
    """Overdue reminders for this step also mention the VP(s), not only the IC."""
    milestone: Milestone | None = None
    """What the step stands for to the bot (see `Milestone`); a `due` step, one per milestone."""
    due: Duration | None = None
    every: Duration | None = None
    after_resolution: tuple[Duration, ...] | None = Field(default=None, min_length=1)

    @field_validator("after_resolution")
    @classmethod
    def _strictly_increasing(
        cls, value: tuple[timedelta, ...] | None
    ) -> tuple[timedelta, ...] | None:
        if value:
            for earlier, later in itertools.pairwise(value):
                if later <= earlier:
                    raise PydanticCustomError(
                        "not_increasing",
                        "follow-up times must be strictly increasing, but {later} comes "
                        "after {earlier}",
                        {"earlier": duration_code(earlier), "later": duration_code(later)},
                    )
        return value

    @model_validator(mode="after")
    def _exactly_one_timing(self) -> Step:
        chosen = [name for name in _TIMING_FIELDS if getattr(self, name) is not None]
        if len(chosen) != 1:
            found = "none of them" if not chosen else " and ".join(chosen)
            raise PydanticCustomError(
                "timing_kind",
                "step {step} needs exactly one of due, every or after_resolution, but has {found}",
                {"step": repr(self.id), "found": found},
            )
        if self.milestone is not None and self.due is None:
            raise PydanticCustomError(
                "milestone_timing",
                "step {step} is the {milestone} milestone, which needs a `due` deadline",
                {"step": repr(self.id), "milestone": self.milestone},
            )
        return self

    @property
    def kind(self) -> StepKind:
        """Which timing this step uses: "due", "every" or "after_resolution"."""
        for name in _TIMING_FIELDS:
            if getattr(self, name) is not None:
                return name
        raise AssertionError("unreachable: validation guarantees one timing kind")


def _duplicates(ids: list[str]) -> list[str]:
    seen: set[str] = set()
    repeated: list[str] = []
    for item in ids:
        if item in seen and item not in repeated:
            repeated.append(item)
        seen.add(item)
    return repeated


class Protocol(_Model):
    """A whole escalation protocol: what qualifies, and the steps with their deadlines."""

    id: Id
    name: Text
    description: Text
    version: StrictInt = Field(ge=1)
    criteria: tuple[Criterion, ...] = Field(min_length=1)
    steps: tuple[Step, ...] = Field(min_length=1)

    @field_validator("criteria")
    @classmethod
    def _unique_criterion_ids(cls, value: tuple[Criterion, ...]) -> tuple[Criterion, ...]:
        _refuse_duplicates("criterion", "criteria", [c.id for c in value])
        return value

    @field_validator("steps")
    @classmethod
    def _unique_step_ids(cls, value: tuple[Step, ...]) -> tuple[Step, ...]:
        _refuse_duplicates("step", "steps", [s.id for s in value])
        for milestone in MILESTONES:
            marked = [s.id for s in value if s.milestone == milestone]
            if len(marked) > 1:
                raise PydanticCustomError(
                    "several_milestone",
                    "only one step may be the {milestone} milestone, but {steps} are",
                    {"milestone": milestone, "steps": " and ".join(repr(i) for i in marked)},
                )
        recurring = [s.id for s in value if s.every is not None]
        if len(recurring) > 1:
            # The bot keeps one status-update nudge per escalation; two cadences would
            # leave it unclear which one an update resets.
            raise PydanticCustomError(
                "several_every",
                "only one step may use 'every' (the status-update cadence), but {steps} do",
                {"steps": " and ".join(repr(i) for i in recurring)},
            )
        return value

    def criterion(self, criterion_id: str) -> Criterion:
        """The criterion with this id; UnknownId (a KeyError) naming the known ids if none."""
        for criterion in self.criteria:
            if criterion.id == criterion_id:
                return criterion
        raise UnknownId(
            f"unknown criterion {criterion_id!r}; protocol {self.id!r} has: "
            + ", ".join(self.criterion_ids)
        )

    def step(self, step_id: str) -> Step:
        """The step with this id; UnknownId (a KeyError) naming the known ids if none."""
        for step in self.steps:
            if step.id == step_id:
                return step
        raise UnknownId(
            f"unknown step {step_id!r}; protocol {self.id!r} has: " + ", ".join(self.step_ids)
        )

    def milestone(self, milestone: Milestone) -> Step | None:
        """The step that stands for `milestone`, if the protocol has one."""
        return next((s for s in self.steps if s.milestone == milestone), None)

    def milestone_id(self, milestone: Milestone) -> str | None:
        step = self.milestone(milestone)
        return step.id if step is not None else None

    @property
    def criterion_ids(self) -> tuple[str, ...]:
        """Criterion ids in file order."""
        return tuple(c.id for c in self.criteria)

    @property
    def step_ids(self) -> tuple[str, ...]:
        """Step ids in file order."""
        return tuple(s.id for s in self.steps)

    @property
    def deadline_steps(self) -> tuple[Step, ...]:
        """Steps with a `due` deadline, earliest first (file order breaks ties)."""
        timed = [s for s in self.steps if s.due is not None]
        return tuple(sorted(timed, key=lambda s: s.due or timedelta(0)))

    @property
    def update_step(self) -> Step | None:
        """The recurring (`every`) step that sets the status-update cadence, if any."""
        return next((s for s in self.steps if s.every is not None), None)

    @property
    def update_interval(self) -> timedelta | None:
        """How long without a status update before the IC is nudged, if the protocol says."""
        step = self.update_step
        return step.every if step is not None else None

    @property
    def followup_steps(self) -> tuple[Step, ...]:
        """Steps timed from the resolution, in file order."""
        return tuple(s for s in self.steps if s.after_resolution is not None)

    @property
    def arr_criteria(self) -> tuple[Criterion, ...]:
        """Criteria that a declaration's ARR can trigger on its own."""
        return tuple(c for c in self.criteria if c.arr_at_least is not None)

    def criteria_for_arr(self, arr: int) -> tuple[Criterion, ...]:
        """The criteria a declaration with this ARR qualifies for automatically (ARR >= bar)."""
        return tuple(
            c for c in self.arr_criteria if c.arr_at_least is not None and arr >= c.arr_at_least
        )


def _refuse_duplicates(kind: str, field: str, ids: list[str]) -> None:
    repeated = _duplicates(ids)
    if repeated:
        where = "; ".join(
            f"{item!r} at " + " and ".join(f"{field}[{i}]" for i, v in enumerate(ids) if v == item)
            for item in repeated
        )
        raise PydanticCustomError(
            "duplicate_id",
            "duplicate {kind} id {where} — each {kind} needs its own id",
            {"kind": kind, "where": where},
        )

"""The organisation's config file (warroom.yaml): who is a VP, the IC rotation, responders."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from bot.domain.delivery import DEFAULT_MODE, DeliveryMode

UserId = Annotated[str, StringConstraints(pattern=r"^[UW][A-Z0-9]{2,}$")]
# Responders may be people (U.../W...) or user groups (S...), expanded at declaration.
MemberId = Annotated[str, StringConstraints(pattern=r"^[UWS][A-Z0-9]{2,}$")]


class ConfigError(ValueError):
    """The config file cannot be used; the message names the file and the key's path."""


ZendeskStatus = Literal["open", "pending", "hold", "solved"]


class ZendeskConfig(BaseModel):
    """`zendesk:` in warroom.yaml: what the bot does to a linked ticket."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # The ticket's status once a letter is added to it (pending: we wait on the customer);
    # None leaves it as it is.
    on_send: ZendeskStatus | None = "pending"
    # The ticket's status when the escalation is resolved; None leaves it as it is.
    on_resolve: ZendeskStatus | None = "solved"
    # How many tickets one organisation may open since the impact began before the IC is
    # told of a surge.
    surge: Annotated[int, Field(ge=2, le=10000)] = 5
    # How often the organisation's tickets are counted again, in minutes.
    refresh_minutes: Annotated[float, Field(gt=0, le=1440)] = 5.0


class WarroomConfig(BaseModel):
    """warroom.yaml, as SPEC's "Config file" section describes it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    vp: tuple[UserId, ...] = ()
    incident_commanders: tuple[UserId, ...] = ()
    exec_channel: Annotated[str, StringConstraints(min_length=1, max_length=80)] | None = None
    responders: dict[str, tuple[MemberId, ...]] = Field(default_factory=dict)
    # criterion id -> who must also approve a customer update (user or user-group ids).
    approvals: dict[str, tuple[MemberId, ...]] = Field(default_factory=dict)
    # Who may take the decisive actions: hand over the IC, resolve, approve customer updates.
    authorized_roles: tuple[str, ...] = ("ic", "vp", "declarer")
    # Who may take the everyday ones: mark a step done, record an update, ask for, edit or
    # redraft a draft. `room`: anyone in the war room's channel.
    everyday_roles: tuple[str, ...] = ("room", "ic", "vp", "declarer")
    # The reaction that puts a message said in the war room on its timeline.
    pin_reaction: Annotated[str, StringConstraints(pattern=r"^[a-z0-9_+'-]+$")] = "pushpin"
    # Who may confirm a cause (only a confirmed cause reaches a customer).
    cause_roles: tuple[str, ...] = ("ic", "vp")
    # Words in a customer update a person should look at twice; None: the agent's defaults.
    flag_terms: tuple[Annotated[str, StringConstraints(min_length=1)], ...] | None = None
    # Who coordinates statements to the press, as a letter names them when a press enquiry
    # is part of the escalation (criterion media_pr): "Priya Shah, press@example.com".
    press_contact: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None
    # When check-ins and promised times may fall, on weekdays in each account's time zone,
    # for accounts whose customer_insights.yaml entry sets no `business_hours` of its own.
    business_hours: Annotated[
        str, StringConstraints(pattern=r"^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d$")
    ] = "09:00-17:00"
    # What Approve and Send do for accounts with a route (email, slack_connect) in
    # customer_insights.yaml: send_button, approve_sends, approve_only or off (off wins over
    # an account's own `delivery`).
    delivery: DeliveryMode = DEFAULT_MODE
    zendesk: ZendeskConfig = Field(default_factory=ZendeskConfig)

    def responders_for(self, criteria: tuple[str, ...]) -> list[str]:
        """User and group ids of every criterion's responders, in order, without repeats."""
        seen: dict[str, None] = {}
        for criterion in criteria:
            for member in self.responders.get(criterion, ()):
                seen.setdefault(member, None)
        return list(seen)


def _path(loc: tuple[str | int, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def load_config(
    path: str | os.PathLike[str] | None, criterion_ids: tuple[str, ...]
) -> WarroomConfig:
    """Read and validate the config file; None means the empty config."""
    if path is None:
        return WarroomConfig()
    name = str(path)
    try:
        with Path(path).open(encoding="utf-8") as f:
            raw = yaml.safe_load(f) or {}
    except FileNotFoundError:
        raise ConfigError(f"{name}: file not found") from None
    except OSError as e:
        raise ConfigError(f"{name}: cannot read: {e.strerror}") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise ConfigError(f"{name}: not valid YAML{where}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{name}: expected a mapping of keys at the top level")
    try:
        config = WarroomConfig.model_validate(raw)
    except ValidationError as e:
        lines = []
        for err in e.errors():
            msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
            if err["type"] == "string_pattern_mismatch":
                msg = f"{err['input']!r} is not a Slack id of the right kind (U…, W… or S…)"
            lines.append(f"{name}: {_path(err['loc'])}: {msg}")
        raise ConfigError("\n".join(lines)) from None
    unknown = [
        f"{key}.{c}"
        for key in ("responders", "approvals")
        for c in getattr(config, key)
        if c not in criterion_ids
    ]
    if unknown:
        raise ConfigError(
            "\n".join(
                f"{name}: {where}: unknown criterion; known: {', '.join(criterion_ids)}"
                for where in unknown
            )
        )
    for key, allowed in (
        ("authorized_roles", ("ic", "vp", "declarer", "room")),
        ("everyday_roles", ("ic", "vp", "declarer", "room")),
        ("cause_roles", ("ic", "vp", "declarer", "room")),
    ):
        bad_roles = [r for r in getattr(config, key) if r not in allowed]
        if bad_roles:
            raise ConfigError(
                f"{name}: {key}: {', '.join(bad_roles)} — use {', '.join(allowed[:-1])} "
                f"and/or {allowed[-1]}"
            )
    return config

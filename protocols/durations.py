"""Lengths of time: how a protocol file writes them and how people read them.

The one home of durations. A protocol file writes `15m`, `2h30m` (`parse_duration` reads that,
`duration_code` writes it back); every message, report and draft shows a duration to people
with `human_duration` (`15 min`, `2 h 30 min`), so a deadline reads the same in the brief, a
reminder, the report and a customer update.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from pydantic_core import PydanticCustomError

__all__ = ["duration_code", "human_duration", "parse_duration"]

# Units in the order they must appear ("2h30m", never "30m2h"), largest first so that
# duration_code can emit the shortest form.
_UNITS: tuple[tuple[str, int], ...] = (("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1))
_DURATION_RE = re.compile(r"^(?:(\d+)d)?\s*(?:(\d+)h)?\s*(?:(\d+)m)?\s*(?:(\d+)s)?$")
_DURATION_HINT = "like 15m, 1h, 2h30m"

# People count in hours up to three days ("24-48 hours after resolution"), in days beyond.
_HOURS_UP_TO = 72


def _duration_error(value: Any, problem: str) -> PydanticCustomError:
    # The value goes in through the context, not the template, so braces typed by the
    # user cannot be mistaken for placeholders.
    return PydanticCustomError(
        "duration",
        "invalid duration {value} — {problem}, " + _DURATION_HINT,
        {"value": str(value) if isinstance(value, timedelta) else repr(value), "problem": problem},
    )


def parse_duration(value: Any) -> timedelta:
    """Turn "15m", "1h", "2h30m", "90s", "1d" or a whole number of seconds into a timedelta.

    Raises pydantic_core.PydanticCustomError (a ValueError) for anything else, for zero and for
    negative values; the message shows the bad value and a good example.
    """
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
        if seconds != int(seconds):
            raise _duration_error(value, "use whole seconds")
        if seconds <= 0:
            raise _duration_error(value, "it must be longer than zero")
        return value
    # bool is an int subclass; `due: yes` is a typo, not one second.
    if isinstance(value, int) and not isinstance(value, bool):
        if value <= 0:
            raise _duration_error(value, "it must be longer than zero")
        return timedelta(seconds=value)
    if isinstance(value, str):
        text = value.strip().lower()
        match = _DURATION_RE.match(text)
        if text and match:
            seconds = sum(
                int(amount) * size
                for amount, (_, size) in zip(match.groups(), _UNITS, strict=True)
                if amount is not None
            )
            if seconds <= 0:
                raise _duration_error(value, "it must be longer than zero")
            return timedelta(seconds=seconds)
    raise _duration_error(value, "use a number and a unit")


def duration_code(value: timedelta) -> str:
    """The protocol file's form of a duration: 15m, 1h, 2h30m, 1d; the inverse of
    parse_duration."""
    remaining = int(value.total_seconds())
    if remaining <= 0:
        return "0s"
    parts = []
    for unit, size in _UNITS:
        amount, remaining = divmod(remaining, size)
        if amount:
            parts.append(f"{amount}{unit}")
    return "".join(parts)


def human_duration(value: timedelta | float) -> str:
    """A duration for people: `45 s`, `12 min`, `2 h 5 min`, `48 h`, `3 d 4 h`.

    Seconds under a minute, whole minutes (rounded) under an hour, hours and minutes up to
    three days, then days and hours. A float is seconds. Negative values keep their sign.
    """
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    sign = "-" if seconds < 0 else ""
    total = round(abs(seconds))
    if total < 60:
        return f"{sign}{total} s"
    minutes = round(total / 60)
    if minutes < 60:
        return f"{sign}{minutes} min"
    hours, mins = divmod(minutes, 60)
    if hours < _HOURS_UP_TO:
        return sign + (f"{hours} h {mins} min" if mins else f"{hours} h")
    days, hours = divmod(hours, 24)
    return sign + (f"{days} d {hours} h" if hours else f"{days} d")

"""A declaration: what someone asks for when they open a war room, and the rules it must meet
wherever it was typed (the `/escalate` command line or the declaration form).

Pure. Each rule raises `InvalidInput` with a message that names the problem; the slash command
shows it with the others it finds, the form beside the field.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass

from bot.domain.errors import InvalidInput

MAX_CUSTOMER = 80
MAX_SUMMARY = 2000


@dataclass(frozen=True)
class Declaration:
    """A validated request to open a war room, wherever it came from (command or form)."""

    customer: str
    summary: str
    declarer: str
    arr: int | None = None
    ic: str | None = None
    criteria: tuple[str, ...] = ()
    private: bool = False
    tickets: tuple[int, ...] = ()  # support tickets to link once the room is open


@dataclass(frozen=True)
class Accepted:
    """What becomes of a declaration on the ack path: ours to open (after `wait` seconds), or
    another request's (already open in `channel_id`, or still being opened)."""

    token: str | None
    wait: float = 0.0
    channel_id: str | None = None

    @property
    def mine(self) -> bool:
        return self.token is not None


def check_customer(name: str) -> str:
    """The customer name with its white space folded; it must be there and fit a channel."""
    return _present_and_short(
        " ".join(name.split()), MAX_CUSTOMER, "The customer name", "Name the customer."
    )


def check_summary(summary: str) -> str:
    """The summary, trimmed; a sentence or two, the details belong in the war room."""
    return _present_and_short(
        summary.strip(),
        MAX_SUMMARY,
        "The summary",
        "Say in a sentence what is happening.",
        advice=" and put the details in the war room",
    )


def _present_and_short(text: str, limit: int, what: str, missing: str, advice: str = "") -> str:
    if not text:
        raise InvalidInput(missing)
    if len(text) > limit:
        raise InvalidInput(
            f"{what} is {len(text)} characters long; keep it to {limit} or fewer{advice}."
        )
    return text


def _criterion_key(criterion: str) -> str:
    # `Security-Incident` is a typo for `security_incident`, not another criterion.
    return criterion.strip().lower().replace("-", "_")


def check_criteria(typed: Iterable[str], known: Collection[str]) -> tuple[str, ...]:
    """The criteria as the protocol spells them, in the order given, without repeats.

    Case and `-` for `_` are forgiven; unknown ones are refused, every one of them named with
    the closest known id, and the known ids listed once.
    """
    canonical = {_criterion_key(criterion): criterion for criterion in known}
    chosen: list[str] = []
    unknown: list[str] = []
    guesses: list[tuple[str, str]] = []  # (as typed, the closest known id)
    for name in typed:
        criterion = canonical.get(_criterion_key(name))
        if criterion is not None:
            if criterion not in chosen:
                chosen.append(criterion)
            continue
        # Echoed without anything that could be markup where it is shown.
        shown = f"`{re.sub(r'[<>&`]', '', ' '.join(name.split()))[:40]}`"
        if shown in unknown:
            continue
        unknown.append(shown)
        close = difflib.get_close_matches(_criterion_key(name), list(canonical), n=1)
        if close:
            guesses.append((shown, canonical[close[0]]))
    if not unknown:
        return tuple(chosen)
    listing = ", ".join(sorted(known)) if known else "none are configured"
    if len(unknown) == 1:
        hint = f" Did you mean {guesses[0][1]}?" if guesses else ""
        raise InvalidInput(f"Unknown criterion {unknown[0]}.{hint} Known criteria: {listing}.")
    hint = (
        " Did you mean " + ", ".join(f"{guess} for {shown}" for shown, guess in guesses) + "?"
        if guesses
        else ""
    )
    named = ", ".join(unknown[:-1]) + f" and {unknown[-1]}"
    raise InvalidInput(f"Unknown criteria {named}.{hint} Known criteria: {listing}.")

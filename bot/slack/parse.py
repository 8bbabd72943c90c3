"""Reading `/escalate` text as Slack sends it, and naming war-room channels.

This module owns the slash-command grammar (`CUSTOMER: SUMMARY [--arr AMOUNT] [--ic @person]
[--criteria id,id] [--private]`), its usage text, the amount and mention formats and Slack's
text escaping; what a declaration must satisfy is `bot.domain.declaration`'s. It is pure: no
Slack, Redis or I/O. A malformed amount or mention raises `InvalidInput`; malformed `/escalate`
text raises `InvalidCommand` with every problem in it, each a sentence that says what is wrong
and quotes the offending token; the caller shows them followed by `USAGE_HINT` (the whole
`USAGE` is for `/escalate help`).

Slack sends slash-command text with "Escape channels, users, and links" on: user mentions
arrive as `<@U123|name>` or `<@U123>`, channels as `<#C123|name>`, user groups as
`<!subteam^S123|@team>`, links as `<https://...|label>`, and the user's own `&`, `<`, `>` as
`&amp;`, `&lt;`, `&gt;`. Emoji arrive as shortcodes (`:fire:`).
"""

from __future__ import annotations

import difflib
import math
import re
import string
from collections.abc import Callable, Collection
from dataclasses import dataclass
from fractions import Fraction
from typing import TypeVar

from bot.domain.declaration import (
    MAX_CUSTOMER,
    MAX_SUMMARY,
    check_criteria,
    check_customer,
    check_summary,
)
from bot.domain.errors import InvalidInput
from bot.domain.tickets import parse_ticket_refs
from bot.slack.text import USER_MENTION, inert, readable

__all__ = [
    "USAGE",
    "USAGE_HINT",
    "Declare",
    "Help",
    "InvalidCommand",
    "OpenForm",
    "parse_amount",
    "parse_escalate",
    "parse_user_mention",
]

_T = TypeVar("_T")

MAX_AMOUNT = 10**12  # a trillion dollars of ARR is a typo, not a customer

_SYNOPSIS = (
    "/escalate CUSTOMER: SUMMARY [--arr AMOUNT] [--ic @person] [--criteria id,id] [--private]"
    " [--ticket 4711]"
)
# Under the problems of a refused command: the grammar in a line, the rest a command away.
USAGE_HINT = f"Usage: {_SYNOPSIS} (/escalate help explains each part)"

USAGE = f"""\
Usage: {_SYNOPSIS}

  CUSTOMER            the account, first, followed by a colon (up to {MAX_CUSTOMER} characters)
  SUMMARY             what is wrong, in a sentence or two (up to {MAX_SUMMARY} characters)
  --arr AMOUNT        the customer's annual recurring revenue in dollars:
                      250000, 250,000, 250k, $1.2M or 2B ($100K or more adds arr_churn_risk)
  --ic @person        the incident commander: type @ and pick one person from Slack's list
                      (without it: the next IC in the rotation, else you)
  --criteria id,id    escalation criteria ids, comma-separated, for example
                      security_incident,legal_regulatory
  --private           make the war-room channel private
  --ticket 4711       link the support ticket (its number or URL); repeatable

Flags go anywhere after the colon, also as --flag=value.

Examples:
  /escalate Acme Corp: checkout fails for all EU users --arr 250k
  /escalate Initech: export shows other tenants' rows --criteria security_incident --private
  /escalate Globex: API errors since 09:40 UTC --ic @dana --criteria multi_customer_outage

/escalate with no text opens a form instead; /escalate help shows this text."""

_EXAMPLE = "`/escalate Acme Corp: checkout fails for all EU users --arr 250k`"
_AMOUNT_FORMS = "Write it in dollars, like 250000, 250,000, 250k, $1.2M or 2B."
_PICK_PERSON = "type @ and pick the person from Slack's list, so Slack turns it into a mention"


class InvalidCommand(InvalidInput):
    """`/escalate` text with one or more problems; `problems` lists them in the order they
    appear in the text, each a sentence that names the offending token."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = tuple(problems)


@dataclass(frozen=True)
class Help:
    """`/escalate help`: answer with `USAGE`, visible only to the caller."""


@dataclass(frozen=True)
class OpenForm:
    """`/escalate` with no text: open the declaration form."""


@dataclass(frozen=True)
class Declare:
    """A complete declaration typed on the command line."""

    customer: str
    summary: str
    arr: int | None  # whole dollars
    ic: str | None  # Slack user id
    criteria: tuple[str, ...]  # in the order typed, de-duplicated, spelled as the protocol does
    private: bool
    tickets: tuple[int, ...] = ()  # support tickets to link, in the order typed


# --- Slack text ---------------------------------------------------------------------------

# Slack's special mentions: an IC must be one person.
_BROADCAST_ENTITIES = ("<!here", "<!channel", "<!everyone")


def _quote(text: str, limit: int = 40) -> str:
    """The offending token for an error message: readable, short, in backticks.

    Rendering entities keeps an echoed `<!channel>` from notifying anyone.
    """
    shown = " ".join(readable(text).split()).replace("`", "'")
    if len(shown) > limit:
        shown = shown[: limit - 1] + "…"
    return f"`{inert(shown)}`"


# A token is a maximal run of Slack entities and non-space characters, so that an entity whose
# label has spaces (`<https://x|the runbook>`) stays whole and its words are never read as flags.
_TOKEN_RE = re.compile(r"(?:<[^<>]*>|[^\s<]|<)+")


def _tokens(text: str) -> list[str]:
    return _TOKEN_RE.findall(text)


# --- Mentions and amounts -----------------------------------------------------------------


def parse_user_mention(text: str) -> str:
    """The user id in a Slack mention, `<@U123|name>` or `<@U123>` (`W...` ids too)."""
    value = text.strip()
    match = USER_MENTION.fullmatch(value)
    if match:
        return match.group(1)
    if not value:
        raise InvalidInput(f"No person was given: {_PICK_PERSON}.")
    if value.startswith("<!subteam^"):
        raise InvalidInput(
            f"{_quote(value)} is a user group, but the IC must be one person: "
            "mention a single person instead."
        )
    if value.startswith(_BROADCAST_ENTITIES):
        raise InvalidInput(
            f"{_quote(value)} notifies everyone, but the IC must be one person: "
            "mention a single person instead."
        )
    if value.startswith("<#"):
        raise InvalidInput(f"{_quote(value)} is a channel, not a person: {_PICK_PERSON}.")
    # A bare `@ivan` is what arrives when the name was typed out rather than picked.
    raise InvalidInput(f"{_quote(value)} is not a Slack mention: {_PICK_PERSON}.")


_UNITS = {"": 1, "k": 10**3, "m": 10**6, "b": 10**9}
# Thousands separators must group by three, so a European `1,5m` is refused, not read as 15m.
_AMOUNT_RE = re.compile(
    r"\$?\s*(?P<number>[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]+)?|[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
    r"\s*(?P<units>[a-z]*)",
    re.IGNORECASE,
)
_MINUS_SIGNS = ("-", "\u2212")


def parse_amount(text: str) -> int:
    """Whole dollars from `250000`, `250,000`, `250k`, `$1.2M`, `2B`, ... (nearest dollar)."""
    value = text.strip()
    if not value:
        raise InvalidInput(f"The amount is empty. {_AMOUNT_FORMS}")
    quoted = _quote(value)
    if value.lstrip("$ ").startswith(_MINUS_SIGNS):
        raise InvalidInput(
            f"The amount {quoted} is negative; it must be more than zero. {_AMOUNT_FORMS}"
        )
    match = _AMOUNT_RE.fullmatch(value)
    if match is None:
        raise InvalidInput(f"{quoted} is not an amount. {_AMOUNT_FORMS}")
    units = match.group("units").lower()
    if units not in _UNITS:
        if all(unit in _UNITS for unit in units):
            raise InvalidInput(
                f"The amount {quoted} has more than one unit; use one of k, M or B. {_AMOUNT_FORMS}"
            )
        raise InvalidInput(f"{quoted} is not an amount. {_AMOUNT_FORMS}")
    number = match.group("number").replace(",", "")
    too_large = InvalidInput(
        f"The amount {quoted} is more than $1,000,000,000,000; check the unit. {_AMOUNT_FORMS}"
    )
    # Refused before any arithmetic, so a pasted thousand-digit number costs nothing.
    if len(number.partition(".")[0].lstrip("0")) > len(str(MAX_AMOUNT)):
        raise too_large
    # Exact arithmetic, not float, so `1.15M` is 1,150,000 rather than 1,149,999; halves round
    # up, as people do, rather than to even.
    dollars = math.floor(Fraction(number) * _UNITS[units] + Fraction(1, 2))
    if dollars <= 0:
        size = "zero" if Fraction(number) == 0 else "less than a dollar"
        raise InvalidInput(
            f"The amount {quoted} is {size}; it must be at least $1. {_AMOUNT_FORMS}"
        )
    if dollars > MAX_AMOUNT:
        raise too_large
    return dollars


# --- The command line ---------------------------------------------------------------------

_HELP_WORDS = frozenset({"help", "--help", "-h"})
_FLAGS = ("arr", "ic", "criteria", "private", "ticket")
# Flags that may be given more than once, each time with another value.
_REPEATABLE = frozenset({"ticket"})
_FLAG_EXAMPLES = {
    "arr": "--arr 250k",
    "ic": "--ic @dana",
    "criteria": "--criteria security_incident,legal_regulatory",
    "ticket": "--ticket 4711",
}
# Smart punctuation (macOS, iOS) turns a typed `--` into an em or en dash. A dash-led token is
# read as a flag only when it names a known flag, so `—again` in a summary stays a word.
_SMART_DASHES = ("\u2014", "\u2013")


@dataclass(frozen=True)
class _Flag:
    name: str  # lowercased, without dashes
    shown: str  # as the person should read it back: `--arr`, or `--Foo` for an unknown flag
    inline: str | None  # the value after `=`, if written as --flag=value


def _as_flag(token: str) -> _Flag | None:
    if token.startswith("--") and len(token) > 2 and token[2] in string.ascii_letters:
        body = token[2:]
    elif token.startswith(_SMART_DASHES) and token[1:].partition("=")[0].lower() in _FLAGS:
        body = token[1:]
    else:
        return None
    name, equals, value = body.partition("=")
    return _Flag(name=name.lower(), shown="--" + name, inline=value if equals else None)


_SHORTCODE_RUN = r"(?::[a-z0-9_+'-]+:)+"  # `:fire:`, `:wave::skin-tone-2:`
_SHORTCODE_RUN_RE = re.compile(_SHORTCODE_RUN)
_LONE_SHORTCODES_RE = re.compile(rf"(?<!\S){_SHORTCODE_RUN}(?!\S)")
_COLONS = (":", "\uff1a")  # the full-width colon is what CJK keyboards type


def _is_ascii_digit(text: str, index: int) -> bool:
    return 0 <= index < len(text) and "0" <= text[index] <= "9"


def _find_separator(text: str) -> int | None:
    """Index of the colon that ends the customer name, or None.

    That is the first colon, skipping colons that are plainly not one: inside a Slack entity
    (`<https://acme.com|acme.com>`), in emoji shortcodes at the start of a word
    (`:rotating_light: Acme: ...`), in a time (`10:30`), in a bare URL scheme (`https://`).
    """
    index = 0
    while index < len(text):
        char = text[index]
        if char == "<":
            end = text.find(">", index)
            if end != -1:
                index = end + 1
                continue
        elif char in _COLONS:
            if char == ":" and (index == 0 or text[index - 1].isspace()):
                emoji = _SHORTCODE_RUN_RE.match(text, index)
                if emoji and (
                    emoji.end() == len(text)
                    or text[emoji.end()].isspace()
                    or text[emoji.end()] == ":"
                ):
                    index = emoji.end()
                    continue
            is_time = _is_ascii_digit(text, index - 1) and _is_ascii_digit(text, index + 1)
            is_scheme = text.startswith("//", index + 1)
            if not (is_time or is_scheme):
                return index
        index += 1
    return None


def _and(items: list[str]) -> str:
    """`a`, `a and b`, `a, b and c`."""
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def _checked(check: Callable[[str], _T], value: str, problems: list[str]) -> _T | None:
    """`check(value)`, or None with its problem noted."""
    try:
        return check(value)
    except InvalidInput as exc:
        problems.append(exc.message)
        return None


def _customer(raw: str, problems: list[str]) -> str | None:
    flags = [_quote(token) for token in _tokens(raw) if _as_flag(token) is not None]
    if flags:
        verb = "comes" if len(flags) == 1 else "come"
        problems.append(
            f"{_and(flags)} {verb} before the colon. Start with the customer name and a colon, "
            f"then the summary and the flags: {_EXAMPLE}."
        )
        return None
    # Emoji are decoration; the name must match the account records (customer_insights.yaml).
    without_emoji = _LONE_SHORTCODES_RE.sub(" ", raw)
    customer = " ".join(readable(without_emoji).split())
    if not customer:
        problems.append(
            f"The customer name before the colon is empty. Start with the customer name, "
            f"followed by a colon: {_EXAMPLE}."
        )
        return None
    return _checked(check_customer, customer, problems)


def _criteria(value: str, known: Collection[str]) -> tuple[str, ...]:
    # `a,,b` and a trailing comma are slips, not criteria.
    typed = [readable(piece) for piece in value.split(",") if piece.strip()]
    if not typed:
        raise InvalidInput(
            "`--criteria` needs at least one criterion id, like --criteria security_incident."
        )
    return check_criteria(typed, known)


def _unknown_flag(flag: _Flag) -> str:
    close = difflib.get_close_matches(flag.name, _FLAGS, n=1)
    hint = f" Did you mean --{close[0]}?" if close else ""
    known = ", ".join(f"--{name}" for name in _FLAGS)
    return f"Unknown flag {_quote(flag.shown)}.{hint} The flags are {known}."


def parse_escalate(text: str, known_criteria: Collection[str]) -> Help | OpenForm | Declare:
    """Read the text of `/escalate`; `known_criteria` are the protocol's criterion ids.

    Every problem in the text is reported at once (`InvalidCommand`), in the order they come,
    so one reply is enough to correct them all.

    `--criteria` takes one value, but a comma at the end of a piece (or the start of the next)
    says the list goes on, so `--criteria a, b` and `--criteria a ,b` read as `a,b`. Only that
    comma joins the next token in: `--criteria a more words` keeps `more words` in the summary.
    A summary word after a list ending in a comma is read as a criterion, and so is refused as
    unknown rather than silently lost.
    """
    stripped = text.strip()
    if not stripped:
        return OpenForm()
    if stripped.lower() in _HELP_WORDS:
        return Help()

    problems: list[str] = []
    separator = _find_separator(stripped)
    if separator is None:
        problems.append(f"The customer name must come first, followed by a colon: {_EXAMPLE}.")
        # The flags are still read, so their mistakes are reported in the same reply.
        customer = None
        rest = stripped
    else:
        customer = _customer(stripped[:separator], problems)
        rest = stripped[separator + 1 :]

    tokens = _tokens(rest)
    words: list[str] = []
    seen: set[str] = set()
    repeated: set[str] = set()
    arr: int | None = None
    ic: str | None = None
    criteria: tuple[str, ...] | None = ()
    tickets: tuple[int, ...] = ()
    index = 0
    while index < len(tokens):
        token = tokens[index]
        index += 1
        flag = _as_flag(token)
        if flag is None:
            words.append(token)
            continue
        if flag.name not in _FLAGS:
            problems.append(_unknown_flag(flag))
            continue
        again = flag.name in seen and flag.name not in _REPEATABLE
        if again and flag.name not in repeated:
            repeated.add(flag.name)
            problems.append(f"`--{flag.name}` is given twice; give it once.")
        seen.add(flag.name)
        if flag.name == "private":
            if flag.inline is not None and not again:
                problems.append("`--private` takes no value; write just --private.")
            continue
        value = flag.inline
        if value is None and index < len(tokens) and _as_flag(tokens[index]) is None:
            value = tokens[index]
            index += 1
        if flag.name == "criteria":
            while (
                value
                and index < len(tokens)
                and _as_flag(tokens[index]) is None
                and (value.endswith(",") or tokens[index].startswith(","))
            ):
                value += tokens[index]
                index += 1
        if again:
            continue  # its value is not read: which of the two was meant is not ours to guess
        if not value:
            problems.append(f"`--{flag.name}` needs a value, like {_FLAG_EXAMPLES[flag.name]}.")
        elif flag.name == "arr":
            arr = _checked(_flag_check("arr", parse_amount), value, problems)
        elif flag.name == "ic":
            ic = _checked(_flag_check("ic", parse_user_mention), value, problems)
        elif flag.name == "ticket":
            found = _checked(_flag_check("ticket", parse_ticket_refs), value, problems)
            tickets += tuple(t for t in found or () if t not in tickets)
        else:
            criteria = _checked(lambda v: _criteria(v, known_criteria), value, problems)

    summary: str | None = None
    if separator is not None:
        summary = readable(" ".join(words))
        if not summary.strip():
            after = f"after {_quote(customer + ':')}" if customer else "after the colon"
            problems.append(
                f"The summary {after} is empty: say in a few words what is wrong, like {_EXAMPLE}."
            )
            summary = None
        else:
            summary = _checked(check_summary, summary, problems)
    if problems:
        raise InvalidCommand(problems)
    assert customer is not None and summary is not None  # no problems: both were read
    return Declare(
        customer=customer,
        summary=summary,
        arr=arr,
        ic=ic,
        criteria=criteria or (),
        private="private" in seen,
        tickets=tickets,
    )


def _flag_check(name: str, parse: Callable[[str], _T]) -> Callable[[str], _T]:
    """`parse`, its problem prefixed with the flag it is about: "Check --arr: the amount…"."""

    def check(value: str) -> _T:
        try:
            return parse(value)
        except InvalidInput as exc:
            raise InvalidInput(f"Check --{name}: {_continued(exc.message)}") from None

    return check


def _continued(sentence: str) -> str:
    """A sentence going on after a colon: its first word lowercased, unless it is an acronym
    or a name ("IC", "Slack")."""
    first = sentence.split(" ", 1)[0]
    if first[:1].isupper() and first[1:].islower() and first not in _PROPER_WORDS:
        return sentence[0].lower() + sentence[1:]
    return sentence


_PROPER_WORDS = frozenset({"Slack"})

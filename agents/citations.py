"""Citations in a model's draft: every factual sentence ends with the ids of the record entries
it rests on (`[T12]`, `[T12, M3]`), checked against the ids that exist and stripped from the
text people see.

The format is the agent's own rather than the Messages API's citations: those cite spans of
documents and hand back the cited text, which invites quoting the internal record the letter
must only translate; tags in the text stream with it, and the loopback API speaks them too.

Besides record ids a sentence may cite `NEXT` (the next update time it was given) or
`CHECKIN` (the follow-up after resolution); `[-]` marks a sentence that states no fact (a
greeting, an apology, an offer to talk). A sentence is supported when it cites an id that
exists, or is marked `[-]` and holds no number; in a customer letter, the id must be one that
may back what a customer is told (a customer fact, an approved letter, a prevention item):
a sentence that cites only the internal record is not backed. The subject, the greeting, the
sign-off, headings and placeholders are not claims.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from agents.checks import find_placeholders

# Sources a draft may cite besides the record's entries.
NEXT, CHECKIN, NO_FACT = "NEXT", "CHECKIN", "-"
_ID = r"(?:[A-Z]\d{1,6}|NEXT|CHECKIN|-)"
TAG = re.compile(r"[ \t]*\[\s*(" + _ID + r"(?:\s*,\s*" + _ID + r")*)\s*\]")
# A tag still being written at the end of a stream ("[T1", "[T12, M").
_PARTIAL = re.compile(r"[ \t]*\[[A-Z0-9,\s-]*$")

# A full stop, with any closing quotes or bracket after it (straight or curly).
_END = re.compile(r"[.!?]+[\"')\u201d\u2019]*(?=\s|$|\[)")
_CLOSING = re.compile(
    r"^(?:kind regards|best regards|warm regards|regards|sincerely|best wishes|best|thanks|"
    r"thank you|yours sincerely|yours)\s*,?\s*$",
    re.IGNORECASE,
)
_GREETING = re.compile(r"^(?:dear|hello|hi|good (?:morning|afternoon|evening))\b.*,\s*$", re.I)
_DIGIT = re.compile(r"\d")


@dataclass(frozen=True)
class Claim:
    """One sentence of a draft as shown, and the ids it cites that exist."""

    text: str
    sources: tuple[str, ...]
    unknown: tuple[str, ...] = ()  # ids it cites that the record does not have
    # It cites only entries that cannot back a customer letter (the internal record).
    internal_only: bool = False

    @property
    def supported(self) -> bool:
        if self.internal_only:
            return False
        if any(s != NO_FACT for s in self.sources):
            return True
        return NO_FACT in self.sources and not _DIGIT.search(self.text)


@dataclass(frozen=True)
class Cited:
    text: str  # the draft as shown: tags removed
    claims: tuple[Claim, ...]

    @property
    def unsupported(self) -> tuple[str, ...]:
        return tuple(c.text for c in self.claims if not c.supported)

    @property
    def unknown(self) -> tuple[str, ...]:
        seen: list[str] = []
        for claim in self.claims:
            seen += [i for i in claim.unknown if i not in seen]
        return tuple(seen)


def strip_tags(text: str) -> str:
    """`text` without citation tags."""
    return TAG.sub("", text)


def strip_streaming(text: str) -> str:
    """A draft still streaming, without its tags, and without a tag half written at the end."""
    return _PARTIAL.sub("", strip_tags(text))


def read(text: str, known: Iterable[str], backing: Iterable[str] | None = None) -> Cited:
    """The draft's claims, each with the ids it cites, checked against `known`; with
    `backing`, the ids that may back a customer letter, a claim citing record ids none of
    which is among them is not backed."""
    valid = {*known, NEXT, CHECKIN, NO_FACT}
    backs = None if backing is None else {*backing, NEXT, CHECKIN, NO_FACT}
    claims: list[Claim] = []
    in_signature = False
    for line in _logical_lines(text):
        shown = strip_tags(line).strip()
        if not shown:
            continue
        if in_signature or _CLOSING.match(shown):
            in_signature = True  # the sign-off and what follows it: a name, a title
            continue
        if _not_a_claim(shown):
            continue
        for sentence in _sentences(line):
            ids = [i.strip() for tag in TAG.findall(sentence) for i in tag.split(",")]
            clean = _tidy(strip_tags(sentence))
            if not clean or find_placeholders(clean) or not re.search(r"[A-Za-z]", clean):
                continue
            sources = tuple(dict.fromkeys(i for i in ids if i in valid))
            claims.append(
                Claim(
                    clean,
                    sources,
                    tuple(dict.fromkeys(i for i in ids if i not in valid)),
                    internal_only=backs is not None
                    and any(i not in (NEXT, CHECKIN, NO_FACT) for i in sources)
                    and not any(i in backs for i in sources),
                )
            )
    return Cited(_tidy_text(strip_tags(text)), tuple(claims))


def _logical_lines(text: str) -> list[str]:
    """The text's lines, with a sentence wrapped over several lines joined again."""
    out: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        previous = strip_tags(out[-1]).rstrip() if out else ""
        wrapped = (
            previous
            and line
            and previous[-1] not in ".!?:"
            and not _not_a_claim(previous)
            and not _CLOSING.match(previous)
            and not re.match(r"([-*+•]|\d{1,3}[.)])\s", line)
            and not _not_a_claim(line)
        )
        if wrapped:
            out[-1] = f"{out[-1]} {line}"
        else:
            out.append(line)
    return out


def _not_a_claim(line: str) -> bool:
    return bool(
        line.startswith("#")
        or line.casefold().startswith("subject:")
        or _GREETING.match(line)
        or re.fullmatch(r"[*_`>\-\s]*", line)
    )


def _sentences(line: str) -> list[str]:
    """A line cut into sentences, each keeping the tags that follow its full stop."""
    out: list[str] = []
    start = 0
    pos = 0
    while True:
        match = _END.search(line, pos)
        if match is None:
            break
        end = match.end()
        tags = re.compile(r"(?:" + TAG.pattern + r")+").match(line, end)
        if tags:
            end = tags.end()
        out.append(line[start:end])
        start = pos = end
    if line[start:].strip():
        out.append(line[start:])
    return [s.strip() for s in out if s.strip()]


def _tidy(sentence: str) -> str:
    # A tag written before the full stop leaves "failing ." behind.
    return re.sub(r"\s+([.!?,;:])", r"\1", " ".join(sentence.split())).strip()


def _tidy_text(text: str) -> str:
    lines = [re.sub(r"[ \t]+([.!?,;:])", r"\1", line).rstrip() for line in text.splitlines()]
    return "\n".join(lines).strip()

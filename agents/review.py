"""The post-incident review's shape: its sections, reading a Markdown review (from the model
or a person's edit) into a dict, and writing such a dict back as Markdown.

The dict is what the bot stores in `reviews/executive_review.yaml`; its `lessons` are what
gets appended to `support_strategy.yaml`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

# The level-2 headings of a review, in order.
REVIEW_SECTIONS: tuple[str, ...] = (
    "Summary",
    "Customer impact",
    "Timeline",
    "Root cause",
    "Contributing factors",
    "What went well",
    "What went badly",
    "Customer communication",
    "Action items",
    "Prevention",
    "Lessons learned",
    "Compensation or service credits",
)

# The dict key of each section, in the same order.
REVIEW_KEYS: tuple[str, ...] = (
    "summary",
    "customer_impact",
    "timeline",
    "root_cause",
    "contributing_factors",
    "went_well",
    "went_badly",
    "customer_communication",
    "action_items",
    "prevention",
    "lessons",
    "compensation",
)

SECTION_KEYS: dict[str, str] = dict(zip(REVIEW_SECTIONS, REVIEW_KEYS, strict=True))

LIST_KEYS = frozenset(
    {"timeline", "contributing_factors", "went_well", "went_badly", "customer_communication",
     "prevention", "lessons"}
)  # fmt: skip

# Headings a model or a person plausibly writes instead of the exact ones, normalised (see
# _normalise). The exact headings are added below.
_ALIASES: dict[str, str] = {
    "executive summary": "summary",
    "incident summary": "summary",
    "overview": "summary",
    "impact": "customer_impact",
    "impact on the customer": "customer_impact",
    "timeline of events": "timeline",
    "root cause analysis": "root_cause",
    "root causes": "root_cause",
    "cause": "root_cause",
    "contributing factor": "contributing_factors",
    "factors": "contributing_factors",
    "contributing causes": "contributing_factors",
    "went well": "went_well",
    "what went wrong": "went_badly",
    "what did not go well": "went_badly",
    "what didnt go well": "went_badly",
    "what could have gone better": "went_badly",
    "went badly": "went_badly",
    "communication": "customer_communication",
    "communication with the customer": "customer_communication",
    "customer communications": "customer_communication",
    "customer comms": "customer_communication",
    "actions": "action_items",
    "action item": "action_items",
    "next steps": "action_items",
    "preventive measures": "prevention",
    "preventative measures": "prevention",
    "preventive actions": "prevention",
    "preventative actions": "prevention",
    "prevention measures": "prevention",
    "lessons": "lessons",
    "lessons learnt": "lessons",
    "compensation": "compensation",
    "service credits": "compensation",
    "compensation and service credits": "compensation",
    "compensation or credits": "compensation",
    "compensation and credits": "compensation",
    "service credits or compensation": "compensation",
    "compensation service credits": "compensation",
}

# Bodies that mean "nothing here" rather than one item called "None".
_EMPTY_MARKERS = frozenset(
    {"none", "none yet", "none recorded", "none recorded yet", "n/a", "na", "nothing",
     "nothing recorded", "nothing recorded yet", "tbd", "-"}
)  # fmt: skip

_HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_BULLET = re.compile(r"^\s*(?:[-*+•]|\d{1,3}[.)])\s+(.*)$")
_CHECKBOX = re.compile(r"^\[[ xX]\]\s+")


def _normalise(heading: str) -> str:
    text = heading.strip().strip("*_`").strip()
    text = re.sub(r"^\d{1,2}[.)]\s*", "", text)  # "3. Timeline"
    text = text.rstrip(":").strip().strip("*_`").rstrip(":").strip()
    text = text.replace("&", " and ").replace("/", " ").replace("'", "").replace("\u2019", "")
    return " ".join(text.casefold().split())


_HEADING_KEYS: dict[str, str] = {
    **_ALIASES,
    **{_normalise(title): key for title, key in SECTION_KEYS.items()},
}


def section_key(heading: str) -> str | None:
    """The dict key of a review heading, however it was capitalised or punctuated."""
    return _HEADING_KEYS.get(_normalise(heading))


def empty_review() -> dict[str, Any]:
    return {key: [] if key in LIST_KEYS or key == "action_items" else "" for key in REVIEW_KEYS}


def parse_review(markdown: str) -> dict[str, Any]:
    """Read a Markdown review into a dict keyed by REVIEW_KEYS.

    Headings of any level, case and trailing colon count; an unknown heading deeper than the
    current section is part of it, one at the same level or above ends it. List sections
    become lists of bullet texts (paragraphs, when a section has no bullets); action items
    become {"owner", "action"} dicts; missing sections are "" or [].
    """
    bodies: dict[str, list[str]] = {}
    current: str | None = None
    level = 0
    in_fence = False
    for line in markdown.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            in_fence = not in_fence
        match = None if in_fence else _HEADING.match(line)
        if match:
            key = section_key(match.group(2))
            depth = len(match.group(1))
            if key is not None:
                current, level = key, depth
                bodies.setdefault(key, [])
                continue
            if current is None or depth <= level:
                current = None
                continue
        if current is not None:
            bodies[current].append(line)

    review = empty_review()
    for key, lines in bodies.items():
        if key == "action_items":
            review[key] = [_action_item(item) for item in _items(lines)]
        elif key in LIST_KEYS:
            review[key] = _items(lines)
        else:
            text = "\n".join(lines).strip()
            review[key] = "" if _is_empty_marker(text) else text
    return review


def lessons(review: dict[str, Any]) -> list[str]:
    """The review's lessons learned, as non-empty texts."""
    value = review.get("lessons") or []
    if isinstance(value, str):
        value = _items(value.splitlines())
    return [text for item in value if (text := str(item).strip())]


def render_review(review: dict[str, Any], *, title: str | None = None, note: str = "") -> str:
    """Markdown for a review dict, with exactly the REVIEW_SECTIONS headings; parse_review
    reads it back to the same dict (list items are written on one line each)."""
    out: list[str] = []
    if title:
        out += [f"# {_flat(title)}", ""]
    if note:
        out += [note.strip(), ""]
    for heading, key in SECTION_KEYS.items():
        out += [f"## {heading}", ""]
        value = review.get(key)
        if key == "action_items":
            body = [_action_line(item) for item in value or ()]
        elif key in LIST_KEYS:
            body = [f"- {_flat(str(item))}" for item in value or ()]
        else:
            body = [str(value or "").strip()] if str(value or "").strip() else []
        out += [*(body or ["None recorded yet."]), ""]
    return "\n".join(out).rstrip() + "\n"


def _action_line(item: dict[str, str]) -> str:
    owner, action = _flat(item.get("owner", "")), _flat(item.get("action", ""))
    return f"- {owner}: {action}" if owner else f"- {action}"


def _flat(text: str) -> str:
    return " ".join(str(text).split())


def _items(lines: Iterable[str]) -> list[str]:
    bullets: list[str] = []
    paragraphs: list[str] = []
    paragraph: list[str] = []
    in_bullet = False
    for line in lines:
        stripped = line.strip()
        if line.lstrip().startswith(("```", "~~~")):
            continue
        match = _BULLET.match(line)
        if match:
            bullets.append(_CHECKBOX.sub("", match.group(1).strip()))
            in_bullet = True
        elif not stripped:
            in_bullet = False
            if paragraph:
                paragraphs.append(" ".join(paragraph))
                paragraph = []
        elif in_bullet or (bullets and line[:1].isspace()):
            # A wrapped bullet continues on the next, usually indented, line.
            bullets[-1] = f"{bullets[-1]} {stripped}"
        else:
            paragraph.append(stripped)
    if paragraph:
        paragraphs.append(" ".join(paragraph))
    items = bullets or paragraphs
    items = [item for item in items if item]
    if len(items) == 1 and _is_empty_marker(items[0]):
        return []
    return items


def _is_empty_marker(text: str) -> bool:
    return text.strip().strip("*_").strip().rstrip(".").strip().casefold() in _EMPTY_MARKERS


def _action_item(text: str) -> dict[str, str]:
    owner, sep, action = text.partition(":")
    owner = owner.strip().strip("*_`").strip()
    # "- Fix the retry loop" has no owner; a colon deep in a sentence is not an owner either,
    # nor is the label of a placeholder ("[action items: record them ...]").
    if not sep or not owner or len(owner) > 60 or not action.strip() or owner.startswith("["):
        return {"owner": "", "action": text.strip()}
    return {"owner": owner, "action": action.strip().lstrip("*_").strip()}

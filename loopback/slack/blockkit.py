"""Slack's Block Kit limits: what a message's blocks and a view may hold, and what Slack
answers when they hold more.

Sources: the Block Kit reference (blocks, block elements, composition objects, view
objects) for the per-field limits; for the cumulative one, which Slack does not document,
slackapi/bolt-js issues 2509 and 2867 (below). The wording of the ``errors`` and
``response_metadata`` messages follows what Slack answers, as reported in those issues and
elsewhere: ``must be less than 3001 characters [json-pointer:/blocks/0/text/text]``,
``no more than 50 items allowed [json-pointer:/blocks]``.

Only the limits below are checked; a block or element of a type not named here passes as
long as its ``block_id``/``action_id`` fit.
"""

from __future__ import annotations

from typing import Any

from loopback.slack.records import MAX_BLOCKS, SlackError

MAX_MESSAGE_BLOCKS = MAX_BLOCKS  # blocks in a message
MAX_VIEW_BLOCKS = 100  # blocks in a modal or a Home tab
MAX_BLOCK_ID = 255
MAX_ACTION_ID = 255
MAX_SECTION_TEXT = 3000  # section: text
MAX_SECTION_FIELDS = 10  # section: fields, each at most MAX_FIELD_TEXT
MAX_FIELD_TEXT = 2000
MAX_HEADER_TEXT = 150  # header: text
MAX_CONTEXT_ELEMENTS = 10
MAX_ACTIONS_ELEMENTS = 25
MAX_MARKDOWN_TEXT = 12_000  # markdown block: text
MAX_INPUT_LABEL = 2000  # input: label and hint
MAX_BUTTON_TEXT = 75
MAX_BUTTON_VALUE = 2000
MAX_BUTTON_URL = 3000
MAX_INPUT_LENGTH = 3000  # plain_text_input: min_length 0..3000, max_length 1..3000
MAX_VIEW_TITLE = 24  # modal: title, close and submit
MAX_PRIVATE_METADATA = 3000
MAX_CALLBACK_ID = 255

# Not documented: Slack refuses a message whose blocks hold more than about 12,000
# characters of text in all (msg_blocks_too_long), though every block is within its own
# limit. bolt-js 2509 saw it at ~13,200 characters of markdown blocks and was told "12,000
# text characters with a buffer for block containers"; bolt-js 2867 was refused at 11,341
# characters counted this way, with headers and rich text around them. This emulator counts
# every "text" string in the blocks and refuses more than 12,000. 2867 also reports that
# the same blocks posted to a response_url were accepted, so response URLs are not held to
# it here.
MAX_MESSAGE_BLOCK_TEXT = 12_000


def _too_long(limit: int, pointer: str) -> str:
    return f"must be less than {limit + 1} characters [json-pointer:{pointer}]"


def _too_many(limit: int, pointer: str) -> str:
    return f"no more than {limit} items allowed [json-pointer:{pointer}]"


def _text(obj: Any) -> str | None:
    """The string of a text object (or of a plain string, where Slack takes one)."""
    if isinstance(obj, dict) and isinstance(obj.get("text"), str):
        return str(obj["text"])
    return obj if isinstance(obj, str) else None


def _check_text(obj: Any, limit: int, pointer: str, problems: list[str]) -> None:
    text = _text(obj)
    if text is not None and len(text) > limit:
        suffix = "/text" if isinstance(obj, dict) else ""
        problems.append(_too_long(limit, pointer + suffix))


def _check_id(item: dict[str, Any], key: str, limit: int, pointer: str, out: list[str]) -> None:
    value = item.get(key)
    if isinstance(value, str) and len(value) > limit:
        out.append(_too_long(limit, f"{pointer}/{key}"))


def _element_problems(element: Any, pointer: str) -> list[str]:
    problems: list[str] = []
    if not isinstance(element, dict):
        return problems
    _check_id(element, "action_id", MAX_ACTION_ID, pointer, problems)
    kind = element.get("type")
    if kind == "button":
        _check_text(element.get("text"), MAX_BUTTON_TEXT, f"{pointer}/text", problems)
        _check_id(element, "value", MAX_BUTTON_VALUE, pointer, problems)
        _check_id(element, "url", MAX_BUTTON_URL, pointer, problems)
    elif kind == "plain_text_input":
        problems += _plain_text_input_problems(element, pointer)
    return problems


def _plain_text_input_problems(element: dict[str, Any], pointer: str) -> list[str]:
    problems: list[str] = []
    bounds = {"min_length": (0, MAX_INPUT_LENGTH), "max_length": (1, MAX_INPUT_LENGTH)}
    for key, (low, high) in bounds.items():
        value = element.get(key)
        if isinstance(value, int) and not low <= value <= high:
            problems.append(f"must be between {low} and {high} [json-pointer:{pointer}/{key}]")
    # Not documented: Slack refuses an initial_value the person could not have typed, one
    # longer than the element's max_length (3000 when it has none).
    initial = element.get("initial_value")
    max_length = element.get("max_length")
    if not isinstance(max_length, int) or not 1 <= max_length <= MAX_INPUT_LENGTH:
        max_length = MAX_INPUT_LENGTH
    if isinstance(initial, str) and len(initial) > max_length:
        problems.append(_too_long(max_length, f"{pointer}/initial_value"))
    return problems


def _block_problems(block: Any, pointer: str) -> list[str]:
    problems: list[str] = []
    if not isinstance(block, dict):
        return problems
    _check_id(block, "block_id", MAX_BLOCK_ID, pointer, problems)
    kind = block.get("type")
    if kind == "section":
        _check_text(block.get("text"), MAX_SECTION_TEXT, f"{pointer}/text", problems)
        fields = block.get("fields")
        if isinstance(fields, list):
            if len(fields) > MAX_SECTION_FIELDS:
                problems.append(_too_many(MAX_SECTION_FIELDS, f"{pointer}/fields"))
            for i, field in enumerate(fields):
                _check_text(field, MAX_FIELD_TEXT, f"{pointer}/fields/{i}", problems)
        problems += _element_problems(block.get("accessory"), f"{pointer}/accessory")
    elif kind == "header":
        _check_text(block.get("text"), MAX_HEADER_TEXT, f"{pointer}/text", problems)
    elif kind == "markdown":
        _check_text(block.get("text"), MAX_MARKDOWN_TEXT, f"{pointer}/text", problems)
    elif kind in ("context", "actions"):
        limit = MAX_CONTEXT_ELEMENTS if kind == "context" else MAX_ACTIONS_ELEMENTS
        elements = block.get("elements")
        if isinstance(elements, list):
            if len(elements) > limit:
                problems.append(_too_many(limit, f"{pointer}/elements"))
            for i, element in enumerate(elements):
                problems += _element_problems(element, f"{pointer}/elements/{i}")
    elif kind == "input":
        _check_text(block.get("label"), MAX_INPUT_LABEL, f"{pointer}/label", problems)
        _check_text(block.get("hint"), MAX_INPUT_LABEL, f"{pointer}/hint", problems)
        problems += _element_problems(block.get("element"), f"{pointer}/element")
    return problems


def blocks_problems(blocks: list[Any], pointer: str, max_blocks: int) -> list[str]:
    """Every limit ``blocks`` (at ``pointer`` in the request) breaks, in Slack's words."""
    problems = [_too_many(max_blocks, pointer)] if len(blocks) > max_blocks else []
    for i, block in enumerate(blocks):
        problems += _block_problems(block, f"{pointer}/{i}")
    return problems


def text_length(value: Any) -> int:
    """Characters of text in ``value``: every "text" string in it, however deep."""
    if isinstance(value, dict):
        return sum(
            len(item) if key == "text" and isinstance(item, str) else text_length(item)
            for key, item in value.items()
        )
    if isinstance(value, list):
        return sum(text_length(item) for item in value)
    return 0


def check_message_blocks(blocks: list[Any], *, cumulative: bool = True) -> None:
    """Refuse a message's blocks as Slack does: ``invalid_blocks`` naming each limit broken,
    else ``msg_blocks_too_long`` when there is too much text in all (``cumulative``)."""
    problems = blocks_problems(blocks, "/blocks", MAX_MESSAGE_BLOCKS)
    if problems:
        raise SlackError(
            "invalid_blocks",
            errors=problems,
            response_metadata={"messages": [f"[ERROR] {p}" for p in problems]},
        )
    if cumulative and text_length(blocks) > MAX_MESSAGE_BLOCK_TEXT:
        raise SlackError("msg_blocks_too_long")


def view_problems(view: dict[str, Any]) -> list[str]:
    """Every limit a view (modal or Home tab) breaks, in Slack's words."""
    problems: list[str] = []
    for key in ("title", "close", "submit"):
        _check_text(view.get(key), MAX_VIEW_TITLE, f"/view/{key}", problems)
    _check_id(view, "private_metadata", MAX_PRIVATE_METADATA, "/view", problems)
    _check_id(view, "callback_id", MAX_CALLBACK_ID, "/view", problems)
    blocks = view.get("blocks")
    if isinstance(blocks, list):
        problems += blocks_problems(blocks, "/view/blocks", MAX_VIEW_BLOCKS)
    return problems


def check_view(view: dict[str, Any]) -> None:
    """Refuse a view as views.open, push, update and publish do: ``invalid_arguments``."""
    problems = view_problems(view)
    if problems:
        raise SlackError(
            "invalid_arguments",
            response_metadata={
                "messages": [
                    "[ERROR] failed to match all allowed schemas [json-pointer:/view]",
                    *(f"[ERROR] {p}" for p in problems),
                ]
            },
        )

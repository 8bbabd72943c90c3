"""The Slack emulator refuses what Slack refuses for size: message text, blocks and views,
through chat.postMessage, chat.postEphemeral, chat.update, response URLs and views.*.

Driven through the real slack_sdk client (and urllib for response URLs), like
test_fake_slack.py: an app test that sends more than Slack takes fails here as it would
against Slack.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from loopback.server import http_request
from loopback.slack import FakeSlack


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack() as slack:
        slack.add_user("UALICE", "alice")
        yield slack


@pytest.fixture
def client(fake: FakeSlack) -> WebClient:
    return WebClient(token=fake.bot_token, base_url=fake.url)


@pytest.fixture
def room(fake: FakeSlack) -> str:
    return fake.add_channel("room", members=["UALICE"])


def section(text: str, **extra: Any) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}, **extra}


def header(text: str) -> dict[str, Any]:
    return {"type": "header", "text": {"type": "plain_text", "text": text}}


def button(text: str, **extra: Any) -> dict[str, Any]:
    return {"type": "button", "text": {"type": "plain_text", "text": text}, **extra}


def refusal(client: WebClient, room: str, blocks: list[dict[str, Any]]) -> dict[str, Any]:
    """Slack's answer to posting ``blocks``, which must be a refusal."""
    with pytest.raises(SlackApiError) as info:
        client.chat_postMessage(channel=room, text="fallback", blocks=blocks)
    answer = info.value.response.data
    assert isinstance(answer, dict) and answer["ok"] is False
    return answer


# A block at each of its limits, and the same block one past it, with the JSON pointer of
# the field Slack names in its answer.
AT_AND_PAST_LIMITS = [
    ("section text", section("x" * 3000), section("x" * 3001), "/blocks/0/text/text"),
    ("header text", header("x" * 150), header("x" * 151), "/blocks/0/text/text"),
    (
        "section fields",
        {"type": "section", "fields": [{"type": "mrkdwn", "text": "f"}] * 10},
        {"type": "section", "fields": [{"type": "mrkdwn", "text": "f"}] * 11},
        "/blocks/0/fields",
    ),
    (
        "section field text",
        {"type": "section", "fields": [{"type": "mrkdwn", "text": "x" * 2000}]},
        {"type": "section", "fields": [{"type": "mrkdwn", "text": "x" * 2001}]},
        "/blocks/0/fields/0/text",
    ),
    (
        "context elements",
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "c"}] * 10},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "c"}] * 11},
        "/blocks/0/elements",
    ),
    (
        "actions elements",
        {"type": "actions", "elements": [button(f"b{i}", action_id=f"a{i}") for i in range(25)]},
        {"type": "actions", "elements": [button(f"b{i}", action_id=f"a{i}") for i in range(26)]},
        "/blocks/0/elements",
    ),
    (
        "button text",
        {"type": "actions", "elements": [button("x" * 75)]},
        {"type": "actions", "elements": [button("x" * 76)]},
        "/blocks/0/elements/0/text/text",
    ),
    (
        "button in a section",
        section("s", accessory=button("x" * 75)),
        section("s", accessory=button("x" * 76)),
        "/blocks/0/accessory/text/text",
    ),
    ("block_id", section("s", block_id="b" * 255), section("s", block_id="b" * 256), None),
]


@pytest.mark.parametrize(
    ("at_limit", "past_limit", "pointer"),
    [case[1:] for case in AT_AND_PAST_LIMITS],
    ids=[case[0] for case in AT_AND_PAST_LIMITS],
)
def test_each_block_limit_is_enforced_to_the_character(
    fake: FakeSlack,
    client: WebClient,
    room: str,
    at_limit: dict[str, Any],
    past_limit: dict[str, Any],
    pointer: str | None,
) -> None:
    assert client.chat_postMessage(channel=room, text="fallback", blocks=[at_limit])["ok"]
    answer = refusal(client, room, [past_limit])
    assert answer["error"] == "invalid_blocks"
    pointer = pointer or "/blocks/0/block_id"
    assert any(f"[json-pointer:{pointer}]" in e for e in answer["errors"]), answer
    assert all(m.startswith("[ERROR] ") for m in answer["response_metadata"]["messages"])
    assert len(fake.messages_in(room)) == 1  # only the message within the limit


def test_fifty_blocks_and_no_more(fake: FakeSlack, client: WebClient, room: str) -> None:
    assert client.chat_postMessage(channel=room, text="t", blocks=[section("s")] * 50)["ok"]
    answer = refusal(client, room, [section("s")] * 51)
    assert answer["error"] == "invalid_blocks"
    assert answer["errors"] == ["no more than 50 items allowed [json-pointer:/blocks]"]


def test_twelve_thousand_characters_of_block_text_and_no_more(
    fake: FakeSlack, client: WebClient, room: str
) -> None:
    # Four sections of 3,000 characters: each within its limit, 12,000 in all.
    full = [section("x" * 3000) for _ in range(4)]
    assert client.chat_postMessage(channel=room, text="t", blocks=full)["ok"]
    # One character more anywhere (here a header) is Slack's msg_blocks_too_long.
    answer = refusal(client, room, [header("h"), *full])
    assert answer == {"ok": False, "error": "msg_blocks_too_long"}
    # A long review in sections of 2,900 characters (14,500 in all): refused, though no
    # block is past its own limit.
    review = [section("r" * 2900) for _ in range(5)]
    assert refusal(client, room, review)["error"] == "msg_blocks_too_long"
    assert len(fake.messages_in(room)) == 1


def test_text_over_forty_thousand_characters_is_msg_too_long(client: WebClient, room: str) -> None:
    with pytest.raises(SlackApiError) as info:
        client.chat_postMessage(channel=room, text="x" * 40_001)
    assert info.value.response["error"] == "msg_too_long"


def test_update_and_ephemeral_are_held_to_the_same_limits(
    fake: FakeSlack, client: WebClient, room: str
) -> None:
    ts = client.chat_postMessage(channel=room, text="draft", blocks=[section("short")])["ts"]
    too_long = [section("x" * 3000) for _ in range(5)]
    with pytest.raises(SlackApiError) as grown:
        client.chat_update(channel=room, ts=ts, text="draft", blocks=too_long)
    assert grown.value.response["error"] == "msg_blocks_too_long"
    with pytest.raises(SlackApiError) as wide:
        client.chat_update(channel=room, ts=ts, text="draft", blocks=[section("x" * 3001)])
    assert wide.value.response["error"] == "invalid_blocks"
    (kept,) = fake.messages_in(room)
    assert kept.blocks == [section("short")] and not kept.edited

    wide_header = [header("x" * 151)]
    for blocks, error in ((too_long, "msg_blocks_too_long"), (wide_header, "invalid_blocks")):
        with pytest.raises(SlackApiError) as info:
            client.chat_postEphemeral(channel=room, user="UALICE", text="t", blocks=blocks)
        assert info.value.response["error"] == error
    with pytest.raises(SlackApiError) as info:
        client.chat_postEphemeral(channel=room, user="UALICE", text="x" * 40_001)
    assert info.value.response["error"] == "msg_too_long"


def post_response(url: str, payload: dict[str, Any]) -> tuple[int, bytes]:
    status, body, _ = http_request(
        url, json.dumps(payload).encode(), {"Content-Type": "application/json"}
    )
    return status, body


def test_response_urls_refuse_what_slack_refuses(fake: FakeSlack) -> None:
    url = fake.new_response_url()
    assert post_response(url, {"text": "x" * 40_001}) == (400, b"msg_too_long")
    assert post_response(url, {"text": "t", "blocks": [section("x" * 3001)]}) == (
        400,
        b"invalid_blocks",
    )
    assert post_response(url, {"text": "t", "blocks": [section("s")] * 51}) == (
        400,
        b"invalid_blocks",
    )
    assert post_response(url, {"text": "t", "blocks": [{"text": "untyped"}]}) == (
        400,
        b"invalid_blocks",
    )
    assert fake.responses_to(url) == []  # nothing refused was shown, nor spent a use
    # bolt-js 2867: blocks refused by chat.postMessage for their text in all were accepted
    # by a response_url.
    within_each = [section("x" * 3000) for _ in range(5)]
    assert post_response(url, {"text": "t", "blocks": within_each}) == (200, b"ok")
    assert post_response(url, {"text": "x" * 40_000}) == (200, b"ok")
    assert len(fake.responses_to(url)) == 2


MODAL: dict[str, Any] = {
    "type": "modal",
    "callback_id": "declare",
    "title": {"type": "plain_text", "text": "Declare"},
    "submit": {"type": "plain_text", "text": "Open"},
    "blocks": [],
}


def text_input(**element: Any) -> dict[str, Any]:
    return {
        "type": "input",
        "block_id": "summary",
        "label": {"type": "plain_text", "text": "Summary"},
        "element": {"type": "plain_text_input", "action_id": "value", **element},
    }


def view_refusal(client: WebClient, fake: FakeSlack, view: dict[str, Any]) -> list[str]:
    trigger = fake.new_trigger_id()
    with pytest.raises(SlackApiError) as info:
        client.views_open(trigger_id=trigger, view=view)
    assert info.value.response["error"] == "invalid_arguments"
    # A refused view does not spend the trigger.
    assert client.views_open(trigger_id=trigger, view=MODAL)["ok"]
    return list(info.value.response["response_metadata"]["messages"])


VIEW_CASES = [
    ("title", {"title": {"type": "plain_text", "text": "x" * 25}}, "/view/title/text"),
    ("submit", {"submit": {"type": "plain_text", "text": "x" * 25}}, "/view/submit/text"),
    ("close", {"close": {"type": "plain_text", "text": "x" * 25}}, "/view/close/text"),
    ("blocks", {"blocks": [section("s")] * 101}, "/view/blocks"),
    ("private_metadata", {"private_metadata": "m" * 3001}, "/view/private_metadata"),
    ("callback_id", {"callback_id": "c" * 256}, "/view/callback_id"),
    ("section in a view", {"blocks": [section("x" * 3001)]}, "/view/blocks/0/text/text"),
    (
        "initial_value past max_length",
        {"blocks": [text_input(max_length=10, initial_value="x" * 11)]},
        "/view/blocks/0/element/initial_value",
    ),
    (
        "initial_value past 3000",
        {"blocks": [text_input(initial_value="x" * 3001)]},
        "/view/blocks/0/element/initial_value",
    ),
    (
        "max_length past 3000",
        {"blocks": [text_input(max_length=3001)]},
        "/view/blocks/0/element/max_length",
    ),
]


@pytest.mark.parametrize(
    ("change", "pointer"), [c[1:] for c in VIEW_CASES], ids=[c[0] for c in VIEW_CASES]
)
def test_views_are_held_to_their_limits(
    fake: FakeSlack, client: WebClient, change: dict[str, Any], pointer: str
) -> None:
    messages = view_refusal(client, fake, {**MODAL, **change})
    assert any(f"[json-pointer:{pointer}]" in m for m in messages), messages


def test_views_at_their_limits_are_accepted(fake: FakeSlack, client: WebClient) -> None:
    full = {
        **MODAL,
        "title": {"type": "plain_text", "text": "x" * 24},
        "submit": {"type": "plain_text", "text": "x" * 24},
        "private_metadata": "m" * 3000,
        "blocks": [text_input(max_length=3000, initial_value="x" * 3000)] + [section("s")] * 99,
    }
    opened = client.views_open(trigger_id=fake.new_trigger_id(), view=full)["view"]
    assert len(opened["blocks"]) == 100
    home = {"type": "home", "blocks": [section("s")] * 100}
    assert client.views_publish(user_id="UALICE", view=home)["ok"]


def test_every_views_method_checks_the_view(fake: FakeSlack, client: WebClient) -> None:
    opened = client.views_open(trigger_id=fake.new_trigger_id(), view=MODAL)["view"]
    long_title = {**MODAL, "title": {"type": "plain_text", "text": "x" * 25}}
    calls = [
        lambda: client.views_update(view_id=opened["id"], view=long_title),
        lambda: client.views_push(trigger_id=fake.new_trigger_id(), view=long_title),
        lambda: client.views_publish(
            user_id="UALICE", view={"type": "home", "blocks": [section("s")] * 101}
        ),
    ]
    for call in calls:
        with pytest.raises(SlackApiError) as info:
            call()
        assert info.value.response["error"] == "invalid_arguments"
    assert fake.views[opened["id"]]["title"]["text"] == "Declare"
    assert "UALICE" not in fake.home_views

"""Tests for loopback/slack (the Slack emulator), driven only through the real slack_sdk client.

Each test talks HTTP to a FakeSlack on 127.0.0.1 with slack_sdk.WebClient (and urllib
for response_url), so what passes here is what the bot's own code will see.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

from loopback.server import http_request
from loopback.slack import FakeSlack
from tests.rooms import wait_until


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack() as slack:
        slack.add_user("UALICE", "alice", real_name="Alice Adams")
        slack.add_user("UBOB", "bob")
        slack.add_user("UCAROL", "carol")
        slack.add_user("UGONE", "gone", deleted=True)
        slack.add_user("UOTHERBOT", "otherbot", is_bot=True)
        yield slack


@pytest.fixture
def client(fake: FakeSlack) -> WebClient:
    return WebClient(token=fake.bot_token, base_url=fake.url)


def slack_error(call: Callable[..., Any], *args: Any, **kwargs: Any) -> SlackApiError:
    with pytest.raises(SlackApiError) as info:
        call(*args, **kwargs)
    return info.value


def error_of(call: Callable[..., Any], *args: Any, **kwargs: Any) -> str:
    err = slack_error(call, *args, **kwargs)
    assert err.response.status_code == 200
    assert err.response["ok"] is False
    return str(err.response["error"])


def post_raw(url: str, body: bytes, content_type: str | None) -> tuple[int, bytes]:
    status, answer, _ = http_request(
        url, body, {"Content-Type": content_type} if content_type else {}
    )
    return status, answer


# ---------------------------------------------------------------- lifecycle, auth, plumbing


def test_url_and_root_point_at_loopback(fake: FakeSlack) -> None:
    assert fake.root.startswith("http://127.0.0.1:")
    assert fake.url == fake.root + "/api/"


def test_start_twice_is_refused_and_stop_is_idempotent() -> None:
    slack = FakeSlack().start()
    with pytest.raises(RuntimeError):
        slack.start()
    slack.stop()
    slack.stop()


def test_auth_test_identifies_the_bot(fake: FakeSlack, client: WebClient) -> None:
    response = client.auth_test()
    assert response["user_id"] == fake.bot_user_id
    assert response["team_id"] == fake.team_id
    assert response["bot_id"]


def test_missing_token_is_not_authed(fake: FakeSlack) -> None:
    anonymous = WebClient(base_url=fake.url)
    assert error_of(anonymous.auth_test) == "not_authed"


def test_wrong_token_is_invalid_auth(fake: FakeSlack) -> None:
    intruder = WebClient(token="xoxb-wrong", base_url=fake.url)
    assert error_of(intruder.conversations_create, name="nope") == "invalid_auth"
    assert fake.channel_by_name("nope") is None


def test_token_may_arrive_as_a_form_field_or_json_field(fake: FakeSlack) -> None:
    status, body = post_raw(
        fake.url + "auth.test",
        f"token={fake.bot_token}".encode(),
        "application/x-www-form-urlencoded",
    )
    assert status == 200 and json.loads(body)["ok"] is True
    status, body = post_raw(
        fake.url + "auth.test",
        json.dumps({"token": fake.bot_token}).encode(),
        "application/json; charset=utf-8",
    )
    assert status == 200 and json.loads(body)["ok"] is True


def test_api_test_echoes_args_and_errors(client: WebClient) -> None:
    assert client.api_test(foo="bar")["args"] == {"foo": "bar"}
    assert error_of(client.api_test, error="my_error") == "my_error"


def test_unknown_method_is_refused_with_404(fake: FakeSlack, client: WebClient) -> None:
    err = slack_error(client.api_call, "conversations.frobnicate", params={"x": "1"})
    assert err.response.status_code == 404
    assert err.response["error"] == "unknown_method"
    assert fake.calls_to("conversations.frobnicate")[0].status == 404


def test_fault_injection_refuses_methods_it_does_not_know(fake: FakeSlack) -> None:
    with pytest.raises(ValueError):
        fake.fail_next("chat.postMesage", "internal_error")
    with pytest.raises(ValueError):
        fake.set_rate_limit("no.such", 1)


def test_malformed_bodies_get_slack_errors(fake: FakeSlack) -> None:
    headers = f"Bearer {fake.bot_token}"
    for body, ctype, expected in [
        (b"{not json", "application/json", "invalid_json"),
        (b"[1, 2]", "application/json", "json_not_object"),
        (b"<xml/>", "text/xml", "invalid_post_type"),
    ]:
        request = urllib.request.Request(fake.url + "auth.test", data=body, method="POST")
        request.add_header("Content-Type", ctype)
        request.add_header("Authorization", headers)
        with urllib.request.urlopen(request, timeout=5) as response:
            assert json.loads(response.read())["error"] == expected


def test_multipart_bodies_and_get_requests_are_understood(fake: FakeSlack) -> None:
    client = WebClient(token=fake.bot_token, base_url=fake.url)
    # slack_sdk turns api_call(data=...) into multipart/form-data.
    assert client.api_call("api.test", data={"foo": "bar"})["args"] == {"foo": "bar"}
    request = urllib.request.Request(fake.url + "auth.test?token=" + fake.bot_token)
    with urllib.request.urlopen(request, timeout=5) as response:
        assert json.loads(response.read())["user_id"] == fake.bot_user_id


def test_form_and_json_bodies_are_recorded_decoded(fake: FakeSlack, client: WebClient) -> None:
    channel = fake.add_channel("incident-1")
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*hi*"}}]
    # JSON body: slack_sdk sends chat.postMessage as application/json.
    client.chat_postMessage(channel=channel, text="json", blocks=blocks)
    # Form body: blocks travel as a JSON string inside the form.
    client.api_call(
        "chat.postMessage",
        params={"channel": channel, "text": "form", "blocks": json.dumps(blocks)},
    )
    json_call, form_call = fake.calls_to("chat.postMessage")
    assert json_call.args["blocks"] == blocks
    assert form_call.args["blocks"] == blocks
    assert form_call.args["text"] == "form"
    assert [m.blocks for m in fake.messages_in(channel)] == [blocks, blocks]
    # conversations.create goes as a form; booleans arrive as "1".
    client.conversations_create(name="form-made", is_private=True)
    assert fake.calls_to("conversations.create")[0].args == {"name": "form-made", "is_private": "1"}


def test_calls_record_timing_status_and_response(fake: FakeSlack, client: WebClient) -> None:
    client.auth_test()
    (call,) = fake.calls_to("auth.test")
    assert call.started <= call.finished
    assert call.status == 200
    assert call.response["user_id"] == fake.bot_user_id
    fake.reset_calls()
    assert fake.calls == []


# ---------------------------------------------------------------- conversations.create


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("", "invalid_name_required"),
        ("x" * 81, "invalid_name_maxlength"),
        ("Incident", "invalid_name_specials"),
        ("has space", "invalid_name_specials"),
        ("dots.are.bad", "invalid_name_specials"),
        ("#hash", "invalid_name_specials"),
        ("---", "invalid_name_punctuation"),
        ("_", "invalid_name_punctuation"),
    ],
)
def test_create_validates_names(client: WebClient, name: str, error: str) -> None:
    assert error_of(client.conversations_create, name=name) == error


def test_create_accepts_the_longest_valid_name(fake: FakeSlack, client: WebClient) -> None:
    name = "inc_2024-" + "a" * 71
    assert len(name) == 80
    channel = client.conversations_create(name=name)["channel"]
    assert channel["id"].startswith("C")
    assert channel["name"] == name
    assert channel["is_member"] is True
    assert channel["creator"] == fake.bot_user_id


def test_create_name_taken_also_by_archived_channels(fake: FakeSlack, client: WebClient) -> None:
    fake.add_channel("old-incident", archived=True)
    assert error_of(client.conversations_create, name="old-incident") == "name_taken"
    client.conversations_create(name="new-incident")
    assert error_of(client.conversations_create, name="new-incident") == "name_taken"


def test_create_private_channel_has_bot_as_member(fake: FakeSlack, client: WebClient) -> None:
    created = client.conversations_create(name="secret-room", is_private=True)["channel"]
    state = fake.channels[created["id"]]
    assert state.is_private and created["is_private"] is True
    assert state.members == {fake.bot_user_id}
    assert client.conversations_info(channel=created["id"])["channel"]["is_member"] is True


# ---------------------------------------------------------------- conversations.invite


def test_invite_adds_members(fake: FakeSlack, client: WebClient) -> None:
    channel = fake.add_channel("room")
    response = client.conversations_invite(channel=channel, users=["UALICE", "UBOB"])
    assert response["channel"]["id"] == channel
    assert fake.channels[channel].members == {fake.bot_user_id, "UALICE", "UBOB"}
    assert fake.calls_to("conversations.invite")[0].args["users"] == "UALICE,UBOB"


def test_invite_error_codes(fake: FakeSlack, client: WebClient) -> None:
    room = fake.add_channel("room", members=["UALICE"])
    archived = fake.add_channel("archived-room", archived=True)
    outside = fake.add_channel("outside", bot_is_member=False)
    hidden = fake.add_channel("hidden", private=True, bot_is_member=False, members=["UBOB"])
    invite = client.conversations_invite
    assert error_of(invite, channel="C999999", users="UBOB") == "channel_not_found"
    assert error_of(invite, channel=hidden, users="UALICE") == "channel_not_found"
    assert error_of(invite, channel=room, users="UNOBODY") == "user_not_found"
    assert error_of(invite, channel=room, users=fake.bot_user_id) == "cant_invite_self"
    assert error_of(invite, channel=room, users="UALICE") == "already_in_channel"
    assert error_of(invite, channel=archived, users="UBOB") == "is_archived"
    assert error_of(invite, channel=outside, users="UBOB") == "not_in_channel"
    assert error_of(invite, channel=room, users="") == "no_user"
    too_many = ",".join(f"U{i:05d}" for i in range(1001))
    assert error_of(invite, channel=room, users=too_many) == "too_many_users"


def test_invite_partial_failure_invites_nobody(fake: FakeSlack, client: WebClient) -> None:
    room = fake.add_channel("room")
    err = slack_error(client.conversations_invite, channel=room, users="UALICE,UNOBODY")
    assert err.response["error"] == "user_not_found"
    assert err.response["errors"] == [{"user": "UNOBODY", "ok": False, "error": "user_not_found"}]
    assert "UALICE" not in fake.channels[room].members


def test_invite_with_force_invites_the_valid_ones(fake: FakeSlack, client: WebClient) -> None:
    room = fake.add_channel("room", members=["UBOB"])
    response = client.conversations_invite(channel=room, users="UALICE,UNOBODY,UBOB", force=True)
    assert response["ok"] is True
    assert {e["user"]: e["error"] for e in response["errors"]} == {
        "UNOBODY": "user_not_found",
        "UBOB": "already_in_channel",
    }
    assert "UALICE" in fake.channels[room].members
    # force with nothing valid is still a failure
    err = slack_error(client.conversations_invite, channel=room, users="UNOBODY", force=True)
    assert err.response["error"] == "user_not_found"


def test_invite_removed_user_fails_silently(fake: FakeSlack, client: WebClient) -> None:
    room = fake.add_channel("room")
    err = slack_error(client.conversations_invite, channel=room, users="UALICE,UGONE")
    assert err.response["errors"][0]["user"] == "UGONE"
    assert "UALICE" in fake.channels[room].members
    assert "UGONE" not in fake.channels[room].members


# ---------------------------------------------------------------- topic, purpose, archive, join


def test_set_topic_and_purpose(fake: FakeSlack, client: WebClient) -> None:
    room = fake.add_channel("room")
    topic = client.conversations_setTopic(channel=room, topic="SEV1: checkout down")
    assert topic["channel"]["topic"]["value"] == "SEV1: checkout down"
    assert client.conversations_setPurpose(channel=room, purpose="war room").data == {"ok": True}
    assert fake.channels[room].topic == "SEV1: checkout down"
    assert fake.channels[room].purpose == "war room"
    info = client.conversations_info(channel=room)["channel"]
    assert info["purpose"]["value"] == "war room"
    assert info["topic"]["creator"] == fake.bot_user_id


def test_topic_and_purpose_errors(fake: FakeSlack, client: WebClient) -> None:
    room = fake.add_channel("room")
    archived = fake.add_channel("archived-room", archived=True)
    outside = fake.add_channel("outside", bot_is_member=False)
    for call, arg in [
        (client.conversations_setTopic, "topic"),
        (client.conversations_setPurpose, "purpose"),
    ]:
        assert error_of(call, channel=room, **{arg: "x" * 251}) == "too_long"
        assert error_of(call, channel=archived, **{arg: "x"}) == "is_archived"
        assert error_of(call, channel=outside, **{arg: "x"}) == "not_in_channel"
        assert error_of(call, channel="CNOPE", **{arg: "x"}) == "channel_not_found"
    client.conversations_setTopic(channel=room, topic="x" * 250)


def test_archive(fake: FakeSlack, client: WebClient) -> None:
    room = fake.add_channel("room")
    assert client.conversations_archive(channel=room).data == {"ok": True}
    assert fake.channels[room].is_archived
    assert client.conversations_info(channel=room)["channel"]["is_archived"] is True
    assert error_of(client.conversations_archive, channel=room) == "already_archived"
    assert error_of(client.chat_postMessage, channel=room, text="hi") == "is_archived"
    outside = fake.add_channel("outside", bot_is_member=False)
    assert error_of(client.conversations_archive, channel=outside) == "not_in_channel"


def test_join(fake: FakeSlack, client: WebClient) -> None:
    outside = fake.add_channel("outside", bot_is_member=False)
    assert client.conversations_join(channel=outside)["channel"]["is_member"] is True
    assert fake.bot_user_id in fake.channels[outside].members
    again = client.conversations_join(channel=outside)
    assert again["warning"] == "already_in_channel"
    hidden = fake.add_channel("hidden", private=True, bot_is_member=False, members=["UALICE"])
    assert error_of(client.conversations_join, channel=hidden) == "channel_not_found"
    archived = fake.add_channel("archived-room", archived=True, bot_is_member=False)
    assert error_of(client.conversations_join, channel=archived) == "is_archived"


def test_info_and_members(fake: FakeSlack, client: WebClient) -> None:
    room = fake.add_channel("room", members=["UALICE", "UBOB"])
    info = client.conversations_info(channel=room, include_num_members=True)["channel"]
    assert info["name"] == "room" and info["num_members"] == 3
    assert client.conversations_members(channel=room)["members"] == ["UALICE", "UBOB", "UBOT"]
    page = client.conversations_members(channel=room, limit=2)
    assert page["members"] == ["UALICE", "UBOB"]
    cursor = page["response_metadata"]["next_cursor"]
    assert client.conversations_members(channel=room, cursor=cursor)["members"] == ["UBOT"]
    bad_cursor = error_of(client.conversations_members, channel=room, cursor="!!")
    assert bad_cursor == "invalid_cursor"
    assert error_of(client.conversations_info, channel="CNOPE") == "channel_not_found"


# ---------------------------------------------------------------- chat.postMessage


def test_post_message_by_id_name_and_hash_name(fake: FakeSlack, client: WebClient) -> None:
    room = fake.add_channel("room")
    by_id = client.chat_postMessage(channel=room, text="one")
    by_hash = client.chat_postMessage(channel="#room", text="two")
    by_name = client.chat_postMessage(channel="room", text="three")
    assert {by_id["channel"], by_hash["channel"], by_name["channel"]} == {room}
    assert [m.text for m in fake.messages_in("#room")] == ["one", "two", "three"]
    assert by_id["message"]["user"] == fake.bot_user_id
    assert by_id["message"]["bot_id"] == fake.bot_id


def test_post_message_ts_are_unique_and_increasing(fake: FakeSlack, client: WebClient) -> None:
    room = fake.add_channel("room")
    stamps = [client.chat_postMessage(channel=room, text=str(i))["ts"] for i in range(20)]
    assert stamps == sorted(stamps) and len(set(stamps)) == 20
    whole, frac = stamps[0].split(".")
    assert whole.isdigit() and len(frac) == 6


def test_post_message_to_a_user_opens_a_dm(fake: FakeSlack, client: WebClient) -> None:
    first = client.chat_postMessage(channel="UALICE", text="you are on call")
    second = client.chat_postMessage(channel="UALICE", text="still")
    assert first["channel"].startswith("D") and second["channel"] == first["channel"]
    dm = fake.dm_with("UALICE")
    assert dm is not None and dm.members == {fake.bot_user_id, "UALICE"}
    assert [m.text for m in fake.messages_in("UALICE")] == ["you are on call", "still"]
    assert client.chat_postMessage(channel=dm.id, text="by id")["channel"] == dm.id
    assert error_of(client.chat_postMessage, channel="UOTHERBOT", text="hi") == "cannot_dm_bot"


def test_post_message_errors(fake: FakeSlack, client: WebClient) -> None:
    room = fake.add_channel("room")
    hidden = fake.add_channel("hidden", private=True, bot_is_member=False, members=["UALICE"])
    post = client.chat_postMessage
    assert error_of(post, channel="CNOPE", text="hi") == "channel_not_found"
    assert error_of(post, channel="#nope", text="hi") == "channel_not_found"
    assert error_of(post, channel=hidden, text="hi") == "not_in_channel"
    # api_call: slack_sdk would warn (an error here) about a message without text.
    no_text = slack_error(client.api_call, "chat.postMessage", json={"channel": room})
    assert no_text.response["error"] == "no_text"
    assert error_of(post, channel=room, text="x" * 40_001) == "msg_too_long"
    untyped = [{"text": {"type": "mrkdwn", "text": "no type"}}]
    assert error_of(post, channel=room, text="hi", blocks=untyped) == "invalid_blocks"
    not_a_list = slack_error(
        client.api_call, "chat.postMessage", json={"channel": room, "text": "hi", "blocks": {}}
    )
    assert not_a_list.response["error"] == "invalid_blocks"
    garbled = slack_error(
        client.api_call,
        "chat.postMessage",
        params={"channel": room, "text": "hi", "blocks": "[{not json"},
    )
    assert garbled.response["error"] == "invalid_blocks_format"
    assert fake.messages_in(room) == []
    post(channel=room, text="x" * 40_000)


def test_post_message_to_public_channel_without_joining(fake: FakeSlack, client: WebClient) -> None:
    outside = fake.add_channel("outside", bot_is_member=False)
    client.chat_postMessage(channel=outside, text="chat:write.public")
    assert fake.bot_user_id not in fake.channels[outside].members
    assert len(fake.messages_in(outside)) == 1


def test_threads_history_and_replies(fake: FakeSlack, client: WebClient) -> None:
    room = fake.add_channel("room", members=["UALICE"])
    parent = client.chat_postMessage(channel=room, text="parent")["ts"]
    first = client.chat_postMessage(channel=room, text="r1", thread_ts=parent)
    assert first["message"]["thread_ts"] == parent
    # Replying to a reply lands in the parent's thread.
    second = client.chat_postMessage(channel=room, text="r2", thread_ts=first["ts"])
    assert second["message"]["thread_ts"] == parent
    human = fake.add_message(room, "UALICE", "ack", thread_ts=parent)
    later = client.chat_postMessage(channel=room, text="later")["ts"]

    history = client.conversations_history(channel=room)
    assert [m["text"] for m in history["messages"]] == ["later", "parent"]
    assert history["messages"][1]["reply_count"] == 3
    assert history["has_more"] is False
    limited = client.conversations_history(channel=room, limit=1)
    assert limited["has_more"] is True and limited["messages"][0]["ts"] == later
    window = client.conversations_history(channel=room, oldest=parent, latest=later, inclusive=True)
    assert [m["ts"] for m in window["messages"]] == [later, parent]

    replies = client.conversations_replies(channel=room, ts=first["ts"])
    assert [m["text"] for m in replies["messages"]] == ["parent", "r1", "r2", "ack"]
    assert replies["messages"][-1]["ts"] == human
    assert error_of(client.conversations_replies, channel=room, ts="1.000001") == "thread_not_found"
    outside = fake.add_channel("outside", bot_is_member=False)
    assert error_of(client.conversations_history, channel=outside) == "not_in_channel"


def test_post_ephemeral(fake: FakeSlack, client: WebClient) -> None:
    room = fake.add_channel("room", members=["UALICE"])
    response = client.chat_postEphemeral(channel=room, user="UALICE", text="only you")
    (message,) = fake.messages_in(room)
    assert message.ts == response["message_ts"] and message.ephemeral_for == "UALICE"
    assert client.conversations_history(channel=room)["messages"] == []
    not_member = error_of(client.chat_postEphemeral, channel=room, user="UBOB", text="x")
    assert not_member == "user_not_in_channel"


def test_update_and_delete(fake: FakeSlack, client: WebClient) -> None:
    room = fake.add_channel("room", members=["UALICE"])
    ts = client.chat_postMessage(channel=room, text="draft", metadata=None)["ts"]
    updated = client.chat_update(channel=room, ts=ts, text="final")
    assert updated["text"] == "final" and updated["message"]["edited"]["user"] == fake.bot_user_id
    (message,) = fake.messages_in(room)
    assert message.text == "final" and message.edited
    theirs = fake.add_message(room, "UALICE", "human words")
    assert error_of(client.chat_update, channel=room, ts=theirs, text="x") == "cant_update_message"
    assert (
        error_of(client.chat_update, channel=room, ts="1.000002", text="x") == "message_not_found"
    )
    assert error_of(client.chat_delete, channel=room, ts=theirs) == "cant_delete_message"
    assert client.chat_delete(channel=room, ts=ts)["ts"] == ts
    assert error_of(client.chat_delete, channel=room, ts=ts) == "message_not_found"
    assert [m.ts for m in fake.messages_in(room)] == [theirs]


def test_get_permalink(fake: FakeSlack, client: WebClient) -> None:
    room = fake.add_channel("room")
    ts = client.chat_postMessage(channel=room, text="hi")["ts"]
    link = client.chat_getPermalink(channel=room, message_ts=ts)["permalink"]
    assert link.endswith(f"/archives/{room}/p{ts.replace('.', '')}")
    assert error_of(client.chat_getPermalink, channel=room, message_ts="1.1") == "message_not_found"


# ---------------------------------------------------------------- pins


def test_pins(fake: FakeSlack, client: WebClient) -> None:
    room = fake.add_channel("room")
    ts = client.chat_postMessage(channel=room, text="status: investigating")["ts"]
    assert client.pins_add(channel=room, timestamp=ts).data == {"ok": True}
    assert fake.channels[room].pins == [ts]
    assert error_of(client.pins_add, channel=room, timestamp=ts) == "already_pinned"
    assert error_of(client.pins_add, channel=room, timestamp="1.000003") == "message_not_found"
    assert error_of(client.pins_add, channel=room) == "no_item_specified"
    items = client.pins_list(channel=room)["items"]
    assert [i["message"]["ts"] for i in items] == [ts]
    assert items[0]["message"]["pinned_to"] == [room]
    client.pins_remove(channel=room, timestamp=ts)
    assert fake.channels[room].pins == []
    assert error_of(client.pins_remove, channel=room, timestamp=ts) == "no_pin"

    outside = fake.add_channel("outside", bot_is_member=False, members=["UALICE"])
    their_ts = fake.add_message(outside, "UALICE", "hello")
    assert error_of(client.pins_add, channel=outside, timestamp=their_ts) == "not_in_channel"


# ---------------------------------------------------------------- users and user groups


def test_users_info_and_list(fake: FakeSlack, client: WebClient) -> None:
    alice = client.users_info(user="UALICE")["user"]
    assert alice["name"] == "alice" and alice["real_name"] == "Alice Adams"
    assert alice["profile"]["real_name"] == "Alice Adams"
    assert client.users_info(user="UGONE")["user"]["deleted"] is True
    assert error_of(client.users_info, user="UNOBODY") == "user_not_found"
    members = {m["id"]: m for m in client.users_list()["members"]}
    assert {"UALICE", "UBOB", "UCAROL", "UGONE", "UOTHERBOT", fake.bot_user_id} == set(members)
    assert members["UOTHERBOT"]["is_bot"] is True


def test_people_of_another_organisation_post_in_a_channel_shared_with_it(
    fake: FakeSlack, client: WebClient
) -> None:
    """Slack Connect: a person of another team posts in a channel shared with their team;
    users.info names their own team, conversations.info says the channel is shared, and the
    message event names the poster's team and profile as Slack's do."""
    fake.add_user("UDANA", "dana.w", real_name="Dana Whitfield", team_id="TACME")
    shared = fake.add_channel("acme-shared", members=["UALICE"])
    inside = fake.add_channel("internal", members=["UALICE"])
    with pytest.raises(ValueError, match="not shared"):
        fake.add_message(shared, "UDANA", "too early")  # not shared yet
    fake.share_channel(shared, "TACME", "Acme")
    with pytest.raises(ValueError):
        fake.share_channel(shared, fake.team_id, "ourselves")

    dana = client.users_info(user="UDANA")["user"]
    assert dana["team_id"] == dana["profile"]["team"] == "TACME"
    assert client.users_info(user="UALICE")["user"]["team_id"] == fake.team_id
    info = client.conversations_info(channel=shared)["channel"]
    assert info["is_ext_shared"] is True and set(info["connected_team_ids"]) == {
        fake.team_id,
        "TACME",
    }
    assert client.conversations_info(channel=inside)["channel"]["is_ext_shared"] is False

    ts = fake.add_message(shared, "UDANA", "When will it be fixed?")
    event = fake.message_event(shared, ts)
    assert event["type"] == "message" and event["channel_type"] == "channel"
    assert (event["user"], event["text"], event["ts"], event["channel"]) == (
        "UDANA",
        "When will it be fixed?",
        ts,
        shared,
    )
    assert event["team"] == event["user_team"] == event["user_profile"]["team"] == "TACME"
    assert event["user_profile"]["real_name"] == "Dana Whitfield"
    assert "subtype" not in event and "bot_id" not in event
    # One of ours in the shared channel: our team; the bot's own: its bot_id.
    ours = fake.message_event(shared, fake.add_message(shared, "UALICE", "On it"))
    assert ours["user_team"] == ours["team"] == fake.team_id
    bot = client.chat_postMessage(channel=shared, text="from the app")["ts"]
    assert fake.message_event(shared, bot)["bot_id"] == fake.bot_id
    # A channel shared with nobody: no Slack Connect fields, and outsiders may not post.
    plain = fake.message_event(inside, fake.add_message(inside, "UALICE", "hi"))
    assert "user_team" not in plain and plain["team"] == fake.team_id
    with pytest.raises(ValueError, match="not shared"):
        fake.add_message(inside, "UDANA", "let me in")
    with pytest.raises(KeyError):
        fake.message_event(inside, "1.000000")


def test_usergroups_users_list(fake: FakeSlack, client: WebClient) -> None:
    fake.add_usergroup("S0ONCALL", "oncall", ["UALICE", "UBOB"])
    assert client.usergroups_users_list(usergroup="S0ONCALL")["users"] == ["UALICE", "UBOB"]
    assert error_of(client.usergroups_users_list, usergroup="S0NOPE") == "no_such_subteam"


# ---------------------------------------------------------------- views


MODAL = {
    "type": "modal",
    "callback_id": "declare",
    "title": {"type": "plain_text", "text": "Declare incident"},
    "blocks": [],
}


def test_views_open_accepts_only_fresh_issued_triggers(fake: FakeSlack, client: WebClient) -> None:
    assert error_of(client.views_open, trigger_id="1.2.abc", view=MODAL) == "invalid_trigger_id"
    trigger = fake.new_trigger_id()
    view = client.views_open(trigger_id=trigger, view=MODAL)["view"]
    assert view["id"].startswith("V") and view["type"] == "modal"
    assert fake.views[view["id"]]["callback_id"] == "declare"
    assert error_of(client.views_open, trigger_id=trigger, view=MODAL) == "exchanged_trigger_id"

    fake.trigger_ttl = 0.05
    stale = fake.new_trigger_id()
    time.sleep(0.1)
    assert error_of(client.views_open, trigger_id=stale, view=MODAL) == "expired_trigger_id"


def test_views_open_rejects_malformed_views_without_spending_trigger(
    fake: FakeSlack, client: WebClient
) -> None:
    trigger = fake.new_trigger_id()
    untitled = {"type": "modal", "blocks": []}
    err = slack_error(client.views_open, trigger_id=trigger, view=untitled)
    assert err.response["error"] == "invalid_arguments"
    assert err.response["response_metadata"]["messages"]
    assert client.views_open(trigger_id=trigger, view=MODAL)["ok"] is True


def test_views_update_and_hash_conflict(fake: FakeSlack, client: WebClient) -> None:
    opened = client.views_open(trigger_id=fake.new_trigger_id(), view=MODAL)["view"]
    changed = {**MODAL, "title": {"type": "plain_text", "text": "Step 2"}}
    updated = client.views_update(view_id=opened["id"], view=changed, hash=opened["hash"])["view"]
    assert updated["id"] == opened["id"]
    assert fake.views[opened["id"]]["title"]["text"] == "Step 2"
    stale = error_of(client.views_update, view_id=opened["id"], view=MODAL, hash=opened["hash"])
    assert stale == "hash_conflict"
    assert error_of(client.views_update, view_id="VNOPE", view=MODAL) == "not_found"


def test_views_push_stacks_onto_the_modal(fake: FakeSlack, client: WebClient) -> None:
    root = client.views_open(trigger_id=fake.new_trigger_id(), view=MODAL)["view"]
    pushed = client.views_push(trigger_id=fake.new_trigger_id(view_id=root["id"]), view=MODAL)
    assert pushed["view"]["root_view_id"] == root["id"]
    assert pushed["view"]["previous_view_id"] == root["id"]
    client.views_push(trigger_id=fake.new_trigger_id(), view=MODAL)
    limit = error_of(client.views_push, trigger_id=fake.new_trigger_id(), view=MODAL)
    assert limit == "push_limit_reached"


def test_views_publish(fake: FakeSlack, client: WebClient) -> None:
    home = {
        "type": "home",
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "x"}}],
    }
    first = client.views_publish(user_id="UALICE", view=home)["view"]
    assert fake.home_views["UALICE"]["blocks"] == home["blocks"]
    again = client.views_publish(user_id="UALICE", view=home, hash=first["hash"])["view"]
    assert again["id"] == first["id"]
    stale = error_of(client.views_publish, user_id="UALICE", view=home, hash=first["hash"])
    assert stale == "hash_conflict"
    untyped = error_of(client.views_publish, user_id="UALICE", view={"blocks": []})
    assert untyped == "invalid_arguments"
    assert error_of(client.views_publish, user_id="UNOBODY", view=home) == "invalid_arguments"


# ---------------------------------------------------------------- fault injection


def test_fail_next_applies_the_given_number_of_times(fake: FakeSlack, client: WebClient) -> None:
    room = fake.add_channel("room")
    fake.fail_next("chat.postMessage", "fatal_error", times=2)
    assert error_of(client.chat_postMessage, channel=room, text="1") == "fatal_error"
    assert error_of(client.chat_postMessage, channel=room, text="2") == "fatal_error"
    client.chat_postMessage(channel=room, text="3")
    assert [m.text for m in fake.messages_in(room)] == ["3"]
    assert [c.status for c in fake.calls_to("chat.postMessage")] == [200, 200, 200]


def test_lose_answer_next_can_let_calls_through_first(fake: FakeSlack) -> None:
    client = WebClient(token=fake.bot_token, base_url=fake.url, retry_handlers=[])
    room = fake.add_channel("room")
    fake.lose_answer_next("chat.postMessage", skip=2)
    client.chat_postMessage(channel=room, text="1")
    client.chat_postMessage(channel=room, text="2")
    with pytest.raises(Exception):  # noqa: B017 - the connection dropped: any transport error
        client.chat_postMessage(channel=room, text="3")
    client.chat_postMessage(channel=room, text="4")
    assert [m.text for m in fake.messages_in(room)] == ["1", "2", "3", "4"]  # the third acted
    assert fake.fired == [("chat.postMessage", "lost")]
    with pytest.raises(ValueError):
        fake.lose_answer_next("chat.postMessage", skip=-1)


def test_rate_limit_next_reaches_slack_sdk_with_retry_after(
    fake: FakeSlack, client: WebClient
) -> None:
    fake.rate_limit_next("conversations.create", retry_after=7)
    err = slack_error(client.conversations_create, name="limited")
    assert err.response.status_code == 429
    assert err.response["error"] == "ratelimited"
    assert err.response.headers["Retry-After"] == "7"
    assert fake.channel_by_name("limited") is None
    client.conversations_create(name="limited")


def test_rate_limit_is_recovered_by_slack_sdk_retry_handler(fake: FakeSlack) -> None:
    retrying = WebClient(
        token=fake.bot_token,
        base_url=fake.url,
        retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=1)],
    )
    # Retry-After 0 keeps the handler's sleep under a second.
    fake.rate_limit_next("auth.test", retry_after=0)
    assert retrying.auth_test()["ok"] is True
    assert [c.status for c in fake.calls_to("auth.test")] == [429, 200]


def test_server_error_next(fake: FakeSlack, client: WebClient) -> None:
    fake.server_error_next("users.info", status=503, times=1)
    err = slack_error(client.users_info, user="UALICE")
    assert err.response.status_code == 503
    assert client.users_info(user="UALICE")["ok"] is True


def test_set_rate_limit_retry_after_matches_window(fake: FakeSlack, client: WebClient) -> None:
    fake.set_rate_limit("users.list", 2)
    client.users_list()
    client.users_list()
    err = slack_error(client.users_list)
    assert err.response.status_code == 429
    assert 59 <= int(err.response.headers["Retry-After"]) <= 60


def test_set_rate_limit_window_slides(fake: FakeSlack, client: WebClient) -> None:
    fake.set_rate_limit("auth.test", 2, window=0.4)
    client.auth_test()
    client.auth_test()
    err = slack_error(client.auth_test)
    assert err.response.headers["Retry-After"] == "1"
    time.sleep(0.45)
    assert client.auth_test()["ok"] is True
    assert [c.status for c in fake.calls_to("auth.test")] == [200, 200, 429, 200]


def test_latency_is_slept_outside_the_lock(fake: FakeSlack) -> None:
    fake.latency = 1.0
    errors: list[BaseException] = []

    def call() -> None:
        try:
            WebClient(token=fake.bot_token, base_url=fake.url).auth_test()
        except BaseException as exc:  # surfaced to the test thread below
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(5)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    # A call is recorded before its latency and answered after it: were the latency slept under
    # the lock, no second call could be recorded before the first was answered.
    wait_until(lambda: len(fake.calls_to("auth.test")) == 5, what="five calls recorded")
    assert not [c for c in fake.calls_to("auth.test") if c.finished]
    for thread in threads:
        thread.join()
    assert not errors
    assert time.monotonic() - started >= 1.0
    calls = fake.calls_to("auth.test")
    assert len(calls) == 5
    assert max(c.started for c in calls) < min(c.finished for c in calls)


# ---------------------------------------------------------------- response_url


def test_response_url_records_posts(fake: FakeSlack) -> None:
    url = fake.new_response_url()
    assert url.startswith(fake.root + "/response/")
    for text in ("working on it", "done"):
        status, body = post_raw(url, json.dumps({"text": text}).encode(), "application/json")
        assert (status, body) == (200, b"ok")
    assert [r["text"] for r in fake.responses_to(url)] == ["working on it", "done"]
    assert fake.calls == []


def test_response_url_refusals(fake: FakeSlack) -> None:
    assert post_raw(fake.root + "/response/unknown", b"{}", "application/json")[0] == 404
    url = fake.new_response_url()
    assert post_raw(url, b"not json", "application/json")[0] == 400
    for _ in range(5):
        assert post_raw(url, b"{}", "application/json")[0] == 200
    assert post_raw(url, b"{}", "application/json")[0] == 404
    assert len(fake.responses_to(url)) == 5

"""What the emulator gained for the sandbox, through the real slack_sdk clients: answers to
a person's response_url shown as Slack shows them, modals shown to the person whose action
opened them, changes a page can wait for, and pages mounted beside the Web API."""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Iterator

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.webhook import WebhookClient

from loopback.slack import ResponseTarget, SlackEmulator

DECLARER, OTHER = "U0DECLARER", "U0OTHER"


@pytest.fixture
def em() -> Iterator[SlackEmulator]:
    emulator = SlackEmulator(bot_name="vp").start()
    emulator.add_user(DECLARER, "dana", title="Support Lead")
    emulator.add_user(OTHER, "olga")
    emulator.add_channel("support", members=[DECLARER, OTHER])
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture
def client(em: SlackEmulator) -> WebClient:
    return WebClient(token=em.bot_token, base_url=em.url)


def test_the_bot_user_has_the_given_name_and_people_their_titles(em: SlackEmulator) -> None:
    assert em.user(em.bot_user_id)["name"] == "vp"
    assert em.user(DECLARER)["profile"]["title"] == "Support Lead"


def test_a_response_url_answer_is_shown_to_the_person_who_acted(em: SlackEmulator) -> None:
    url = em.new_response_url(ResponseTarget(DECLARER, em.find_channel("support").id))
    assert WebhookClient(url).send(text="only you").status_code == 200
    assert WebhookClient(url).send(text="everyone", response_type="in_channel").status_code == 200
    shown = [(m.text, m.ephemeral_for) for m in em.messages_in("support")]
    assert shown == [("only you", DECLARER), ("everyone", None)]
    assert [r["text"] for r in em.responses_to(url)] == ["only you", "everyone"]


def test_replace_and_delete_original_act_on_the_clicked_message(
    em: SlackEmulator, client: WebClient
) -> None:
    posted = client.chat_postMessage(channel="support", text="Approve?")
    channel = posted["channel"]
    url = em.new_response_url(ResponseTarget(OTHER, channel, message_ts=posted["ts"]))
    WebhookClient(url).send(text="Approved by olga", replace_original=True)
    (message,) = em.messages_in("support")
    assert message.text == "Approved by olga" and message.edited
    WebhookClient(url).send(text="", delete_original=True)
    assert em.messages_in("support") == []


def test_a_response_url_without_a_target_only_records(em: SlackEmulator) -> None:
    url = em.new_response_url()
    WebhookClient(url).send(text="recorded")
    assert em.messages_in("support") == [] and em.responses_to(url)[0]["text"] == "recorded"


def test_a_modal_is_shown_to_the_person_whose_trigger_opened_it(
    em: SlackEmulator, client: WebClient
) -> None:
    view = {"type": "modal", "title": {"type": "plain_text", "text": "Form"}, "blocks": []}
    opened = client.views_open(trigger_id=em.new_trigger_id(user=DECLARER), view=view)["view"]
    assert [v["id"] for v in em.modal_stack(DECLARER)] == [opened["id"]]
    assert em.modal_stack(OTHER) == []
    pushed = em.push_view(opened["id"], {**view, "title": {"type": "plain_text", "text": "Two"}})
    assert [v["id"] for v in em.modal_stack(DECLARER)] == [opened["id"], pushed["id"]]
    em.close_modal(DECLARER, all_views=False)
    assert [v["id"] for v in em.modal_stack(DECLARER)] == [opened["id"]]
    replaced = em.replace_view(opened["id"], {**view, "title": {"type": "plain_text", "text": "3"}})
    assert em.modal_stack(DECLARER)[0]["title"]["text"] == "3" == replaced["title"]["text"]
    em.close_modal(DECLARER)
    assert em.modal_stack(DECLARER) == []
    # A trigger issued for nobody in particular opens a modal nobody is shown (the tests').
    client.views_open(trigger_id=em.new_trigger_id(), view=view)
    assert em.modal_stack(DECLARER) == [] and em.modal_stack(OTHER) == []


def test_writes_advance_the_version_and_reads_do_not(em: SlackEmulator, client: WebClient) -> None:
    before = em.version
    client.conversations_history(channel=em.find_channel("support").id)
    client.users_list()
    assert em.version == before
    client.chat_postMessage(channel="support", text="hello")
    assert em.version == before + 1
    with pytest.raises(SlackApiError):
        client.chat_postMessage(channel="nowhere", text="x")
    assert em.version == before + 1  # a refused call changed nothing


def test_waiting_for_a_change_returns_at_the_change_or_the_stop(em: SlackEmulator) -> None:
    version = em.version
    assert em.wait_for_change(version, 0.05) == version
    # Waits of an hour: returning at all (within the test's timeout) is returning at the event.
    threading.Timer(0.2, em.touch).start()
    assert em.wait_for_change(version, 3600) == version + 1
    threading.Timer(0.2, em.stop).start()
    assert em.wait_for_change(em.version, 3600) == version + 1


def test_mounted_routes_serve_other_paths(em: SlackEmulator) -> None:
    seen = []

    def route(method: str, path: str, query: str, body: bytes, headers: object):
        seen.append((method, path, query, body))
        return 201, b'{"hi": 1}', "application/json", {"X-Extra": "1"}

    em.mount("/page", route)
    request = urllib.request.Request(f"{em.root}/page/x?a=1", data=b"body", method="POST")
    with urllib.request.urlopen(request, timeout=5) as r:
        assert r.status == 201 and json.loads(r.read()) == {"hi": 1}
        assert r.headers["X-Extra"] == "1"
    assert seen == [("POST", "/page/x", "a=1", b"body")]
    with urllib.request.urlopen(f"{em.url}api.test", timeout=5) as r:
        assert json.loads(r.read())["ok"] is True


def test_without_socket_mode_apps_connections_open_is_refused(em: SlackEmulator) -> None:
    with pytest.raises(SlackApiError) as e:
        WebClient(token=em.app_token, base_url=em.url).apps_connections_open(app_token=em.app_token)
    assert e.value.response["error"] == "not_allowed"


def test_ephemeral_messages_joins_and_lookups(em: SlackEmulator) -> None:
    ts = em.add_ephemeral("support", OTHER, "psst", author=DECLARER)
    (message,) = em.messages_in("support")
    assert (message.ts, message.user, message.ephemeral_for) == (ts, DECLARER, OTHER)
    em.add_channel("elsewhere")
    assert em.join("elsewhere", OTHER) is True and em.join("elsewhere", OTHER) is False
    assert OTHER in em.find_channel("#elsewhere").members
    assert em.message_object("support", ts) is None  # ephemeral messages are not in the API
    dm = em.app_dm(DECLARER)
    assert em.app_dm(DECLARER) == dm and em.find_channel(DECLARER).id == dm


def test_the_emulator_serves_on_a_given_port(em: SlackEmulator) -> None:
    port = int(em.root.rsplit(":", 1)[1])
    other = SlackEmulator()
    with pytest.raises(OSError):
        other.start(port=port)
    other.stop()

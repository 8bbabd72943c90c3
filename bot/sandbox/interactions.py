"""What Slack does when a person acts in the workspace, and how it then calls the app.

This module owns ``Interactions``. A person posts a message, runs a slash command, clicks a
button, submits or closes a modal, or opens the app's Home tab; ``Interactions`` changes the
emulator's workspace the way Slack would (a message appears; a slash command does not) and
sends the app the signed request Slack sends to its Request URL: the slash command's form,
the ``block_actions`` / ``view_submission`` / ``view_closed`` payload, or the Events API
envelope (``message``, ``app_mention``, ``app_home_opened``, for the events the app
subscribes to). It then applies the app's answer as Slack does: an ack's text shown only to
the person, a modal closed, replaced, pushed or showing ``response_action: errors`` beside
its fields, a failure told to the person in Slack's words.

Commands and interactions wait for the ack, as Slack does, for at most 3 seconds; events go
out on a small pool and never hold up the person who posted.

Two things differ from Slack, to teach rather than confuse: a command's immediate answer
("Opening a war room…") gives way to the app's later answer to the same command through its
``response_url`` ("… is ready"), where Slack would leave both; and the app's Messages tab is
read-only, as slack-manifest.yaml makes it, so typing there is refused as Slack refuses it.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import uuid
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from loopback.slack import ResponseTarget, SlackEmulator
from loopback.slack.client import RequestBuilder, SlackRequest, person, post

log = logging.getLogger(__name__)

# Slack waits this long for an app to acknowledge a request, then gives up on it.
ACK_TIMEOUT = 3.0

# The bot events of slack-manifest.yaml: what the app is sent (tests/test_manifest.py keeps
# the two the same).
BOT_EVENTS = (
    "app_home_opened",
    "app_mention",
    "message.channels",
    "message.groups",
    "reaction_added",
)

SLACKBOT = "USLACKBOT"

# What Slack shows in an app's Messages tab when the app turned messages off.
MESSAGES_OFF = "Sending messages to this app has been turned off."

_PERSON = re.compile(r"(?<![\w<@/])@([A-Za-z0-9][\w.\-]*)")
_CHANNEL = re.compile(r"(?<![\w<#&/])#([a-z0-9][a-z0-9_\-]*)")
_URL = re.compile(r"(?<![<|\w])https?://[^\s<>|]+")
# Which subscription carries a message event, by the kind of conversation.
_MESSAGE_EVENT = {"channel": "message.channels", "group": "message.groups", "im": "message.im"}
_BROADCAST = {"here": "<!here>", "channel": "<!channel>", "everyone": "<!everyone>"}


@dataclass
class Outcome:
    """How an action went, in words for the person who took it."""

    ok: bool
    error: str = ""  # shown to the person when the app did not take it
    errors: dict[str, str] = field(default_factory=dict)  # response_action errors, by block
    ts: str | None = None  # the message the person posted, if any


@dataclass
class Delivery:
    """One request sent to the app, and what came back."""

    kind: str  # "slash_command", "block_actions", "view_submission", "event:app_mention", ...
    status: int  # the HTTP status, 0 when there was no answer
    error: str  # "" or Slack's word for the failure (operation_timeout, dispatch_failed, ...)
    body: str
    elapsed: float


class Interactions:
    """People's actions in the emulator's workspace, delivered to the app at ``request_url``."""

    def __init__(
        self,
        emulator: SlackEmulator,
        request_url: str,
        signing_secret: str,
        *,
        commands: tuple[str, ...] = ("/escalate",),
        bot_events: tuple[str, ...] = BOT_EVENTS,
        timeout: float = ACK_TIMEOUT,
    ) -> None:
        self.emulator = emulator
        self.request_url = request_url
        self.secret = signing_secret
        self.commands = commands
        self.bot_events = bot_events
        self.timeout = timeout
        self.deliveries: deque[Delivery] = deque(maxlen=200)
        # A command's immediate answer, by channel: its ts and the command's response_url.
        self._acks: dict[str, list[tuple[str, str]]] = {}
        self._lock = threading.Lock()
        self._pending: set[Future[Any]] = set()
        self._events = ThreadPoolExecutor(max_workers=4, thread_name_prefix="slack-events")
        self.requests = RequestBuilder(
            team_id=emulator.team_id,
            team_domain=emulator.team_domain,
            api_app_id=emulator.app_id,
            verification_token="sandbox-verification-token",
            bot_user_id=emulator.bot_user_id,
        )

    def close(self) -> None:
        """Stop sending events; the ones already on their way are finished first."""
        self._events.shutdown(wait=True)

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Wait until every event sent so far has been answered (tests, the drill)."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                pending = list(self._pending)
            if not pending:
                return
            for future in pending:
                future.result(timeout=max(0.0, deadline - time.monotonic()))

    # ------------------------------------------------------------------ typing

    def say(self, user: str, channel: str, text: str, *, thread_ts: str | None = None) -> Outcome:
        """What the composer does with typed text: a slash command, or a message."""
        stripped = text.strip()
        if not stripped:
            return Outcome(False, "Type something first.")
        if stripped.startswith("/"):
            command, _, rest = stripped.partition(" ")
            return self.command(user, channel, command, rest.strip())
        return self.post(user, channel, text, thread_ts=thread_ts)

    def encode(self, text: str, *, for_command: bool = False) -> str:
        """Typed text as Slack sends it: &, < and > escaped; @name, #channel and links as
        Slack's markup (slash commands with escaping on get ``<@U…|name>``)."""
        people: dict[str, str] = {}
        for u in self.emulator.users():
            if not u["deleted"]:
                people[u["name"].lower()] = u["id"]
                display = u["profile"].get("display_name") or ""
                people.setdefault(display.lower(), u["id"])
        groups = {g["handle"].lower(): g for g in self.emulator.usergroups()}
        escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

        def person(m: re.Match[str]) -> str:
            word = m.group(1)
            name = word.rstrip(".-")
            tail = word[len(name) :]
            key = name.lower()
            if key in _BROADCAST:
                return _BROADCAST[key] + tail
            if key in people:
                uid = people[key]
                return (f"<@{uid}|{name}>" if for_command else f"<@{uid}>") + tail
            if key in groups:
                g = groups[key]
                return f"<!subteam^{g['id']}|@{g['handle']}>" + tail
            return m.group(0)

        def channel(m: re.Match[str]) -> str:
            word = m.group(1)
            name = word.rstrip("-_")
            found = self.emulator.find_channel(name)
            if found is None or found.is_im:
                return m.group(0)
            return f"<#{found.id}|{found.name}>" + word[len(name) :]

        encoded = _PERSON.sub(person, escaped)
        encoded = _CHANNEL.sub(channel, encoded)
        return _URL.sub(lambda m: f"<{m.group(0)}>", encoded)

    # ------------------------------------------------------------------ messages and events

    def post(self, user: str, channel: str, text: str, *, thread_ts: str | None = None) -> Outcome:
        """A person posts a message; the app hears of it as Slack's events say."""
        target = self.emulator.find_channel(channel)
        if target is None:
            return Outcome(False, "That channel does not exist.")
        if target.is_archived:
            return Outcome(False, "This channel has been archived.")
        if target.is_private and user not in target.members:
            return Outcome(False, "Only members can post in this private channel.")
        if target.is_im:
            return Outcome(False, MESSAGES_OFF)
        team = self.emulator.team_of(user)
        if team != self.emulator.team_id and team not in target.shared_with:
            return Outcome(False, "That channel is not shared with your organisation.")
        if not target.is_im and user not in target.members:
            # Posting in a public channel you are not in joins it, as in Slack.
            self.emulator.join(target.id, user)
        encoded = self.encode(text)
        ts = self.emulator.add_message(target.id, user, encoded, thread_ts=thread_ts)
        posted = next(m for m in self.emulator.messages_in(target.id) if m.ts == ts)
        # Slack sends a channel's events to an app only when its bot is in the channel.
        if self.emulator.bot_user_id in target.members or target.is_im:
            self._message_events(user, target.id, target, encoded, ts, posted.thread_ts)
        return Outcome(True, ts=ts)

    def _message_events(
        self, user: str, channel: str, target: Any, text: str, ts: str, thread: str | None
    ) -> None:
        kind = "im" if target.is_im else ("group" if target.is_private else "channel")
        base: dict[str, Any] = {
            "user": user,
            "text": text,
            "ts": ts,
            "channel": channel,
            "event_ts": ts,
            "team": self.emulator.team_id,
            "client_msg_id": str(uuid.uuid4()),
        }
        if thread:
            base["thread_ts"] = thread
        if _MESSAGE_EVENT[kind] in self.bot_events:
            # As Slack builds it: in a shared channel, with the poster's team and profile.
            self.send_event(self.emulator.message_event(channel, ts))
        if "app_mention" in self.bot_events and f"<@{self.emulator.bot_user_id}" in text:
            self.send_event({"type": "app_mention", **base})

    def send_event(self, event: dict[str, Any]) -> Future[Delivery] | None:
        """Deliver one Events API event in its envelope, on the event pool."""
        return self._send_event(self.requests.event(event))

    def _send_event(self, request: SlackRequest) -> Future[Delivery] | None:
        try:
            future = self._events.submit(self._deliver, request)
        except RuntimeError:  # closed: the workspace is shutting down
            return None
        with self._lock:
            self._pending.add(future)
        future.add_done_callback(self._forget)
        return future

    def _forget(self, future: Future[Any]) -> None:
        with self._lock:
            self._pending.discard(future)

    def open_home(self, user: str) -> Outcome:
        """The person opens the app's Home tab: ``app_home_opened``, with the view shown."""
        if "app_home_opened" not in self.bot_events:
            return Outcome(True)
        home = self.emulator.snapshot()["home_views"].get(user)
        self._send_event(self.requests.app_home_opened(user, self.emulator.app_dm(user), home))
        return Outcome(True)

    # ------------------------------------------------------------------ slash commands

    def command(self, user: str, channel: str, command: str, text: str) -> Outcome:
        target = self.emulator.find_channel(channel)
        if target is None:
            return Outcome(False, "That channel does not exist.")
        if command not in self.commands:
            self._slackbot(user, target.id, f"`{command}` is not a valid command.")
            return Outcome(False, f"{command} is not a valid command.")
        me = self.emulator.user(user)
        response_url = self.emulator.new_response_url(ResponseTarget(user, target.id))
        typed = self.encode(text, for_command=True)
        delivery = self._deliver(
            self.requests.slash_command(
                command=command,
                text=typed,
                user_id=user,
                user_name=me["name"],
                channel_id=target.id,
                channel_name=(
                    "directmessage"
                    if target.is_im
                    else ("privategroup" if target.is_private else target.name)
                ),
                response_url=response_url,
                trigger_id=self.emulator.new_trigger_id(user=user),
            )
        )
        if delivery.error:
            message = f'{command} failed with the error "{delivery.error}"'
            self._slackbot(user, target.id, message)
            return Outcome(False, message)
        answer = _json_or_text(delivery.body)
        if isinstance(answer, dict) and (answer.get("text") or answer.get("blocks")):
            blocks = answer.get("blocks") if isinstance(answer.get("blocks"), list) else None
            text_shown = str(answer.get("text") or "")
            if answer.get("response_type") == "in_channel":
                # Slack shows the invocation, then the app's answer, to everyone.
                self.emulator.add_message(target.id, user, f"{command} {typed}".strip())
                self.emulator.add_message(
                    target.id, self.emulator.bot_user_id, text_shown, blocks=blocks
                )
            else:
                ack = self.emulator.add_ephemeral(target.id, user, text_shown, blocks=blocks)
                self._remember_ack(target.id, ack, response_url)
        elif isinstance(answer, str) and answer.strip():
            ack = self.emulator.add_ephemeral(target.id, user, answer)
            self._remember_ack(target.id, ack, response_url)
        return Outcome(True)

    def _remember_ack(self, channel: str, ts: str, response_url: str) -> None:
        with self._lock:
            acks = self._acks.setdefault(channel, [])
            acks.append((ts, response_url))
            del acks[:-50]

    def superseded(self, channel: str) -> set[str]:
        """The commands' immediate answers in ``channel`` that the app has since followed
        with an answer through the same command's response_url: the page shows the later
        one only."""
        with self._lock:
            acks = list(self._acks.get(channel, ()))
        return {ts for ts, url in acks if self.emulator.responses_to(url)}

    # ------------------------------------------------------------------ buttons and menus

    def click(
        self,
        user: str,
        *,
        block_id: str,
        action_id: str,
        channel: str | None = None,
        message_ts: str | None = None,
        view_id: str | None = None,
        selected: Any = None,
        inputs: dict[str, dict[str, Any]] | None = None,
    ) -> Outcome:
        """A click on an interactive element of a message (``channel`` and ``message_ts``)
        or of a view (``view_id``); ``selected`` is a menu's choice."""
        where: dict[str, Any] = {}
        if view_id is not None:
            view = self.emulator.view(view_id)
            if view is None:
                return Outcome(False, "That view is gone.")
            blocks = view.get("blocks") or []
            view["state"] = {"values": _state_values(blocks, inputs or {}, self.emulator)}
            where["container"] = {"type": "view", "view_id": view_id}
            where["view"] = view
            where["state"] = view["state"]
        else:
            if channel is None or message_ts is None:
                return Outcome(False, "Say which message was clicked.")
            target = self.emulator.find_channel(channel)
            message = next(
                (
                    m
                    for m in (target.messages if target else [])
                    if m.ts == message_ts and m.ephemeral_for in (None, user)
                ),
                None,
            )
            if target is None or message is None:
                return Outcome(False, "That message is gone.")
            blocks = message.blocks or []
            ephemeral = message.ephemeral_for is not None
            where["container"] = {
                "type": "message",
                "message_ts": message_ts,
                "channel_id": target.id,
                "is_ephemeral": ephemeral,
            }
            if message.thread_ts:
                where["container"]["thread_ts"] = message.thread_ts
            where["channel"] = {"id": target.id, "name": target.name or "directmessage"}
            if not ephemeral:
                # Slack leaves the message out for ephemeral ones.
                where["message"] = self.emulator.message_object(target.id, message_ts)
            where["state"] = {"values": {}}
            where["response_url"] = self.emulator.new_response_url(
                ResponseTarget(user, target.id, message_ts, message.thread_ts)
            )
        action = _action(blocks, block_id, action_id, selected)
        if action is None:
            return Outcome(False, "That button is gone.")
        delivery = self._deliver(
            self.requests.block_actions(
                user=self._person(user),
                trigger_id=self.emulator.new_trigger_id(view_id=view_id, user=user),
                actions=[action],
                **where,
            )
        )
        if delivery.error:
            return Outcome(False, f"The app did not answer ({delivery.error}).")
        return Outcome(True)

    # ------------------------------------------------------------------ modals

    def submit(self, user: str, view_id: str, inputs: dict[str, dict[str, Any]]) -> Outcome:
        """The person presses a modal's submit button. ``inputs``: block id -> action id ->
        what they entered (text, a user id, a list of option values)."""
        view = self.emulator.view(view_id)
        if view is None:
            return Outcome(False, "That form is gone.")
        view["state"] = {"values": _state_values(view.get("blocks") or [], inputs, self.emulator)}
        delivery = self._deliver(
            self.requests.view_submission(
                user=self._person(user),
                view=view,
                trigger_id=self.emulator.new_trigger_id(view_id=view_id, user=user),
            )
        )
        if delivery.error:
            # What Slack says inside the modal when the app does not answer in time.
            return Outcome(False, "We had some trouble connecting. Try again?")
        answer = _json_or_text(delivery.body)
        action = answer.get("response_action") if isinstance(answer, dict) else None
        if action == "errors" and isinstance(answer, dict):
            errors = answer.get("errors") if isinstance(answer.get("errors"), dict) else {}
            return Outcome(False, errors={str(k): str(v) for k, v in errors.items()})
        try:
            if action == "update" and isinstance(answer, dict):
                self.emulator.replace_view(view_id, answer["view"])
            elif action == "push" and isinstance(answer, dict):
                self.emulator.push_view(view_id, answer["view"])
            elif action == "clear":
                self.emulator.close_modal(user)
            else:
                self.emulator.close_modal(user, all_views=False)
        except (KeyError, TypeError, ValueError) as e:
            return Outcome(False, f"The app's answer could not be shown ({e}).")
        return Outcome(True)

    def close_view(self, user: str, view_id: str) -> Outcome:
        """The person closes a modal (Cancel); ``view_closed`` if the app asked for it."""
        view = self.emulator.view(view_id)
        self.emulator.close_modal(user)
        if view is not None and view.get("notify_on_close"):
            self._deliver(self.requests.view_closed(user=self._person(user), view=view))
        return Outcome(True)

    def close_modals(self, user: str) -> Outcome:
        """The person's Slack client goes away (the page is reloaded): every modal open for
        them closes, as Slack closes it, with ``view_closed`` where the app asked for it."""
        while stack := self.emulator.modal_stack(user):
            self.close_view(user, stack[-1]["id"])
        return Outcome(True)

    # ------------------------------------------------------------------ the wire

    def _deliver(self, request: SlackRequest) -> Delivery:
        kind = request.kind
        started = time.monotonic()
        status, error, text = 0, "", ""
        try:
            reply = post(
                self.request_url, request.body, request.headers(self.secret), timeout=self.timeout
            )
            status, text = reply.status, reply.body
            if not 200 <= status < 300:
                error = "http_service_error"
        except TimeoutError:
            error = "operation_timeout"
        except OSError as e:
            reason = getattr(e, "reason", None)
            error = "operation_timeout" if isinstance(reason, TimeoutError) else "dispatch_failed"
        delivery = Delivery(kind, status, error, text, time.monotonic() - started)
        self.deliveries.append(delivery)
        if error and not kind.startswith("event:"):
            log.warning("the app answered %s with %s (HTTP %s)", kind, error, status or "-")
        return delivery

    def _person(self, user: str) -> dict[str, Any]:
        """The ``user`` object of an interaction payload, for a person of the workspace."""
        me = self.emulator.user(user)
        return person(me["id"], me["name"], me["team_id"])

    def _slackbot(self, user: str, channel: str, text: str) -> None:
        try:
            self.emulator.user(SLACKBOT)
        except KeyError:
            self.emulator.add_user(SLACKBOT, "slackbot", real_name="Slackbot", is_bot=True)
        self.emulator.add_ephemeral(channel, user, text, author=SLACKBOT)


def _json_or_text(body: str) -> dict[str, Any] | str:
    if not body.strip():
        return ""
    try:
        data = json.loads(body)
    except ValueError:
        return body
    return data if isinstance(data, dict) else body


def _elements(block: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    if isinstance(block.get("accessory"), dict):
        found.append(block["accessory"])
    if isinstance(block.get("element"), dict):
        found.append(block["element"])
    found.extend(e for e in block.get("elements") or () if isinstance(e, dict))
    return found


def block_id_of(block: dict[str, Any], index: int) -> str:
    """A block's id; Slack gives blocks posted without one an id of its own, and so do we."""
    return str(block.get("block_id") or f"b{index}")


def _action(
    blocks: list[dict[str, Any]], block_id: str, action_id: str, selected: Any
) -> dict[str, Any] | None:
    for index, block in enumerate(blocks):
        if block_id_of(block, index) != block_id:
            continue
        for element in _elements(block):
            if element.get("action_id") != action_id:
                continue
            action: dict[str, Any] = {
                "type": element.get("type"),
                "action_id": action_id,
                "block_id": block_id,
                "action_ts": f"{time.time():.6f}",
            }
            kind = element.get("type")
            if kind == "button":
                action["text"] = element.get("text")
                if "value" in element:
                    action["value"] = element["value"]
                if "style" in element:
                    action["style"] = element["style"]
            elif kind == "users_select":
                action["selected_user"] = selected or None
            elif kind in ("static_select", "radio_buttons"):
                option = _option(element, selected)
                action["selected_option"] = option
            elif kind == "checkboxes":
                values = selected if isinstance(selected, list) else []
                action["selected_options"] = [
                    o for o in element.get("options") or () if o.get("value") in values
                ]
            return action
    return None


def _option(element: dict[str, Any], value: Any) -> dict[str, Any] | None:
    options = list(element.get("options") or ())
    for group in element.get("option_groups") or ():
        options.extend(group.get("options") or ())
    return next((o for o in options if o.get("value") == value), None)


def _state_values(
    blocks: list[dict[str, Any]], inputs: dict[str, dict[str, Any]], emulator: SlackEmulator
) -> dict[str, dict[str, Any]]:
    """``view.state.values`` as Slack builds it: every input element, entered or not."""
    values: dict[str, dict[str, Any]] = {}
    for index, block in enumerate(blocks):
        if block.get("type") != "input" or not isinstance(block.get("element"), dict):
            continue
        element = block["element"]
        block_id = block_id_of(block, index)
        action_id = str(element.get("action_id") or "")
        given = (inputs.get(block_id) or {}).get(action_id)
        kind = element.get("type")
        state: dict[str, Any] = {"type": kind}
        if kind in ("plain_text_input", "email_text_input", "url_text_input", "number_input"):
            text = "" if given is None else str(given)
            state["value"] = text if text != "" else None
        elif kind == "users_select":
            state["selected_user"] = given or None
        elif kind == "multi_users_select":
            state["selected_users"] = list(given or [])
        elif kind in ("checkboxes", "multi_static_select"):
            chosen = given if isinstance(given, list) else []
            state["selected_options"] = [
                o for o in element.get("options") or () if o.get("value") in chosen
            ]
        elif kind in ("static_select", "radio_buttons"):
            state["selected_option"] = _option(element, given)
        elif kind == "conversations_select" or kind == "channels_select":
            key = "selected_conversation" if kind == "conversations_select" else "selected_channel"
            state[key] = given or None
        else:
            state["value"] = given
        values.setdefault(block_id, {})[action_id] = state
    return values

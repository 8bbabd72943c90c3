"""Least privilege: slack-manifest.yaml asks for exactly the scopes and events the code uses.

The code's use of Slack is read from the code itself (``ast``): the Web API methods called
on a WebClient (``client.chat_postMessage(...)``, mapped to ``chat.postMessage`` by
slack_sdk's own source) or by name (``api_call("...")``), and the events, commands and
interactions registered on the Bolt app (``app.event("app_mention")``, ...). The tables
below say which bot scopes each of those needs, from Slack's method, event and scope
reference pages; a method or event the code starts using must be added to them (with its
scopes, looked up), so the manifest cannot drift from the code in either direction. When
the agent comes to read the room's messages, ``conversations.history`` and the message
events bring their history scopes back through these tables.
"""

from __future__ import annotations

import ast
import inspect
import re
from collections import defaultdict
from pathlib import Path

import yaml
from slack_sdk.web import client as slack_web_client

import bot
from bot.sandbox.interactions import BOT_EVENTS

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = ROOT / "slack-manifest.yaml"
# The sandbox plays Slack's side (it never calls the Web API as the bot); the rest is the bot.
BOT_SOURCES = [p for p in Path(bot.__file__).parent.rglob("*.py") if "sandbox" not in p.parts[-2:]]

PUBLIC_AND_PRIVATE = {"channels:manage", "groups:write"}

# Web API method -> the bot scopes warroom needs for it. Where a method takes one scope per
# kind of conversation, only the kinds warroom uses are listed.
METHOD_SCOPES: dict[str, set[str]] = {
    "auth.test": set(),
    # With the app-level token (xapp-), whose own scope is connections:write: no bot scope.
    "apps.connections.open": set(),
    # chat:write.public: the notices and the weekly digest go to exec_channel, which the bot
    # need not have joined. A user id as the channel posts in the app's DM with that person
    # (the declarer hears where their room is): chat:write is enough, no im:write.
    "chat.postMessage": {"chat:write", "chat:write.public"},
    "chat.postEphemeral": {"chat:write"},
    "chat.update": {"chat:write"},
    "chat.delete": {"chat:write"},
    # "No scope required" (Slack's reference): the link to a message pinned to the timeline.
    "chat.getPermalink": set(),
    # War rooms are public channels, or private ones with --private.
    "conversations.create": PUBLIC_AND_PRIVATE,
    "conversations.invite": PUBLIC_AND_PRIVATE,
    "conversations.setTopic": PUBLIC_AND_PRIVATE,
    "conversations.archive": PUBLIC_AND_PRIVATE,
    # Asked only of private war rooms (who may see them in App Home).
    "conversations.members": {"groups:read"},
    # For the agent reading a room: public and private war rooms.
    "conversations.history": {"channels:history", "groups:history"},
    "conversations.replies": {"channels:history", "groups:history"},
    "conversations.info": {"channels:read", "groups:read"},
    # The war room whose conversations.create answer was lost, found among the app's
    # channels: public and private.
    "users.conversations": {"channels:read", "groups:read"},
    "pins.add": {"pins:write"},
    "reactions.add": {"reactions:write"},
    "reactions.get": {"reactions:read"},
    "usergroups.users.list": {"usergroups:read"},
    # The profile's email too: the signer's support desk agent is found by it.
    "users.info": {"users:read", "users:read.email"},
    "views.open": set(),
    "views.push": set(),
    "views.update": set(),
    "views.publish": set(),
}

# Bolt event name -> (the manifest's subscriptions that deliver it, their scopes).
EVENT_SUBSCRIPTIONS: dict[str, tuple[set[str], set[str]]] = {
    "app_mention": ({"app_mention"}, {"app_mentions:read"}),
    "app_home_opened": ({"app_home_opened"}, set()),
    # Messages in the channels the bot is in: a customer's replies in their shared channel.
    "message": ({"message.channels", "message.groups"}, {"channels:history", "groups:history"}),
    "reaction_added": ({"reaction_added"}, {"reactions:read"}),
}


def _webclient_methods() -> dict[str, str]:
    """slack_sdk's WebClient method name -> the Web API method it calls."""
    tree = ast.parse(inspect.getsource(slack_web_client))
    found = {}
    for fn in ast.walk(tree):
        if not isinstance(fn, ast.FunctionDef):
            continue
        for node in ast.walk(fn):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "api_call"
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                found[fn.name] = str(node.args[0].value)
                break
    return found


def _first_string(call: ast.Call) -> str | None:
    if call.args and isinstance(call.args[0], ast.Constant) and isinstance(call.args[0].value, str):
        return call.args[0].value
    if call.args and isinstance(call.args[0], ast.Attribute):
        return ast.unparse(call.args[0])  # an id from bot.slack.ids: registered, not a string
    return None


class SlackUse:
    """What the bot's code asks of Slack, with the files that ask it."""

    def __init__(self, sources: list[Path]) -> None:
        self.methods: dict[str, set[str]] = defaultdict(set)
        self.events: dict[str, set[str]] = defaultdict(set)
        self.commands: dict[str, set[str]] = defaultdict(set)
        self.interactions: dict[str, set[str]] = defaultdict(set)
        client_methods = _webclient_methods()
        for path in sources:
            where = str(path.relative_to(ROOT))
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.arg) and node.arg == "say":
                    self.methods["chat.postMessage"].add(where)  # Bolt's say()
                if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                    continue
                name = node.func.attr
                receiver = ast.unparse(node.func.value)
                first = _first_string(node)
                if receiver.endswith("client") and name in client_methods:
                    self.methods[client_methods[name]].add(where)
                elif name == "api_call" and node.args and isinstance(node.args[0], ast.Constant):
                    self.methods[str(first)].add(where)
                elif receiver == "app" and first is not None:
                    kinds = {
                        "event": self.events,
                        "command": self.commands,
                        "action": self.interactions,
                        "view": self.interactions,
                        "shortcut": self.interactions,
                        "options": self.interactions,
                    }
                    if name in kinds:
                        kinds[name][first].add(where)


def _manifest() -> dict:
    return yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))


def _needed(use: SlackUse) -> dict[str, set[str]]:
    """Each scope the code needs -> the methods, events and commands that need it."""
    unknown = sorted(set(use.methods) - set(METHOD_SCOPES)) + sorted(
        set(use.events) - set(EVENT_SUBSCRIPTIONS)
    )
    assert not unknown, (
        f"the code uses {unknown}: add them to this test's tables with the scopes Slack's "
        "reference gives them"
    )
    needed: dict[str, set[str]] = defaultdict(set)
    for method in use.methods:
        for scope in METHOD_SCOPES[method]:
            needed[scope].add(method)
    for event in use.events:
        for scope in EVENT_SUBSCRIPTIONS[event][1]:
            needed[scope].add(event)
    for command in use.commands:
        needed["commands"].add(command)
    return needed


def test_the_code_is_read_as_it_is() -> None:
    use = SlackUse(BOT_SOURCES)
    # A sample of what the reading must find, so a broken reader cannot pass by finding
    # nothing: the gateway's calls, Bolt's registrations.
    assert {"chat.postMessage", "conversations.create", "pins.add", "views.publish"} <= set(
        use.methods
    )
    assert "bot/slack/gateway.py" in use.methods["conversations.create"]
    assert "auth.test" in use.methods  # bot/cli.py checks the token with it
    assert set(use.events) == {"app_mention", "app_home_opened", "message", "reaction_added"}
    assert set(use.commands) == {"/escalate"}
    assert use.interactions  # buttons and forms


def test_the_manifest_asks_for_exactly_the_scopes_the_code_uses() -> None:
    needed = _needed(SlackUse(BOT_SOURCES))
    asked = set(_manifest()["oauth_config"]["scopes"]["bot"])
    unused = sorted(asked - set(needed))
    missing = {scope: sorted(needed[scope]) for scope in sorted(set(needed) - asked)}
    assert not unused, f"the manifest asks for scopes nothing uses: {unused}"
    assert not missing, f"the code needs scopes the manifest lacks: {missing}"
    assert "user" not in _manifest()["oauth_config"]["scopes"]  # no user token at all


def test_each_scope_names_what_needs_it() -> None:
    needed = _needed(SlackUse(BOT_SOURCES))
    text = MANIFEST.read_text(encoding="utf-8")
    scopes = text[text.index("oauth_config:") : text.index("\nsettings:")]
    lines = re.findall(r"^\s*- ([a-z_.:]+)\s*(?:#(.*))?$", scopes, re.M)
    assert {scope for scope, _ in lines} == set(needed)
    for scope, comment in lines:
        assert comment.strip(), f"{scope} has no comment saying what needs it"
        named = {what for what in needed[scope] if what in comment}
        assert named, f"{scope}'s comment names none of {sorted(needed[scope])}"


def test_the_manifest_subscribes_to_exactly_the_events_the_code_handles() -> None:
    use = SlackUse(BOT_SOURCES)
    manifest = _manifest()
    subscribed = set(manifest["settings"]["event_subscriptions"]["bot_events"])
    handled = set().union(*(EVENT_SUBSCRIPTIONS[e][0] for e in use.events))
    assert subscribed == handled
    commands = {c["command"] for c in manifest["features"]["slash_commands"]}
    assert commands == set(use.commands)
    assert manifest["settings"]["interactivity"]["is_enabled"] is bool(use.interactions)
    home_tab = "app_home_opened" in use.events and "views.publish" in use.methods
    assert manifest["features"]["app_home"]["home_tab_enabled"] is home_tab


def test_the_sandbox_sends_the_events_of_the_manifest() -> None:
    subscribed = _manifest()["settings"]["event_subscriptions"]["bot_events"]
    assert sorted(BOT_EVENTS) == sorted(subscribed)

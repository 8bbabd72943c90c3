"""The sandbox's web page: a Slack-like workspace in the browser, served by the emulator.

This module owns ``WorkspacePage``, mounted on the emulator's own HTTP server (the Web API
stays under /api/): ``/`` and ``/static/*`` serve the page (plain HTML, JS and CSS shipped
as package data under ``bot/sandbox/static/``), and ``/ui/*`` is the page's JSON API:

- ``GET /ui/state?as=U&channel=C&since=V&wait=S``: what person ``U`` sees: channels, the
  selected channel's messages (threads, pins, topic, their own ephemeral messages), their
  open modal, their App Home, the banner and the drill's announcements. With ``since``
  equal to the current version the answer waits up to ``wait`` seconds for a change, so
  the page updates as soon as anything happens (long polling).
- ``POST /ui/send`` (typed text), ``/ui/click``, ``/ui/submit``, ``/ui/close``, ``/ui/home``:
  the person's actions, handed to ``Interactions``, which calls the app as Slack would.
- ``POST /ui/drill`` (``{"do": "pause" | "resume" | "step" | "speed", "speed": X}``): the
  drill's controls, when the sandbox plays one (``Pacing``).
- ``POST /ui/email_reply`` (``{"account": A, "text": T}``): the customer's email answer to the
  newest letter in their inbox, into the team's reply mailbox the bot reads.
- ``POST /ui/ticket_reply`` (``{"account": A, "ticket": N, "text": T}``): the customer's
  reply on their Zendesk ticket, when the sandbox runs one (``bot.sandbox.desk``).
- ``POST /ui/open``: the page is (re)loaded. A Slack client that reloads loses the modals
  it showed, so the person's open modals are closed (``view_closed`` where asked for).

Only the sandbox's own page may use it: any other web page the person has open could send
it requests (a form or ``fetch`` to 127.0.0.1), or, renaming its own host to 127.0.0.1 (DNS
rebinding), read the answers: the workspace, and drafts written with the person's model
key. So every request must name the sandbox itself as its ``Host`` (127.0.0.1 or localhost
on its port) and, when it carries an ``Origin``, come from the sandbox's own page; and every
action must be ``application/json``, which a page elsewhere cannot send without the
browser first asking permission (CORS preflight) the sandbox never grants. Anything else
is refused with 403.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlsplit

from bot.sandbox.interactions import Interactions, Outcome
from bot.sandbox.pacing import Pacing
from loopback.slack import SlackEmulator

_CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}
MAX_WAIT = 20.0  # seconds a state request may wait for a change
MAX_BODY = 1_000_000


@dataclass
class WorkspacePage:
    """The browser's view of the emulator's workspace, and the actions people take in it."""

    emulator: SlackEmulator
    interactions: Interactions
    people: list[str]
    default_channel: str = "support"
    banner: str = ""
    title: str = "warroom sandbox"
    # Why the app would refuse a button (its action id and value), or "": the page shows
    # such a button as off, with the reason. Slack has no such thing; the sandbox teaches.
    refusal: Callable[[str, str], str] | None = None
    drill: Pacing | None = None
    # The customers' side (each account's inbox, the channel shared with them), when the
    # sandbox shows it: what its panel shows, one entry per account (`bot.sandbox.customer`).
    customers: Callable[[], list[dict[str, Any]]] | None = None
    # The requester's reply on their ticket (account, ticket, text), when the sandbox runs a
    # Zendesk (`bot.sandbox.desk`).
    ticket_reply: Callable[[str, int, str], Outcome] | None = None
    # The customer's email answer to their newest letter (account, text), when the sandbox
    # runs a reply mailbox (`bot.sandbox.customer`).
    email_reply: Callable[[str, str], Outcome] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _notices: list[dict[str, Any]] = field(default_factory=list, init=False, repr=False)

    def mount(self) -> WorkspacePage:
        self.emulator.mount("/", self.route)
        return self

    def announce(
        self, text: str, *, channel: str | None = None, step: str = "", look: str = ""
    ) -> None:
        """A line the page shows above the workspace (the drill's narration), and what to
        look at meanwhile."""
        with self._lock:
            self._notices.append(
                {
                    "id": len(self._notices) + 1,
                    "text": text,
                    "look": look,
                    "channel": channel,
                    "step": step,
                    "at": time.time(),
                }
            )
            del self._notices[:-50]
        self.emulator.touch()

    # ------------------------------------------------------------------ HTTP

    def route(
        self, method: str, path: str, query: str, body: bytes, headers: Any
    ) -> tuple[int, bytes, str, dict[str, str]]:
        refusal = self._refusal(method, headers)
        if refusal:
            return _json(403, {"ok": False, "error": refusal})
        try:
            if method == "GET" and path in ("/", "/index.html"):
                return self._static("index.html")
            if method == "GET" and path.startswith("/static/"):
                return self._static(path[len("/static/") :])
            if method == "GET" and path == "/ui/state":
                args = {k: v[-1] for k, v in parse_qs(query).items()}
                return _json(200, self._state_answer(args))
            if method == "POST" and path.startswith("/ui/"):
                if len(body) > MAX_BODY:
                    return _json(413, {"ok": False, "error": "too large"})
                try:
                    data = json.loads(body or b"{}")
                except ValueError:
                    return _json(400, {"ok": False, "error": "not JSON"})
                if not isinstance(data, dict):
                    return _json(400, {"ok": False, "error": "not a JSON object"})
                return self._action(path[len("/ui/") :], data)
        except KeyError as e:
            return _json(400, {"ok": False, "error": f"missing {e}"})
        except ValueError as e:
            return _json(400, {"ok": False, "error": str(e)})
        return _json(404, {"ok": False, "error": "not found"})

    def _own_hosts(self) -> set[str]:
        """The ``Host`` values that name this sandbox: 127.0.0.1 or localhost, on its port."""
        port = urlsplit(self.emulator.root).port
        hosts = {f"127.0.0.1:{port}", f"localhost:{port}"}
        if port == 80:  # browsers leave the default port out
            hosts |= {"127.0.0.1", "localhost"}
        return hosts

    def _refusal(self, method: str, headers: Any) -> str:
        """Why a request does not come from the sandbox's own page, or "" if it does."""
        own = self._own_hosts()
        if (headers.get("Host") or "").strip().lower() not in own:
            return "this sandbox answers only requests to its own address"
        origin = headers.get("Origin")
        if origin is not None and origin.strip().lower() not in {f"http://{h}" for h in own}:
            return "this sandbox answers only its own page"
        if method not in ("GET", "HEAD"):
            mime = (headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
            if mime != "application/json":
                return "actions must be sent as application/json"
        return ""

    def _static(self, name: str) -> tuple[int, bytes, str, dict[str, str]]:
        # Only plain file names of the static folder: no paths, so nothing else is reachable.
        suffix = name[name.rfind(".") :] if "." in name else ""
        if "/" in name or "\\" in name or name.startswith(".") or suffix not in _CONTENT_TYPES:
            return 404, b"not found\n", "text/plain", {}
        resource = resources.files("bot.sandbox").joinpath("static", name)
        if not resource.is_file():
            return 404, b"not found\n", "text/plain", {}
        return 200, resource.read_bytes(), _CONTENT_TYPES[suffix], {"Cache-Control": "no-cache"}

    def _state_answer(self, args: dict[str, str]) -> dict[str, Any]:
        user = args.get("as") or self.people[0]
        since = args.get("since")
        if since is not None and since.lstrip("-").isdigit():
            wait = min(MAX_WAIT, max(0.0, float(args.get("wait") or 0)))
            version = self.emulator.wait_for_change(int(since), wait)
            if version == int(since):
                return {"version": version, "unchanged": True}
        return self.state(user, args.get("channel") or None)

    def _action(self, name: str, data: dict[str, Any]) -> tuple[int, bytes, str, dict[str, str]]:
        if name == "email_reply":
            # The customer is no one in the workspace: they answer the letter by email.
            if self.email_reply is None:
                return _json(404, {"ok": False, "error": "No reply mailbox in this sandbox."})
            outcome = self.email_reply(str(data["account"]), str(data.get("text") or ""))
            return _json(200, {"ok": outcome.ok, "error": outcome.error})
        if name == "ticket_reply":
            # The customer is no one in the workspace: they answer on their ticket.
            if self.ticket_reply is None:
                return _json(404, {"ok": False, "error": "No Zendesk in this sandbox."})
            ticket = data["ticket"]
            if not isinstance(ticket, int) or isinstance(ticket, bool):
                raise ValueError("ticket: a number")
            outcome = self.ticket_reply(str(data["account"]), ticket, str(data.get("text") or ""))
            self.emulator.touch()
            return _json(200, {"ok": outcome.ok, "error": outcome.error})
        # A page's first load may not have chosen a person yet: it shows the first one.
        user = str(data.get("as") or (self.people[0] if name == "open" else ""))
        known = {u["id"] for u in self.emulator.users()}
        if user not in known:
            return _json(400, {"ok": False, "error": f"no user {user!r}"})
        acts = self.interactions
        outcome: Outcome
        if name == "send":
            outcome = acts.say(
                user,
                str(data["channel"]),
                str(data.get("text") or ""),
                thread_ts=data.get("thread_ts") or None,
            )
        elif name == "click":
            outcome = acts.click(
                user,
                block_id=str(data["block_id"]),
                action_id=str(data["action_id"]),
                channel=data.get("channel") or None,
                message_ts=data.get("message_ts") or None,
                view_id=data.get("view_id") or None,
                selected=data.get("selected"),
                inputs=data.get("inputs") or {},
            )
        elif name == "submit":
            outcome = acts.submit(user, str(data["view_id"]), data.get("inputs") or {})
        elif name == "close":
            outcome = acts.close_view(user, str(data["view_id"]))
        elif name == "home":
            outcome = acts.open_home(user)
        elif name == "open":
            outcome = acts.close_modals(user)
        elif name == "drill":
            outcome = self._drill_control(data)
        else:
            return _json(404, {"ok": False, "error": f"no action {name!r}"})
        return _json(
            200,
            {"ok": outcome.ok, "error": outcome.error, "errors": outcome.errors, "ts": outcome.ts},
        )

    def _drill_control(self, data: dict[str, Any]) -> Outcome:
        if self.drill is None:
            return Outcome(False, "No drill is playing: start the sandbox with --drill.")
        do = data.get("do")
        if do == "pause":
            self.drill.pause()
        elif do == "resume":
            self.drill.resume()
        elif do == "step":
            self.drill.next_step()
        elif do == "speed":
            try:
                self.drill.set_speed(float(data.get("speed")))  # type: ignore[arg-type]
            except (TypeError, ValueError) as e:
                return Outcome(False, str(e) or "not a speed")
        else:
            return Outcome(False, f"no drill control {do!r}")
        return Outcome(True)

    # ------------------------------------------------------------------ what a person sees

    def state(self, user: str, channel_ref: str | None) -> dict[str, Any]:
        snap = self.emulator.snapshot()
        bot = self.emulator.bot_user_id
        users = {
            u["id"]: {
                "name": u["profile"].get("display_name") or u["name"],
                "real_name": u["real_name"],
                "title": u["profile"].get("title", ""),
                "is_bot": u["is_bot"],
                "deleted": u["deleted"],
            }
            for u in snap["users"]
        }
        channels = []
        selected = None
        for ch in snap["channels"]:
            if ch.is_im and ch.dm_user != user:
                continue
            if ch.is_private and not ch.is_im and user not in ch.members:
                continue
            visible = [m for m in ch.messages if m.ephemeral_for in (None, user)]
            channels.append(
                {
                    "id": ch.id,
                    "name": users.get(bot, {}).get("name", "app") if ch.is_im else ch.name,
                    "is_private": ch.is_private,
                    "is_im": ch.is_im,
                    "is_member": user in ch.members,
                    "is_archived": ch.is_archived,
                    "topic": ch.topic,
                    "created": ch.created,
                    "count": len(visible),
                }
            )
            if channel_ref in (ch.id, ch.name) or (
                channel_ref is None and ch.name == self.default_channel
            ):
                selected = self._channel_view(
                    ch, user, self.interactions.superseded(ch.id), self._refusals
                )
        home = snap["home_views"].get(user)
        stack = snap["modals"].get(user) or []
        with self._lock:
            notices = list(self._notices)
        deliveries = [
            {"kind": d.kind, "status": d.status, "error": d.error, "ms": round(d.elapsed * 1000)}
            for d in list(self.interactions.deliveries)[-20:]
        ]
        return {
            "version": snap["version"],
            "title": self.title,
            "team": {"name": self.emulator.team_name, "domain": self.emulator.team_domain},
            "me": user,
            "bot": bot,
            "people": self.people,
            "users": users,
            "usergroups": {g["id"]: g["handle"] for g in snap["usergroups"]},
            "channels": channels,
            "channel": selected,
            "modal": {"view": stack[-1], "depth": len(stack)} if stack else None,
            "home": home,
            "banner": self.banner,
            "notices": notices,
            "drill": self.drill.snapshot() if self.drill is not None else None,
            "deliveries": deliveries,
            "customers": self.customers() if self.customers is not None else [],
        }

    def _refusals(self, blocks: list[dict[str, Any]] | None) -> dict[str, str]:
        """``block_id/action_id`` -> why the app would refuse that button, for the buttons
        of ``blocks`` it would refuse."""
        found: dict[str, str] = {}
        if self.refusal is None:
            return found
        for index, block in enumerate(blocks or ()):
            for element in block.get("elements") or ():
                if not isinstance(element, dict) or element.get("type") != "button":
                    continue
                why = self.refusal(str(element.get("action_id")), str(element.get("value")))
                if why:
                    block_id = block.get("block_id") or f"b{index}"
                    found[f"{block_id}/{element.get('action_id')}"] = why
        return found

    @staticmethod
    def _channel_view(
        ch: Any,
        user: str,
        superseded: Collection[str] = (),
        refusals: Callable[[list[dict[str, Any]] | None], dict[str, str]] = lambda _: {},
    ) -> dict[str, Any]:
        pins = list(ch.pins)
        visible = [
            m for m in ch.messages if m.ephemeral_for in (None, user) and m.ts not in superseded
        ]
        by_ts = {m.ts: m for m in visible if m.ephemeral_for is None}
        top: list[dict[str, Any]] = []
        replies: dict[str, list[dict[str, Any]]] = {}
        for m in visible:
            shown = {
                "ts": m.ts,
                "user": m.user,
                "text": m.text,
                "blocks": m.blocks,
                "attachments": m.attachments,
                "edited": m.edited,
                "ephemeral": m.ephemeral_for is not None,
                "pinned": m.ts in pins,
                "thread_ts": m.thread_ts,
                "refusals": refusals(m.blocks) if m.blocks else {},
            }
            is_reply = m.thread_ts and m.thread_ts != m.ts and m.thread_ts in by_ts
            if is_reply:
                replies.setdefault(m.thread_ts, []).append(shown)
                if m.reply_broadcast:
                    top.append({**shown, "broadcast": True})
            else:
                top.append(shown)
        for shown in top:
            if not shown.get("broadcast"):
                shown["replies"] = replies.get(shown["ts"], [])
        return {
            "id": ch.id,
            "name": ch.name,
            "topic": ch.topic,
            "purpose": ch.purpose,
            "is_private": ch.is_private,
            "is_im": ch.is_im,
            "is_archived": ch.is_archived,
            "is_member": user in ch.members,
            "members": sorted(ch.members),
            "pins": pins,
            "messages": top,
        }


def _json(status: int, data: Any) -> tuple[int, bytes, str, dict[str, str]]:
    return status, json.dumps(data).encode(), "application/json; charset=utf-8", {}

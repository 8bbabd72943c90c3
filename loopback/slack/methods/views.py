"""The ``views.*`` methods: open, push, update, publish; and how a view is stored (ids,
hash, defaults), which the page's modal actions share."""

from __future__ import annotations

import copy
import secrets
import time
from typing import TYPE_CHECKING, Any

from loopback.slack.blockkit import check_view
from loopback.slack.records import VIEW_STACK_LIMIT, SlackError, Trigger, invalid_arguments

if TYPE_CHECKING:
    from loopback.slack.workspace import Workspace


def _check_trigger(ws: Workspace, args: dict[str, Any]) -> Trigger:
    trigger_id = args.get("trigger_id") or args.get("interactivity_pointer")
    if not trigger_id:
        raise invalid_arguments("[ERROR] missing required field: trigger_id")
    trigger = ws._triggers.get(str(trigger_id))
    if trigger is None:
        raise SlackError("invalid_trigger_id")
    if trigger.used:
        raise SlackError("exchanged_trigger_id")
    if time.monotonic() - trigger.issued > ws.trigger_ttl:
        raise SlackError("expired_trigger_id")
    return trigger


def _require_view(args: dict[str, Any], allowed_types: set[str]) -> dict[str, Any]:
    view = args.get("view")
    if view is None:
        raise invalid_arguments("[ERROR] missing required field: view")
    if not isinstance(view, dict):
        raise invalid_arguments("[ERROR] failed to parse view: not a JSON object")
    view_type = view.get("type")
    if not view_type:
        raise invalid_arguments("[ERROR] missing required field: type")
    if view_type not in allowed_types:
        raise invalid_arguments(f"[ERROR] unsupported view type: {view_type}")
    if view_type == "modal" and not view.get("title"):
        raise invalid_arguments("[ERROR] missing required field: title")
    if "blocks" in view and not isinstance(view["blocks"], list):
        raise invalid_arguments("[ERROR] blocks must be an array")
    check_view(view)
    return view


def _all_views(ws: Workspace) -> list[dict[str, Any]]:
    return [*ws.views.values(), *ws.home_views.values()]


def store_view(
    ws: Workspace,
    view: dict[str, Any],
    *,
    view_id: str | None = None,
    root_view_id: str | None = None,
    previous_view_id: str | None = None,
) -> dict[str, Any]:
    """``view`` as Slack keeps and returns it (lock held); not yet placed anywhere."""
    new_id = view_id or ws._next_id("V")
    external_id = view.get("external_id") or ""
    if external_id and any(
        v.get("external_id") == external_id and v["id"] != new_id for v in _all_views(ws)
    ):
        raise SlackError("duplicate_external_id")
    stored = copy.deepcopy(view)
    stored.setdefault("blocks", [])
    stored.setdefault("private_metadata", "")
    stored.setdefault("callback_id", "")
    stored.setdefault("external_id", "")
    stored.setdefault("clear_on_close", False)
    stored.setdefault("notify_on_close", False)
    stored.update(
        id=new_id,
        team_id=ws.team_id,
        state={"values": {}},
        hash=f"{int(time.time())}.{secrets.token_hex(4)}",
        root_view_id=root_view_id or new_id,
        previous_view_id=previous_view_id,
        app_id=ws.app_id,
        bot_id=ws.bot_id,
    )
    return stored


def open_(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    trigger = _check_trigger(ws, args)
    view = _require_view(args, {"modal"})
    stored = store_view(ws, view)
    trigger.used = True
    ws.views[stored["id"]] = stored
    ws._view_stacks[stored["id"]] = [stored["id"]]
    ws._last_root_view = stored["id"]
    if trigger.user is not None:
        ws._modal_owner[stored["id"]] = trigger.user
    return {"view": stored}


def push(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    trigger = _check_trigger(ws, args)
    view = _require_view(args, {"modal"})
    if trigger.view_id is not None:
        source = ws.views.get(trigger.view_id)
        root_id = source["root_view_id"] if source else None
    else:
        root_id = ws._last_root_view
    stack = ws._view_stacks.get(root_id or "")
    if not stack:
        raise SlackError("not_found")
    if len(stack) >= VIEW_STACK_LIMIT:
        raise SlackError("push_limit_reached")
    stored = store_view(ws, view, root_view_id=root_id, previous_view_id=stack[-1])
    trigger.used = True
    ws.views[stored["id"]] = stored
    stack.append(stored["id"])
    return {"view": stored}


def update(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    view_id = args.get("view_id")
    external_id = args.get("external_id")
    target = None
    for candidate in _all_views(ws):
        if (view_id and candidate["id"] == view_id) or (
            not view_id and external_id and candidate.get("external_id") == external_id
        ):
            target = candidate
            break
    if target is None:
        raise SlackError("not_found")
    if args.get("hash") and args["hash"] != target["hash"]:
        raise SlackError("hash_conflict")
    view = _require_view(args, {target["type"]})
    stored = store_view(
        ws,
        view,
        view_id=target["id"],
        root_view_id=target["root_view_id"],
        previous_view_id=target["previous_view_id"],
    )
    if target["id"] in ws.views:
        ws.views[target["id"]] = stored
    else:
        for user_id, home in ws.home_views.items():
            if home["id"] == target["id"]:
                ws.home_views[user_id] = stored
    return {"view": stored}


def publish(ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
    user_id = str(args.get("user_id") or "")
    user = ws._users.get(user_id)
    if user is None or user["deleted"]:
        raise invalid_arguments("invalid `user_id`")
    view = _require_view(args, {"home"})
    current = ws.home_views.get(user_id)
    if args.get("hash") and current is not None and args["hash"] != current["hash"]:
        raise SlackError("hash_conflict")
    stored = store_view(ws, view, view_id=current["id"] if current else None)
    ws.home_views[user_id] = stored
    return {"view": stored}


METHODS = {
    "views.open": open_,
    "views.publish": publish,
    "views.push": push,
    "views.update": update,
}

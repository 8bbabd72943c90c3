"""What the sandbox's web page needs of the workspace: a snapshot of everything a person
sees, waiting for the next change (``version``), the modal stack each person sees and the
page's actions on it (close, replace, push), and pages mounted on the emulator's server."""

from __future__ import annotations

import copy
from typing import Any

from loopback.slack.methods.views import store_view
from loopback.slack.records import VIEW_STACK_LIMIT, Route, SlackError
from loopback.slack.workspace import Workspace


class Pages(Workspace):
    """The page-facing side of the workspace."""

    _mounts: list[tuple[str, Route]]

    def mount(self, prefix: str, route: Route) -> None:
        """Serve paths starting with ``prefix`` (outside /api/ and /response/) by ``route``."""
        with self._lock:
            self._mounts.append((prefix, route))
            # Longest prefix first, so "/" can be a fallback.
            self._mounts.sort(key=lambda m: len(m[0]), reverse=True)

    def wait_for_change(self, since: int, timeout: float) -> int:
        """Block until ``version`` passes ``since`` (or ``timeout``, or stop); the version."""
        with self._change:
            self._change.wait_for(lambda: self.version != since or self._stopped, timeout)
            return self.version

    def touch(self) -> None:
        """Advance ``version``: something a page shows changed outside the Web API."""
        with self._lock:
            self._bump()

    def snapshot(self) -> dict[str, Any]:
        """A deep copy of what a page shows: users, channels with messages, views, modals."""
        with self._lock:
            return {
                "version": self.version,
                "users": copy.deepcopy(list(self._users.values())),
                "usergroups": copy.deepcopy(list(self._usergroups.values())),
                "channels": copy.deepcopy(list(self.channels.values())),
                "home_views": copy.deepcopy(self.home_views),
                "modals": {
                    user: copy.deepcopy([self.views[v] for v in self._view_stacks.get(root, ())])
                    for root, user in self._modal_owner.items()
                    if self._view_stacks.get(root)
                },
            }

    def modal_stack(self, user_id: str) -> list[dict[str, Any]]:
        """The modal views open for ``user_id``, bottom first (empty if none)."""
        with self._lock:
            for root, owner in reversed(list(self._modal_owner.items())):
                stack = self._view_stacks.get(root)
                if owner == user_id and stack:
                    return copy.deepcopy([self.views[v] for v in stack])
            return []

    def close_modal(self, user_id: str, *, all_views: bool = True) -> None:
        """Close the top view (or the whole stack) of the modal ``user_id`` sees."""
        with self._lock:
            for root, owner in reversed(list(self._modal_owner.items())):
                stack = self._view_stacks.get(root)
                if owner != user_id or not stack:
                    continue
                if all_views:
                    stack.clear()
                else:
                    stack.pop()
                if not stack:
                    del self._modal_owner[root]
                self._bump()
                return

    def replace_view(self, view_id: str, view: dict[str, Any]) -> dict[str, Any]:
        """Put ``view`` in place of a modal view (``response_action: update``); the stored view."""
        with self._lock:
            target = self.views.get(view_id)
            if target is None:
                raise KeyError(view_id)
            stored = store_view(
                self,
                view,
                view_id=view_id,
                root_view_id=target["root_view_id"],
                previous_view_id=target["previous_view_id"],
            )
            self.views[view_id] = stored
            self._bump()
            return copy.deepcopy(stored)

    def push_view(self, view_id: str, view: dict[str, Any]) -> dict[str, Any]:
        """Push ``view`` onto the stack of modal ``view_id`` (``response_action: push``)."""
        with self._lock:
            source = self.views.get(view_id)
            stack = self._view_stacks.get(source["root_view_id"] if source else "")
            if source is None or not stack:
                raise KeyError(view_id)
            if len(stack) >= VIEW_STACK_LIMIT:
                raise SlackError("push_limit_reached")
            stored = store_view(
                self, view, root_view_id=source["root_view_id"], previous_view_id=stack[-1]
            )
            self.views[stored["id"]] = stored
            stack.append(stored["id"])
            self._bump()
            return copy.deepcopy(stored)

"""The functions the scheduler runs. Their import paths are stored with every job in Redis,
so they must never move or be renamed (APScheduler deletes jobs it cannot import).

Arguments are primitives: the Redis key prefix (which names the deployment whose service
handles the job), the escalation id, and one detail (a step id, a due time, an index).
"""

from __future__ import annotations

import logging
from typing import Protocol

log = logging.getLogger(__name__)


class TimerHandler(Protocol):
    def fire_deadline(self, esc_id: str, step_id: str) -> None: ...
    def fire_nudge(self, esc_id: str, due: str) -> None: ...
    def fire_promise(self, esc_id: str, promised: str) -> None: ...
    def fire_follow_up(self, esc_id: str, index: str) -> None: ...
    def fire_action(self, esc_id: str, action_id: str) -> None: ...
    def fire_digest(self, week: str) -> None: ...
    def fire_delivery(self, esc_id: str, letter: str) -> None: ...


# One handler per deployment (Redis prefix) in this process, registered by the runtime.
_handlers: dict[str, TimerHandler] = {}


def register(prefix: str, handler: TimerHandler) -> None:
    _handlers[prefix] = handler


def unregister(prefix: str, handler: TimerHandler) -> None:
    """Forget `handler`, unless another runtime of the same deployment registered since."""
    if _handlers.get(prefix) is handler:
        del _handlers[prefix]


def _handler(prefix: str) -> TimerHandler:
    try:
        return _handlers[prefix]
    except KeyError:
        raise RuntimeError(f"no timer handler registered for {prefix!r} in this process") from None


def fire_deadline(prefix: str, esc_id: str, step_id: str) -> None:
    _handler(prefix).fire_deadline(esc_id, step_id)


def fire_nudge(prefix: str, esc_id: str, due: str) -> None:
    _handler(prefix).fire_nudge(esc_id, due)


def fire_promise(prefix: str, esc_id: str, promised: str) -> None:
    _handler(prefix).fire_promise(esc_id, promised)


def fire_follow_up(prefix: str, esc_id: str, index: str) -> None:
    _handler(prefix).fire_follow_up(esc_id, index)


def fire_action(prefix: str, esc_id: str, action_id: str) -> None:
    _handler(prefix).fire_action(esc_id, action_id)


def fire_digest(prefix: str, _esc_id: str, week: str) -> None:
    _handler(prefix).fire_digest(week)


def fire_delivery(prefix: str, esc_id: str, letter: str) -> None:
    _handler(prefix).fire_delivery(esc_id, letter)

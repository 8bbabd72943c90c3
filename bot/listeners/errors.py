"""One place that turns failures into something the person who acted can read.

Domain errors carry their own message; anything unexpected is logged with a traceback and a
short reference that the user sees too. Exception text never reaches users.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from slack_bolt import App

from bot.domain.errors import WarroomError

log = logging.getLogger(__name__)
T = TypeVar("T")


def unexpected(what: str) -> str:
    ref = uuid.uuid4().hex[:8]
    log.exception("unexpected failure while %s (ref %s)", what, ref)
    return (
        f"Something went wrong while {what}, and it was logged (reference {ref}). "
        "Try again; if it keeps happening, give the reference to whoever runs warroom."
    )


def guarded(what: str, reply: Callable[[str], Any], fn: Callable[[], T]) -> T | None:
    """Run work that happens after the ack; Bolt would swallow its exceptions silently."""
    try:
        return fn()
    except WarroomError as e:
        _try(reply, e.message)
    except Exception:
        _try(reply, unexpected(what))
    return None


def _try(reply: Callable[[str], Any], text: str) -> None:
    try:
        reply(text)
    except Exception:
        log.exception("could not tell the user: %s", text)


def register(app: App) -> None:
    @app.error
    def on_error(error: Exception, body: dict[str, Any], logger: logging.Logger) -> None:
        ref = uuid.uuid4().hex[:8]
        logger.error("unhandled error in a listener (ref %s)", ref, exc_info=error)

"""Acks first: work after the ack starts only when no Slack request is being answered.

Slack gives an app 3 seconds to ack, and Bolt runs the ack on the request's thread; but in
one Python process every thread shares the interpreter lock, so a burst of declarations
makes each ack wait behind the war rooms the earlier ones started. Holding that work back
until the burst is answered (never longer than `max_wait`) keeps acks fast and costs a room
a few milliseconds at most.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future
from contextlib import contextmanager
from typing import Any


class AcksFirst(Executor):
    def __init__(self, inner: Executor, *, max_wait: float = 0.25) -> None:
        self.inner = inner
        self.max_wait = max_wait
        self._answering = 0
        self._quiet = threading.Condition()

    @contextmanager
    def answering(self) -> Iterator[None]:
        """Wrap the handling of one Slack request."""
        with self._quiet:
            self._answering += 1
        try:
            yield
        finally:
            with self._quiet:
                self._answering -= 1
                if self._answering == 0:
                    self._quiet.notify_all()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        return self.inner.submit(self._when_quiet, fn, args, kwargs)

    def _when_quiet(self, fn: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
        with self._quiet:
            self._quiet.wait_for(lambda: self._answering == 0, timeout=self.max_wait)
        return fn(*args, **kwargs)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self.inner.shutdown(wait=wait, cancel_futures=cancel_futures)

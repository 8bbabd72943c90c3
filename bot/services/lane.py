"""The model's lane: a bulkhead between the VP agent and everything else.

A model call takes seconds and, when the model is slow, tens of seconds. Run on the threads
that open war rooms and answer clicks, a handful of them would make a new room wait behind
questions. So every call that reaches the model runs here, on a pool of its own, and the lane
says no rather than grow without bound:

- at most `workers` calls run at once and `queue` more wait; beyond that a request is refused
  at once with a message that says so (nothing is posted, nothing half-done);
- each person may ask `per_person` times per `window` seconds, counted in Redis so every
  process enforces the same limit (the resolution's own review is the system's, not counted);
- a request that waited past its deadline does not call the model: it gets the offline
  draft at once, labelled as such, instead of a model answer nobody is waiting for any more;
- when the process stops, people's requests are refused, and drafts under way get the
  shutdown grace to finish; then they are interrupted (`interrupted`), each at its next
  piece of text, and left for a person to regenerate.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field

from bot.domain.errors import InvalidInput
from bot.store import Store

log = logging.getLogger(__name__)


class Busy(InvalidInput):
    """The lane is full, or the person asked too often: try again shortly."""


class Interrupted(Exception):
    """The process is stopping and a draft's grace ran out: it stops where it is."""


@dataclass
class Ticket:
    """A place in the lane, reserved before anything changes; run it, or release it."""

    lane: ModelLane
    reserved_at: float
    _used: bool = False

    def run(self, work: Callable[[bool], object]) -> None:
        """Run `work(late)` on the lane; `late` is whether it waited past its deadline (then
        it must not call the model)."""
        self._used = True
        self.lane.executor.submit(self._run, work)

    def _run(self, work: Callable[[bool], object]) -> None:
        late = time.monotonic() - self.reserved_at > self.lane.deadline
        try:
            work(late)
        except Exception:
            log.exception("a draft on the model's lane failed")
        finally:
            self.lane._release()

    def release(self) -> None:
        if not self._used:
            self._used = True
            self.lane._release()


@dataclass
class ModelLane:
    executor: Executor
    store: Store
    workers: int
    queue: int
    # Seconds a request may wait for its turn and still call the model.
    deadline: float
    per_person: int = 6
    window: float = 60.0
    _taken: int = 0
    _lock: threading.Condition = field(default_factory=threading.Condition)
    _stopping: bool = False
    # Set when the process is stopping and the drafts under way have had their grace.
    interrupted: threading.Event = field(default_factory=threading.Event)
    _interrupter: threading.Timer | None = None

    @property
    def capacity(self) -> int:
        return self.workers + self.queue

    @property
    def in_flight(self) -> int:
        return self._taken

    def reserve(self, user: str | None) -> Ticket:
        """A place for one model call by `user` (None: the system's own); Busy when the lane
        is full or `user` asked too often. Every caller counts, a bot by its bot id; one that
        names no one ("") shares one allowance with all the others like it."""
        caller = None if user is None else user or "unknown"
        if caller is not None and not self.store.take_turn(
            f"agent:{caller}", self.per_person, self.window
        ):
            raise Busy(
                f"You have asked the VP agent {self.per_person} times in the last "
                f"{self.window:g} s; give it a moment, then ask again."
            )
        with self._lock:
            if caller is not None and self._stopping:
                raise Busy(
                    "warroom is restarting; ask the VP agent again in a minute. Nothing was "
                    "drafted."
                )
            if caller is not None and self._taken >= self.capacity:
                raise Busy(
                    f"The VP agent is busy with {self._taken} drafts right now; ask again in a "
                    "minute. Everything else in the room works as usual."
                )
            self._taken += 1
        return Ticket(self, time.monotonic())

    def _release(self) -> None:
        with self._lock:
            self._taken -= 1
            self._lock.notify_all()

    def stop(self, grace: float) -> None:
        """The process is stopping: take no more requests from people; the drafts under way
        may finish within `grace` seconds, after which they are interrupted."""
        with self._lock:
            self._stopping = True
        self._interrupter = threading.Timer(grace, self.interrupted.set)
        self._interrupter.daemon = True
        self._interrupter.start()

    def drain(self, timeout: float) -> int:
        """Wait up to `timeout` seconds for the drafts under way to end; how many have not."""
        with self._lock:
            self._lock.wait_for(lambda: self._taken <= 0, timeout)
            still = self._taken
        if self._interrupter is not None:  # nothing left to interrupt, or too late to
            self._interrupter.cancel()
            self._interrupter.join()
        return still

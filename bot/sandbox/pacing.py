"""How fast the drill plays, and whether it plays at all: pause, resume, one step, speed.

This module owns ``Pacing``, shared by the drill's thread (which waits on it between the
things it does) and the page (whose controls change it). While the drill is paused its
thread waits on a condition, not on a timer: it moves again only when someone presses
Resume or Next step, or the sandbox stops. A beat (the gap between two things the drill
does) lasts ``beat`` seconds at speed 1; a speed change shortens or lengthens the beat under
way at once.

Pausing holds the drill's fictional people, not the bot: the bot's deadlines keep running on
its own clock, as they would in a real war room.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

SPEEDS = (0.5, 1.0, 2.0, 4.0)


class Stopped(Exception):
    """The sandbox is stopping: the drill's thread ends."""


class Pacing:
    """The drill's pace and the controls over it; safe to use from any thread."""

    def __init__(self, beat: float, *, on_change: Callable[[], None] | None = None) -> None:
        self.beat_seconds = beat
        self._on_change = on_change or (lambda: None)
        self._cond = threading.Condition()
        self._paused = False
        self._speed = 1.0
        self._step = 0  # the number of the step announced last (0: the introduction)
        self._hold_at: int | None = None  # pause again once this step is announced
        self._holding = False  # the drill's thread is waiting on a pause right now
        self._finished = False
        self._stopped = False

    # ------------------------------------------------------------------ the controls

    def pause(self) -> None:
        self._change(paused=True, hold_at=None)

    def resume(self) -> None:
        self._change(paused=False, hold_at=None)

    def next_step(self) -> None:
        """Play on to the next step's announcement, then pause there."""
        with self._cond:
            self._paused = False
            self._hold_at = self._step + 1
            self._cond.notify_all()
        self._on_change()

    def set_speed(self, speed: float) -> None:
        if speed not in SPEEDS:
            raise ValueError(f"the speed is one of {', '.join(f'{s:g}' for s in SPEEDS)}")
        with self._cond:
            self._speed = speed
            self._cond.notify_all()
        self._on_change()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()

    # ------------------------------------------------------------------ what the page shows

    def snapshot(self) -> dict[str, Any]:
        with self._cond:
            if self._finished:
                state = "finished"
            elif self._paused:
                state = "paused"
            else:
                state = "running"
            return {
                "state": state,
                "holding": self._holding,
                "step": self._step,
                "speed": self._speed,
                "speeds": list(SPEEDS),
                "beat": self.beat_seconds,
            }

    def wait_for(self, predicate: Callable[[dict[str, Any]], bool], timeout: float) -> bool:
        """Wait until ``predicate(snapshot)`` holds (tests); whether it did in ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(self._snapshot_locked()):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

    # ------------------------------------------------------------------ the drill's side

    def entered_step(self, number: int) -> None:
        """The drill announced step ``number``: a Next step that asked for it pauses here."""
        with self._cond:
            self._step = number
            if self._hold_at is not None and number >= self._hold_at:
                self._paused, self._hold_at = True, None
            self._cond.notify_all()

    def finish(self) -> None:
        with self._cond:
            self._finished = True
            self._paused = False
            self._cond.notify_all()
        self._on_change()

    def beat(self, beats: float = 1.0) -> None:
        """Wait ``beats`` beats of playing time: none passes while paused."""
        left = beats * self.beat_seconds  # in seconds at speed 1
        with self._cond:
            while True:
                if self._stopped:
                    raise Stopped
                if self._paused:
                    self._hold()
                    continue
                if left <= 0:
                    return
                started = time.monotonic()
                speed = self._speed
                self._cond.wait(left / speed)
                left -= (time.monotonic() - started) * speed

    def check(self) -> None:
        """Hold here while paused; raise ``Stopped`` if the sandbox is stopping."""
        with self._cond:
            while True:
                if self._stopped:
                    raise Stopped
                if not self._paused:
                    return
                self._hold()

    @property
    def stopped(self) -> bool:
        with self._cond:
            return self._stopped

    # ------------------------------------------------------------------ inside

    def _hold(self) -> None:
        """Wait (lock held) until resumed, stepped or stopped."""
        self._holding = True
        self._cond.notify_all()
        self._on_change()
        try:
            self._cond.wait_for(lambda: self._stopped or not self._paused)
        finally:
            self._holding = False

    def _change(self, *, paused: bool, hold_at: int | None) -> None:
        with self._cond:
            if self._finished:
                return
            self._paused, self._hold_at = paused, hold_at
            self._cond.notify_all()
        self._on_change()

    def _snapshot_locked(self) -> dict[str, Any]:
        return {
            "paused": self._paused,
            "holding": self._holding,
            "step": self._step,
            "finished": self._finished,
        }

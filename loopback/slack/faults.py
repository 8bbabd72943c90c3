"""Faults injected per Web API method: a one-off ``{"ok": false}`` error, an HTTP 429 with
``Retry-After``, an HTTP 5xx, a sliding-window rate limit, or a call Slack carried out whose
answer never arrived (the connection dropped, or a gateway answered 502/504). ``fired``
records each one-off fault as it hits, (method, kind); ``clear_faults`` drops those still
waiting."""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

# (HTTP status, JSON body, extra headers) of a refused call.
Refusal = tuple[int, dict[str, Any], dict[str, str]]


@dataclass
class _Fault:
    kind: str  # "error" | "ratelimit" | "server" | "lost"
    remaining: int
    error: str = ""
    retry_after: int = 1
    status: int = 500
    skip: int = 0  # calls let through, answered, before the fault applies


@dataclass
class _Window:
    limit: int
    window: float
    stamps: deque[float] = field(default_factory=deque)


def _server_error_code(status: int) -> str:
    # Slack's generic codes for its own failures.
    return "service_unavailable" if status == 503 else "internal_error"


class FaultInjection:
    """The faults waiting for each method, and the rate limits in force."""

    def __init__(self, implemented: Collection[str]) -> None:
        self._implemented = implemented
        self._faults_lock = threading.Lock()
        self._faults: dict[str, list[_Fault]] = {}
        self._limits: dict[str, _Window] = {}
        self._delays: dict[str, list[list[float]]] = {}  # method -> [[seconds, times left]]
        # (method, kind) of every one-off fault that hit a call, in order.
        self.fired: list[tuple[str, str]] = []

    def fail_next(self, method: str, error: str, *, times: int = 1) -> None:
        self._add_fault(method, _Fault("error", times, error=error))

    def rate_limit_next(self, method: str, *, retry_after: int = 1, times: int = 1) -> None:
        self._add_fault(method, _Fault("ratelimit", times, retry_after=int(retry_after)))

    def server_error_next(self, method: str, *, status: int = 500, times: int = 1) -> None:
        if not 500 <= status <= 599:
            raise ValueError(f"server_error_next needs a 5xx status, got {status}")
        self._add_fault(method, _Fault("server", times, status=status))

    def lose_answer_next(
        self, method: str, *, status: int | None = None, times: int = 1, skip: int = 0
    ) -> None:
        """The next ``times`` calls of ``method`` (after ``skip`` answered ones) are carried
        out (the message is posted, the channel created), then the answer is lost: the
        connection is closed without one, or, with ``status`` (502, 504), a gateway error
        comes back instead. The caller cannot tell whether Slack acted."""
        if status is not None and not 500 <= status <= 599:
            raise ValueError(f"lose_answer_next needs a 5xx status, got {status}")
        if skip < 0:
            raise ValueError("skip must be >= 0")
        self._add_fault(method, _Fault("lost", times, status=status or 0, skip=skip))

    def delay_next(self, method: str, seconds: float, *, times: int = 1) -> None:
        """The next ``times`` calls of ``method`` wait ``seconds`` before Slack acts on them
        (a caller killed meanwhile never hears; the call is still carried out)."""
        self._check_method(method)
        if seconds <= 0 or times < 1:
            raise ValueError("seconds must be > 0 and times >= 1")
        with self._faults_lock:
            self._delays.setdefault(method, []).append([float(seconds), times])

    def _delay(self, method: str) -> float:
        with self._faults_lock:
            delays = self._delays.get(method)
            if not delays:
                return 0.0
            seconds, _ = delays[0]
            delays[0][1] -= 1
            if delays[0][1] <= 0:
                delays.pop(0)
            return seconds

    def set_rate_limit(self, method: str, per_minute: int, *, window: float = 60.0) -> None:
        """Allow ``per_minute`` calls per sliding ``window`` seconds, then answer 429."""
        self._check_method(method)
        if per_minute < 1 or window <= 0:
            raise ValueError("per_minute must be >= 1 and window > 0")
        with self._faults_lock:
            self._limits[method] = _Window(per_minute, float(window))

    def clear_faults(self) -> None:
        """Drop every one-off fault and delay still waiting (the rate limits stay)."""
        with self._faults_lock:
            self._faults.clear()
            self._delays.clear()

    def clear_rate_limit(self, method: str) -> None:
        with self._faults_lock:
            self._limits.pop(method, None)

    def _add_fault(self, method: str, fault: _Fault) -> None:
        self._check_method(method)
        if fault.remaining < 1:
            raise ValueError("times must be >= 1")
        with self._faults_lock:
            self._faults.setdefault(method, []).append(fault)

    def _check_method(self, method: str) -> None:
        # A typo here would silently never fire; refuse it instead.
        if method not in self._implemented:
            raise ValueError(f"the emulator does not implement {method!r}")

    def _answer_lost(self, method: str) -> int | None:
        """Whether the answer to this call of ``method``, carried out, is lost: None when it
        is not; 0 to drop the connection; else the gateway's HTTP status."""
        with self._faults_lock:
            faults = self._faults.get(method)
            if not faults or faults[0].kind != "lost":
                return None
            fault = faults[0]
            if fault.skip > 0:
                fault.skip -= 1
                return None
            fault.remaining -= 1
            if fault.remaining <= 0:
                faults.pop(0)
            self.fired.append((method, fault.kind))
            return fault.status

    def _refusal(self, method: str) -> Refusal | None:
        """How a call of ``method`` that passed authentication is refused, if it is."""
        with self._faults_lock:
            faults = self._faults.get(method)
            if faults and faults[0].kind != "lost":
                fault = faults[0]
                fault.remaining -= 1
                if fault.remaining <= 0:
                    faults.pop(0)
                self.fired.append((method, fault.kind))
                if fault.kind == "error":
                    return 200, {"ok": False, "error": fault.error}, {}
                if fault.kind == "ratelimit":
                    retry = {"Retry-After": str(fault.retry_after)}
                    return 429, {"ok": False, "error": "ratelimited"}, retry
                return fault.status, {"ok": False, "error": _server_error_code(fault.status)}, {}

            window = self._limits.get(method)
            if window is not None:
                now = time.monotonic()
                while window.stamps and window.stamps[0] <= now - window.window:
                    window.stamps.popleft()
                if len(window.stamps) >= window.limit:
                    # The oldest call in the window is the next to leave it.
                    wait = window.stamps[0] + window.window - now
                    retry = {"Retry-After": str(max(1, math.ceil(wait)))}
                    return 429, {"ok": False, "error": "ratelimited"}, retry
                # Refused calls do not consume quota; answered ones do.
                window.stamps.append(now)
        return None
